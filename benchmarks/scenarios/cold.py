"""Cold run: the library's overhead per point on a first run.

--size N points (default 50,000) in N/100 chunks: a: N/100 values in chunks of 1,
b: 100 values in one chunk of 100; a trivial exec_fn.  The exec_fn is also timed
alone over the same chunks, called the way the library calls it (best of three: it
takes milliseconds, so one scheduler hiccup would dominate a single pass), and

    overhead per point = (run seconds - exec_fn-alone seconds) / points.

Building the cache object is timed apart (setup_s).
"""

from harness import fingerprint, main, timed

PARAMS = {"k": 3}
CHUNK_SPEC = {"a": 1, "b": 100}


def grid(points: int) -> dict:
    """The cold/warm grid of ``points`` points: 100 per chunk."""
    if points % 100:
        raise SystemExit(f"--size must be a multiple of 100, got {points}")
    return {"a": list(range(points // 100)), "b": list(range(100))}


def cold(impl, root, measure, points):
    axis_values = grid(points)
    exec_alone = min(
        timed(lambda: impl.exec_without_cache(axis_values, CHUNK_SPEC, PARAMS))[1]
        for _ in range(3)
    )
    impl.points_computed = 0
    cache, setup = timed(lambda: impl.make_cache(root, axis_values, CHUNK_SPEC, PARAMS))
    with measure:
        output, diag = impl.run(cache)
    return {
        "metric": (measure.seconds - exec_alone) / points * 1e6,
        "points": points,
        "exec_alone_s": exec_alone,
        "setup_s": setup,
        "exec_points": impl.points_computed,
        "executed_chunks": diag.executed_chunks,
        "cached_chunks": diag.cached_chunks,
        **fingerprint(impl.flat(output)),
    }


if __name__ == "__main__":
    main(cold, 50_000)
