"""Finding caches under a root: discovery, matching, loading, auto_load, overlap checks.

Every question is a catalog query; metadata blobs are decoded only for the caches
an answer returns.  The functions take ``cls`` first and are bound as class methods
of :class:`~chunk_memo.cache.ChunkCache`.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from chunk_memo import identity
from chunk_memo.catalog import Catalog, CacheInfo, CacheRecord
from chunk_memo.grid import normalize_axis_values
from chunk_memo.metadata import decode_metadata, query_hashes
from chunk_memo.storage import open_root_catalog

if TYPE_CHECKING:
    from chunk_memo.cache import ChunkCache

_CONSTRUCTOR_OPTIONS = (
    "collate_fn", "cache_chunk_enumerator", "chunk_hash_fn", "cache_path_fn", "verbose",
    "profile", "exclusive", "warn_on_overlap", "trusted", "catalog_url", "durable", "leases",
    "lease_ttl",
)


def _root(root: str | os.PathLike | None) -> Path:
    from chunk_memo.cache import DEFAULT_ROOT

    return Path(DEFAULT_ROOT if root is None else root).absolute()


def _catalog(root: Path, catalog_url: str | None = None) -> Catalog:
    return open_root_catalog(root, catalog_url)


def _entry(root: Path, info: CacheInfo) -> dict:
    metadata = decode_metadata(info.metadata, info.cache_hash)
    metadata.update(created_at=info.created_at, updated_at=info.updated_at,
                    last_used_at=info.last_used_at)
    return {"cache_hash": info.cache_hash, "path": root / "caches" / info.cache_hash,
            "metadata": metadata}


def discover_caches(cls, root: str | os.PathLike | None = None, *,
                    catalog_url: str | None = None) -> list[dict]:
    """Every cache under ``root``: ``[{"cache_hash", "path", "metadata"}]``, oldest first."""
    path = _root(root)
    return [_entry(path, info) for info in _catalog(path, catalog_url).list_caches()]


def find_compatible_caches(
    cls, root: str | os.PathLike | None, params: Mapping[str, Any] | None = None,
    axis_values: Mapping[str, Any] | None = None, chunk_spec: Mapping[str, Any] | None = None,
    cache_version: str | None = None, axis_order: Any = None, allow_superset: bool = False,
    *, catalog_url: str | None = None,
) -> list[dict]:
    """Caches matching every given criterion (omitted ones are wildcards).

    With ``allow_superset`` a cache matches when it has every requested axis with all
    requested values, and every requested param equals the cache's param or is one of
    the values of the cache's axis of that name.
    """
    path = _root(root)
    catalog = _catalog(path, catalog_url)
    hashes = query_hashes(params, axis_values, chunk_spec, axis_order)
    if not allow_superset:
        infos = catalog.find_caches(cache_version=cache_version, **hashes)
        return [_entry(path, info) for info in infos]
    infos = catalog.find_superset_caches(
        params={k: identity.value_hash(v) for k, v in (params or {}).items()
                if k not in (axis_values or {})},
        axes={name: identity.hash_many(normalize_axis_values(name, values))
              for name, values in (axis_values or {}).items()},
        cache_version=cache_version,
    )
    exact = {k: v for k, v in hashes.items()
             if k in ("chunk_spec_hash", "axis_order_hash") and v is not None}
    return [_entry(path, info) for info in infos
            if all(getattr(info, k) == v for k, v in exact.items())]


def load_from_cache(cls, root: str | os.PathLike | None, cache_hash: str,
                    **options: Any) -> "ChunkCache":
    """The cache ``cache_hash`` under ``root``, rebuilt from its catalog metadata.

    Raises ``FileNotFoundError`` for an unknown hash, ``ValueError`` for unreadable
    metadata.  ``options`` are constructor options (``collate_fn``, ``verbose``, ...).
    """
    unknown = sorted(set(options) - set(_CONSTRUCTOR_OPTIONS))
    if unknown:
        raise TypeError(f"load_from_cache got unexpected options {unknown}")
    path = _root(root)
    record = _catalog(path, options.get("catalog_url")).get_cache(cache_hash)
    if record is None:
        raise FileNotFoundError(f"no cache {cache_hash!r} under {str(path)!r}")
    meta = decode_metadata(record.metadata, cache_hash)
    return cls(root=path, chunk_spec=meta["chunk_spec"], axis_values=meta["axis_values"],
               params=meta["params"], cache_version=meta["cache_version"],
               axis_order=meta["axis_order"], **options)


def auto_load(
    cls, root: str | os.PathLike | None, params: Mapping[str, Any],
    axis_values: Mapping[str, Any] | None = None, chunk_spec: Mapping[str, Any] | None = None,
    cache_version: str = "v1", axis_order: Any = None, allow_superset: bool = False,
    **options: Any,
) -> "ChunkCache":
    """Find the one matching cache, or create it (chunk size 1 on every axis by default).

    With ``axis_values=None`` exactly one cache with these params must exist.  With
    ``allow_superset`` a cache holding every requested point is returned as a view
    scoped to the request, serving it from the superset's stored chunks.
    """
    if not isinstance(params, Mapping):
        raise ValueError(f"auto_load needs params as a dict, got {params!r}")
    path = _root(root)
    if axis_values is None:
        found = find_compatible_caches(cls, path, params=params, cache_version=cache_version,
                                       catalog_url=options.get("catalog_url"))
        if len(found) != 1:
            hashes = [entry["cache_hash"] for entry in found]
            raise ValueError(
                f"auto_load without axis_values needs exactly one cache with params "
                f"{dict(params)!r} under {str(path)!r}; found {len(found)}: {hashes}")
        return load_from_cache(cls, path, found[0]["cache_hash"], **options)
    found = find_compatible_caches(cls, path, params=params, axis_values=axis_values,
                                   chunk_spec=chunk_spec, cache_version=cache_version,
                                   axis_order=axis_order,
                                   catalog_url=options.get("catalog_url"))
    if found:
        return load_from_cache(cls, path, found[-1]["cache_hash"], **options)
    if allow_superset:
        supersets = find_compatible_caches(
            cls, path, params=params, axis_values=axis_values, chunk_spec=chunk_spec,
            cache_version=cache_version, axis_order=axis_order, allow_superset=True,
            catalog_url=options.get("catalog_url"))
        if supersets:
            broad = load_from_cache(cls, path, supersets[-1]["cache_hash"], **options)
            fixed = {k: [v] for k, v in params.items() if k in broad.grid.axis_values}
            return broad.slice(None, **{**fixed, **dict(axis_values)})
    if chunk_spec is None:
        chunk_spec = {name: 1 for name in axis_values}
    return cls(root=path, chunk_spec=chunk_spec, axis_values=axis_values, params=params,
               cache_version=cache_version, axis_order=axis_order, **options)


def check_overlaps(cache: "ChunkCache", record: CacheRecord, catalog: Catalog) -> None:
    """``exclusive``: refuse equal or overlapping caches; ``warn_on_overlap``: warn."""
    if not (cache.exclusive or cache.warn_on_overlap):
        return
    mine = {name: {h for h, _ in values} for name, values in record.axes}
    for info in catalog.find_caches(params_hash=record.params_hash):
        if info.cache_hash == record.cache_hash:
            continue
        other = catalog.get_cache(info.cache_hash)
        theirs = {name: {h for h, _ in values} for name, values in other.axes}
        if set(theirs) != set(mine):
            continue
        relation = _relation(mine, theirs)
        if cache.exclusive and relation == "equal":
            raise ValueError(
                f"exclusive=True: cache {info.cache_hash} already has these params and "
                "axis values (with another chunk_spec or order)")
        if cache.exclusive and relation in ("subset", "superset") and \
                catalog.linked_chunks(info.cache_hash):
            raise ValueError(
                f"exclusive=True: this cache is a strict {relation} of cache "
                f"{info.cache_hash}, which already holds data")
        if cache.warn_on_overlap and relation == "overlap":
            warnings.warn(
                f"cache {info.cache_hash} has the same params and partially overlapping "
                "axis values", UserWarning, stacklevel=4)


def _relation(mine: dict[str, set], theirs: dict[str, set]) -> str:
    if mine == theirs:
        return "equal"
    if all(mine[a] <= theirs[a] for a in mine):
        return "subset"
    if all(theirs[a] <= mine[a] for a in mine):
        return "superset"
    if all(mine[a] & theirs[a] for a in mine):
        return "overlap"
    return "disjoint"
