"""Hashing every chunk of a 10^6-chunk grid (3 axes x 100 values, chunk size 1).

Run: ``python -m pytest benchmarks/bench_planning.py --benchmark-only``; peak
memory is measured with tracemalloc in ``test_peak_memory_of_hashing_1e6_chunks``
and printed (``-s``) and stored in the benchmark's extra_info.
"""

import tracemalloc

from chunk_memo.grid import Grid

AXES = {name: list(range(100)) for name in ("a", "b", "c")}
SPEC = {name: 1 for name in AXES}
PARAMS = {"alpha": 0.4, "model": "m1"}


def hash_all_chunks():
    grid = Grid.build(AXES, SPEC)
    return grid.chunk_hasher(PARAMS, "v1").digests()


def test_hash_1e6_chunks(benchmark):
    digests = benchmark(hash_all_chunks)
    assert len(digests) == 16 * 10**6


def test_peak_memory_of_hashing_1e6_chunks(benchmark):
    tracemalloc.start()
    digests = hash_all_chunks()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    benchmark.extra_info["peak_mb"] = round(peak / 2**20, 1)
    print(f"\npeak traced memory hashing 10^6 chunks: {peak / 2**20:.1f} MB")
    assert len(digests) == 16 * 10**6
    benchmark.pedantic(lambda: None, rounds=1)


def test_selection_of_1e6_chunk_grid(benchmark):
    grid = Grid.build(AXES, SPEC)
    selection = benchmark(grid.select, {"a": range(0, 100, 10)})
    assert selection.n_chunks == 10**5
