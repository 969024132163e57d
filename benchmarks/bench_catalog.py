"""Catalog benchmarks (pytest-benchmark).

Run with::

    python -m pytest benchmarks/bench_catalog.py --benchmark-only -q

Targets: recording 10^5 chunk rows < 1 s; checking 10^6 chunk hashes against a
catalog of 10^6 rows < 1 s; discovery, exact find and superset match over 10^4
caches < 20 ms each; claiming a batch of 4096 chunks < 50 ms.  The large catalogs
are built once per session (slow: ~10 s each), through the public API.
"""

import hashlib
import itertools
import random

import pytest

from chunk_memo.catalog import CacheRecord, Catalog, ChunkRow

N_RECORD = 100_000
N_STORED = 1_000_000
N_CACHES = 10_000


def fake_hash(*parts) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def chunk_rows(hashes) -> list[ChunkRow]:
    return [ChunkRow(h, f"{h[:2]}/{h}.bin", 64, 64, None, 4096, h) for h in hashes]


@pytest.fixture(scope="session")
def bench_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bench_catalog")


# -- chunk index ----------------------------------------------------------------------


def test_record_chunks_1e5(benchmark, bench_dir):
    """10^5 rows into a fresh catalog, in the catalog's own batches of 10^4."""
    rows = chunk_rows(fake_hash("record", i) for i in range(N_RECORD))
    fresh = itertools.count()

    def new_catalog():
        return (Catalog(bench_dir / f"record-{next(fresh)}"),), {}

    benchmark.pedantic(lambda catalog: catalog.record_chunks(rows), setup=new_catalog,
                       rounds=5, iterations=1)
    last = Catalog(bench_dir / f"record-{next(fresh) - 1}")
    assert len(last.existing_chunks([r.chunk_hash for r in rows])) == N_RECORD


@pytest.fixture(scope="session")
def big_catalog(bench_dir):
    """A catalog holding 10^6 chunk rows, and their hashes."""
    # Recorded in hash order: appends to the index instead of random inserts, which
    # builds the fixture in seconds instead of a minute.
    hashes = sorted(fake_hash("stored", i) for i in range(N_STORED))
    catalog = Catalog(bench_dir / "big")
    catalog.record_chunks(chunk_rows(hashes))
    return catalog, hashes


def test_existing_chunks_1e6_of_1e6(benchmark, big_catalog):
    """10^6 hashes asked, half of them stored, against 10^6 stored rows.

    Every round asks with new string objects, as a caller's freshly computed
    hashes would be (Python caches a string's hash once computed).
    """
    catalog, stored = big_catalog
    asked = stored[::2] + [fake_hash("absent", i) for i in range(N_STORED // 2)]
    random.Random(0).shuffle(asked)

    def fresh_strings():
        return ([(key + ".")[:-1] for key in asked],), {}

    found = benchmark.pedantic(catalog.existing_chunks, setup=fresh_strings, rounds=5,
                               iterations=1)
    assert len(found) == N_STORED // 2


def test_existing_chunks_1e4_of_1e6(benchmark, big_catalog):
    """A batch of 10^4 hashes (a typical planning step) against 10^6 stored rows."""
    catalog, stored = big_catalog
    rng = random.Random(1)
    asked = rng.sample(stored, 5_000) + [fake_hash("absent", i) for i in range(5_000)]
    found = benchmark(catalog.existing_chunks, asked)
    assert len(found) == 5_000


# -- leases ---------------------------------------------------------------------------

N_CLAIM = 4096


@pytest.fixture(scope="session")
def lease_catalog(bench_dir):
    return Catalog(bench_dir / "leases")


def test_claim_chunks_4096_fresh(benchmark, lease_catalog):
    """A runner's batch of 4096 chunks nobody holds: 4096 new leases, one transaction."""
    batches = itertools.count()

    def fresh_hashes():
        batch = next(batches)
        return ([fake_hash("claim", batch, i) for i in range(N_CLAIM)], "runner-1", 60.0), {}

    claimed = benchmark.pedantic(lease_catalog.claim_chunks, setup=fresh_hashes, rounds=15,
                                 iterations=1)
    assert len(claimed) == N_CLAIM


def test_claim_chunks_4096_recorded(benchmark, lease_catalog):
    """A re-run's batch of 4096 chunks all recorded already: nothing to lease."""
    hashes = [fake_hash("claim-recorded", i) for i in range(N_CLAIM)]
    lease_catalog.record_chunks(chunk_rows(hashes))
    claimed = benchmark(lease_catalog.claim_chunks, hashes, "runner-1", 60.0)
    assert claimed == set()


# -- caches ---------------------------------------------------------------------------

X_VALUES = list(range(20))


def value_hash(value) -> str:
    return fake_hash("value", value)


def sweep_record(seed: int) -> CacheRecord:
    """Cache ``seed`` of 10^4: its own seed, a shared alpha, shared and shifted axes."""
    axes = {"x": X_VALUES, "y": list(range(seed % 7, seed % 7 + 5))}
    params = {"alpha": 0.1, "seed": seed}
    params_hash = fake_hash("params", sorted(params.items()))
    axis_values_hash = fake_hash("axes", sorted(axes.items()))
    return CacheRecord(
        cache_hash=fake_hash("cache", params_hash, axis_values_hash),
        params_hash=params_hash,
        axis_values_hash=axis_values_hash,
        chunk_spec_hash=fake_hash("spec"),
        axis_order_hash=fake_hash("order", ("x", "y")),
        cache_version="v1",
        metadata=b'{"created_by": "bench"}',
        axes=[(axis, [(value_hash(v), repr(v).encode()) for v in values])
              for axis, values in axes.items()],
        params=[(key, value_hash(value)) for key, value in params.items()],
    )


@pytest.fixture(scope="session")
def many_caches(bench_dir):
    catalog = Catalog(bench_dir / "caches")
    for seed in range(N_CACHES):
        catalog.register_cache(sweep_record(seed))
    return catalog


def test_list_caches_1e4(benchmark, many_caches):
    found = benchmark(many_caches.list_caches)
    assert len(found) == N_CACHES


def test_find_caches_exact_1e4(benchmark, many_caches):
    wanted = sweep_record(4321)
    found = benchmark(many_caches.find_caches, params_hash=wanted.params_hash,
                      axis_values_hash=wanted.axis_values_hash, cache_version="v1")
    assert [c.cache_hash for c in found] == [wanted.cache_hash]


def test_find_superset_caches_1e4(benchmark, many_caches):
    """Params {alpha (shared by all), seed}, a subset of x (shared) and of y."""
    wanted = sweep_record(4321)
    params = {"alpha": value_hash(0.1), "seed": value_hash(4321)}
    axes = {"x": [value_hash(v) for v in X_VALUES[5:15]],
            "y": [value_hash(v) for v in (4321 % 7 + 1, 4321 % 7 + 3)]}
    found = benchmark(many_caches.find_superset_caches, params, axes)
    assert [c.cache_hash for c in found] == [wanted.cache_hash]


def test_find_superset_caches_param_from_axis_1e4(benchmark, many_caches):
    """y fixed as a param, found among the values of the cache's y axis."""
    params = {"alpha": value_hash(0.1), "seed": value_hash(4321), "y": value_hash(6)}
    axes = {"x": [value_hash(v) for v in X_VALUES]}
    found = benchmark(many_caches.find_superset_caches, params, axes)
    assert [c.cache_hash for c in found] == [sweep_record(4321).cache_hash]


def test_find_superset_caches_without_params_1e4(benchmark, many_caches):
    """No params asked: every cache has params, so none matches; all are examined."""
    axes = {"x": [value_hash(v) for v in X_VALUES[:10]], "y": [value_hash(4)]}
    found = benchmark(many_caches.find_superset_caches, {}, axes)
    assert found == []
