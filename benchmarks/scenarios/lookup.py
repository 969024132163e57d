"""Lookup: one point at a time from a stored grid, as a service answering requests.

--size N points (default 100,000): a: 100 values in chunks of 1, b: N/100 values in
one chunk (100 chunks of N/100 points), stored by a first, unmeasured run.  A new
cache object over the same root (built apart: setup_s) then answers 200 lookups of
random points (seeded), one at a time: each is a slice to the one point, ``a=x, b=y``,
and a run on it (0.1.5: its slice without params; joblib: the memoized per-chunk
function for the point's chunk, then the point picked from its output), and the
answer is checked.  Metric: mean microseconds per lookup; p50 and p99 beside it.
"""

import random
import statistics
import time

from harness import fingerprint, main, timed

PARAMS = {"k": 3}
LOOKUPS = 200
SEED = 20240611


def lookup(impl, root, measure, points):
    if points % 100:
        raise SystemExit(f"--size must be a multiple of 100, got {points}")
    axis_values = {"a": list(range(100)), "b": list(range(points // 100))}
    chunk_spec = {"a": 1, "b": points // 100}
    impl.run(impl.make_cache(root, axis_values, chunk_spec, PARAMS))
    impl.points_computed = 0
    cache, setup_s = timed(lambda: impl.make_cache(root, axis_values, chunk_spec, PARAMS))
    rng = random.Random(SEED)
    wanted = [(rng.choice(axis_values["a"]), rng.choice(axis_values["b"]))
              for _ in range(LOOKUPS)]
    seconds, answers = [], []
    with measure:
        for x, y in wanted:
            started = time.perf_counter()
            output, _ = impl.run(impl.slice(cache, PARAMS, a=x, b=y))
            seconds.append(time.perf_counter() - started)
            answers.extend(impl.flat(output))
    expected = [x * PARAMS["k"] + y for x, y in wanted]
    if answers != expected:
        wrong = sum(a != e for a, e in zip(answers, expected))
        raise SystemExit(f"{wrong} of {LOOKUPS} lookups answered wrong "
                         f"({len(answers)} answers for {LOOKUPS} lookups)")
    us = [s * 1e6 for s in seconds]
    return {
        "metric": statistics.fmean(us),
        "points": LOOKUPS,
        "p50_us": statistics.median(us),
        "p99_us": statistics.quantiles(us, n=100)[98],
        "setup_s": setup_s,
        "exec_points": impl.points_computed,
        **fingerprint(answers),
    }


if __name__ == "__main__":
    main(lookup, 100_000)
