"""Payload store timings: a 1% partial read against a whole-chunk read, and a write.

Run with ``python -m pytest benchmarks/bench_store.py --benchmark-only -q``.
The target is a partial read at least 20x faster than reading the whole chunk.
"""

from __future__ import annotations

import random

import pytest

from chunk_memo.store import ChunkStore

CHUNK_HASH = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
N_ITEMS = 10_000
N_PARTIAL = 100
TARGET_SPEEDUP = 20

_medians: dict[str, float] = {}


@pytest.fixture(scope="module")
def items():
    rng = random.Random(1)
    return [{"x": rng.random(), "i": i} for i in range(N_ITEMS)]


@pytest.fixture(scope="module")
def stored_chunk(tmp_path_factory, items):
    store = ChunkStore(tmp_path_factory.mktemp("bench-store"))
    return store, store.write_items(CHUNK_HASH, items)


def test_read_partial_1_percent(benchmark, stored_chunk, items):
    store, stored = stored_chunk
    positions = random.Random(2).sample(range(N_ITEMS), N_PARTIAL)
    result = benchmark(store.read, stored.location, CHUNK_HASH, positions=positions)
    assert result == [items[p] for p in positions]
    _medians["partial"] = benchmark.stats.stats.median


def test_read_whole_chunk(benchmark, stored_chunk, items):
    store, stored = stored_chunk
    result = benchmark(store.read, stored.location, CHUNK_HASH, stored.checksum)
    assert result == items
    _medians["whole"] = benchmark.stats.stats.median
    if "partial" in _medians:
        speedup = _medians["whole"] / _medians["partial"]
        benchmark.extra_info["partial_speedup"] = round(speedup, 1)
        assert speedup >= TARGET_SPEEDUP, f"partial read only {speedup:.1f}x faster than whole"


def test_write_chunk(benchmark, tmp_path, items):
    store = ChunkStore(tmp_path)
    stored = benchmark.pedantic(store.write_items, args=(CHUNK_HASH, items),
                                rounds=30, warmup_rounds=2)
    assert stored.n_items == N_ITEMS
