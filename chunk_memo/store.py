"""Chunk payload files under a cache root: atomic writes, checksums, partial reads.

The store only handles files; it never runs SQL. The catalog records what a write
returns (:class:`StoredPayload`) and hands ``location`` and ``checksum`` back to
:meth:`ChunkStore.read`. Payloads live at
``<root>/chunks/<hash[:2]>/<hash>.<unique>.cmp`` (files written under the earlier
``chunks/<hash[:2]>/<hash[2:4]>/`` layout are read where their catalog rows say):
every write gets a new name, so rewriting a partial chunk never replaces a file that a concurrent
reader may be reading; the catalog row says which file is current and the caller
removes the old one after committing it.

Errors when reading: a damaged, truncated or foreign file raises
:class:`~chunk_memo.errors.CorruptPayloadError`; a missing file raises
:class:`FileNotFoundError`, kept distinct because it is often a race (another
process rewrote the chunk and removed the old file): re-read the catalog row
before recomputing.
"""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import socket
import time
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import xxhash

from chunk_memo.errors import CorruptPayloadError
from chunk_memo.payload import (
    HeaderCache, PayloadReader, assemble_items_payload, bitmap_from_flags, build_items_payload,
    build_whole_payload, pack_value,
)

__all__ = ["ChunkStore", "StoredPayload", "PAYLOAD_SUFFIX", "TEMP_SUFFIX"]

PAYLOAD_SUFFIX = ".cmp"
TEMP_SUFFIX = ".cmtmp"
CHUNKS_DIR = "chunks"

_CHUNK_HASH = re.compile(r"[0-9a-f]{4,128}")
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:32] or "host"
_HASH_BLOCK = 1 << 20


@dataclasses.dataclass(frozen=True)
class StoredPayload:
    """What a write stored, for the catalog row.

    Attributes
    ----------
    location : str
        POSIX path of the file relative to the root.
    size : int
        File size in bytes.
    checksum : str
        xxh3_128 hex digest of the whole file.
    n_items : int or None
        Item count; None for a whole-mode payload.
    present : bytes or None
        Presence bitmap (see :func:`chunk_memo.payload.bitmap_from_flags`); None
        when every item is present (and for whole mode).
    whole : bool
        True for a whole-mode payload.
    """

    location: str
    size: int
    checksum: str
    n_items: int | None
    present: bytes | None
    whole: bool


class ChunkStore:
    """Payload files of the chunks under one cache root.

    Parameters
    ----------
    root : str or Path
        The cache root; payloads go under ``root/chunks``.
    durable : bool
        fsync each file and its directory before a write returns.
    trusted : bool
        When False, reading a payload that needs pickle raises
        :class:`~chunk_memo.errors.UntrustedPayloadError`.
    allow_pickle : bool
        When False, writing a value msgpack cannot hold raises TypeError.

    Examples
    --------
    >>> store = ChunkStore(tmp_path)                              # doctest: +SKIP
    >>> stored = store.write_items("ab12cd", [{"x": 1.0}, {"x": 2.0}])  # doctest: +SKIP
    >>> store.read(stored.location, "ab12cd", positions=[1])     # doctest: +SKIP
    [{'x': 2.0}]
    """

    def __init__(self, root: str | os.PathLike, *, durable: bool = False,
                 trusted: bool = True, allow_pickle: bool = True) -> None:
        self.root = Path(root)
        self._root_text = str(self.root).rstrip("/") or ""
        self._headers = HeaderCache()  # parsed headers of files read in part
        self._folders: set[Path] = set()  # folders this store made or found
        self.durable = durable
        self.trusted = trusted
        self.allow_pickle = allow_pickle

    def __repr__(self) -> str:
        return f"ChunkStore({str(self.root)!r}, trusted={self.trusted})"

    # ------------------------------------------------------------- locations
    def path(self, location: str) -> Path:
        """Absolute path of a stored ``location`` (which must stay inside the root)."""
        return Path(self._file_name(location))

    def _file_name(self, location: str) -> str:
        """:meth:`path` as a string: what the read path opens (a Path costs more).

        String checks, not ``PurePosixPath``: this runs for every chunk read.
        """
        parts = location.split("/")
        if (location[:1] in ("", "/") or ".." in parts or "\\" in location
                or "\0" in location or not location.strip("/.")):
            raise ValueError(f"location {location!r} is not a relative path inside the root "
                             f"{str(self.root)!r}")
        return f"{self._root_text}/{location}"

    def _new_location(self, chunk_hash: str) -> str:
        unique = f"{time.time_ns():x}{secrets.token_hex(4)}"
        # One level of 256 folders: creating a folder costs as much as writing a
        # small payload (measured ~180 us on these machines), and two levels made a
        # first sweep of 500 chunks create ~720 of them.  10^7 chunks are ~40,000
        # files per folder, which ext4 and XFS index.
        return f"{CHUNKS_DIR}/{chunk_hash[:2]}/{chunk_hash}.{unique}{PAYLOAD_SUFFIX}"

    def _explicit_location(self, location: str | os.PathLike) -> str:
        """Normalized POSIX form of a caller's location, refused outside the root."""
        root = self.root.resolve()
        if Path(location).is_absolute():
            raise ValueError(f"location {os.fspath(location)!r} is absolute; give a path "
                             f"relative to the cache root {str(root)!r}")
        target = (root / Path(location)).resolve()
        if target == root or not target.is_relative_to(root):
            raise ValueError(f"location {os.fspath(location)!r} resolves to {str(target)!r}, "
                             f"outside the cache root {str(root)!r}; give a path relative "
                             f"to the root that stays inside it")
        return target.relative_to(root).as_posix()

    # ----------------------------------------------------------------- writes
    def write_items(self, chunk_hash: str, items: Sequence[Any],
                    present: Sequence[bool] | None = None,
                    location: str | os.PathLike | None = None) -> StoredPayload:
        """Store a chunk item by item, so that subsets can be read back alone.

        Parameters
        ----------
        chunk_hash : str
            Lower-case hex hash of the chunk (written into the file, and its name).
        items : sequence
            One output per point; ``items[i]`` is ignored where ``present[i]`` is False.
        present : sequence of bool, optional
            Which positions hold an output (a partial chunk); None means all.
        location : str or PathLike, optional
            A path relative to the root (e.g. from a user's ``cache_path_fn``) used
            instead of the sharded default.

        Returns
        -------
        StoredPayload

        Raises
        ------
        ValueError
            A malformed ``chunk_hash`` or a ``location`` outside the root.
        TypeError
            A value needs pickle and the store was made with ``allow_pickle=False``.
        OSError
            The write failed; nothing is left behind and earlier files are intact.
        """
        self._check_hash(chunk_hash)
        data = build_items_payload(chunk_hash, items, present, self.allow_pickle)
        bitmap = None if present is None or all(present) else bitmap_from_flags(present)
        return self._store(chunk_hash, data, location, len(items), bitmap)

    def write_whole(self, chunk_hash: str, obj: Any,
                    location: str | os.PathLike | None = None) -> StoredPayload:
        """Store a chunk output as one object, read back only whole.

        Parameters and errors are those of :meth:`write_items`.
        """
        self._check_hash(chunk_hash)
        data = build_whole_payload(chunk_hash, obj, self.allow_pickle)
        return self._store(chunk_hash, data, location, None, None)

    def merge_items(self, location: str, chunk_hash: str, new_items: Mapping[int, Any],
                    n_items: int, *, checksum: str | None = None,
                    new_location: str | os.PathLike | None = None) -> StoredPayload:
        """Write a new file holding a partial chunk's items plus ``new_items``.

        Stored items are copied as bytes (verified, not decoded). The old file is
        left in place: remove it with :meth:`remove` after the catalog points to
        the new one.

        Parameters
        ----------
        location, chunk_hash, checksum
            The current file, as for :meth:`read`.
        new_items : mapping of int to Any
            Outputs by position; a position already stored is replaced.
        n_items : int
            Item count of the chunk; must match the stored file.
        new_location : str or PathLike, optional
            Explicit location of the new file; it must differ from ``location``.

        Raises
        ------
        ValueError
            The stored file is whole-mode or has another item count, or
            ``new_location`` is ``location``.
        IndexError
            A position of ``new_items`` outside ``0 .. n_items - 1``.
        """
        self._check_hash(chunk_hash)
        if new_location is not None and (
                self._explicit_location(new_location) == self._explicit_location(location)):
            raise ValueError(f"new_location {os.fspath(new_location)!r} is the file being "
                             f"merged; the caller would remove the merged result")
        reader = self._open_whole_file(location, chunk_hash, checksum)
        if reader.whole or reader.n_items != n_items:
            raise ValueError(f"cannot merge into {location!r}: it holds "
                             f"{'a whole object' if reader.whole else f'{reader.n_items} items'}"
                             f", expected {n_items} items")
        bad = [p for p in new_items if not 0 <= p < n_items]
        if bad:
            raise IndexError(f"positions {bad} are outside a chunk of {n_items} items")
        blobs: list[Any] = [None] * n_items
        for position in reader.present_positions():
            blobs[position] = bytes(reader.raw_item(position, verify=checksum is None))
        for position, value in new_items.items():
            blobs[position] = pack_value(value, self.allow_pickle)
        flags = [blob is not None for blob in blobs]
        data = assemble_items_payload(chunk_hash, blobs)
        return self._store(chunk_hash, data, new_location, n_items,
                           None if all(flags) else bitmap_from_flags(flags))

    def _check_hash(self, chunk_hash: str) -> None:
        if not isinstance(chunk_hash, str) or not _CHUNK_HASH.fullmatch(chunk_hash):
            raise ValueError(f"chunk hash must be 4 to 128 lower-case hex digits, "
                             f"got {chunk_hash!r}")

    def _store(self, chunk_hash: str, data: bytes, location: str | os.PathLike | None,
               n_items: int | None, present: bytes | None) -> StoredPayload:
        if location is None:
            rel = self._new_location(chunk_hash)
        else:
            rel = self._explicit_location(location)
        self._write_atomic(self.path(rel), data)
        return StoredPayload(location=rel, size=len(data),
                             checksum=xxhash.xxh3_128_hexdigest(data),
                             n_items=n_items, present=present, whole=n_items is None)

    def _write_atomic(self, path: Path, data: bytes) -> None:
        """Write ``data`` to a temporary file beside ``path``, then rename it over."""
        folder = path.parent
        if folder not in self._folders:  # made once per store, not per write
            folder.mkdir(parents=True, exist_ok=True)
            if len(self._folders) >= 4096:
                self._folders.clear()
            self._folders.add(folder)
        tmp = path.with_name(
            f".{path.name[:100]}.{_HOST}.{os.getpid()}.{secrets.token_hex(6)}{TEMP_SUFFIX}")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileNotFoundError:  # the folder was removed since (prune drops empty ones)
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, flags, 0o666)
        try:
            try:
                _write_all(fd, data)
                if self.durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        if self.durable:
            _fsync_directory(path.parent)

    # ------------------------------------------------------------------ reads
    def read(self, location: str, chunk_hash: str, checksum: str | None = None,
             positions: Iterable[int] | None = None) -> Any:
        """Read a chunk's outputs back.

        Parameters
        ----------
        location : str
            As returned by a write.
        chunk_hash : str
            The chunk the file must hold (a file of another chunk is corrupt).
        checksum : str, optional
            xxh3_128 hex of the file; checked whenever the whole file is read
            (``positions`` None). A partial read checks the header checksum and
            the checksum of each requested item instead.
        positions : iterable of int, optional
            Item positions to read, returned in the order given. Only the header,
            the item table and these items' bytes are read. None reads every
            stored item (items mode) or the object (whole mode).

        Returns
        -------
        list or Any
            The requested items, or the whole object.

        Raises
        ------
        CorruptPayloadError
            Bad magic, truncation, a checksum mismatch, or a file of another chunk.
        FileNotFoundError
            No file at ``location``.
        KeyError
            Requested positions not stored in a partial chunk (all are named).
        IndexError
            Positions outside the chunk.
        ValueError
            ``positions`` given for a whole-mode payload.
        """
        if positions is None:
            reader = self._open_whole_file(location, chunk_hash, checksum)
            verify = checksum is None  # a matching file checksum covers every item
            return reader.whole_value(verify) if reader.whole else reader.items(None, verify)
        with open(self._file_name(location), "rb", buffering=0) as file:
            reader = PayloadReader(file, chunk_hash, trusted=self.trusted,
                                   headers=self._headers)
            if reader.whole:
                raise ValueError(f"chunk {chunk_hash!r} in {location!r} is stored whole; "
                                 f"read it with positions=None")
            return reader.items(positions)

    def _open_whole_file(self, location: str, chunk_hash: str,
                         checksum: str | None) -> PayloadReader:
        path = self.path(location)
        data = path.read_bytes()
        if checksum is not None and xxhash.xxh3_128_hexdigest(data) != checksum:
            raise CorruptPayloadError(chunk_hash, path, f"file checksum is not {checksum!r}")
        return PayloadReader(data, chunk_hash, trusted=self.trusted, name=str(path))

    def verify(self, location: str, checksum: str) -> bool:
        """Whether the file at ``location`` exists and has xxh3_128 hex ``checksum``."""
        hasher = xxhash.xxh3_128()
        try:
            with open(self.path(location), "rb") as file:
                while block := file.read(_HASH_BLOCK):
                    hasher.update(block)
        except FileNotFoundError:
            return False
        return hasher.hexdigest() == checksum

    # ------------------------------------------------------------ maintenance
    def remove(self, location: str) -> None:
        """Delete the file at ``location``; a missing file is not an error."""
        _unlink_quietly(self.path(location))

    def iter_files(self) -> Iterator[str]:
        """Locations of every payload file (``*.cmp``) under the root, sorted by directory.

        Compare with the catalog to find orphans (files without a row). A file at an
        explicit location is listed only if its name ends with ``.cmp``.
        """
        for directory, subdirs, names in os.walk(self.root):
            subdirs.sort()
            for name in sorted(names):
                if name.endswith(PAYLOAD_SUFFIX):
                    yield (Path(directory) / name).relative_to(self.root).as_posix()

    def cleanup_temp(self, max_age_s: float) -> list[str]:
        """Remove temporary files older than ``max_age_s`` seconds (left by crashes).

        Keep ``max_age_s`` well above the longest write, or a write in progress
        in another process loses its temporary file (and fails).

        Returns
        -------
        list of str
            Locations of the removed files.
        """
        cutoff = time.time() - max_age_s
        removed = []
        for directory, _subdirs, names in os.walk(self.root):
            for name in names:
                path = Path(directory) / name
                if name.endswith(TEMP_SUFFIX) and _mtime(path) < cutoff:
                    _unlink_quietly(path)
                    removed.append(path.relative_to(self.root).as_posix())
        return removed


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return float("inf")


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable; Windows cannot open directories, and needs no fsync."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
