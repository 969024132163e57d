"""Chunks of one root: payload files plus their catalog rows, kept consistent.

The catalog row is the commit point.  Saving writes the payload file first (atomic,
under a new name), then commits the row, then removes the file the row pointed to
before.  A process killed in between leaves at most an orphan file, never a row
pointing to a bad file.  Loading treats a row whose file is missing, truncated or
altered as missing: it warns once naming the chunk, drops the row and the file, and
the caller recomputes.
"""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from chunk_memo.catalog import Catalog, ChunkRow
from chunk_memo.catalog.engine import check_database_file, disposals
from chunk_memo.errors import CorruptChunkWarning, CorruptPayloadError
from chunk_memo.payload import flags_from_bitmap
from chunk_memo.store import ChunkStore, StoredPayload

__all__ = ["ChunkStorage", "MISSING", "open_root_catalog", "stored_positions"]

CATALOG_URL_VARIABLE = "CHUNK_MEMO_CATALOG_URL"


def open_root_catalog(root: str | os.PathLike, catalog_url: str | None = None) -> Catalog:
    """The catalog of ``root``: ``catalog_url``, else ``$CHUNK_MEMO_CATALOG_URL``, else
    SQLite at ``<root>/catalog.sqlite``.

    Opened once per process and kept (a :class:`Catalog` holds no connection and no
    mutable state): opening checks the schema and finds the root's id, ~1 ms of
    transactions that a service building a cache per request, or ``auto_load``
    asking several questions, would otherwise pay each time.  Reopened after
    :func:`~chunk_memo.catalog.dispose_engine` of its URL, or when its SQLite file
    was deleted (a root removed and used again in the same process).
    """
    url = catalog_url or os.environ.get(CATALOG_URL_VARIABLE) or None
    path = os.path.abspath(os.fspath(root))
    key = (path, url, os.getpid())
    held = _open_catalogs.get(key)
    if held is not None:
        check_database_file(held[1].url)  # deleted with its root: reopened below
        if held[0] == disposals(held[1].url):
            return held[1]
    catalog = Catalog(path, url)
    if len(_open_catalogs) >= MAX_OPEN_CATALOGS:
        _open_catalogs.clear()
    _open_catalogs[key] = (disposals(catalog.url), catalog)
    return catalog


#: Catalogs kept open by open_root_catalog: (root, url, pid) -> (disposals, catalog).
_open_catalogs: dict[tuple, tuple[int, Catalog]] = {}
MAX_OPEN_CATALOGS = 256


FLUSH_ROWS = 256
FLUSH_SECONDS = 1.0
_LOOK_UP = object()  # "find the chunk's current row yourself"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: Returned by :meth:`ChunkStorage.load` for a chunk that is not (validly) stored.
MISSING = _Missing()


class ChunkStorage:
    """Save and load chunk outputs under ``root``, through its catalog and store.

    Parameters
    ----------
    root : path
        The cache root; payload files live under it.
    catalog : Catalog, optional
        An open catalog; by default the root's own (``catalog_url`` or SQLite at
        ``<root>/catalog.sqlite``).
    durable : bool
        fsync payloads before their rows are committed.
    trusted : bool
        With ``False`` a payload that needs pickle is refused, never unpickled.
    """

    def __init__(self, root: str | os.PathLike, catalog: Catalog | None = None, *,
                 catalog_url: str | None = None, durable: bool = False,
                 trusted: bool = True) -> None:
        self.root = Path(root)
        self.store = ChunkStore(self.root, durable=durable, trusted=trusted,
                                allow_pickle=True)
        self.catalog = catalog if catalog is not None else open_root_catalog(self.root, catalog_url)
        self._pending: list[tuple[ChunkRow, str | None, str | None]] = []
        self._pending_since = 0.0

    # -- queries -----------------------------------------------------------------
    def existing(self, chunk_hashes: Iterable[str]) -> set[str]:
        """The subset of ``chunk_hashes`` that has a catalog row."""
        return self.catalog.existing_chunks(chunk_hashes)

    def rows(self, chunk_hashes: Iterable[str]) -> dict[str, ChunkRow]:
        return self.catalog.get_chunks(chunk_hashes)

    # -- saving ------------------------------------------------------------------
    def save(self, chunk_hash: str, output: Any, n_points: int, *,
             cache_hash: str | None = None, location: str | None = None,
             previous: ChunkRow | None | object = _LOOK_UP, defer: bool = False) -> ChunkRow:
        """Store a chunk's output: per item when it is a list of ``n_points``, else whole.

        ``previous`` is the chunk's current row if the caller knows it (``None``: no
        row).  With ``defer`` the row joins a batch committed by :meth:`flush` (or when
        the batch is large or old); until then other processes do not see the chunk.
        """
        if isinstance(output, list) and len(output) == n_points:
            stored = self.store.write_items(chunk_hash, output, location=location)
        else:
            stored = self.store.write_whole(chunk_hash, output, location=location)
        if previous is _LOOK_UP:
            previous = self.rows([chunk_hash]).get(chunk_hash)
        if not defer:
            return self._commit(chunk_hash, stored, cache_hash, previous=previous)
        row = _row_of(chunk_hash, stored)
        if not self._pending:
            self._pending_since = time.monotonic()
        self._pending.append((row, cache_hash, previous.location if previous else None))
        if len(self._pending) >= FLUSH_ROWS or time.monotonic() - self._pending_since > FLUSH_SECONDS:
            self.flush()
        return row

    def flush(self) -> None:
        """Commit the deferred rows in one transaction, then drop superseded files."""
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        by_cache: dict[str | None, list[ChunkRow]] = {}
        for row, cache_hash, _ in pending:
            by_cache.setdefault(cache_hash, []).append(row)
        try:
            for cache_hash, rows in by_cache.items():
                self.catalog.record_chunks(rows, cache_hash=cache_hash)
        except BaseException:
            for row, _, _ in pending:
                self.store.remove(row.location)
            raise
        for row, _, old_location in pending:
            if old_location is not None and old_location != row.location:
                self.store.remove(old_location)

    def save_items(self, chunk_hash: str, items: Mapping[int, Any], n_points: int, *,
                   cache_hash: str | None = None) -> ChunkRow:
        """Add items at ``positions -> output`` to a chunk, keeping those already stored."""
        row = self.rows([chunk_hash]).get(chunk_hash)
        if row is not None and row.n_items == n_points:
            try:
                stored = self.store.merge_items(row.location, chunk_hash, items, n_points,
                                                checksum=row.checksum)
                return self._commit(chunk_hash, stored, cache_hash, previous=row)
            except (CorruptPayloadError, FileNotFoundError) as error:
                self._drop_broken(row, error)
        present = [i in items for i in range(n_points)]
        values = [items.get(i) for i in range(n_points)]
        stored = self.store.write_items(chunk_hash, values, present=present)
        return self._commit(chunk_hash, stored, cache_hash)

    def _commit(self, chunk_hash: str, stored: StoredPayload, cache_hash: str | None,
                previous: ChunkRow | None | object = _LOOK_UP) -> ChunkRow:
        if previous is _LOOK_UP:
            previous = self.rows([chunk_hash]).get(chunk_hash)
        row = _row_of(chunk_hash, stored)
        try:
            self.catalog.record_chunks([row], cache_hash=cache_hash)
        except BaseException:
            self.store.remove(stored.location)
            raise
        if previous is not None and previous.location != stored.location:
            self.store.remove(previous.location)
        return row

    # -- loading -----------------------------------------------------------------
    def load(self, chunk_hash: str, positions: Sequence[int] | None = None,
             row: ChunkRow | None = None) -> Any:
        """A chunk's stored output (or the items at ``positions``), else ``MISSING``.

        Whole outputs are returned whole whatever ``positions`` says.  A payload that
        fails its checks is reported with :class:`CorruptChunkWarning`, dropped, and
        reported as ``MISSING`` so that the caller recomputes it.
        """
        for _ in range(3):
            if row is None:
                row = self.rows([chunk_hash]).get(chunk_hash)
                if row is None:
                    return MISSING
            wanted = None if row.n_items is None else positions
            try:
                return self.store.read(row.location, chunk_hash, checksum=row.checksum,
                                       positions=wanted)
            except FileNotFoundError as error:
                # Another process may have rewritten the chunk: read the row again.
                fresh = self.rows([chunk_hash]).get(chunk_hash)
                if fresh is None:
                    return MISSING
                if fresh.location == row.location:
                    self._drop_broken(row, error)
                    return MISSING
                row = fresh
            except CorruptPayloadError as error:
                self._drop_broken(row, error)
                return MISSING
        return MISSING

    def _drop_broken(self, row: ChunkRow, error: BaseException) -> None:
        warnings.warn(
            f"chunk {row.chunk_hash} at {row.location!r} is unreadable ({error}); "
            "it is dropped and will be recomputed",
            CorruptChunkWarning, stacklevel=3,
        )
        current = self.rows([row.chunk_hash]).get(row.chunk_hash)
        if current is not None and current.location == row.location:
            self.catalog.delete_chunks([row.chunk_hash])
        self.store.remove(row.location)


def stored_positions(row: ChunkRow | None, n_points: int | None = None) -> set[int] | range:
    """Positions of the items a chunk row says are stored.

    Empty for no row, a whole-stored chunk, or a row of another size than ``n_points``.
    """
    if row is None or row.n_items is None or (n_points is not None and row.n_items != n_points):
        return set()
    if row.present is None:
        return range(row.n_items)
    flags = flags_from_bitmap(row.present, row.n_items)
    return {i for i, flag in enumerate(flags) if flag}


def _row_of(chunk_hash: str, stored: StoredPayload) -> ChunkRow:
    return ChunkRow(
        chunk_hash=chunk_hash, location=stored.location,
        n_items=None if stored.whole else stored.n_items,
        n_present=1 if stored.whole else _count_present(stored),
        present=stored.present, byte_size=stored.size, checksum=stored.checksum,
    )


def _count_present(stored: StoredPayload) -> int:
    if stored.present is None:
        return stored.n_items
    return sum(bin(byte).count("1") for byte in stored.present)
