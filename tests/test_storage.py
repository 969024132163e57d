"""Payload files and catalog rows together: the row is the commit point."""

import multiprocessing
import os
import signal
import sqlite3
import warnings

import pytest

from chunk_memo.errors import CorruptChunkWarning, UntrustedPayloadError
from chunk_memo.storage import MISSING, ChunkStorage


class Custom:
    """Has no msgpack form: stored through pickle."""


def chunk_hash(i: int) -> str:
    return f"{i:032x}"


def outputs(i: int, n: int = 5) -> list:
    return [{"chunk": i, "point": p, "value": i * 10 + p} for p in range(n)]


def test_save_then_load_whole_and_partial(tmp_path):
    storage = ChunkStorage(tmp_path)
    storage.save(chunk_hash(1), outputs(1), n_points=5)
    assert storage.existing([chunk_hash(1), chunk_hash(2)]) == {chunk_hash(1)}
    assert storage.load(chunk_hash(1)) == outputs(1)
    assert storage.load(chunk_hash(1), positions=[4, 0]) == [outputs(1)[4], outputs(1)[0]]
    assert storage.load(chunk_hash(2)) is MISSING


def test_output_of_wrong_length_is_stored_whole(tmp_path):
    storage = ChunkStorage(tmp_path)
    storage.save(chunk_hash(3), [1, 2], n_points=5)
    row = storage.rows([chunk_hash(3)])[chunk_hash(3)]
    assert row.n_items is None
    assert storage.load(chunk_hash(3), positions=[0]) == [1, 2]


def test_items_merge_into_a_partial_chunk(tmp_path):
    storage = ChunkStorage(tmp_path)
    storage.save_items(chunk_hash(4), {0: "a", 3: "d"}, n_points=4)
    first = storage.rows([chunk_hash(4)])[chunk_hash(4)]
    assert first.n_present == 2
    storage.save_items(chunk_hash(4), {1: "b", 2: "c"}, n_points=4)
    row = storage.rows([chunk_hash(4)])[chunk_hash(4)]
    assert row.n_present == 4
    assert storage.load(chunk_hash(4)) == ["a", "b", "c", "d"]
    assert not (tmp_path / first.location).exists(), "the superseded file is removed"


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "swap"])
def test_damaged_payload_is_reported_dropped_and_missing(tmp_path, damage):
    storage = ChunkStorage(tmp_path)
    storage.save(chunk_hash(5), outputs(5), n_points=5)
    storage.save(chunk_hash(6), outputs(6), n_points=5)
    rows = storage.rows([chunk_hash(5), chunk_hash(6)])
    path = tmp_path / rows[chunk_hash(5)].location
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 0x40]) + data[-2:])
    elif damage == "delete":
        path.unlink()
    else:
        path.write_bytes((tmp_path / rows[chunk_hash(6)].location).read_bytes())
    with pytest.warns(CorruptChunkWarning, match=chunk_hash(5)):
        assert storage.load(chunk_hash(5)) is MISSING
    assert storage.existing([chunk_hash(5)]) == set()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert storage.load(chunk_hash(5)) is MISSING, "reported once, then simply missing"
        assert storage.load(chunk_hash(6)) == outputs(6)


def _writer(root, worker, n_chunks):
    storage = ChunkStorage(root)
    for i in range(n_chunks):
        ident = (i + worker * 37) % (n_chunks * 2)  # overlapping sets across workers
        storage.save(chunk_hash(ident), outputs(ident), n_points=5)


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_eight_processes_write_overlapping_chunks(tmp_path, method):
    context = multiprocessing.get_context(method)
    n_chunks = 120
    workers = [context.Process(target=_writer, args=(str(tmp_path), w, n_chunks))
               for w in range(8)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0] * 8
    expected = {(i + w * 37) % (n_chunks * 2) for w in range(8) for i in range(n_chunks)}
    storage = ChunkStorage(tmp_path)
    assert storage.existing(chunk_hash(i) for i in expected) == {chunk_hash(i) for i in expected}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for i in expected:
            assert storage.load(chunk_hash(i)) == outputs(i)
    locations = {row.location for row in storage.rows(chunk_hash(i) for i in expected).values()}
    assert set(storage.store.iter_files()) >= locations


def _killed_before_commit(root):
    storage = ChunkStorage(root)
    storage.save(chunk_hash(1), outputs(1), n_points=5)

    def die(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    storage.catalog.record_chunks = die
    storage.save(chunk_hash(2), outputs(2), n_points=5)


def test_sigkill_between_file_write_and_commit_leaves_no_row(tmp_path):
    process = multiprocessing.get_context("spawn").Process(
        target=_killed_before_commit, args=(str(tmp_path),))
    process.start()
    process.join(60)
    assert process.exitcode == -signal.SIGKILL
    storage = ChunkStorage(tmp_path)
    assert storage.existing([chunk_hash(1), chunk_hash(2)]) == {chunk_hash(1)}
    assert storage.load(chunk_hash(2)) is MISSING
    committed = storage.rows([chunk_hash(1)])[chunk_hash(1)].location
    orphans = set(storage.store.iter_files()) - {committed}
    assert len(orphans) == 1, "the uncommitted payload is garbage, not a result"
    with sqlite3.connect(tmp_path / "catalog.sqlite") as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    storage.save(chunk_hash(2), outputs(2), n_points=5)
    assert storage.load(chunk_hash(2)) == outputs(2)


def test_untrusted_storage_refuses_pickled_payloads(tmp_path):
    ChunkStorage(tmp_path).save(chunk_hash(7), Custom(), n_points=1)
    with pytest.raises(UntrustedPayloadError, match="trusted=False"):
        ChunkStorage(tmp_path, trusted=False).load(chunk_hash(7))


def test_a_root_catalog_is_opened_once_per_process(tmp_path):
    from chunk_memo.catalog import dispose_engine
    from chunk_memo.storage import open_root_catalog

    first = open_root_catalog(tmp_path / "r")
    assert open_root_catalog(tmp_path / "r") is first
    assert open_root_catalog(str(tmp_path / "r")) is first
    assert open_root_catalog(tmp_path / "other") is not first
    dispose_engine(first.url)  # e.g. the file was deleted: everything is rebuilt
    again = open_root_catalog(tmp_path / "r")
    assert again is not first and again.existing_chunks(["ab" * 16]) == set()
