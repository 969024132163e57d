"""Plan and status: build the cache object for a big empty grid, then ask its status.

--size N chunks (default 1,000,000): a: 100 values, b: N/100 values, one point per
chunk (chunk_spec a: 1, b: 1), params {"k": 3}, nothing stored.  Measured, together:
constructing the cache object on the empty root and ``cache_status()`` (joblib: a
``check_call_in_cache`` per chunk).  Reported: seconds of the two (construct_s and
status_s apart), and the process's peak RSS, whose growth over the RSS right after
import is the memory the status of N chunks costs.  When the status took at most
3 s, it is then run once more, unmeasured, under tracemalloc: status_heap_mib is the peak Python heap of that call
(the memory of the status itself, without SQLite's page cache and mapped pages or
the import).
"""

import tracemalloc

from harness import main, peak_rss_kib, timed

PARAMS = {"k": 3}
#: The status is run a second time under tracemalloc (slow) only when it took at most
#: this long: the Python heap it needs, apart from the catalog's own memory.
HEAP_PROBE_MAX_S = 3.0
CHUNK_SPEC = {"a": 1, "b": 1}


def plan_status(impl, root, measure, chunks):
    if chunks % 100:
        raise SystemExit(f"--size must be a multiple of 100, got {chunks}")
    axis_values = {"a": list(range(100)), "b": list(range(chunks // 100))}
    with measure:
        cache, construct_s = timed(lambda: impl.make_cache(root, axis_values, CHUNK_SPEC,
                                                           PARAMS))
        status, status_s = timed(lambda: impl.status(cache))
    peak_rss = peak_rss_kib()  # before the probe below, which costs memory itself
    heap_mib = float("nan")
    if status_s <= HEAP_PROBE_MAX_S:  # once more, unmeasured, under tracemalloc
        tracemalloc.start()
        impl.status(cache)
        heap_mib = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    total, cached = status["total_chunks"], len(status["cached_chunks"])
    missing = len(status["missing_chunks"])
    if (total, cached, missing) != (chunks, 0, chunks):
        raise SystemExit(f"status of an empty {chunks:,}-chunk grid said total {total:,}, "
                         f"cached {cached:,}, missing {missing:,}")
    return {
        "metric": measure.seconds,
        "chunks": chunks,
        "construct_s": construct_s,
        "status_s": status_s,
        "status_heap_mib": heap_mib,
        "peak_rss_kib": peak_rss,
        "exec_points": 0,
        "n_outputs": total,
        "checksum": cached,
    }


if __name__ == "__main__":
    main(plan_status, 1_000_000)
