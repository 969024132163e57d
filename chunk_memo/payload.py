"""Chunk payload files' bytes: header, item table, item blobs. No file I/O here.

Item values are encoded by :mod:`chunk_memo.codec`.

File format v1
--------------
All integers are unsigned little-endian.

========  ==========  ==================================================
offset    size        field
========  ==========  ==================================================
0         6           magic ``b"CHMEMO"``
6         2           format version, 1
8         1           mode: 0 = items, 1 = whole
9         1           flags, 0 (reserved)
10        2           ``H``: length of the chunk hash
12        4           ``N``: item count (1 in whole mode)
16        8           ``D``: length of the data region
24        ``H``       chunk hash, ASCII
..        ceil(N/8)   presence bitmap: item i is present when bit ``i % 8``
                      of byte ``i // 8`` is set
..        24 N        item table: per item offset (from the start of the data
                      region), length, xxh3_64 of the item bytes (8 bytes
                      each); all zero for an absent item
..        8           xxh3_64 of every byte above (header checksum)
..        ``D``       data region: each present item's ``pack_value`` bytes
========  ==========  ==================================================

The file is exactly as long as the header says, so truncation is seen from the
file size alone; a partial read touches the header, the table and the requested
item ranges only. Whole mode holds one item, the whole object.
"""

from __future__ import annotations

import functools
import operator
import os
import struct
from typing import Any, BinaryIO, Iterable, Sequence

import xxhash

from chunk_memo.codec import pack_value, unpack_value, unpack_values
from chunk_memo.errors import CorruptPayloadError, UntrustedPayloadError

__all__ = [
    "FORMAT_VERSION", "MAGIC", "MODE_ITEMS", "MODE_WHOLE",
    "pack_value", "unpack_value", "bitmap_from_flags", "flags_from_bitmap",
    "build_items_payload", "build_whole_payload", "assemble_items_payload",
    "PayloadReader",
]

MAGIC = b"CHMEMO"
FORMAT_VERSION = 1
MODE_ITEMS = 0
MODE_WHOLE = 1

_FIXED = struct.Struct("<6sHBBHIQ")
_ENTRY = struct.Struct("<QQQ")
_CHECK = struct.Struct("<Q")

# ---------------------------------------------------------------- file format
def bitmap_from_flags(flags: Sequence[bool]) -> bytes:
    """Presence bitmap of ``flags``: bit ``i % 8`` of byte ``i // 8`` is ``flags[i]``."""
    out = bytearray((len(flags) + 7) // 8)
    for i, flag in enumerate(flags):
        if flag:
            out[i >> 3] |= 1 << (i & 7)
    return bytes(out)


def flags_from_bitmap(bitmap: bytes, n_items: int) -> list[bool]:
    """Inverse of :func:`bitmap_from_flags` for ``n_items`` items."""
    if len(bitmap) != (n_items + 7) // 8:
        raise ValueError(f"a bitmap of {n_items} items has {(n_items + 7) // 8} bytes, "
                         f"got {len(bitmap)}")
    return [bool(bitmap[i >> 3] >> (i & 7) & 1) for i in range(n_items)]


def assemble_items_payload(chunk_hash: str, blobs: Sequence[bytes | None],
                           mode: int = MODE_ITEMS) -> bytes:
    """Payload file bytes from already packed items (None marks an absent item).

    Used to rewrite a partial chunk without decoding the items it already holds.
    """
    hash_bytes = chunk_hash.encode("ascii")
    if not 0 < len(hash_bytes) < 1 << 16:
        raise ValueError(f"chunk hash must be 1 to 65535 ASCII characters, got {chunk_hash!r}")
    table = bytearray(_ENTRY.size * len(blobs))
    offset = 0
    for i, blob in enumerate(blobs):
        if blob is not None:
            _ENTRY.pack_into(table, i * _ENTRY.size, offset, len(blob), xxhash.xxh3_64_intdigest(blob))
            offset += len(blob)
    bitmap = bitmap_from_flags([blob is not None for blob in blobs])
    head = _FIXED.pack(MAGIC, FORMAT_VERSION, mode, 0, len(hash_bytes), len(blobs), offset)
    head = b"".join([head, hash_bytes, bitmap, table])
    return b"".join([head, _CHECK.pack(xxhash.xxh3_64_intdigest(head)),
                     *(blob for blob in blobs if blob is not None)])


def build_items_payload(chunk_hash: str, items: Sequence[Any],
                        present: Sequence[bool] | None = None,
                        allow_pickle: bool = True) -> bytes:
    """Payload file bytes of a chunk stored item by item.

    Parameters
    ----------
    chunk_hash : str
        Written into the header; a reader expecting another chunk rejects the file.
    items : sequence
        One output per point of the chunk. ``items[i]`` is ignored where
        ``present[i]`` is False (use any placeholder, e.g. None).
    present : sequence of bool, optional
        Which positions hold an output; None means all of them.
    allow_pickle : bool
        See :func:`pack_value`.
    """
    if present is None:
        present = [True] * len(items)
    elif len(present) != len(items):
        raise ValueError(f"present has {len(present)} flags for {len(items)} items")
    blobs = [pack_value(item, allow_pickle) if flag else None
             for item, flag in zip(items, present)]
    return assemble_items_payload(chunk_hash, blobs)


def build_whole_payload(chunk_hash: str, obj: Any, allow_pickle: bool = True) -> bytes:
    """Payload file bytes of a chunk whose output is one object (read back whole)."""
    return assemble_items_payload(chunk_hash, [pack_value(obj, allow_pickle)], MODE_WHOLE)


def _pread_all(fd: int, size: int, offset: int) -> bytes:
    data = os.pread(fd, size, offset)
    while 0 < len(data) < size:  # one pread returns at most ~2 GiB
        more = os.pread(fd, size - len(data), offset + len(data))
        if not more:
            break
        data += more
    return data


def _seek_read(file: BinaryIO, size: int, offset: int) -> bytes:
    file.seek(offset)
    return file.read(size)


def _byte_source(source: Any) -> tuple[Any, int, str, tuple | None]:
    """``(read(size, offset), total size, name, file identity)`` of bytes or a binary file.

    The identity (device, inode, size, mtime in ns) is ``None`` for bytes.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        view = memoryview(source).cast("B")
        return (lambda size, offset: view[offset:offset + size]), len(view), "<bytes>", None
    name = str(getattr(source, "name", "<file>"))
    if hasattr(os, "pread") and hasattr(source, "fileno"):
        fd = source.fileno()
        stat = os.fstat(fd)
        return (functools.partial(_pread_all, fd), stat.st_size, name,
                (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return functools.partial(_seek_read, source), source.seek(0, 2), name, None


class HeaderCache:
    """Parsed headers of recently read payload files, for repeated partial reads.

    A service answering one-point lookups reads the same chunk files again and
    again; parsing and checking a header each time is a third of such a read.  An
    entry is keyed by the file's identity (device, inode, size, mtime in ns) and the
    chunk hash it was checked against, so a file replaced, rewritten or swapped is
    parsed afresh; items are still checked against their own checksums on every
    read.  Bounded: headers of up to :attr:`max_header_bytes` each (larger ones are
    not kept), :attr:`max_total_bytes` in all; when full it starts over empty.
    """

    max_header_bytes = 1 << 20
    max_total_bytes = 16 << 20

    def __init__(self) -> None:
        self._entries: dict[tuple, tuple] = {}
        self._total = 0

    def get(self, key: tuple) -> tuple | None:
        return self._entries.get(key)

    def put(self, key: tuple, header: tuple, size: int) -> None:
        if size > self.max_header_bytes:
            return
        if self._total + size > self.max_total_bytes:
            self._entries.clear()
            self._total = 0
        self._entries[key] = header
        self._total += size


class PayloadReader:
    """Reads a payload's header on creation, then items on demand.

    Parameters
    ----------
    source : bytes-like or binary file object
        A file is read by offset (``os.pread`` where available, else seek/read),
        so only the header, the table and the requested item ranges are read.
    chunk_hash : str
        The chunk this payload must belong to.
    trusted : bool
        See :func:`unpack_value`.
    name : str, optional
        Named in errors; defaults to the file's name.

    Raises
    ------
    CorruptPayloadError
        Bad magic or version, a size that disagrees with the header, a header
        checksum mismatch, or a chunk hash other than ``chunk_hash``.
    """

    def __init__(self, source: Any, chunk_hash: str, *, trusted: bool = True,
                 name: str | None = None, headers: HeaderCache | None = None) -> None:
        self._read_at, self._size, default_name, identity = _byte_source(source)
        self.name = name or default_name
        self.chunk_hash = chunk_hash
        self.trusted = trusted
        key = None if headers is None or identity is None else (*identity, chunk_hash)
        cached = None if key is None else headers.get(key)
        if cached is not None:
            (self.whole, self.n_items, self.bitmap, self._table, self._data_start,
             self._data_len) = cached
            return
        self._read_header()
        if key is not None:
            headers.put(key, (self.whole, self.n_items, self.bitmap, self._table,
                              self._data_start, self._data_len), self._data_start)

    def _corrupt(self, reason: str) -> CorruptPayloadError:
        return CorruptPayloadError(self.chunk_hash, self.name, reason)

    def _read(self, offset: int, size: int, what: str) -> bytes | memoryview:
        data = self._read_at(size, offset)
        if len(data) != size:
            raise self._corrupt(f"truncated {what}: {len(data)} of {size} bytes at offset {offset}")
        return data

    def _read_header(self) -> None:
        fixed = self._read(0, _FIXED.size, "header")
        magic, version, mode, _flags, hash_len, n_items, data_len = _FIXED.unpack(fixed)
        if magic != MAGIC:
            raise self._corrupt(f"not a chunk-memo payload (magic {bytes(magic)!r})")
        if version != FORMAT_VERSION:
            raise self._corrupt(f"format version {version}, this chunk-memo reads {FORMAT_VERSION}")
        bitmap_len = (n_items + 7) // 8
        rest_len = hash_len + bitmap_len + _ENTRY.size * n_items + _CHECK.size
        expected = _FIXED.size + rest_len + data_len
        if self._size != expected:
            raise self._corrupt(f"file is {self._size} bytes, its header describes {expected}")
        rest = memoryview(self._read(_FIXED.size, rest_len, "header"))
        (check,) = _CHECK.unpack(rest[-_CHECK.size:])
        hasher = xxhash.xxh3_64(fixed)
        hasher.update(rest[:-_CHECK.size])
        if hasher.intdigest() != check:
            raise self._corrupt("header checksum mismatch")
        stored_hash = bytes(rest[:hash_len]).decode("ascii", "replace")
        if stored_hash != self.chunk_hash:
            raise self._corrupt(f"the file holds chunk {stored_hash!r}")
        if mode not in (MODE_ITEMS, MODE_WHOLE) or (mode == MODE_WHOLE and n_items != 1):
            raise self._corrupt(f"invalid mode {mode} with {n_items} items")
        self.whole = mode == MODE_WHOLE
        self.n_items = n_items
        self.bitmap = bytes(rest[hash_len:hash_len + bitmap_len])
        self._table = rest[hash_len + bitmap_len:-_CHECK.size]
        self._data_start = expected - data_len
        self._data_len = data_len

    def is_present(self, position: int) -> bool:
        """Whether item ``position`` is stored."""
        return bool(self.bitmap[position >> 3] >> (position & 7) & 1)

    def present_positions(self) -> list[int]:
        """Positions of the stored items, in increasing order."""
        full, tail = divmod(self.n_items, 8)
        if self.bitmap == b"\xff" * full + (bytes([(1 << tail) - 1]) if tail else b""):
            return list(range(self.n_items))
        return [i for i in range(self.n_items) if self.is_present(i)]

    def check_positions(self, positions: Iterable[int]) -> list[int]:
        """``positions`` as a list of ints, after checking range and presence.

        Raises
        ------
        IndexError
            A position outside ``0 .. n_items - 1``.
        KeyError
            Positions that are in range but not stored (all of them are named).
        """
        checked = [operator.index(p) for p in positions]
        outside = [p for p in checked if not 0 <= p < self.n_items]
        if outside:
            raise IndexError(f"positions {outside} are outside chunk {self.chunk_hash!r} "
                             f"of {self.n_items} items")
        absent = sorted({p for p in checked if not self.is_present(p)})
        if absent:
            raise KeyError(f"positions {absent} are not stored in chunk {self.chunk_hash!r}")
        return checked

    def raw_item(self, position: int, verify: bool = True) -> bytes | memoryview:
        """The packed bytes of a stored item, checked against its xxh3_64 when ``verify``."""
        offset, length, digest = _ENTRY.unpack_from(self._table, position * _ENTRY.size)
        if offset + length > self._data_len:
            raise self._corrupt(f"item {position} lies outside the data region")
        blob = self._read(self._data_start + offset, length, f"item {position}")
        if verify and xxhash.xxh3_64_intdigest(blob) != digest:
            raise self._corrupt(f"checksum mismatch in item {position}")
        return blob

    def items(self, positions: Iterable[int] | None = None, verify: bool = True) -> list:
        """Decoded items at ``positions`` (in the order given; None: every stored item).

        ``verify=False`` skips the per-item checksums, for callers that already
        checked the checksum of the whole file.
        """
        if self.whole:
            raise ValueError(f"chunk {self.chunk_hash!r} is stored whole, not item by item")
        wanted = self.present_positions() if positions is None else self.check_positions(positions)
        if verify:
            return [unpack_value(self.raw_item(p, True), self.trusted) for p in wanted]
        # The caller checked the whole file: read the data region once, decode in one pass.
        data = self._read(self._data_start, self._data_len, "data region")
        if positions is None:
            # Every stored item, in order: the data region is exactly their values back
            # to back (the writer lays them out so, and the file checksum vouches for
            # it), so one unpacker pass decodes them without a table entry per item.
            try:
                return unpack_values(data, len(wanted), self.trusted)
            except UntrustedPayloadError:
                raise
            except ValueError as error:
                raise self._corrupt(f"data region: {error}") from None
        table = list(_ENTRY.iter_unpack(self._table))
        out = []
        for p in wanted:
            offset, length, _ = table[p]
            if offset + length > self._data_len:
                raise self._corrupt(f"item {p} lies outside the data region")
            out.append(unpack_value(data[offset:offset + length], self.trusted))
        return out

    def whole_value(self, verify: bool = True) -> Any:
        """The decoded object of a whole-mode payload."""
        if not self.whole:
            raise ValueError(f"chunk {self.chunk_hash!r} is stored item by item, not whole")
        return unpack_value(self.raw_item(0, verify), self.trusted)
