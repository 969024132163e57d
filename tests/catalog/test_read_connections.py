"""One-statement reads on SQLite: idle driver connections kept per process (engine.py)."""

import multiprocessing
import os
import sqlite3
import threading

import pytest

from chunk_memo.catalog import Catalog, dispose_engine
from chunk_memo.catalog import engine as engine_module

from _builders import chunk_row


@pytest.fixture
def catalog(root, sqlite_url):
    return Catalog(root, sqlite_url)


def _idle(url):
    return engine_module._read_connections.get((url, os.getpid()))


def test_lookups_reuse_one_idle_connection(catalog, sqlite_url):
    rows = [chunk_row(i) for i in range(3)]
    catalog.record_chunks(rows)
    for row in rows * 3:
        assert catalog.get_chunks([row.chunk_hash]) == {row.chunk_hash: row}
    assert catalog.get_chunks([rows[0].chunk_hash, rows[2].chunk_hash]) == {
        rows[0].chunk_hash: rows[0], rows[2].chunk_hash: rows[2]}
    assert len(_idle(sqlite_url)) == 1
    with pytest.raises(TypeError, match="chunk hashes must be str, got 7"):
        catalog.get_chunks([7])


def test_reads_see_every_commit_and_never_half_a_batch(catalog, sqlite_url):
    rows = [chunk_row(i) for i in range(400)]
    errors, stop = [], threading.Event()

    def read():
        try:
            while not stop.is_set():
                found = catalog.get_chunks([rows[0].chunk_hash, rows[-1].chunk_hash])
                # recorded in one transaction: both or neither
                assert len(found) in (0, 2), found
                single = catalog.get_chunks([rows[200].chunk_hash])
                assert single in ({}, {rows[200].chunk_hash: rows[200]})
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    readers = [threading.Thread(target=read) for _ in range(12)]
    for thread in readers:
        thread.start()
    catalog.record_chunks(rows)
    seen = catalog.get_chunks([rows[200].chunk_hash])
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors, errors[:3]
    assert seen == {rows[200].chunk_hash: rows[200]}
    assert 1 <= len(_idle(sqlite_url)) <= engine_module.MAX_IDLE_READ_CONNECTIONS


def _child_reads(root, url, hash_, queue):
    catalog = Catalog(root, url)
    found = catalog.get_chunks([hash_])
    catalog.record_chunks([chunk_row(99)])
    queue.put((sorted(found), len(engine_module._read_connections.get((url, os.getpid())))))


def test_a_forked_child_opens_its_own_read_connections(catalog, root, sqlite_url):
    row = chunk_row(1)
    catalog.record_chunks([row])
    assert catalog.get_chunks([row.chunk_hash])
    inherited = list(_idle(sqlite_url))
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_child_reads, args=(root, sqlite_url, row.chunk_hash, queue))
    child.start()
    answer = queue.get(timeout=60)
    child.join(60)
    assert child.exitcode == 0 and answer == ([row.chunk_hash], 1)
    # The parent's connections still work and see the child's commit.
    assert _idle(sqlite_url) == inherited
    assert chunk_row(99).chunk_hash in catalog.get_chunks([chunk_row(99).chunk_hash])


def test_dispose_engine_closes_idle_read_connections(catalog, sqlite_url):
    catalog.record_chunks([chunk_row(1)])
    catalog.get_chunks([chunk_row(1).chunk_hash])
    (connection,) = _idle(sqlite_url)
    dispose_engine(sqlite_url)
    with pytest.raises(sqlite3.ProgrammingError):
        connection.execute("SELECT 1")
    assert catalog.get_chunks([chunk_row(1).chunk_hash])  # reopened on demand


def test_a_locked_database_falls_back_to_a_retried_transaction(catalog, sqlite_url,
                                                               monkeypatch):
    row = chunk_row(3)
    catalog.record_chunks([row])

    class Locked:
        OperationalError = sqlite3.OperationalError

        def execute(self, *args):
            raise sqlite3.OperationalError("database is locked")

        def close(self):
            pass

    class Broken(Locked):
        def execute(self, *args):
            raise sqlite3.OperationalError("disk I/O error")

    dispose_engine(sqlite_url)
    monkeypatch.setattr(engine_module, "_open_read_connection", lambda url: Locked())
    assert catalog.get_chunks([row.chunk_hash]) == {row.chunk_hash: row}
    dispose_engine(sqlite_url)
    monkeypatch.setattr(engine_module, "_open_read_connection", lambda url: Broken())
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        catalog.get_chunks([row.chunk_hash])
