"""Pure-Python twin of the canonical encoder in ``_core.pyx``.

It defines the encoding (format 1) in readable form and serves as the oracle for
the compiled encoder: both must produce the same bytes for every value.  Select it
for the whole library with ``CHUNK_MEMO_PURE_PYTHON=1``.

Format 1, one tag byte per value, lengths and counts as unsigned LEB128 varints:

=====  ==========================================================================
``N``  None
``T``  True            ``F``  False
``i``  int in [-2**63, 2**63): zigzag varint
``I``  any other int: sign byte (0 or 1), varint byte count, big-endian magnitude
``f``  float: 8 bytes IEEE-754 big-endian; -0.0 written as 0.0, every NaN as one
``c``  complex: two ``f`` payloads (real, imaginary)
``s``  str: varint length, UTF-8 (lone surrogates pass through)
``b``  bytes / bytearray: varint length, raw bytes
``l``  list / tuple: varint count, items
``d``  dict: varint count, (key, value) pairs sorted by the key's encoding
``S``  set / frozenset: varint count, item encodings sorted
``D``  datetime, ``a`` date, ``t`` time: varint length, ``isoformat()``
``e``  timedelta: ``l``-style triple (days, seconds, microseconds) as ``i``
``M``  Decimal: varint length, normalized text (trailing zeros dropped)
``P``  PurePath: varint length, ``as_posix()``
``E``  Enum: ``s`` of ``module:qualname``, then the member's value
``A``  NumPy array: ``s`` of the little-endian dtype string, varint ndim, varint
       dims, then varint byte count and C-order bytes (object arrays: the items)
``U``  registered type: ``s`` of ``module:qualname``, then the converted value
=====  ==========================================================================
"""

from __future__ import annotations

import datetime as _dt
import decimal
import enum
import struct
import sys
from pathlib import PurePath

from chunk_memo._registry import lookup_converter, type_name

MAX_DEPTH = 256
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1
_CANONICAL_NAN = b"\x7f\xf8\x00\x00\x00\x00\x00\x00"
_numpy = None


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _float_bytes(x: float) -> bytes:
    if x != x:
        return _CANONICAL_NAN
    if x == 0.0:
        x = 0.0
    return struct.pack(">d", x)


def _int(v: int) -> bytes:
    if _INT64_MIN <= v <= _INT64_MAX:
        zigzag = (v << 1) if v >= 0 else ((-v << 1) - 1)
        return b"i" + _varint(zigzag)
    magnitude = abs(v)
    raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
    return b"I" + (b"\x01" if v < 0 else b"\x00") + _varint(len(raw)) + raw


def _text(tag: bytes, s: str) -> bytes:
    raw = s.encode("utf-8", "surrogatepass")
    return tag + _varint(len(raw)) + raw


def _decimal_text(d: decimal.Decimal) -> str:
    if not d.is_finite():
        return str(d.copy_abs()) if d.is_nan() else str(d)
    sign, digits, exponent = d.as_tuple()
    digits = list(digits)
    while len(digits) > 1 and digits[-1] == 0:
        digits.pop()
        exponent += 1
    if digits == [0]:
        sign, exponent = 0, 0
    return f"{'-' if sign else ''}{''.join(map(str, digits))}E{exponent}"


def _numpy_module():
    global _numpy
    if _numpy is None:
        _numpy = sys.modules.get("numpy", False) or False
    return _numpy or None


def encode(value) -> bytes:
    """Canonical bytes of ``value``; ``TypeError`` naming the type if unsupported."""
    out: list[bytes] = []
    _encode(value, out, 0)
    return b"".join(out)


def _encode(v, out: list, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ValueError(f"value nested deeper than {MAX_DEPTH} levels (a cycle?)")
    if v is None:
        out.append(b"N")
    elif v is True:
        out.append(b"T")
    elif v is False:
        out.append(b"F")
    elif isinstance(v, enum.Enum):
        out.append(b"E" + _text(b"s", type_name(type(v))))
        _encode(v.value, out, depth + 1)
    elif isinstance(v, int):
        out.append(_int(int(v)))
    elif isinstance(v, float):
        out.append(b"f" + _float_bytes(float(v)))
    elif isinstance(v, str):
        out.append(_text(b"s", str(v)))
    elif isinstance(v, (bytes, bytearray)):
        out.append(b"b" + _varint(len(v)) + bytes(v))
    elif isinstance(v, (list, tuple)):
        out.append(b"l" + _varint(len(v)))
        for item in v:
            _encode(item, out, depth + 1)
    elif isinstance(v, dict):
        entries = []
        for key, item in v.items():
            key_bytes = encode_nested(key, depth + 1)
            entries.append((key_bytes, encode_nested(item, depth + 1)))
        entries.sort(key=lambda entry: entry[0])
        out.append(b"d" + _varint(len(entries)))
        for key_bytes, item_bytes in entries:
            out.append(key_bytes)
            out.append(item_bytes)
    elif isinstance(v, (set, frozenset)):
        items = sorted(encode_nested(item, depth + 1) for item in v)
        out.append(b"S" + _varint(len(items)))
        out.extend(items)
    elif isinstance(v, complex):
        out.append(b"c" + _float_bytes(v.real) + _float_bytes(v.imag))
    else:
        _encode_other(v, out, depth)


def encode_nested(v, depth: int) -> bytes:
    out: list[bytes] = []
    _encode(v, out, depth)
    return b"".join(out)


def _encode_other(v, out: list, depth: int) -> None:
    if isinstance(v, _dt.datetime):
        out.append(_text(b"D", v.isoformat()))
    elif isinstance(v, _dt.date):
        out.append(_text(b"a", v.isoformat()))
    elif isinstance(v, _dt.time):
        out.append(_text(b"t", v.isoformat()))
    elif isinstance(v, _dt.timedelta):
        out.append(b"e" + _int(v.days) + _int(v.seconds) + _int(v.microseconds))
    elif isinstance(v, decimal.Decimal):
        out.append(_text(b"M", _decimal_text(v)))
    elif isinstance(v, PurePath):
        out.append(_text(b"P", v.as_posix()))
    else:
        np = _numpy_module()
        if np is not None and isinstance(v, np.generic):
            _encode_numpy_scalar(np, v, out, depth)
        elif np is not None and isinstance(v, np.ndarray):
            _encode_array(np, v, out, depth)
        else:
            converter = lookup_converter(type(v))
            if converter is None:
                raise TypeError(
                    f"chunk-memo cannot hash a value of type {type_name(type(v))!r}: "
                    "use a supported type or register one with "
                    "chunk_memo.identity.register_type"
                )
            out.append(b"U" + _text(b"s", type_name(type(v))))
            _encode(converter(v), out, depth + 1)


def _encode_numpy_scalar(np, v, out: list, depth: int) -> None:
    if isinstance(v, np.bool_):
        out.append(b"T" if bool(v) else b"F")
    elif isinstance(v, np.integer):
        out.append(_int(int(v)))
    elif isinstance(v, np.floating):
        out.append(b"f" + _float_bytes(float(v)))
    elif isinstance(v, np.complexfloating):
        c = complex(v)
        out.append(b"c" + _float_bytes(c.real) + _float_bytes(c.imag))
    else:
        raise TypeError(f"chunk-memo cannot hash a NumPy scalar of type {type_name(type(v))!r}")


def _encode_array(np, a, out: list, depth: int) -> None:
    dtype = a.dtype
    if dtype.hasobject:
        if dtype != np.dtype(object):
            raise TypeError(f"chunk-memo cannot hash a NumPy array of dtype {dtype}")
        dtype_text = "|O"
    else:
        if dtype.byteorder == ">" or (dtype.byteorder == "=" and sys.byteorder == "big"):
            dtype = dtype.newbyteorder("<")
        dtype_text = dtype.str if dtype.names is None else repr(dtype.descr)
    out.append(b"A" + _text(b"s", dtype_text) + _varint(a.ndim))
    out.extend(_varint(dim) for dim in a.shape)
    if dtype_text == "|O":
        for item in a.ravel(order="C"):
            _encode(item, out, depth + 1)
    else:
        raw = np.ascontiguousarray(a, dtype=dtype).tobytes()
        out.append(_varint(len(raw)) + raw)
