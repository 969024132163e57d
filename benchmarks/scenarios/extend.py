"""Extend: after an axis doubles, a run must compute the new points and only those.

a: --size N values (default 10,000) in chunks of 100, b: one value; a first,
unmeasured run stores N/100 chunks.  Then N new values are appended to a: both
chunk-memos grow the cache in place with ``extend_axis_values({"a": new_values})``,
joblib gets a grid with the values appended (timed separately as extend_s), and the
second run is measured.  ``exec_points`` counts the points exec_fn computed in that
run: exactly N means every stored chunk was reused.
"""

from harness import fingerprint, main, timed

CHUNK_SPEC = {"a": 100, "b": 1}
PARAMS = {"k": 3}


def extend(impl, root, measure, size):
    if size % 100:
        raise SystemExit(f"--size must be a multiple of 100, got {size}")
    axis_values = {"a": list(range(size)), "b": [0]}
    new_a = list(range(size, 2 * size))
    cache = impl.make_cache(root, axis_values, CHUNK_SPEC, PARAMS)
    impl.run(cache)
    extended, extend_s = timed(lambda: impl.extend(cache, {"a": new_a}))
    impl.points_computed = 0
    with measure:
        output, diag = impl.run(extended)
    return {
        "metric": measure.seconds * 1e3,
        "points": 2 * size,
        "new_points": len(new_a),
        "extend_s": extend_s,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(extend, 10_000)
