"""Cold run: the library's overhead per point on a first run.

50,000 points in 500 chunks (a: 500 values in chunks of 1, b: 100 values in one
chunk of 100), a trivial exec_fn.  The exec_fn is also timed alone over the same
chunks, called the way the library calls it (best of three: it takes milliseconds,
so one scheduler hiccup would dominate a single pass), and

    overhead per point = (run seconds - exec_fn-alone seconds) / points.
"""

from harness import fingerprint, main, timed

AXIS_VALUES = {"a": list(range(500)), "b": list(range(100))}
CHUNK_SPEC = {"a": 1, "b": 100}
PARAMS = {"k": 3}
POINTS = 500 * 100


def cold(impl, root, measure):
    exec_alone = min(
        timed(lambda: impl.exec_without_cache(AXIS_VALUES, CHUNK_SPEC, PARAMS))[1]
        for _ in range(3)
    )
    impl.points_computed = 0
    cache, setup = timed(lambda: impl.make_cache(root, AXIS_VALUES, CHUNK_SPEC, PARAMS))
    with measure:
        output, diag = impl.run(cache)
    return {
        "metric": (measure.seconds - exec_alone) / POINTS * 1e6,
        "points": POINTS,
        "exec_alone_s": exec_alone,
        "setup_s": setup,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(cold)
