"""Cache metadata between Python values and the catalog's hashes and blobs.

The catalog stores hashes and opaque blobs; this module computes them from params
and a grid, and turns stored metadata back into values.
"""

from __future__ import annotations

from typing import Any, Mapping

from chunk_memo import codec, identity
from chunk_memo.catalog import CacheRecord
from chunk_memo.grid import Grid, normalize_axis_values

METADATA_FORMAT = 1


def cache_record(params: Mapping[str, Any], grid: Grid, cache_version: str) -> CacheRecord:
    """The catalog record of a cache (params are taken without their axis keys)."""
    own = identity.params_without_axes(params, grid.axis_order)
    axis_values = {name: list(values) for name, values in grid.axis_values.items()}
    metadata = codec.pack_value({
        "format": METADATA_FORMAT,
        "params": own,
        "axis_values": axis_values,
        "chunk_spec": dict(grid.chunk_spec),
        "cache_version": cache_version,
        "axis_order": list(grid.axis_order),
    })
    axes = []
    for name, values in grid.axis_values.items():
        hashes = identity.hash_many(values)
        axes.append((name, [(h, codec.pack_value(v)) for h, v in zip(hashes, values)]))
    return CacheRecord(
        cache_hash=identity.cache_hash(own, grid.axis_values, grid.chunk_spec,
                                       cache_version, grid.axis_order),
        params_hash=identity.value_hash(own),
        axis_values_hash=identity.value_hash(axis_values),
        chunk_spec_hash=identity.value_hash(dict(grid.chunk_spec)),
        axis_order_hash=identity.value_hash(list(grid.axis_order)),
        cache_version=cache_version,
        metadata=metadata,
        axes=axes,
        params=[(key, identity.value_hash(value)) for key, value in own.items()],
    )


def decode_metadata(blob: bytes, cache_hash: str) -> dict:
    """Stored metadata as a dict; ``ValueError`` naming the cache if unreadable."""
    try:
        meta = codec.unpack_value(blob, trusted=False)
    except Exception as error:  # noqa: BLE001 - any decoding failure means unreadable
        raise ValueError(f"metadata of cache {cache_hash} is unreadable: {error}") from error
    required = {"params", "axis_values", "chunk_spec", "cache_version", "axis_order"}
    if not isinstance(meta, dict) or not required <= set(meta):
        raise ValueError(f"metadata of cache {cache_hash} is incomplete: {meta!r}")
    return meta


def query_hashes(params: Mapping[str, Any] | None = None,
                 axis_values: Mapping[str, Any] | None = None,
                 chunk_spec: Mapping[str, Any] | None = None,
                 axis_order: Any = None) -> dict[str, str | None]:
    """Exact-match hashes for ``find_caches``; an omitted criterion stays ``None``."""
    axes = None
    if axis_values is not None:
        axes = {name: list(normalize_axis_values(name, v)) for name, v in axis_values.items()}
    spec = None
    if chunk_spec is not None:
        spec = {name: (size["size"] if isinstance(size, Mapping) else size)
                for name, size in chunk_spec.items()}
    own = None if params is None else identity.params_without_axes(params, axes or ())
    return {
        "params_hash": None if own is None else identity.value_hash(own),
        "axis_values_hash": None if axes is None else identity.value_hash(axes),
        "chunk_spec_hash": None if spec is None else identity.value_hash(spec),
        "axis_order_hash": None if axis_order is None else identity.value_hash(list(axis_order)),
    }
