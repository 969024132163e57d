"""Payload files under a cache root (chunk_memo.store)."""

from __future__ import annotations

import errno
import os
import re
import struct
import time

import pytest
import xxhash

from chunk_memo.errors import CorruptPayloadError, UntrustedPayloadError
from chunk_memo.store import ChunkStore, StoredPayload

HASH_A = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
HASH_B = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"


class Opaque:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return type(other) is Opaque and other.n == self.n


@pytest.fixture
def store(tmp_path):
    return ChunkStore(tmp_path / "cache")


def points(n):
    return [{"x": i / 4, "i": i} for i in range(n)]


def temp_files(root):
    return [name for _, _, names in os.walk(root) for name in names if name.endswith(".cmtmp")]


def regions(data):
    """Offsets inside each region of a v1 file: fixed header, table, data."""
    _magic, _v, _mode, _flags, hash_len, n_items, data_len = struct.unpack_from("<6sHBBHIQ", data)
    table = 24 + hash_len + (n_items + 7) // 8
    data_start = len(data) - data_len
    return {"magic": 0, "hash": 24, "item-count": 12, "table": table + 9,
            "header-checksum": data_start - 3, "item-0": data_start + 1}


def flip(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x04
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------- writing
def test_write_items_returns_what_the_catalog_records(store):
    stored = store.write_items(HASH_A, points(5))
    path = store.root / stored.location
    assert re.fullmatch(rf"chunks/a1/{HASH_A}\.[0-9a-f]+\.cmp", stored.location)
    assert stored == StoredPayload(stored.location, path.stat().st_size,
                                   xxhash.xxh3_128_hexdigest(path.read_bytes()), 5, None, False)
    with pytest.raises(AttributeError):
        stored.size = 1  # frozen


def test_a_folder_removed_since_the_last_write_is_made_again(store):
    import shutil

    first = store.write_items(HASH_A, points(3))
    shutil.rmtree(store.root / "chunks")  # e.g. prune removed it once empty
    again = store.write_items(HASH_A, points(3))
    assert store.read(again.location, HASH_A) == points(3)
    assert again.location != first.location


def test_every_write_gets_a_new_file(store):
    first = store.write_items(HASH_A, points(3))
    second = store.write_items(HASH_A, points(3))
    assert first.location != second.location
    assert sorted(store.iter_files()) == sorted([first.location, second.location])


def test_partial_chunk_records_its_bitmap(store):
    present = [True, False, True, True, False, False, False, False, False, True]
    stored = store.write_items(HASH_A, [i if p else None for i, p in enumerate(present)], present)
    assert stored.present == bytes([0b1101, 0b10]) and stored.n_items == 10
    assert store.read(stored.location, HASH_A, stored.checksum) == [0, 2, 3, 9]


def test_write_whole(store):
    value = {"table": [(1, 2.5), (2, 3.5)], "meta": {1, 2}}
    stored = store.write_whole(HASH_A, value)
    assert (stored.n_items, stored.present, stored.whole) == (None, None, True)
    assert store.read(stored.location, HASH_A, stored.checksum) == value
    assert store.read(stored.location, HASH_A) == value
    with pytest.raises(ValueError, match="stored whole.*positions=None"):
        store.read(stored.location, HASH_A, positions=[0])


def test_durable_write(tmp_path):
    store = ChunkStore(tmp_path, durable=True)
    stored = store.write_items(HASH_A, points(3))
    assert store.read(stored.location, HASH_A, stored.checksum) == points(3)


@pytest.mark.parametrize("bad", ["", "abc", "A1B2C3D4", "../../etc", "a1b2/c3", 1234])
def test_malformed_chunk_hash_is_refused(store, bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        store.write_items(bad, [1])


# ------------------------------------------------------------------- reading
def test_partial_read_returns_requested_items_in_given_order(store):
    stored = store.write_items(HASH_A, points(100))
    assert store.read(stored.location, HASH_A, positions=[42, 7, 99, 7]) == [
        points(100)[42], points(100)[7], points(100)[99], points(100)[7]]
    assert store.read(stored.location, HASH_A, positions=iter([0])) == [points(1)[0]]
    assert store.read(stored.location, HASH_A, positions=[]) == []


def test_partial_read_reads_only_header_table_and_requested_items(store, monkeypatch):
    items = [f"{i:04d}" * 256 for i in range(200)]  # 1 KiB each
    stored = store.write_items(HASH_A, items)
    read_sizes = []
    real_pread = os.pread

    def counting_pread(fd, size, offset):
        read_sizes.append(size)
        return real_pread(fd, size, offset)

    monkeypatch.setattr(os, "pread", counting_pread)
    assert store.read(stored.location, HASH_A, positions=[150, 3]) == [items[150], items[3]]
    header_and_table = 24 + 32 + 25 + 24 * 200 + 8
    item_bytes = len(items[0]) + 3  # msgpack str16 header
    assert sorted(read_sizes) == sorted([24, header_and_table - 24, item_bytes, item_bytes])


def test_repeated_partial_reads_reuse_the_parsed_header(store, monkeypatch):
    items = [f"{i:04d}" * 256 for i in range(200)]
    stored = store.write_items(HASH_A, items)
    assert store.read(stored.location, HASH_A, positions=[5]) == [items[5]]
    read_sizes = []
    real_pread = os.pread
    monkeypatch.setattr(os, "pread", lambda fd, size, offset: (
        read_sizes.append(size), real_pread(fd, size, offset))[1])
    assert store.read(stored.location, HASH_A, positions=[150, 3]) == [items[150], items[3]]
    assert read_sizes == [len(items[0]) + 3] * 2  # the two items, no header


@pytest.mark.parametrize("change", ["replaced", "swapped", "rewritten"])
def test_a_changed_file_is_checked_again_after_a_cached_header(store, change):
    a = store.write_items(HASH_A, points(100))
    b = store.write_items(HASH_B, points(100))
    assert store.read(b.location, HASH_B, positions=[1]) == [points(100)[1]]  # header kept
    path = store.root / b.location
    if change == "replaced":  # a valid file of the same chunk: read from its own header
        values = [{"x": -p["x"], "i": p["i"]} for p in points(100)]
        other = store.write_items(HASH_B, values)
        os.replace(store.root / other.location, path)
        assert store.read(b.location, HASH_B, positions=[1, 2]) == values[1:3]
        return
    if change == "swapped":  # another chunk's file in its place
        os.replace(store.root / a.location, path)
        match = f"holds chunk '{HASH_A}'"
    else:  # same file, bytes changed in place (new mtime): the header is parsed again
        data = bytearray(path.read_bytes())
        data[30] ^= 0xFF
        time.sleep(0.01)
        path.write_bytes(bytes(data))
        match = "header checksum mismatch"
    with pytest.raises(CorruptPayloadError, match=match):
        store.read(b.location, HASH_B, positions=[1])


def test_absent_positions_are_a_key_error_naming_them(store):
    stored = store.write_items(HASH_A, [1, None, 3, None], [True, False, True, False])
    with pytest.raises(KeyError, match=r"\[1, 3\]"):
        store.read(stored.location, HASH_A, positions=[0, 3, 1])
    with pytest.raises(IndexError, match=r"\[4\]"):
        store.read(stored.location, HASH_A, positions=[4])


def test_untrusted_store_refuses_pickle_but_reads_plain_payloads(tmp_path):
    writer = ChunkStore(tmp_path)
    pickled = writer.write_items(HASH_A, [1, Opaque(2)])
    plain = writer.write_items(HASH_B, [(1, 2), {3}])
    reader = ChunkStore(tmp_path, trusted=False)
    with pytest.raises(UntrustedPayloadError, match="trusted=False"):
        reader.read(pickled.location, HASH_A, pickled.checksum)
    assert reader.read(pickled.location, HASH_A, positions=[0]) == [1]  # item 0 is plain
    assert reader.read(plain.location, HASH_B, plain.checksum) == [(1, 2), {3}]
    assert writer.read(pickled.location, HASH_A, pickled.checksum) == [1, Opaque(2)]


def test_allow_pickle_false_refuses_unsupported_types_and_writes_nothing(tmp_path):
    store = ChunkStore(tmp_path, allow_pickle=False)
    with pytest.raises(TypeError, match="Opaque"):
        store.write_items(HASH_A, [1, {"v": Opaque(1)}])
    with pytest.raises(TypeError, match="Opaque"):
        store.write_whole(HASH_A, Opaque(1))
    assert list(store.iter_files()) == [] and temp_files(tmp_path) == []


# ---------------------------------------------------------------- corruption
@pytest.mark.parametrize("cut", [1, 30, 2000])
@pytest.mark.parametrize("how", ["full", "full-with-checksum", "partial"])
def test_truncated_file_is_corrupt(store, cut, how):
    stored = store.write_items(HASH_A, points(100))
    path = store.root / stored.location
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(CorruptPayloadError):
        read(store, stored, how)


def read(store, stored, how, chunk_hash=HASH_A):
    checksum = stored.checksum if how == "full-with-checksum" else None
    positions = [0, 50] if how == "partial" else None
    return store.read(stored.location, chunk_hash, checksum, positions)


@pytest.mark.parametrize("region", ["magic", "hash", "item-count", "table", "header-checksum",
                                    "item-0"])
@pytest.mark.parametrize("how", ["full", "full-with-checksum", "partial"])
def test_flipped_bit_is_corrupt(store, region, how):
    stored = store.write_items(HASH_A, points(100))
    path = store.root / stored.location
    flip(path, regions(path.read_bytes())[region])
    with pytest.raises(CorruptPayloadError) as info:
        read(store, stored, how)
    assert HASH_A in str(info.value) and str(path) in str(info.value)
    assert not store.verify(stored.location, stored.checksum)


def test_flipped_item_fails_only_reads_of_that_item(store):
    stored = store.write_items(HASH_A, points(100))
    path = store.root / stored.location
    flip(path, regions(path.read_bytes())["item-0"])
    assert store.read(stored.location, HASH_A, positions=[1, 99]) == [points(100)[1], points(100)[99]]
    with pytest.raises(CorruptPayloadError, match="checksum mismatch in item 0"):
        store.read(stored.location, HASH_A, positions=[1, 0])


@pytest.mark.parametrize("how", ["full", "partial"])
def test_file_of_another_chunk_is_corrupt(store, how):
    a = store.write_items(HASH_A, points(100))
    b = store.write_items(HASH_B, points(100))
    os.replace(store.root / a.location, store.root / b.location)  # A's file where B's was
    with pytest.raises(CorruptPayloadError, match=f"chunk '{HASH_B}'.*holds chunk '{HASH_A}'"):
        read(store, b, how, chunk_hash=HASH_B)


def test_whole_file_checksum_mismatch_is_corrupt(store):
    a = store.write_whole(HASH_A, [1, 2, 3])
    b = store.write_whole(HASH_A, [1, 2, 4])
    with pytest.raises(CorruptPayloadError, match="file checksum"):
        store.read(b.location, HASH_A, a.checksum)


@pytest.mark.parametrize("how", ["full", "full-with-checksum", "partial"])
def test_missing_file_is_file_not_found(store, how):
    stored = store.write_items(HASH_A, points(100))
    store.remove(stored.location)
    with pytest.raises(FileNotFoundError):
        read(store, stored, how)
    assert not store.verify(stored.location, stored.checksum)


def test_verify(store):
    stored = store.write_items(HASH_A, points(10))
    assert store.verify(stored.location, stored.checksum)
    assert not store.verify(stored.location, "0" * 32)


# ---------------------------------------------------------- failing writes
def fail_with_enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("failing", ["replace", "write-midway", "fsync"])
def test_failed_write_leaves_no_temp_file_and_old_file_intact(tmp_path, monkeypatch, failing):
    store = ChunkStore(tmp_path, durable=True)
    old = store.write_items(HASH_A, points(500), location="mine/chunk.cmp")
    other = store.write_items(HASH_B, points(5))
    real_write = os.write

    def write_half_then_fail(fd, data):
        real_write(fd, bytes(data[: len(data) // 2]))
        fail_with_enospc()

    replacement = {"replace": ("replace", fail_with_enospc),
                   "write-midway": ("write", write_half_then_fail),
                   "fsync": ("fsync", fail_with_enospc)}[failing]
    monkeypatch.setattr(os, *replacement)
    with pytest.raises(OSError) as info:
        store.write_items(HASH_A, points(1000), location="mine/chunk.cmp")
    monkeypatch.undo()
    assert info.value.errno == errno.ENOSPC
    assert temp_files(tmp_path) == []
    assert store.verify(old.location, old.checksum) and store.verify(other.location, other.checksum)
    assert store.read(old.location, HASH_A, old.checksum) == points(500)


def test_cleanup_temp_removes_only_stale_temp_files(store):
    stored = store.write_items(HASH_A, points(3))
    folder = (store.root / stored.location).parent
    stale, fresh = folder / ".x.host.1.aa.cmtmp", folder / ".y.host.2.bb.cmtmp"
    stale.write_bytes(b"partial")
    fresh.write_bytes(b"partial")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    removed = store.cleanup_temp(max_age_s=3600)
    assert removed == [stale.relative_to(store.root).as_posix()]
    assert not stale.exists() and fresh.exists()
    assert list(store.iter_files()) == [stored.location]  # temp files are never listed


# ------------------------------------------------------------------- merging
def test_merge_items_completes_a_partial_chunk_in_a_new_file(store):
    present = [i % 2 == 0 for i in range(10)]
    old = store.write_items(HASH_A, [i if p else None for i, p in enumerate(present)], present)
    new = store.merge_items(old.location, HASH_A, {1: "one", 3: (3,), 5: 5, 7: 7}, 10,
                            checksum=old.checksum)
    assert new.location != old.location and new.n_items == 10
    assert new.present == bytes([0b11111111, 0b01])  # positions 0..8 present, 9 absent
    assert store.read(new.location, HASH_A, new.checksum) == [0, "one", 2, (3,), 4, 5, 6, 7, 8]
    assert store.read(old.location, HASH_A, old.checksum) == [0, 2, 4, 6, 8]  # old file kept
    full = store.merge_items(new.location, HASH_A, {9: 9, 0: "zero"}, 10)
    assert full.present is None
    assert store.read(full.location, HASH_A, positions=[0, 9]) == ["zero", 9]
    store.remove(old.location)
    store.remove(old.location)  # already gone: no error
    assert sorted(store.iter_files()) == sorted([new.location, full.location])


def test_merge_copies_stored_items_without_unpickling(tmp_path):
    old = ChunkStore(tmp_path).write_items(HASH_A, [Opaque(1), None], [True, False])
    untrusted = ChunkStore(tmp_path, trusted=False)
    new = untrusted.merge_items(old.location, HASH_A, {1: 2}, 2)
    assert ChunkStore(tmp_path).read(new.location, HASH_A, new.checksum) == [Opaque(1), 2]


def test_merge_refuses_mismatches(store):
    old = store.write_items(HASH_A, [1, None], [True, False], location="user/c.cmp")
    with pytest.raises(ValueError, match="holds 2 items, expected 3"):
        store.merge_items(old.location, HASH_A, {2: 1}, 3)
    with pytest.raises(IndexError, match=r"\[5\]"):
        store.merge_items(old.location, HASH_A, {5: 1}, 2)
    with pytest.raises(ValueError, match="is the file being merged"):
        store.merge_items(old.location, HASH_A, {1: 1}, 2, new_location="user/./c.cmp")
    whole = store.write_whole(HASH_B, [1, 2])
    with pytest.raises(ValueError, match="holds a whole object"):
        store.merge_items(whole.location, HASH_B, {0: 1}, 1)
    with pytest.raises(CorruptPayloadError):
        store.merge_items(old.location, HASH_B, {1: 1}, 2)


# ----------------------------------------------------------------- locations
def test_explicit_location_is_normalized_and_listed(store):
    stored = store.write_items(HASH_A, [1], location="runs/./r1/chunk-0.cmp")
    assert stored.location == "runs/r1/chunk-0.cmp"
    assert (store.root / "runs" / "r1" / "chunk-0.cmp").is_file()
    assert list(store.iter_files()) == ["runs/r1/chunk-0.cmp"]


@pytest.mark.parametrize("bad", ["../escape.cmp", "a/../../escape.cmp", "/tmp/abs.cmp", ".", "link/x.cmp"])
def test_location_outside_root_is_refused(store, tmp_path, bad):
    store.root.mkdir()
    (store.root / "link").symlink_to(tmp_path)
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        store.write_items(HASH_A, [1], location=bad)
    assert not (tmp_path / "escape.cmp").exists() and not (tmp_path / "x.cmp").exists()


@pytest.mark.parametrize("bad", ["../escape.cmp", "/etc/passwd", ""])
def test_read_location_outside_root_is_refused(store, bad):
    with pytest.raises(ValueError, match=re.escape(repr(bad))):
        store.read(bad, HASH_A)


# ------------------------------------------------------------ several processes
def _rewrite_many_times(root, version, rounds):
    store = ChunkStore(root)
    for _ in range(rounds):
        store.write_items(HASH_A, [version] * 2000, location="shared/chunk.cmp")


def test_concurrent_rewrites_never_expose_a_partial_file(tmp_path):
    import multiprocessing

    store = ChunkStore(tmp_path)
    store.write_items(HASH_A, [0] * 2000, location="shared/chunk.cmp")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_rewrite_many_times, args=(tmp_path, v, 40)) for v in (1, 2, 3)]
    for writer in writers:
        writer.start()
    seen = set()
    while any(writer.is_alive() for writer in writers) or not seen:
        items = store.read("shared/chunk.cmp", HASH_A)
        assert len(items) == 2000 and len(set(items)) == 1
        seen.add(items[0])
        assert store.read("shared/chunk.cmp", HASH_A, positions=[1999, 0])[0] in {0, 1, 2, 3}
    for writer in writers:
        writer.join()
        assert writer.exitcode == 0
    assert temp_files(tmp_path) == []
