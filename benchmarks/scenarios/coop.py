"""Four processes, one sweep: duplicated work and what the index holds afterwards.

Four processes start the same 400-chunk sweep (2,000 points; each chunk costs
about 1 ms of exec_fn time) on one empty root at the same moment, as a job array
would.  Every point exec_fn computes is logged to a shared file.  Measured: the
wall time until all four finish.  Reported: executions / points (1.00 means every
point computed once), and how many of the 400 chunks a fresh cache then reports
as stored.
"""

import multiprocessing
import os
import sys
import time

from adapters import IMPLEMENTATIONS
from harness import main

AXIS_VALUES = {"a": list(range(400)), "b": list(range(5))}
CHUNK_SPEC = {"a": 1, "b": 5}
PARAMS = {"k": 10}
POINTS = 2000
PROCESSES = 4
POINT_COST_S = 0.0002


def _logging_impl(impl_name: str, log_path: str):
    impl = IMPLEMENTATIONS[impl_name]()
    point_fn = impl.exec_chunk if impl_name == "ours" else impl.exec_point

    def logged(params, **axes):
        n = 1
        for values in axes.values():
            n *= len(values) if isinstance(values, list) else 1
        time.sleep(POINT_COST_S * n)
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, b"x\n" * n)
        os.close(fd)
        return point_fn(params, **axes)

    if impl_name == "ours":
        impl.exec_chunk = logged
    else:
        impl.exec_point = logged
    return impl


def _worker(impl_name: str, root: str, log_path: str, start_at: float) -> None:
    impl = _logging_impl(impl_name, log_path)
    cache = impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS)
    while time.time() < start_at:
        time.sleep(0.002)
    impl.run(cache)


def coop(impl, root, measure):
    log_path = str(root.parent / "executions.log")
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 4.0  # every worker imported and ready before the start
    workers = [context.Process(target=_worker, args=(impl.name, str(root), log_path, start_at))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    while time.time() < start_at:
        time.sleep(0.001)
    with measure:
        for worker in workers:
            worker.join()
    failed = [w.exitcode for w in workers if w.exitcode != 0]
    if failed:
        raise SystemExit(f"{len(failed)} of {PROCESSES} workers failed: exit codes {failed}")
    with open(log_path) as log:
        executions = sum(1 for _ in log)
    status = impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS).cache_status()
    return {
        "metric": executions / POINTS,
        "points": POINTS,
        "exec_points": executions,
        "stored_chunks": len(status["cached_chunks"]),
        "n_outputs": 0,
        "checksum": 0,
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(coop)
