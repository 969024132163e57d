"""Values as msgpack bytes with extension types. No file I/O here.

:func:`pack_value` is msgpack with ``strict_types=True`` (so a tuple is not packed
as a list, and subclasses of builtins reach the ``default`` hook) plus extension
types. The extension codes below are persisted in users' files: never renumber.

==  ==========  =========================================================
 1  pickle      anything else; written only with ``allow_pickle=True``,
                read only with ``trusted=True``
 2  tuple       msgpack array of the elements
 3  set         msgpack array of the elements
 4  frozenset   msgpack array of the elements
 5  complex     two little-endian float64 (real, imag)
 6  int         outside the 64-bit range: two's complement, little-endian
 7  datetime    [year, month, day, hour, minute, second, us, fold, tz]
 8  date        proleptic ordinal
 9  time        [hour, minute, second, us, fold, tz]
10  timedelta   [days, seconds, us]
11  Decimal     ``str(value)``
12  path        [class name, ``str(path)``] for the four ``pathlib`` classes
13  ndarray     [dtype string, shape, C-order bytes]
14  np.generic  [dtype string, bytes]
==  ==========  =========================================================

``tz`` is None, a ``zoneinfo`` key (str), or ``[offset seconds, offset us, name]``
for a ``datetime.timezone``. Other tzinfo classes, enum members, object arrays,
structured dtypes and subclasses of builtins go through pickle. Dict keys may be of
any packable type. Known losses: ``bytearray``/``memoryview`` come back as ``bytes``
and a Fortran-ordered array comes back C-ordered; a concrete path of the other OS
(``WindowsPath`` on POSIX) comes back as its pure class.

"""

from __future__ import annotations

import datetime as _dt
import decimal
import functools
import itertools
import os
import pathlib
import pickle
import struct
import sys
import threading
from typing import Any

import msgpack

from chunk_memo.errors import UntrustedPayloadError


__all__ = ["pack_value", "unpack_value"]

_COMPLEX = struct.Struct("<dd")

(_EXT_PICKLE, _EXT_TUPLE, _EXT_SET, _EXT_FROZENSET, _EXT_COMPLEX, _EXT_BIGINT,
 _EXT_DATETIME, _EXT_DATE, _EXT_TIME, _EXT_TIMEDELTA, _EXT_DECIMAL, _EXT_PATH,
 _EXT_NDARRAY, _EXT_NPSCALAR) = range(1, 15)

_PATH_CLASSES = {cls.__name__: cls for cls in (
    pathlib.PurePosixPath, pathlib.PureWindowsPath, pathlib.PosixPath, pathlib.WindowsPath)}
_NEEDS_PICKLE = object()  # an encoder's answer for "this value has no msgpack form"


# --------------------------------------------------------------------- values
def pack_value(obj: Any, allow_pickle: bool = True) -> bytes:
    """Encode one value as msgpack with chunk-memo's extension types.

    Parameters
    ----------
    obj : Any
        The value. See the module docstring for the types kept exactly.
    allow_pickle : bool
        Fall back to pickle for values msgpack cannot hold. When False such a
        value raises instead.

    Raises
    ------
    TypeError
        A value (possibly nested) needs pickle and ``allow_pickle`` is False.

    Examples
    --------
    >>> unpack_value(pack_value({(1, 2): {3j}}))
    {(1, 2): {3j}}
    """
    try:
        idle = _packers.idle
    except AttributeError:
        idle = _packers.idle = {}
    key = bool(allow_pickle)
    # Taken while in use: an extension encoder packing an inner value (a tuple's
    # items, say) gets a packer of its own instead of writing into this one.
    packer = idle.pop(key, None)
    if packer is None:
        packer = msgpack.Packer(default=_DEFAULT_HOOKS[key], use_bin_type=True,
                                strict_types=True)
    try:
        return packer.pack(obj)
    finally:
        idle[key] = packer


# An idle msgpack Packer per thread and pickle setting, reused: msgpack.packb builds
# a Packer per value, a garbage-collected object, and at 10^5-10^6 values per run
# the collections it triggered were a third of a cold run's overhead (measured:
# 4.4 vs 2.4 us/point at 500,000 points with the collector off).  A Packer resets
# its buffer after each value, and after a value that fails to pack.
_packers = threading.local()


def unpack_values(data: bytes, count: int, trusted: bool = True) -> list:
    """Decode ``count`` values packed back to back by :func:`pack_value`.

    One pass of msgpack's compiled unpacker over the run of values, instead of a
    call per value.

    Raises
    ------
    ValueError
        ``data`` does not hold exactly ``count`` whole values.
    UntrustedPayloadError
        As :func:`unpack_value`.
    """
    unpacker = msgpack.Unpacker(ext_hook=_EXT_HOOKS[bool(trusted)], raw=False,
                                strict_map_key=False, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    values = list(itertools.islice(unpacker, count))
    if len(values) != count or unpacker.tell() != len(data):
        raise ValueError(f"expected {count} values in {len(data)} bytes, found "
                         f"{len(values)} ending at byte {unpacker.tell()}")
    return values


def unpack_value(data: bytes, trusted: bool = True) -> Any:
    """Decode bytes made by :func:`pack_value`.

    Parameters
    ----------
    data : bytes-like
    trusted : bool
        When False, a value stored with pickle raises instead of being unpickled.

    Raises
    ------
    UntrustedPayloadError
        The data holds a pickled value and ``trusted`` is False.
    """
    return msgpack.unpackb(data, ext_hook=_EXT_HOOKS[bool(trusted)], raw=False,
                           strict_map_key=False)


def _encode_ext(obj: Any, allow_pickle: bool) -> msgpack.ExtType:
    encoder = _ENCODERS.get(type(obj))
    numpy = sys.modules.get("numpy")  # a NumPy value implies NumPy is imported
    if encoder is None and numpy is not None and isinstance(obj, (numpy.ndarray, numpy.generic)):
        encoder = _encode_numpy
    ext = _NEEDS_PICKLE if encoder is None else encoder(obj, allow_pickle)
    if ext is not _NEEDS_PICKLE:
        return ext
    if allow_pickle:
        try:
            data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as error:  # noqa: BLE001 - pickle raises many types
            raise TypeError(
                f"cannot store a value of type {type(obj).__module__}.{type(obj).__qualname__}: "
                f"msgpack has no form for it and pickle failed ({error})") from error
        return msgpack.ExtType(_EXT_PICKLE, data)
    raise TypeError(
        f"cannot store a value of type {type(obj).__module__}.{type(obj).__qualname__} "
        f"without pickle: convert it to a supported type or allow pickle (allow_pickle=True)"
    )


_DEFAULT_HOOKS = {flag: functools.partial(_encode_ext, allow_pickle=flag) for flag in (True, False)}


def _ext(code: int, payload: Any, allow_pickle: bool) -> msgpack.ExtType:
    return msgpack.ExtType(code, pack_value(payload, allow_pickle))


def _encode_tz(tz: _dt.tzinfo | None) -> Any:
    if tz is None:
        return None
    if type(tz) is _dt.timezone:
        offset = tz.utcoffset(None)
        name = tz.tzname(None)
        default_name = _dt.timezone(offset).tzname(None)
        return [offset.days * 86400 + offset.seconds, offset.microseconds,
                None if name == default_name else name]
    if type(tz).__module__ == "zoneinfo" and isinstance(getattr(tz, "key", None), str):
        return tz.key
    return _NEEDS_PICKLE


def _encode_clock(v: _dt.datetime | _dt.time, allow_pickle: bool) -> Any:
    tz = _encode_tz(v.tzinfo)
    if tz is _NEEDS_PICKLE:
        return tz
    day = [v.year, v.month, v.day] if type(v) is _dt.datetime else []
    fields = [*day, v.hour, v.minute, v.second, v.microsecond, v.fold, tz]
    return _ext(_EXT_DATETIME if day else _EXT_TIME, fields, allow_pickle)


def _encode_bigint(v: int, allow_pickle: bool) -> msgpack.ExtType:
    return msgpack.ExtType(_EXT_BIGINT, v.to_bytes(v.bit_length() // 8 + 1, "little", signed=True))


def _encode_numpy(v: Any, allow_pickle: bool) -> Any:
    import numpy

    dtype = v.dtype
    if dtype.hasobject or numpy.dtype(dtype.str) != dtype:
        return _NEEDS_PICKLE  # object or structured dtypes: the dtype string loses them
    if type(v) is numpy.ndarray:
        return _ext(_EXT_NDARRAY, [dtype.str, list(v.shape), v.tobytes(order="C")], allow_pickle)
    if isinstance(v, numpy.generic):
        return _ext(_EXT_NPSCALAR, [dtype.str, v.tobytes()], allow_pickle)
    return _NEEDS_PICKLE  # ndarray subclasses (matrix, masked arrays)


_ENCODERS = {
    tuple: lambda v, p: _ext(_EXT_TUPLE, list(v), p),
    set: lambda v, p: _ext(_EXT_SET, list(v), p),
    frozenset: lambda v, p: _ext(_EXT_FROZENSET, list(v), p),
    complex: lambda v, p: msgpack.ExtType(_EXT_COMPLEX, _COMPLEX.pack(v.real, v.imag)),
    int: _encode_bigint,
    _dt.datetime: _encode_clock,
    _dt.date: lambda v, p: _ext(_EXT_DATE, v.toordinal(), p),
    _dt.time: _encode_clock,
    _dt.timedelta: lambda v, p: _ext(_EXT_TIMEDELTA, [v.days, v.seconds, v.microseconds], p),
    decimal.Decimal: lambda v, p: _ext(_EXT_DECIMAL, str(v), p),
    **{cls: (lambda v, p: _ext(_EXT_PATH, [type(v).__name__, str(v)], p))
       for cls in _PATH_CLASSES.values()},
}


def _decode_tz(state: Any) -> _dt.tzinfo | None:
    if state is None:
        return None
    if isinstance(state, str):
        import zoneinfo

        return zoneinfo.ZoneInfo(state)
    seconds, micros, name = state
    offset = _dt.timedelta(seconds=seconds, microseconds=micros)
    return _dt.timezone(offset) if name is None else _dt.timezone(offset, name)


def _decode_clock(cls: type) -> Any:
    def decode(fields: list) -> Any:
        *parts, fold, tz = fields
        return cls(*parts, tzinfo=_decode_tz(tz), fold=fold)
    return decode


def _decode_path(fields: list) -> pathlib.PurePath:
    name, text = fields
    cls = _PATH_CLASSES[name]
    if cls is pathlib.WindowsPath and os.name != "nt":
        cls = pathlib.PureWindowsPath
    elif cls is pathlib.PosixPath and os.name == "nt":
        cls = pathlib.PurePosixPath
    return cls(text)


def _decode_numpy(fields: list) -> Any:
    import numpy

    dtype = numpy.dtype(fields[0])
    shape = fields[1] if len(fields) == 3 else ()  # [dtype, shape, bytes] or [dtype, bytes]
    if dtype.itemsize == 0:
        array = numpy.empty(shape, dtype)
    else:
        array = numpy.frombuffer(bytearray(fields[-1]), dtype=dtype).reshape(shape)
    return array if len(fields) == 3 else array[()]


_NESTED_DECODERS = {
    _EXT_TUPLE: tuple,
    _EXT_SET: set,
    _EXT_FROZENSET: frozenset,
    _EXT_DATETIME: _decode_clock(_dt.datetime),
    _EXT_DATE: _dt.date.fromordinal,
    _EXT_TIME: _decode_clock(_dt.time),
    _EXT_TIMEDELTA: lambda f: _dt.timedelta(*f),
    _EXT_DECIMAL: decimal.Decimal,
    _EXT_PATH: _decode_path,
    _EXT_NDARRAY: _decode_numpy,
    _EXT_NPSCALAR: _decode_numpy,
}


def _decode_ext(code: int, data: bytes, trusted: bool) -> Any:
    nested = _NESTED_DECODERS.get(code)
    if nested is not None:
        return nested(unpack_value(data, trusted))
    if code == _EXT_COMPLEX:
        return complex(*_COMPLEX.unpack(data))
    if code == _EXT_BIGINT:
        return int.from_bytes(data, "little", signed=True)
    if code == _EXT_PICKLE:
        if not trusted:
            raise UntrustedPayloadError(
                "this payload needs pickle to decode and the cache was opened with "
                "trusted=False; reopen it with trusted=True if you trust its files"
            )
        return pickle.loads(data)
    raise ValueError(f"unknown msgpack extension code {code}: written by a newer chunk-memo?")


_EXT_HOOKS = {flag: functools.partial(_decode_ext, trusted=flag) for flag in (True, False)}
