"""The identity rules of SPEC.md: what must hash equal and what must differ."""

import datetime as dt
import decimal
import enum
import math
from pathlib import Path, PurePosixPath

import numpy as np
import pytest
import xxhash

from chunk_memo import _core, _twin, identity


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 1


EQUAL = [
    ({"a": 1, "b": 2}, {"b": 2, "a": 1}),
    ([1, 2, 3], (1, 2, 3)),
    ({"k": [1, (2, 3)]}, {"k": (1, [2, 3])}),
    ({3, 1, 2}, {2, 3, 1}),
    (frozenset({"x", "y"}), {"y", "x"}),
    (float("nan"), -float("nan")),
    (float("nan"), math.copysign(float("nan"), -1.0)),
    (0.0, -0.0),
    (np.int64(7), 7),
    (np.int8(-3), -3),
    (np.uint64(2**63 + 1), 2**63 + 1),
    (np.float64(0.5), 0.5),
    (np.float32(0.5), 0.5),
    (np.bool_(True), True),
    (np.str_("abc"), "abc"),
    (np.complex128(1 + 2j), 1 + 2j),
    (np.array([1, 2, 3], dtype="<i8"), np.array([1, 2, 3], dtype=">i8")),
    (np.asfortranarray(np.arange(6).reshape(2, 3)), np.arange(6).reshape(2, 3)),
    (np.arange(10)[::2], np.array([0, 2, 4, 6, 8])),
    (decimal.Decimal("1.0"), decimal.Decimal("1.00")),
    (decimal.Decimal("0"), decimal.Decimal("-0.000")),
    (Path("a/b"), PurePosixPath("a/b")),
    (bytearray(b"xy"), b"xy"),
    (2**100, 2**100),
    ({1: "a", "1": "b"}, {"1": "b", 1: "a"}),
]

DIFFERENT = [
    (1, 1.0),
    (1, True),
    (1.0, True),
    (0, False),
    (0, None),
    ("1", 1),
    ("a", b"a"),
    ([], {}),
    ([], set()),
    ((1, 2), {1, 2}),
    ([1, 2], [2, 1]),
    ({"a": 1}, {"a": 1.0}),
    ({"a": 1}, [("a", 1)]),
    (["ab"], ["a", "b"]),
    ([[1], 2], [1, [2]]),
    (float("nan"), float("inf")),
    (float("inf"), -float("inf")),
    (2**63, 2**63 - 1),
    (-(2**63), -(2**63) - 1),
    (2**64, -(2**64)),
    (Color.RED, 1),
    (Level.LOW, 1),
    (Color.RED, Color.GREEN),
    (dt.datetime(2024, 1, 1), dt.date(2024, 1, 1)),
    (dt.datetime(2024, 1, 1), "2024-01-01T00:00:00"),
    (dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(2024, 1, 1)),
    (dt.timedelta(seconds=1), dt.timedelta(microseconds=1)),
    (decimal.Decimal("1"), 1),
    (decimal.Decimal("1.5"), 1.5),
    (Path("a"), "a"),
    (np.array([1, 2, 3], dtype="i8"), np.array([1, 2, 3], dtype="i4")),
    (np.array([1, 2, 3, 4]), np.array([[1, 2], [3, 4]])),
    (np.array([1.0, 2.0]), [1.0, 2.0]),
    (1 + 0j, 1.0),
    ("", None),
    ({"a": None}, {}),
]


@pytest.fixture(params=["core", "twin"])
def enc(request):
    return _core.encode if request.param == "core" else _twin.encode


@pytest.mark.parametrize("a, b", EQUAL, ids=[repr(p) for p in EQUAL])
def test_equal_values_encode_alike(enc, a, b):
    assert enc(a) == enc(b)
    assert identity.value_hash(a) == identity.value_hash(b)


@pytest.mark.parametrize("a, b", DIFFERENT, ids=[repr(p) for p in DIFFERENT])
def test_distinct_values_encode_differently(enc, a, b):
    assert enc(a) != enc(b)
    assert identity.value_hash(a) != identity.value_hash(b)


def test_all_distinct_values_have_distinct_hashes():
    values = [v for pair in DIFFERENT for v in pair]
    by_hash = {}
    for v in values:
        by_hash.setdefault(identity.value_hash(v), []).append(v)
    for group in by_hash.values():
        encodings = {_twin.encode(v) for v in group}
        assert len(encodings) == 1, f"different values share a hash: {group}"


class Opaque:
    pass


@pytest.mark.parametrize("value", [Opaque(), object(), lambda x: x, {1: Opaque()}, [Opaque()]])
def test_unsupported_type_is_a_type_error_naming_it(enc, value):
    with pytest.raises(TypeError) as info:
        enc(value)
    assert ("Opaque" in str(info.value) or "object" in str(info.value)
            or "function" in str(info.value))


def test_error_names_the_type(enc):
    with pytest.raises(TypeError, match=r"test_identity:Opaque"):
        enc({"x": [Opaque()]})


def test_registered_type_is_encoded_through_its_converter(enc):
    class Point:
        def __init__(self, x, y):
            self.x, self.y = x, y

    identity.register_type(Point, lambda p: (p.x, p.y))
    assert enc(Point(1, 2)) == enc(Point(1, 2))
    assert enc(Point(1, 2)) != enc(Point(2, 1))
    assert enc(Point(1, 2)) != enc((1, 2))


def test_registered_converter_may_call_the_encoder():
    class Wrapped:
        def __init__(self, inner):
            self.inner = inner

    identity.register_type(Wrapped, lambda w: identity.encode(w.inner))
    outer = _core.encode([Wrapped({"a": 1}), Wrapped({"a": 1})])
    assert outer == _twin.encode([Wrapped({"a": 1}), Wrapped({"a": 1})])


def test_register_type_rejects_non_types():
    with pytest.raises(TypeError, match="expects a type"):
        identity.register_type("Point", str)
    with pytest.raises(TypeError, match="callable"):
        identity.register_type(Opaque, 3)


def test_cycles_and_deep_nesting_are_a_clear_error(enc):
    loop = []
    loop.append(loop)
    with pytest.raises(ValueError, match="nested deeper"):
        enc(loop)


def test_hash_is_xxh3_128_of_the_encoding():
    for value in [None, 1, "x", {"a": [1, 2.5]}, np.arange(3)]:
        expected = xxhash.xxh3_128_hexdigest(_twin.encode(value))
        assert identity.value_hash(value) == expected
        assert _core.hash_hex(value) == expected
    assert _core.hash_many([1, "x"]) == [identity.value_hash(1), identity.value_hash("x")]


def test_lone_surrogates_and_unicode():
    for text in ["é", "\ud800", "日本語", "a\x00b"]:
        assert _core.encode(text) == _twin.encode(text)
    assert _core.encode("\ud800") != _core.encode("\ud801")


def test_cache_hash_ignores_param_keys_that_name_axes_and_dict_order():
    base = identity.cache_hash({"alpha": 0.4, "beta": 1}, {"s": [1, 2]}, {"s": 1}, "v1", ["s"])
    assert base == identity.cache_hash({"beta": 1, "alpha": 0.4, "s": 5}, {"s": (1, 2)},
                                       {"s": 1}, "v1", ("s",))
    changed = [
        identity.cache_hash({"alpha": 0.5, "beta": 1}, {"s": [1, 2]}, {"s": 1}, "v1", ["s"]),
        identity.cache_hash({"alpha": 0.4, "beta": 1}, {"s": [1, 2, 3]}, {"s": 1}, "v1", ["s"]),
        identity.cache_hash({"alpha": 0.4, "beta": 1}, {"s": [1, 2]}, {"s": 2}, "v1", ["s"]),
        identity.cache_hash({"alpha": 0.4, "beta": 1}, {"s": [1, 2]}, {"s": 1}, "v2", ["s"]),
    ]
    assert len({base, *changed}) == 5


def test_chunk_hash_depends_on_params_key_and_version_only():
    key = (("s", (1, 2)), ("strat", ("a",)))
    h = identity.chunk_hash({"alpha": 0.4}, key, "v1")
    assert h == identity.chunk_hash({"alpha": 0.4, "strat": "zzz"}, key, "v1")
    assert h == identity.chunk_hash({"alpha": 0.4}, [["s", [1, 2]], ["strat", ["a"]]], "v1")
    assert h != identity.chunk_hash({"alpha": 0.5}, key, "v1")
    assert h != identity.chunk_hash({"alpha": 0.4}, key, "v2")
    assert h != identity.chunk_hash({"alpha": 0.4}, (("s", (1, 2)), ("strat", ("b",))), "v1")
