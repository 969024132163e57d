"""Faults and hostile input: damaged payloads, a full disk, threads, malicious files."""

import errno
import os
import pickle
import stat
import threading
import time
import warnings

import pytest

from chunk_memo import ChunkCache, run
from chunk_memo.errors import CorruptChunkWarning, UntrustedPayloadError

PARAMS = {"alpha": 3}


def exec_fn(params, a, b):
    return [params["alpha"] * x + y for x in a for y in b]


def make(root, **kwargs):
    options = dict(chunk_spec={"a": 2, "b": 2}, axis_values={"a": list(range(6)), "b": [0, 1]},
                   params=PARAMS, verbose=0)
    options.update(kwargs)
    return ChunkCache(root, **options)


def expected(cache):
    return [exec_fn(PARAMS, list(dict(k)["a"]), list(dict(k)["b"]))
            for k in cache.resolved_chunk_keys()]


@pytest.mark.parametrize("damage", ["truncate", "flip", "delete", "swap"])
def test_damaged_payload_is_recomputed_never_served(root, damage):
    cache = make(root)
    run(cache, exec_fn)
    hashes = cache.chunk_hasher().hexdigests()
    rows = cache.storage().rows(hashes)
    victim = root / rows[hashes[1]].location
    data = victim.read_bytes()
    if damage == "truncate":
        victim.write_bytes(data[:-7])
    elif damage == "flip":
        victim.write_bytes(data[:40] + bytes([data[40] ^ 1]) + data[41:])
    elif damage == "delete":
        victim.unlink()
    else:
        victim.write_bytes((root / rows[hashes[2]].location).read_bytes())
    with pytest.warns(CorruptChunkWarning, match=hashes[1]) as caught:
        output, diag = run(make(root), exec_fn)
    assert len([w for w in caught if issubclass(w.category, CorruptChunkWarning)]) == 1
    assert output == expected(cache) and diag.executed_chunks == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert run(make(root), exec_fn)[1].hit


def test_disk_full_is_a_clear_error_and_the_next_run_recovers(root, monkeypatch):
    import chunk_memo.store as store

    cache = make(root)
    run(cache.slice(PARAMS, a=[0, 1]), exec_fn)
    before = {p: p.read_bytes() for p in (root / "chunks").rglob("*.cmp")}
    real_write, calls = store._write_all, {"n": 0}

    def full_disk(fd, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(store, "_write_all", full_disk)
    with pytest.raises(OSError) as info:
        run(make(root), exec_fn)
    assert info.value.errno == errno.ENOSPC
    assert not list(root.rglob("*.cmtmp")), "no partial file is left in place"
    assert all(p.read_bytes() == data for p, data in before.items()), "old payloads intact"
    monkeypatch.setattr(store, "_write_all", real_write)
    output, diag = run(make(root), exec_fn)
    assert output == expected(cache)
    assert diag.cached_chunks == 2, "the chunk finished before the error was kept"


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def _rss_kib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024


def test_a_service_shares_one_cache_between_threads_and_stays_flat(root):
    grid = {"a": list(range(50)), "b": list(range(20))}
    cache = ChunkCache(root, {"a": 5, "b": 20}, grid, params=PARAMS, verbose=0)
    run(cache.slice(PARAMS, a=list(range(40))), exec_fn)
    errors, counts = [], []

    def serve(seed, seconds):
        done = 0
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                a, b = (seed * 7 + done) % 50, (seed + done) % 20
                output, _ = run(cache.slice(PARAMS, a=[a], b=[b]), exec_fn)
                assert output == [[PARAMS["alpha"] * a + b]], (a, b, output)
                done += 1
        except Exception as error:  # noqa: BLE001 - reported by the test
            errors.append(error)
        counts.append(done)

    def burst(seconds):
        threads = [threading.Thread(target=serve, args=(i, seconds)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    burst(1.0)  # warm up: connections, one storage per thread, caches of the grid
    fds, rss = _open_fds(), _rss_kib()
    burst(4.0)
    assert not errors, errors[:3]
    assert sum(counts) > 1000, f"only {sum(counts)} operations"
    assert _open_fds() <= fds + 2
    assert _rss_kib() - rss < 20_000, "memory grew by more than 20 MB"
    assert run(cache, lambda *a, **k: pytest.fail("all stored"))[1].hit


def test_a_cache_pickles_without_its_connections(root):
    cache = make(root)
    run(cache, exec_fn)
    clone = pickle.loads(pickle.dumps(cache.slice(PARAMS, a=[4])))
    assert run(clone, lambda *a, **k: pytest.fail("stored"))[0] == [[12, 13]]


class Exploit:
    """Unpickling this would create a marker file."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_untrusted_cache_never_unpickles_a_planted_payload(root, tmp_path):
    marker = tmp_path / "exploited"
    cache = make(root)

    def planted(params, a, b):
        return {"payload": Exploit(str(marker))}

    run(cache, planted)
    assert not marker.exists()
    with pytest.raises(UntrustedPayloadError, match="trusted=False"):
        run(make(root, trusted=False), planted)
    assert not marker.exists(), "nothing was executed"


@pytest.mark.parametrize("bad", ["../outside.bin", "/etc/passwd-copy", "link/escape.bin"])
def test_cache_path_fn_cannot_leave_the_root(root, tmp_path, bad):
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = make(root, cache_path_fn=lambda *args: "../" * 6 + bad if bad.startswith("..")
                 else bad)
    (cache.cache_dir / "link").parent.mkdir(parents=True, exist_ok=True)
    os.symlink(outside, cache.cache_dir / "link")
    with pytest.raises(ValueError, match="escapes the root"):
        run(cache, exec_fn)
    assert not list(outside.iterdir())


@pytest.mark.parametrize("cache_hash", ["../../etc", "/etc/passwd", "..", "a" * 32])
def test_load_from_cache_cannot_reach_outside_the_root(root, cache_hash):
    make(root)
    with pytest.raises(FileNotFoundError):
        ChunkCache.load_from_cache(root, cache_hash)


def test_files_follow_the_umask_and_are_never_world_writable(root):
    previous = os.umask(0o002)
    try:
        run(make(root), exec_fn)
    finally:
        os.umask(previous)
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert not mode & stat.S_IWOTH, f"{path} is world-writable ({oct(mode)})"


def test_a_root_removed_and_used_again_in_one_process_gets_a_new_catalog(root):
    import shutil
    import subprocess
    import sys

    output, _ = run(make(root), exec_fn)
    shutil.rmtree(root)  # as in a notebook: start over, same process
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptChunkWarning)  # nothing stale is looked up
        again, diag = run(make(root), exec_fn)
    assert again == output and diag.executed_chunks == diag.total_chunks
    assert (root / "catalog.sqlite").exists()
    # What was stored after the removal is there for the next process.
    script = ("import sys; sys.path.insert(0, sys.argv[2]); from test_reliability import *; "
              "from pathlib import Path; print(run(make(Path(sys.argv[1])), exec_fn)[1].hit)")
    child = subprocess.run([sys.executable, "-c", script, str(root), os.path.dirname(__file__)],
                           capture_output=True, text=True, timeout=120)
    assert child.stdout.strip() == "True", child.stderr
