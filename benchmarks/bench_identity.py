"""Encode+hash rate of small values, against msgpack + xxhash from Python.

Run: ``python -m pytest benchmarks/bench_identity.py --benchmark-only
--benchmark-group-by=param:kind --benchmark-columns=median,min,max``.
Each case hashes ``N`` values; items/s = N / median.
"""

import msgpack
import pytest
import xxhash

from chunk_memo import _core

N = 100_000

VALUES = {
    "scalar": [i * 0.5 for i in range(N)],
    "point": [(i, "strat-a", i * 0.25) for i in range(N)],
    "params": [{"alpha": 0.4, "strat": "a", "s": i} for i in range(N)],
}


def baseline(values):
    digest, pack = xxhash.xxh3_128_hexdigest, msgpack.packb
    return [digest(pack(v)) for v in values]


@pytest.mark.parametrize("kind", list(VALUES))
def test_chunk_memo_hash_many(benchmark, kind):
    benchmark.extra_info["native_xxh3"] = _core.NATIVE_XXH3
    out = benchmark(_core.hash_many, VALUES[kind])
    assert len(out) == N


@pytest.mark.parametrize("kind", list(VALUES))
def test_baseline_msgpack_xxhash(benchmark, kind):
    out = benchmark(baseline, VALUES[kind])
    assert len(out) == N
