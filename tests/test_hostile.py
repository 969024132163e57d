"""Odd and hostile input through the whole stack: identity, catalog, payloads."""

import datetime as dt
import decimal
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chunk_memo import ChunkCache, identity, run

NAMES = st.one_of(
    st.text(min_size=1, max_size=12),
    st.sampled_from(["it's", 'say "hi"', "a b", "x; DROP TABLE caches; --", "%s", "?", ":name",
                     "\\", "ünï", "\x00nul"]),
)
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=2**64, max_value=2**200),
    st.floats(allow_nan=True), st.text(max_size=8), st.binary(max_size=8),
    st.datetimes(), st.decimals(allow_nan=False, places=3), st.complex_numbers(allow_nan=False),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.tuples(inner, inner),
    st.dictionaries(st.text(max_size=4), inner, max_size=3)), max_leaves=8)


def same(a, b):
    return identity.encode(a) == identity.encode(b)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(NAMES, VALUES, max_size=4),
       axis_name=NAMES, values=st.lists(SCALARS, min_size=1, max_size=5))
def test_params_axis_names_and_values_round_trip_through_the_catalog(tmp_path_factory, params,
                                                                     axis_name, values):
    root = tmp_path_factory.mktemp("hostile")
    params = {k: v for k, v in params.items() if k != axis_name}
    cache = ChunkCache(root, None, {axis_name: values}, params=params, verbose=0)
    output, _ = run(cache, lambda p, **axes: [repr(v) for v in axes[axis_name]])
    [entry] = ChunkCache.discover_caches(root)
    assert entry["cache_hash"] == cache.cache_hash
    meta = entry["metadata"]
    assert same(meta["params"], params)
    assert list(meta["axis_values"]) == [axis_name]
    assert same(meta["axis_values"][axis_name], cache.axis_values[axis_name])
    loaded = ChunkCache.load_from_cache(root, cache.cache_hash, verbose=0)
    assert loaded.cache_hash == cache.cache_hash
    again, diag = run(loaded, lambda *a, **k: 1 / 0)
    assert diag.hit and again == output
    found = ChunkCache.find_compatible_caches(root, params=params,
                                              axis_values={axis_name: values})
    assert [e["cache_hash"] for e in found] == [cache.cache_hash]


@settings(max_examples=200, deadline=None)
@given(st.lists(VALUES, min_size=2, max_size=8))
def test_distinct_values_never_share_a_hash(values):
    by_hash = {}
    for value in values:
        by_hash.setdefault(identity.value_hash(value), set()).add(identity.encode(value))
    assert all(len(encodings) == 1 for encodings in by_hash.values())


def test_nan_and_huge_ints_and_deep_nesting_in_params(tmp_path):
    deep = current = []
    for _ in range(100):
        current.append([])
        current = current[0]
    params = {"nan": math.nan, "huge": 10**300, "deep": deep, "when": dt.date(2020, 1, 1),
              "price": decimal.Decimal("1.10")}
    cache = ChunkCache(tmp_path, {"s": 1}, {"s": [1]}, params=params, verbose=0)
    run(cache, lambda p, s: s)
    same_again = ChunkCache(tmp_path, {"s": 1}, {"s": [1]}, verbose=0,
                            params={**params, "nan": float("nan"),
                                    "price": decimal.Decimal("1.1")})
    assert same_again.cache_hash == cache.cache_hash
    assert run(same_again, lambda *a: 1 / 0)[1].hit
