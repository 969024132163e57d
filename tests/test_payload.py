"""Value encoding and the payload format v1 (chunk_memo.payload)."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import pathlib
import struct
import subprocess
import sys
import zoneinfo

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from chunk_memo.errors import ChunkMemoError, CorruptPayloadError, UntrustedPayloadError
from chunk_memo.payload import (
    FORMAT_VERSION, MAGIC, PayloadReader, bitmap_from_flags, build_items_payload,
    build_whole_payload, flags_from_bitmap, pack_value, unpack_value,
)


class Color(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    HIGH = 2


class Opaque:
    def __init__(self, n):
        self.n = n

    def __eq__(self, other):
        return type(other) is Opaque and other.n == self.n


def assert_same(a, b):
    """Equal values of exactly the same types, all the way down."""
    assert type(a) is type(b), (a, b)
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc")
    elif isinstance(a, np.generic):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b)
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    elif isinstance(a, dict):
        assert len(a) == len(b)
        for (ka, va), (kb, vb) in zip(a.items(), b.items()):
            assert_same(ka, kb)
            assert_same(va, vb)
    elif isinstance(a, (dt.datetime, dt.time)):
        assert a == b and a.fold == b.fold and a.tzinfo == b.tzinfo
        assert (a.tzinfo is None) or a.tzname() == b.tzname()
    else:
        assert a == b


SUPPORTED = {
    "none": None, "bool": True, "int": -7, "uint64-max": 2**64 - 1, "float": -0.0,
    "str": "héllo", "bytes": b"\x00\xff",
    "list": [1, [2, 3]], "tuple": (1, (2, 3), [4]), "empty-tuple": (),
    "list-of-tuples": [(1, "a"), (2, "b")],
    "set": {1, "a", (2, 3)}, "frozenset": frozenset({1.5, None}), "empty-set": set(),
    "complex": complex(1.5, -2.0),
    "int-big": 2**64, "int-big-negative": -(2**63) - 1, "int-huge": 3**200,
    "datetime": dt.datetime(2024, 2, 29, 23, 59, 59, 999999),
    "datetime-utc": dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc),
    "datetime-offset": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=-3, minutes=-30))),
    "datetime-named-offset": dt.datetime(2024, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
    "datetime-zoneinfo-fold": dt.datetime(2023, 10, 29, 2, 30, fold=1,
                                          tzinfo=zoneinfo.ZoneInfo("Europe/Paris")),
    "date": dt.date(1, 1, 1), "time": dt.time(12, 30, 1, 5, tzinfo=dt.timezone.utc),
    "timedelta": dt.timedelta(days=-3, seconds=7, microseconds=11),
    "decimal": decimal.Decimal("1.10"), "decimal-negative-zero": decimal.Decimal("-0E+5"),
    "decimal-inf": decimal.Decimal("-Infinity"),
    "posix-path": pathlib.PosixPath("/tmp/a b"), "pure-posix-path": pathlib.PurePosixPath("x/y"),
    "pure-windows-path": pathlib.PureWindowsPath(r"C:\data\x.txt"),
    "enum": Color.RED, "int-enum": Level.HIGH,
    "ndarray": np.arange(12, dtype=np.float32).reshape(3, 4),
    "ndarray-big-endian": np.array([1, 2, 3], dtype=">i8"),
    "ndarray-fortran": np.asfortranarray(np.arange(6).reshape(2, 3)),
    "ndarray-0d": np.array(3.5), "ndarray-empty": np.zeros((0, 3), dtype=np.int16),
    "ndarray-datetime64": np.array(["2024-01-01"], dtype="datetime64[ns]"),
    "ndarray-str": np.array(["ab", "c"]), "ndarray-bool": np.array([True, False]),
    "ndarray-structured": np.zeros(2, dtype=[("a", "<f8"), ("b", "<i4")]),
    "ndarray-object": np.array([1, "a", None], dtype=object),
    "np-float64": np.float64(0.1), "np-float32": np.float32(1.5), "np-int8": np.int8(-3),
    "np-uint64": np.uint64(2**64 - 1), "np-bool": np.bool_(True), "np-complex": np.complex64(1j),
    "np-str": np.str_("xyz"), "np-empty-str": np.str_(""),
    "np-datetime64": np.datetime64("2024-01-01T00:00", "m"),
    "dict-str-keys": {"a": 1, "b": [2]},
    "dict-non-str-keys": {1: "a", (2, 3): "b", None: "c", b"k": "d", 1.5: "e", frozenset({1}): "f"},
    "nested": {"params": (1, 2.0, {"deep": [(), {3}]}), "when": dt.date(2020, 5, 17)},
    "opaque": Opaque(3),
}


@pytest.mark.parametrize("value", SUPPORTED.values(), ids=SUPPORTED.keys())
def test_supported_values_round_trip_with_exact_types(value):
    assert_same(unpack_value(pack_value(value)), value)


def test_tuples_stay_tuples_and_lists_stay_lists():
    out = unpack_value(pack_value([(1, [2, (3,)]), [4]]))
    assert type(out) is list and type(out[0]) is tuple and type(out[0][1]) is list
    assert type(out[0][1][1]) is tuple and type(out[1]) is list


def test_decoded_arrays_are_writable_copies():
    out = unpack_value(pack_value(np.arange(3)))
    out[0] = 9
    assert out.tolist() == [9, 1, 2]


# Golden encodings: these bytes are in users' files. A change here orphans caches.
GOLDEN_VALUES = [
    ((1, 2), "c70302920102"),
    ({3}, "d5039103"),
    (frozenset(), "d40490"),
    (1j, "d8050000000000000000000000000000f03f"),
    (2**64, "c70906000000000000000001"),
    (dt.date(2020, 1, 1), "c70508ce000b4091"),
    (dt.timedelta(1, 2, 3), "d60a93010203"),
    (decimal.Decimal("1.5"), "d60ba3312e35"),
    ([1, "a", b"b"], "9301a161c40162"),
    (np.array([1, 2], dtype="<i2"), "c70d0d93a33c69329102c40401000200"),
    (np.float32(1.5), "c70b0e92a33c6634c4040000c03f"),
]


@pytest.mark.parametrize("value, golden", GOLDEN_VALUES, ids=[g for _, g in GOLDEN_VALUES])
def test_golden_value_encodings(value, golden):
    assert pack_value(value).hex() == golden
    assert_same(unpack_value(bytes.fromhex(golden)), value)


GOLDEN_ITEMS_FILE = (
    "43484d454d4f010000000400020000000c00000000000000616231320100000000000000000c0000"
    "00000000004bf2dbe273ca8895000000000000000000000000000000000000000000000000666dcd"
    "a5fa5f888781a178cb3ff8000000000000"
)
GOLDEN_WHOLE_FILE = (
    "43484d454d4f0100010004000100000006000000000000006162313201000000000000000006000000"
    "000000004a30e417c29de963f8cdb266a16c2accc70302920102"
)


def test_golden_items_file():
    data = build_items_payload("ab12", [{"x": 1.5}, "ignored"], present=[True, False])
    assert data.hex() == GOLDEN_ITEMS_FILE
    reader = PayloadReader(bytes.fromhex(GOLDEN_ITEMS_FILE), "ab12")
    assert (reader.n_items, reader.whole, reader.bitmap) == (2, False, b"\x01")
    assert reader.items() == [{"x": 1.5}]


def test_golden_whole_file():
    assert build_whole_payload("ab12", (1, 2)).hex() == GOLDEN_WHOLE_FILE
    assert PayloadReader(bytes.fromhex(GOLDEN_WHOLE_FILE), "ab12").whole_value() == (1, 2)


def test_header_layout():
    data = build_items_payload("abcd", list(range(10)))
    assert data[:6] == MAGIC == b"CHMEMO"
    assert struct.unpack_from("<HBBHIQ", data, 6)[:5] == (FORMAT_VERSION, 0, 0, 4, 10)
    assert data[24:28] == b"abcd"


def test_bitmap_bit_order():
    flags = [True, False, True] + [False] * 5 + [False, True]
    assert bitmap_from_flags(flags) == bytes([0b101, 0b10])
    assert flags_from_bitmap(bytes([0b101, 0b10]), 10) == flags
    with pytest.raises(ValueError, match="3 items has 1 bytes, got 2"):
        flags_from_bitmap(b"\x00\x00", 3)


@pytest.mark.parametrize("value", [Opaque(1), [1, {"k": Color.RED}], Level.HIGH,
                                   np.array([None], dtype=object)])
def test_without_pickle_unsupported_types_are_refused_by_name(value):
    name = {Opaque: "Opaque", list: "Color", Level: "Level", np.ndarray: "ndarray"}[type(value)]
    with pytest.raises(TypeError, match=f"{name}.*allow_pickle=True"):
        pack_value(value, allow_pickle=False)


def test_without_pickle_supported_types_still_pack():
    value = {"t": (1, 2), "a": np.arange(3), "d": dt.date(2020, 1, 1)}
    assert_same(unpack_value(pack_value(value, allow_pickle=False), trusted=False), value)


def test_untrusted_refuses_pickle_but_reads_plain_values():
    data = pack_value({"x": [Opaque(1)]})
    with pytest.raises(UntrustedPayloadError, match="needs pickle.*trusted=False") as info:
        unpack_value(data, trusted=False)
    assert isinstance(info.value, ValueError) and isinstance(info.value, ChunkMemoError)
    assert unpack_value(data, trusted=True) == {"x": [Opaque(1)]}
    assert unpack_value(pack_value({"x": (1, 2.5)}), trusted=False) == {"x": (1, 2.5)}


def test_unknown_extension_code_is_an_error():
    with pytest.raises(ValueError, match="unknown msgpack extension code 99"):
        unpack_value(msgpack.packb(msgpack.ExtType(99, b"")))


def test_numpy_is_imported_only_for_numpy_values():
    code = (
        "import sys; from chunk_memo.payload import pack_value, unpack_value\n"
        "unpack_value(pack_value({'a': (1, {2}), 'b': 3j}))\n"
        "assert 'numpy' not in sys.modules, 'numpy imported for plain values'\n"
        "data = bytes.fromhex('c70b0e92a33c6634c4040000c03f')\n"
        "print(type(unpack_value(data)).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "float32"


def test_reader_partial_items_in_requested_order():
    data = build_items_payload("abcd", [i * 10 for i in range(20)],
                               present=[i % 3 != 0 for i in range(20)])
    reader = PayloadReader(data, "abcd")
    assert reader.items([14, 2, 14]) == [140, 20, 140]
    assert reader.present_positions() == [i for i in range(20) if i % 3 != 0]
    with pytest.raises(KeyError, match=r"\[0, 3\]"):
        reader.items([3, 1, 0])
    with pytest.raises(IndexError, match=r"\[20, -1\].*20 items"):
        reader.items([20, -1])


def test_reader_names_chunk_and_source_in_errors():
    data = build_items_payload("abcd", [1])
    with pytest.raises(CorruptPayloadError, match="'ffff'.*'<bytes>'.*holds chunk 'abcd'"):
        PayloadReader(data, "ffff")
    with pytest.raises(CorruptPayloadError, match="not a chunk-memo payload"):
        PayloadReader(b"PK\x03\x04" + data[4:], "abcd")


hashables = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5) | st.binary(max_size=5),
    lambda inner: st.lists(inner, max_size=3).map(tuple) | st.frozensets(inner, max_size=3),
    max_leaves=6,
)
scalars = (
    hashables | st.floats(allow_nan=False) | st.complex_numbers(allow_nan=False)
    | st.decimals(allow_nan=False) | st.dates() | st.timedeltas()
    | st.datetimes(timezones=st.none() | st.timezones()) | st.times()
    | st.sampled_from([np.float64(2.5), np.int32(-4), np.arange(4).reshape(2, 2)])
)
values = st.recursive(
    scalars,
    lambda inner: (st.lists(inner, max_size=4) | st.lists(inner, max_size=4).map(tuple)
                   | st.dictionaries(hashables, inner, max_size=4) | st.sets(hashables, max_size=4)),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(values, st.booleans())
def test_nested_values_round_trip(value, allow_pickle):
    assert_same(unpack_value(pack_value(value, allow_pickle), trusted=False), value)


@settings(max_examples=50, deadline=None)
@given(st.lists(values, max_size=8).flatmap(
    lambda items: st.tuples(st.just(items), st.lists(st.booleans(), min_size=len(items),
                                                     max_size=len(items)))))
def test_items_payload_round_trip(items_and_flags):
    items, flags = items_and_flags
    reader = PayloadReader(build_items_payload("beef", items, flags), "beef")
    kept = [i for i, flag in enumerate(flags) if flag]
    assert reader.present_positions() == kept
    assert_same(reader.items(), [items[i] for i in kept])
    assert_same(reader.items(kept[::-1]), [items[i] for i in kept[::-1]])


def test_reused_packers_survive_nesting_failures_and_threads():
    import threading

    from chunk_memo.codec import pack_value, unpack_value

    nested = {(1, (2, 3)): [frozenset({1}), (4, {5j})], "x": (1.5, None)}
    assert unpack_value(pack_value(nested)) == nested  # ext encoders pack inner values
    with pytest.raises(TypeError):
        pack_value([1, 2, object()], allow_pickle=False)
    # Nothing of the failed value is left in the packer the next value uses.
    assert pack_value([7, 8], allow_pickle=False) == msgpack.packb([7, 8], use_bin_type=True)
    errors = []

    def pack_many(seed):
        try:
            for i in range(2000):
                value = [seed, i, (seed, str(i))]
                assert unpack_value(pack_value(value)) == value
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=pack_many, args=(seed,)) for seed in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]


def test_a_verified_whole_read_decodes_the_data_region_in_one_pass():
    from chunk_memo.codec import pack_value
    from chunk_memo.payload import PayloadReader, assemble_items_payload, build_items_payload

    values = [{"i": i, "t": (i, "x")} for i in range(50)]
    present = [i % 3 != 0 for i in range(50)]
    data = build_items_payload("ab" * 16, values, present)
    wanted = [v for v, flag in zip(values, present) if flag]
    assert PayloadReader(data, "ab" * 16).items(None, verify=False) == wanted
    assert PayloadReader(data, "ab" * 16).items(None, verify=True) == wanted
    # A data region that does not hold exactly the table's items is corrupt, not misread.
    short = assemble_items_payload("ab" * 16, [pack_value(1), pack_value(2)[:0] + b"\xc1"])
    with pytest.raises(CorruptPayloadError, match="data region"):
        PayloadReader(short, "ab" * 16).items(None, verify=False)
