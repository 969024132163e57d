"""1% subset: time per selected point of a run on a slice of a stored grid.

--size N points (default 100,000) in 10 chunks (a: 10 values in chunks of 1, b: N/10
values in one chunk) are stored by a first, unmeasured run.  A new cache object over
the same root is sliced to all of a and every 100th value of b (spread over the whole
axis): N/100 points, 1% of the grid, touching all 10 chunks.  The run on the slice is
measured; building the slice is timed separately (slice_s).
"""

from harness import fingerprint, main, timed

PARAMS = {"k": 3}


def subset(impl, root, measure, points):
    if points % 1000:
        raise SystemExit(f"--size must be a multiple of 1,000, got {points}")
    axis_values = {"a": list(range(10)), "b": list(range(points // 10))}
    chunk_spec = {"a": 1, "b": points // 10}
    selected_b = axis_values["b"][::100]
    selected_points = len(axis_values["a"]) * len(selected_b)
    impl.run(impl.make_cache(root, axis_values, chunk_spec, PARAMS))
    impl.points_computed = 0
    cache = impl.make_cache(root, axis_values, chunk_spec, PARAMS)
    view, slice_s = timed(lambda: impl.slice(cache, PARAMS, b=selected_b))
    with measure:
        output, diag = impl.run(view)
    return {
        "metric": measure.seconds / selected_points * 1e6,
        "points": selected_points,
        "slice_s": slice_s,
        "slice_and_run_us_per_point": (slice_s + measure.seconds) / selected_points * 1e6,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(subset, 100_000)
