"""1% subset: time per selected point of a run on a slice of a stored grid.

100,000 points in 10 chunks (a: 10 values in chunks of 1, b: 10,000 values in one
chunk of 10,000) are stored by a first, unmeasured run.  A new cache object over
the same root is sliced to all of a and every 100th value of b (100 values spread
over the whole axis): 1,000 points, 1% of the grid, touching all 10 chunks.  The
run on the slice is measured; building the slice is timed separately (slice_s).
"""

from harness import fingerprint, main, timed

AXIS_VALUES = {"a": list(range(10)), "b": list(range(10_000))}
CHUNK_SPEC = {"a": 1, "b": 10_000}
PARAMS = {"k": 3}
SELECTED_B = AXIS_VALUES["b"][::100]
SELECTED_POINTS = len(AXIS_VALUES["a"]) * len(SELECTED_B)


def subset(impl, root, measure):
    impl.run(impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS))
    impl.points_computed = 0
    cache = impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS)
    view, slice_s = timed(lambda: impl.slice(cache, PARAMS, b=SELECTED_B))
    with measure:
        output, diag = impl.run(view)
    return {
        "metric": measure.seconds / SELECTED_POINTS * 1e6,
        "points": SELECTED_POINTS,
        "slice_s": slice_s,
        "slice_and_run_us_per_point": (slice_s + measure.seconds) / SELECTED_POINTS * 1e6,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(subset)
