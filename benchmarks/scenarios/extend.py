"""Extend: after an axis doubles, a run must compute the new points and only those.

a: 10,000 values in chunks of 100, b: one value; a first, unmeasured run stores
100 chunks.  Then 10,000 new values are appended to a with the cache's own
``extend_axis_values({"a": new_values})`` (both libraries have it; timed separately
as extend_s), and the second run is measured.  ``exec_points`` counts the points
exec_fn computed in that run: exactly 10,000 means every stored chunk was reused.
"""

from harness import fingerprint, main, timed

AXIS_VALUES = {"a": list(range(10_000)), "b": [0]}
NEW_A = list(range(10_000, 20_000))
CHUNK_SPEC = {"a": 100, "b": 1}
PARAMS = {"k": 3}


def extend(impl, root, measure):
    cache = impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS)
    impl.run(cache)
    extended, extend_s = timed(lambda: impl.extend(cache, {"a": NEW_A}))
    impl.points_computed = 0
    with measure:
        output, diag = impl.run(extended)
    return {
        "metric": measure.seconds * 1e3,
        "points": len(AXIS_VALUES["a"]) + len(NEW_A),
        "new_points": len(NEW_A),
        "extend_s": extend_s,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(extend)
