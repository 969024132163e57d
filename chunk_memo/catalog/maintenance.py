"""Maintenance of a root's catalog: read every chunk row, delete caches and stale rows.

What the inspection tools (``chunk-memo verify``, ``prune``, ``du``) need and the hot
paths do not: a paged walk over the root's whole chunk index, removing one cache's
entry, and deleting chunk rows only while they still point to the file that was
checked (another process may have rewritten the chunk since).

:class:`Maintenance` is a mixin of :class:`~chunk_memo.catalog.catalog.Catalog`, which
provides the transactions (``_read``, ``_write``), the prebuilt statements (``_sql``),
the backend (``_backend``) and the root (``_root_id``, ``_cache_id``).
"""

from __future__ import annotations

import threading
from functools import partial
from typing import Iterator, Mapping

from sqlalchemy import Connection, bindparam, delete, select, tuple_

from .dialects import json_string_array
from .records import ChunkRow
from .schema import (
    CHUNK_ROW_COLUMNS,
    axis_values,
    cache_axes,
    cache_chunks,
    cache_params,
    caches,
    chunks,
)
from .validation import json_object, require_str_keys

_new_chunk_row = partial(tuple.__new__, ChunkRow)

#: Chunk rows per page of :meth:`Maintenance.iter_chunks` (one read transaction each).
CHUNK_PAGE = 10_000
#: Chunks per write transaction of :meth:`Maintenance.delete_chunks_at`.
DELETE_BATCH = 10_000

# Tables holding one cache's own rows, children first (cascades are not relied on).
_CACHE_CHILDREN = (cache_chunks, axis_values, cache_axes, cache_params)


class _MaintenanceStatements:
    """The statements of this module, built once per backend.

    Kept apart from ``queries.Statements``: no hot path runs them, and a page of
    10^4 rows costs far more than building a statement.
    """

    def __init__(self, backend) -> None:
        root = chunks.c.root_id == bindparam("root")
        self.chunk_page = (
            select(*[chunks.c[name] for name in CHUNK_ROW_COLUMNS])
            .where(root, chunks.c.chunk_hash > bindparam("after"))
            .order_by(chunks.c.chunk_hash)
            .limit(bindparam("page_size")))
        pairs = backend.json_object_rows(bindparam("pairs"), "p")
        self.chunks_at = select(chunks.c.chunk_hash).where(
            root, tuple_(chunks.c.chunk_hash, chunks.c.location).in_(
                select(pairs.c.key, pairs.c.value)))
        self.delete_children = [delete(table).where(table.c.cache_id == bindparam("cache_id"))
                                for table in _CACHE_CHILDREN]
        self.delete_cache = delete(caches).where(caches.c.id == bindparam("cache_id"))


_built: dict[str, _MaintenanceStatements] = {}
_built_lock = threading.Lock()


def _statements(backend) -> _MaintenanceStatements:
    with _built_lock:
        if backend.name not in _built:
            _built[backend.name] = _MaintenanceStatements(backend)
        return _built[backend.name]


class Maintenance:
    """Walk, prune and repair the chunk index of one root."""

    @property
    def _maintenance_sql(self) -> _MaintenanceStatements:
        return _statements(self._backend)

    def iter_chunks(self, page_size: int = CHUNK_PAGE) -> Iterator[ChunkRow]:
        """Every chunk row of this root, in hash order, read page by page.

        Each page is its own read transaction, so a walk never holds up writers; rows
        recorded or deleted during the walk may or may not be seen.

        Parameters
        ----------
        page_size : int
            Rows per page (and per transaction).

        Examples
        --------
        >>> total = sum(row.byte_size for row in catalog.iter_chunks())  # doctest: +SKIP
        """
        if isinstance(page_size, bool) or not isinstance(page_size, int) or page_size < 1:
            raise ValueError(f"page_size must be a positive int, got {page_size!r}")
        statement = self._maintenance_sql.chunk_page
        after = ""  # below every non-empty hash
        while True:
            bound = {"root": self._root_id, "after": after, "page_size": page_size}
            rows = self._read(lambda connection: connection.execute(statement, bound).all())
            yield from (_new_chunk_row(tuple(row)) for row in rows)
            if len(rows) < page_size:
                return
            after = rows[-1][0]

    def delete_cache(self, cache_hash: str) -> None:
        """Forget one cache of this root: its entry, axes, params and chunk links.

        The chunk rows stay: a chunk may belong to several caches (chunks are shared
        by hash), so deleting those no other cache holds is the caller's decision
        (:meth:`delete_chunks_at`).

        Raises
        ------
        CacheNotFoundError
            ``cache_hash`` is not registered under this root.
        """
        sql = self._maintenance_sql

        def forget(connection: Connection) -> None:
            bound = {"cache_id": self._cache_id(connection, cache_hash)}
            for statement in sql.delete_children:
                connection.execute(statement, bound)
            connection.execute(sql.delete_cache, bound)

        self._write(forget)

    def delete_chunks_at(self, locations: Mapping[str, str]) -> set[str]:
        """Delete chunk rows (and their links) that still point to the given files.

        A row whose location changed since the caller read it (another process
        rewrote the chunk) is kept, so that its new file is never lost.

        Parameters
        ----------
        locations : mapping of str to str
            Chunk hash -> the location the caller expects its row to hold.

        Returns
        -------
        set of str
            The hashes whose rows were deleted; their files are the caller's to remove.
        """
        pairs = dict(locations)
        require_str_keys(pairs, "chunk hashes")
        require_str_keys(pairs.values(), "chunk locations")
        sql, shared = self._maintenance_sql, self._sql
        items = list(pairs.items())
        deleted: set[str] = set()
        for start in range(0, len(items), DELETE_BATCH):
            batch = dict(items[start:start + DELETE_BATCH])
            bound = {"root": self._root_id, "pairs": json_object(batch)}

            def delete_matching(connection: Connection) -> list[str]:
                found = connection.execute(sql.chunks_at, bound).scalars().all()
                if found:
                    keys = {"root": self._root_id, "keys": json_string_array(found)}
                    connection.execute(shared.unlink_chunks, keys)
                    connection.execute(shared.delete_chunks, keys)
                return found

            deleted.update(self._write(delete_matching))
        return deleted
