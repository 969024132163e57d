"""Processes of the cooperation tests (importable by spawned children)."""

import os
import time

from chunk_memo import ChunkCache, run, run_parallel, run_streaming

AXES = {"a": list(range(400)), "b": list(range(5))}
SPEC = {"a": 1, "b": 5}
PARAMS = {"model": "coop"}


def make_cache(root, lease_ttl=30.0, leases=True):
    return ChunkCache(root, SPEC, AXES, params=PARAMS, verbose=0, lease_ttl=lease_ttl,
                      leases=leases)


def log_execution(log_path, text):
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{text}\n".encode())
    finally:
        os.close(fd)


class ChunkFn:
    """A chunk-level exec_fn that logs each chunk it computes."""

    def __init__(self, log_path, hang_on=None, ready_path=None):
        self.log_path = log_path
        self.hang_on = hang_on
        self.ready_path = ready_path

    def __call__(self, params, a, b):
        if self.hang_on is not None and a == [self.hang_on]:
            open(self.ready_path, "w").close()
            time.sleep(600)
        time.sleep(0.002)
        log_execution(self.log_path, f"{os.getpid()} {a[0]}")
        return [x * 10 + y for x in a for y in b]


class PointFn:
    """A point-level exec_fn for run_parallel that logs each point it computes."""

    def __init__(self, log_path):
        self.log_path = log_path

    def __call__(self, a, b):
        log_execution(self.log_path, f"{os.getpid()} {a} {b}")
        return a * 10 + b


def sweep(root, log_path, mode, start_at):
    while time.time() < start_at:
        time.sleep(0.005)
    cache = make_cache(root)
    if mode == "run":
        run(cache, ChunkFn(log_path))
    elif mode == "run_streaming":
        run_streaming(cache, ChunkFn(log_path))
    else:
        items = [(a, b) for a in AXES["a"] for b in AXES["b"]]
        run_parallel(items, exec_fn=PointFn(log_path), cache=cache, map_fn=map,
                     return_output=False)


def sweep_and_hang(root, log_path, ready_path, lease_ttl):
    run_streaming(make_cache(root, lease_ttl=lease_ttl),
                  ChunkFn(log_path, hang_on=40, ready_path=ready_path))
