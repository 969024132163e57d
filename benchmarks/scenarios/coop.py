"""N processes, one sweep: duplicated work and what the store holds afterwards.

Four processes start the same sweep of --size chunks (default 400; 5 points each,
each point costing 0.2 ms of exec_fn time) on one empty root at the same moment, as a
job array would.  Every point exec_fn computes is logged to a shared file.  Measured:
the wall time until all four finish.  Reported: executions / points (1.00 means every
point computed once), and how many chunks a fresh cache then reports as stored.
Ours coordinates processes through chunk leases; 0.1.5 and joblib do not.
"""

import multiprocessing
import os
import sys
import tempfile
import time

from adapters import IMPLEMENTATIONS
from harness import main

CHUNK_POINTS = 5
PARAMS = {"k": 10}
PROCESSES = 4
POINT_COST_S = 0.0002


def grid(chunks: int) -> tuple[dict, dict]:
    return {"a": list(range(chunks)), "b": list(range(CHUNK_POINTS))}, {"a": 1, "b": CHUNK_POINTS}


def _logging_impl(impl_name: str, log_path: str):
    """The adapter with its exec function (per chunk or per point) logging every point."""
    impl = IMPLEMENTATIONS[impl_name]()
    compute = getattr(impl, impl.exec_name)

    def logged(params, **axes):
        n = 1
        for values in axes.values():
            n *= len(values) if isinstance(values, list) else 1
        time.sleep(POINT_COST_S * n)
        fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(fd, b"x\n" * n)
        os.close(fd)
        return compute(params, **axes)

    setattr(impl, impl.exec_name, logged)
    return impl


def _worker(impl_name: str, root: str, chunks: int, log_path: str, start_at: float) -> None:
    impl = _logging_impl(impl_name, log_path)
    cache = impl.make_cache(root, *grid(chunks), PARAMS)
    while time.time() < start_at:
        time.sleep(0.002)
    impl.run(cache)


def coop(impl, root, measure, chunks):
    with tempfile.TemporaryDirectory(prefix="chunk-memo-coop-log-") as log_dir:
        return _coop(impl, root, measure, chunks, os.path.join(log_dir, "executions.log"))


def _coop(impl, root, measure, chunks, log_path):
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 4.0  # every worker imported and ready before the start
    workers = [context.Process(target=_worker,
                               args=(impl.name, str(root), chunks, log_path, start_at))
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
    points = chunks * CHUNK_POINTS
    status = impl.status(impl.make_cache(root, *grid(chunks), PARAMS))
    return {
        "metric": executions / points,
        "points": points,
        "exec_points": executions,
        "stored_chunks": len(status["cached_chunks"]),
        "n_outputs": 0,
        "checksum": 0,
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(coop, 400)
