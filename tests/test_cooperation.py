"""Processes sharing a root compute each chunk once, and survive a killed peer.

Each test runs with the root's own SQLite catalog and with the catalog on the
session's throwaway PostgreSQL server (``CHUNK_MEMO_CATALOG_URL`` is set before the
workers are spawned, so they open the server too).
"""

import multiprocessing
import os
import signal
import time

import pytest

import _coop_workers as workers
from chunk_memo import run
from chunk_memo.catalog import Catalog, dispose_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def catalog_url(request, monkeypatch):
    """``None`` for the root's SQLite file, else the server's URL (in the environment)."""
    if request.param == "sqlite":
        monkeypatch.delenv("CHUNK_MEMO_CATALOG_URL", raising=False)
        yield None
        return
    url = request.getfixturevalue("postgres_url")
    monkeypatch.setenv("CHUNK_MEMO_CATALOG_URL", url)
    yield url
    dispose_engine(url)


def assert_on_the_right_catalog(root, url):
    if url is None:
        assert (root / "catalog.sqlite").exists()
        return
    assert not (root / "catalog.sqlite").exists(), "the workers used a SQLite catalog"
    catalog = Catalog(root, url)
    assert len(catalog.list_caches()) == 1
    assert sum(1 for _ in catalog.iter_chunks()) == 400


def executions(log_path):
    if not os.path.exists(log_path):
        return []
    with open(log_path) as log:
        return [line.split() for line in log if line.strip()]


def start(target, *args):
    process = multiprocessing.get_context("spawn").Process(target=target, args=args)
    process.start()
    return process


def assert_everything_stored(root):
    stored, diag = run(workers.make_cache(root), lambda *a, **k: pytest.fail("must not run"))
    assert diag.cached_chunks == 400 and diag.executed_chunks == 0
    assert [v for chunk in stored for v in chunk] == [
        a * 10 + b for a in workers.AXES["a"] for b in workers.AXES["b"]]


@pytest.mark.parametrize("mode", ["run", "run_streaming", "run_parallel"])
def test_four_processes_compute_each_chunk_once(tmp_path, catalog_url, mode):
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
    assert_on_the_right_catalog(root, catalog_url)


def test_a_killed_process_leases_are_taken_over_after_expiry(tmp_path, catalog_url):
    root, log_path, ready = tmp_path / "root", tmp_path / "executions.log", tmp_path / "ready"
    lease_ttl = 2.0
    victim = start(workers.sweep_and_hang, str(root), str(log_path), str(ready), lease_ttl)
    deadline = time.time() + 120
    while not ready.exists():
        assert time.time() < deadline and victim.is_alive(), "the victim never got to chunk 40"
        time.sleep(0.05)
    os.kill(victim.pid, signal.SIGKILL)
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
    assert_on_the_right_catalog(root, catalog_url)
