"""The compiled encoder and its pure-Python twin agree byte for byte."""

import datetime as dt
import decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from chunk_memo import _core, _twin

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.complex_numbers(allow_nan=True),
    st.text(),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Lo", "Nd"])),
    st.binary(),
    st.datetimes(timezones=st.none() | st.timezones()),
    st.dates(),
    st.times(),
    st.timedeltas(),
    st.decimals(allow_nan=False),
)
hashable = st.recursive(
    scalars.filter(lambda v: not (isinstance(v, float) and v != v)),
    lambda inner: st.tuples(inner, inner) | st.frozensets(inner, max_size=4),
    max_leaves=8,
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.tuples(inner, inner),
        st.dictionaries(hashable, inner, max_size=6),
        st.frozensets(hashable, max_size=6),
        st.sets(hashable, max_size=6),
    ),
    max_leaves=40,
)
arrays = hnp.arrays(
    dtype=st.sampled_from([np.int8, np.int64, np.float32, np.float64, np.bool_, np.complex64,
                           np.dtype(">i4"), np.dtype("<U3")]),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_core_matches_twin(value):
    assert _core.encode(value) == _twin.encode(value)


@settings(max_examples=150, deadline=None)
@given(arrays)
def test_core_matches_twin_on_arrays(array):
    assert _core.encode(array) == _twin.encode(array)
    assert _core.encode(array) == _core.encode(array.copy(order="F"))


@settings(max_examples=150, deadline=None)
@given(values, values)
def test_equal_encodings_only_for_equal_twin_encodings(a, b):
    assert (_core.encode(a) == _core.encode(b)) == (_twin.encode(a) == _twin.encode(b))


@settings(max_examples=200, deadline=None)
@given(st.lists(values, max_size=5))
def test_hash_many_matches_single_hashes(batch):
    assert _core.hash_many(batch) == [_core.hash_hex(v) for v in batch]


@given(st.dictionaries(st.text(max_size=3), st.integers(), min_size=2, max_size=20))
def test_dict_encoding_ignores_insertion_order(d):
    reversed_dict = dict(reversed(list(d.items())))
    assert _core.encode(d) == _core.encode(reversed_dict)


def test_large_dicts_and_sets_take_the_heap_path():
    d = {f"k{i}": i for i in range(100)}
    assert _core.encode(d) == _twin.encode(d) == _core.encode(dict(reversed(d.items())))
    s = set(range(100))
    assert _core.encode(s) == _twin.encode(s)


def test_decimals_normalize_like_the_twin():
    for text in ["1.000", "-0", "1E+3", "1000", "0.0010", "NaN", "-Infinity", "sNaN"]:
        d = decimal.Decimal(text)
        assert _core.encode(d) == _twin.encode(d)
    assert _core.encode(decimal.Decimal("1E+3")) == _core.encode(decimal.Decimal("1000"))


def test_datetime_subclass_and_tz():
    aware = dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert _core.encode(aware) == _twin.encode(aware)
