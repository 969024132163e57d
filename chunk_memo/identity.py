"""Identity: canonical encoding of params and axis values, and the hashes built on it.

Two runs share a cache or a chunk exactly when these hashes agree, so every rule
here is persisted in users' caches: ``tests/test_identity_golden.py`` pins the
values, and a change that alters any of them needs a new format version.

The encoder is the compiled ``chunk_memo._core``; ``CHUNK_MEMO_PURE_PYTHON=1``
switches to its pure-Python twin (same bytes, slower).
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

import xxhash

from chunk_memo import _core, _twin
from chunk_memo._registry import register_type

__all__ = [
    "FORMAT_VERSION",
    "encode",
    "value_hash",
    "hash_many",
    "register_type",
    "params_without_axes",
    "cache_hash",
    "chunk_hash",
    "chunk_hash_prefix_suffix",
    "chunk_key_segment",
]

#: Version of the canonical encoding and of the hash recipes below.
FORMAT_VERSION = 1

_CACHE_DOMAIN = "chunk-memo.cache"
_CHUNK_DOMAIN = "chunk-memo.chunk"

PURE_PYTHON = os.environ.get("CHUNK_MEMO_PURE_PYTHON", "") not in ("", "0")

if PURE_PYTHON:
    encode = _twin.encode

    def value_hash(value: Any) -> str:
        return xxhash.xxh3_128_hexdigest(_twin.encode(value))

    def hash_many(values: Iterable[Any]) -> list[str]:
        return [value_hash(v) for v in values]

else:
    encode = _core.encode
    value_hash = _core.hash_hex
    hash_many = _core.hash_many

encode.__doc__ = encode.__doc__ or "Canonical bytes of a value."


def params_without_axes(params: Mapping[str, Any] | None, axis_names: Iterable[str]) -> dict:
    """``params`` minus the keys that name an axis: those never enter an identity."""
    names = set(axis_names)
    return {k: v for k, v in (params or {}).items() if k not in names}


def cache_hash(
    params: Mapping[str, Any] | None,
    axis_values: Mapping[str, Sequence[Any]],
    chunk_spec: Mapping[str, int],
    cache_version: str,
    axis_order: Sequence[str],
) -> str:
    """Identity of a cache: params (axis keys left out), axes, chunking, version, order.

    Examples
    --------
    >>> a = cache_hash({"alpha": 0.4}, {"s": [1, 2]}, {"s": 1}, "v1", ["s"])
    >>> a == cache_hash({"alpha": 0.4}, {"s": (1, 2)}, {"s": 1}, "v1", ["s"])
    True
    """
    return value_hash([
        _CACHE_DOMAIN,
        params_without_axes(params, axis_values),
        {name: list(values) for name, values in axis_values.items()},
        dict(chunk_spec),
        cache_version,
        list(axis_order),
    ])


def chunk_hash(params: Mapping[str, Any] | None, chunk_key: Sequence, cache_version: str) -> str:
    """Identity of a chunk: params without axis keys, chunk key, version.

    ``chunk_key`` is ``((axis, (v1, v2, ...)), ...)`` in axis order.  Any cache
    whose grid holds the same chunk with the same params and version shares it.
    """
    axis_names = [axis for axis, _ in chunk_key]
    return value_hash([
        _CHUNK_DOMAIN,
        params_without_axes(params, axis_names),
        chunk_key,
        cache_version,
    ])


def chunk_hash_prefix_suffix(
    params: Mapping[str, Any] | None, axis_order: Sequence[str], cache_version: str
) -> tuple[bytes, bytes]:
    """Bytes around the per-axis segments, so that batch hashing equals ``chunk_hash``.

    ``prefix + segment(axis_0, bin) + ... + suffix`` is the canonical encoding that
    :func:`chunk_hash` hashes; segments come from :func:`chunk_key_segment`.
    """
    prefix = (
        _core.list_header(4)
        + encode(_CHUNK_DOMAIN)
        + encode(params_without_axes(params, axis_order))
        + _core.list_header(len(axis_order))
    )
    return prefix, encode(cache_version)


def chunk_key_segment(axis: str, bin_values: Sequence[Any]) -> bytes:
    """Encoding of one ``(axis, values)`` pair of a chunk key."""
    return encode((axis, tuple(bin_values)))
