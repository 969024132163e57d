"""run_parallel on a real Dask LocalCluster with worker processes."""

import functools
import sys

import pytest

distributed = pytest.importorskip("distributed", reason="Dask is a test extra")
cloudpickle = pytest.importorskip("cloudpickle")

from chunk_memo import ChunkCache, run, run_parallel  # noqa: E402
from chunk_memo.executors import dask_map  # noqa: E402

# Worker processes cannot import this test module: ship its functions by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


def simulate(params, x, y):
    import os

    return {"x": x, "y": y, "value": params["scale"] * x + y, "pid": os.getpid()}


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None)
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


def test_local_cluster_sweep_is_stored_and_reused_by_run(root, client):
    params = {"scale": 10}
    cache = ChunkCache(root, {"x": 2, "y": 3}, {"x": list(range(4)), "y": list(range(6))},
                       params=params, verbose=0)
    items = [{"x": x, "y": y} for x in range(4) for y in range(6)]
    output, diag = run_parallel(items, exec_fn=functools.partial(simulate, params), cache=cache,
                                map_fn=dask_map(client), flush_on_chunk=True)
    assert [o["value"] for o in output] == [10 * i["x"] + i["y"] for i in items]
    assert diag.executed_chunks == 4
    worker_pids = {o["pid"] for o in output}
    import os
    assert os.getpid() not in worker_pids, "the work ran in worker processes"
    stored, diag = run(cache, lambda *a, **k: pytest.fail("nothing should execute"))
    assert diag.cached_chunks == 4 and diag.executed_chunks == 0
    assert sorted(o["value"] for chunk in stored for o in chunk) == sorted(
        o["value"] for o in output)


def test_worker_errors_propagate_after_storing_what_finished(root, client):
    cache = ChunkCache(root, {"x": 1}, {"x": [0, 1, 2]}, params={}, verbose=0)

    def fragile(x):
        if x == 2:
            raise ValueError("x=2 failed on the worker")
        return x * 3

    with pytest.raises(ValueError, match="x=2 failed"):
        run_parallel([0, 1, 2], exec_fn=fragile, cache=cache, map_fn=dask_map(client))
    output, diag = run_parallel([0, 1], exec_fn=fragile, cache=cache, map_fn=dask_map(client))
    assert output == [0, 3] and diag.cached_chunks == 2
