"""Hand-built catalog records for the tests: readable names in, stable fake hashes out.

The catalog only stores and compares the hashes it is given, so the tests make them
from readable values with MD5; the real identity hashes are another module's job.
"""

import hashlib

from chunk_memo.catalog import CacheRecord, ChunkRow


def h(*parts) -> str:
    """A 32-hex-character stand-in hash of readable parts."""
    return hashlib.md5(repr(parts).encode()).hexdigest()


def value_hash(value) -> str:
    return h("value", value)


def cache_record(params=None, axes=None, *, version="v1", spec="spec", order=None,
                 metadata=b"{}") -> CacheRecord:
    """A record of a cache with these readable params and axes (axis -> values)."""
    params = dict(params or {})
    axes = dict(axes or {})
    order = tuple(order or sorted(axes))
    params_hash = h("params", sorted((k, value_hash(v)) for k, v in params.items()))
    axis_values_hash = h("axes", [(a, [value_hash(v) for v in axes[a]]) for a in order])
    spec_hash = h("spec", spec)
    order_hash = h("order", order)
    return CacheRecord(
        cache_hash=h("cache", params_hash, axis_values_hash, spec_hash, version, order_hash),
        params_hash=params_hash,
        axis_values_hash=axis_values_hash,
        chunk_spec_hash=spec_hash,
        axis_order_hash=order_hash,
        cache_version=version,
        metadata=metadata,
        axes=[(a, [(value_hash(v), repr(v).encode()) for v in axes[a]]) for a in order],
        params=[(k, value_hash(v)) for k, v in params.items()],
    )


def request(params=None, axes=None) -> tuple[dict, dict]:
    """``find_superset_caches`` arguments for readable params and axes."""
    return (
        {k: value_hash(v) for k, v in (params or {}).items()},
        {a: [value_hash(v) for v in values] for a, values in (axes or {}).items()},
    )


def chunk_row(i, *, n_items=4, present=None, location=None) -> ChunkRow:
    """Chunk number ``i``: hash, file location and counts derived from it."""
    chunk_hash = h("chunk", i)
    if n_items is None:
        n_present = 1  # stored whole: one payload, no per-item bitmap
    elif present is None:
        n_present = n_items
    else:
        n_present = sum(bin(byte).count("1") for byte in present)
    return ChunkRow(chunk_hash, location or f"{chunk_hash[:2]}/{chunk_hash}.bin", n_items,
                    n_present, present, 100 + i, h("sum", i))
