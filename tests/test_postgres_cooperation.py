"""Processes sharing a root through a PostgreSQL catalog compute each chunk once.

The sweeps of ``test_cooperation.py``, with the catalog on the session's throwaway
server instead of the root's SQLite file: ``CHUNK_MEMO_CATALOG_URL`` is set before the
workers are spawned, so that they, like the checks here, open the server.  The
database is shared by every test of the session, each with its own root.
"""

import os
import signal
import time

import pytest

import _coop_workers as workers
from chunk_memo.catalog import Catalog, dispose_engine
from test_cooperation import assert_everything_stored, executions, start


@pytest.fixture
def server_catalog(postgres_url, monkeypatch):
    """The server's URL, also in ``CHUNK_MEMO_CATALOG_URL`` for this test's processes."""
    monkeypatch.setenv("CHUNK_MEMO_CATALOG_URL", postgres_url)
    yield postgres_url
    dispose_engine(postgres_url)


def assert_on_the_server(root, url):
    assert not (root / "catalog.sqlite").exists(), "the workers used a SQLite catalog"
    catalog = Catalog(root, url)
    assert len(catalog.list_caches()) == 1
    assert sum(1 for _ in catalog.iter_chunks()) == 400


@pytest.mark.parametrize("mode", ["run", "run_streaming", "run_parallel"])
def test_four_processes_compute_each_chunk_once(tmp_path, server_catalog, mode):
    root, log_path = tmp_path / "root", tmp_path / "executions.log"
    start_at = time.time() + 3.0  # let all four import before they race
    processes = [start(workers.sweep, str(root), str(log_path), mode, start_at)
                 for _ in range(4)]
    for process in processes:
        process.join(180)
    assert [p.exitcode for p in processes] == [0, 0, 0, 0]
    done = executions(log_path)
    points = 400 if mode != "run_parallel" else 2000
    assert len(done) <= 1.05 * points, f"{len(done)} executions for {points} units"
    assert len({tuple(line[1:]) for line in done}) == points, "every unit ran"
    assert len({line[0] for line in done}) >= 2, "the work was shared"
    assert_everything_stored(root)
    assert_on_the_server(root, server_catalog)


def test_a_killed_process_leases_are_taken_over_after_expiry(tmp_path, server_catalog):
    root, log_path, ready = tmp_path / "root", tmp_path / "executions.log", tmp_path / "ready"
    lease_ttl = 2.0
    victim = start(workers.sweep_and_hang, str(root), str(log_path), str(ready), lease_ttl)
    deadline = time.time() + 120
    while not ready.exists():
        assert time.time() < deadline and victim.is_alive(), "the victim never got to chunk 40"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)  # its server connection dies with it
    victim.join(10)
    started = time.time()
    survivors = [start(workers.sweep, str(root), str(log_path), "run_streaming", 0)
                 for _ in range(2)]
    for process in survivors:
        process.join(180)
    assert [p.exitcode for p in survivors] == [0, 0]
    assert time.time() - started < 60
    assert_everything_stored(root)
    assert "40" in {line[1] for line in executions(log_path)}
    assert_on_the_server(root, server_catalog)
