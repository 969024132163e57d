"""Inspecting a root from Python: its caches, their coverage and size.

What the ``chunk-memo`` command runs (``cli.py``) for ``ls``, ``show``, ``status`` and
``du``; everything here only reads the root's catalog and files.  Verifying and
pruning live in :mod:`chunk_memo.maintenance`.  Which chunks a cache *holds* is
decided in ``coverage.py``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import make_url

from chunk_memo.cache import DEFAULT_ROOT
from chunk_memo.catalog import CacheNotFoundError, CacheRecord, Catalog
from chunk_memo.catalog.engine import CATALOG_FILE_NAME
from chunk_memo.coverage import (
    CACHED, PARTIAL, CacheScan, Coverage, held_rows, scan_cache,
)
from chunk_memo.errors import ChunkMemoError
from chunk_memo.storage import CATALOG_URL_VARIABLE, open_root_catalog
from chunk_memo.store import PAYLOAD_SUFFIX, TEMP_SUFFIX

__all__ = [
    "DEFAULT_MIN_AGE", "CacheDetails", "CacheSummary", "CacheUsage", "DiskUsage",
    "RootNotFoundError", "cache_coverage", "describe_cache", "disk_usage", "list_caches",
    "open_root", "resolve_cache",
]

#: Grace period (seconds) before a payload file without a catalog row counts as garbage.
DEFAULT_MIN_AGE = 3600.0
_DAY = 86400.0
_SUMMARY_VALUES = 3


class RootNotFoundError(ChunkMemoError, FileNotFoundError):
    """The given root is not a chunk-memo root (no such folder, or no catalog in it)."""


# -- results -----------------------------------------------------------------------

@dataclass(frozen=True, kw_only=True)
class CacheSummary:
    """One cache as ``chunk-memo ls`` lists it; ``error`` says why fields are empty."""

    cache_hash: str
    cache_version: str
    params: dict = field(default_factory=dict)
    axes: dict = field(default_factory=dict)  # axis -> number of values
    chunk_spec: dict = field(default_factory=dict)
    chunks_total: int = 0
    chunks_cached: int = 0
    chunks_partial: int = 0
    bytes: int = 0
    created_at: float | None = None
    updated_at: float | None = None
    last_used_at: float | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class CacheDetails(CacheSummary):
    """One cache in full (``chunk-memo show``): a summary plus identity and axes.

    ``axis_values`` maps each axis to ``{"count", "bins", "head", "tail"}``: how many
    values, how many bins, and the first and last few values.
    """

    path: str
    axis_order: list
    axis_values: dict
    identity: dict
    chunks_linked: int


@dataclass(frozen=True)
class CacheUsage:
    """Space held by one cache; ``shared_*`` are the chunks other caches hold too."""

    cache_hash: str
    chunks: int
    bytes: int
    shared_chunks: int
    shared_bytes: int


@dataclass(frozen=True)
class DiskUsage:
    """Space of a root: per cache, recorded in the catalog, on disk, and the catalog's."""

    root: str
    caches: list
    recorded_chunks: int
    recorded_bytes: int
    payload_files: int
    payload_bytes: int
    catalog_bytes: int | None


def open_root(root: str | os.PathLike | None = None, *, catalog_url: str | None = None) -> Catalog:
    """The catalog of an existing root, refusing a folder that is not one.

    Parameters
    ----------
    root : path, optional
        Default ``./.chunk_memo``.
    catalog_url : str, optional
        Default ``$CHUNK_MEMO_CATALOG_URL``, else SQLite at ``<root>/catalog.sqlite``.

    Raises
    ------
    RootNotFoundError
        No such folder, or (with the default catalog) no ``catalog.sqlite`` in it.
    """
    path = Path(DEFAULT_ROOT if root is None else root).absolute()
    if not path.is_dir():
        raise RootNotFoundError(f"no cache root at {str(path)!r}: no such folder; "
                                "pass the folder given as ChunkCache(root=...)")
    url = catalog_url or os.environ.get(CATALOG_URL_VARIABLE) or None
    if url is None and not (path / CATALOG_FILE_NAME).is_file():
        raise RootNotFoundError(f"{str(path)!r} is not a chunk-memo root: it has no "
                                f"{CATALOG_FILE_NAME}; pass the folder given as "
                                "ChunkCache(root=...)")
    return open_root_catalog(path, url)


def resolve_cache(catalog: Catalog, cache_hash: str) -> CacheRecord:
    """The record of ``cache_hash``, or of the one cache whose hash starts with it.

    Raises
    ------
    CacheNotFoundError
        No such cache, or a prefix that several caches share (the message lists them).
    """
    record = catalog.get_cache(cache_hash)
    if record is not None:
        return record
    matches = [info.cache_hash for info in catalog.list_caches()
               if cache_hash and info.cache_hash.startswith(cache_hash)]
    if len(matches) == 1:
        return catalog.get_cache(matches[0])
    if matches:
        raise CacheNotFoundError(f"cache id {cache_hash!r} is ambiguous under "
                                 f"{str(catalog.root)!r}: it starts {matches}")
    raise CacheNotFoundError(f"no cache {cache_hash!r} under {str(catalog.root)!r}; "
                             "`chunk-memo ls` lists its caches")


# -- listing ---------------------------------------------------------------------

def _summary_fields(info, scan: CacheScan | None) -> dict:
    base = {"cache_hash": info.cache_hash, "cache_version": info.cache_version,
            "created_at": info.created_at, "updated_at": info.updated_at,
            "last_used_at": info.last_used_at}
    if scan is None:
        return base
    states = scan.states
    return {**base, "params": scan.meta["params"],
            "axes": {name: len(values) for name, values in scan.grid.axis_values.items()},
            "chunk_spec": dict(scan.grid.chunk_spec), "chunks_total": len(states),
            "chunks_cached": states.count(CACHED), "chunks_partial": states.count(PARTIAL),
            "bytes": sum(row.byte_size for row in scan.rows.values())}


def list_caches(root: str | os.PathLike | None = None, *,
                catalog_url: str | None = None) -> list[CacheSummary]:
    """Every cache of a root with its size and coverage counts, oldest first.

    Examples
    --------
    >>> [(c.cache_hash, c.chunks_cached, c.chunks_total) for c in list_caches(root)]  # doctest: +SKIP
    [('5be0...', 2, 4)]
    """
    catalog = open_root(root, catalog_url=catalog_url)
    summaries = []
    for info in catalog.list_caches():
        try:
            scan = scan_cache(catalog, info.cache_hash, info.metadata)
        except ValueError as error:
            summaries.append(CacheSummary(**_summary_fields(info, None), error=str(error)))
            continue
        summaries.append(CacheSummary(**_summary_fields(info, scan)))
    return summaries


def describe_cache(root: str | os.PathLike | None, cache_hash: str, *,
                   catalog_url: str | None = None) -> CacheDetails:
    """One cache in full: identity hashes, params, axes (summarized), counts, bytes.

    Raises
    ------
    RootNotFoundError, CacheNotFoundError
        See :func:`open_root` and :func:`resolve_cache`.
    ValueError
        The cache's metadata is unreadable.
    """
    catalog = open_root(root, catalog_url=catalog_url)
    record = resolve_cache(catalog, cache_hash)
    scan = scan_cache(catalog, record.cache_hash, record.metadata)
    grid = scan.grid
    axes = {}
    for name, values in grid.axis_values.items():
        head = list(values[:_SUMMARY_VALUES])
        tail = list(values[max(_SUMMARY_VALUES, len(values) - _SUMMARY_VALUES):])
        n_bins = grid.geometry.bins_per_axis()[grid.axis_order.index(name)]
        axes[name] = {"count": len(values), "bins": n_bins, "head": head, "tail": tail}
    identity = {name: getattr(record, name) for name in (
        "params_hash", "axis_values_hash", "chunk_spec_hash", "axis_order_hash")}
    return CacheDetails(**_summary_fields(record.info, scan),
                        path=str(catalog.root / "caches" / record.cache_hash),
                        axis_order=list(grid.axis_order), axis_values=axes,
                        identity=identity, chunks_linked=scan.linked)


def cache_coverage(root: str | os.PathLike | None, cache_hash: str, *,
                   catalog_url: str | None = None) -> Coverage:
    """Which chunks of a cache's grid are cached, partly cached or missing.

    Examples
    --------
    >>> print(cache_coverage(root, "5be0").map("strat", "s").text())  # doctest: +SKIP
    """
    catalog = open_root(root, catalog_url=catalog_url)
    record = resolve_cache(catalog, cache_hash)
    return Coverage.of_scan(record.cache_hash, scan_cache(catalog, record.cache_hash,
                                                          record.metadata))


def disk_usage(root: str | os.PathLike | None = None, *,
               catalog_url: str | None = None) -> DiskUsage:
    """Bytes held by each cache (shared chunks counted for each and noted) and in total."""
    catalog = open_root(root, catalog_url=catalog_url)
    held = {info.cache_hash: held_rows(catalog, info.cache_hash, info.metadata)
            for info in catalog.list_caches()}
    holders = Counter(h for rows in held.values() for h in rows)
    usage = []
    for cache_hash, rows in held.items():
        shared = [row for h, row in rows.items() if holders[h] > 1]
        usage.append(CacheUsage(cache_hash, len(rows), sum(r.byte_size for r in rows.values()),
                                len(shared), sum(r.byte_size for r in shared)))
    n_rows = n_bytes = 0
    for row in catalog.iter_chunks():
        n_rows, n_bytes = n_rows + 1, n_bytes + row.byte_size
    files = [entry for entry in _root_files(catalog.root) if entry[0].endswith(PAYLOAD_SUFFIX)]
    return DiskUsage(str(catalog.root), usage, n_rows, n_bytes, len(files),
                     sum(size for _, size, _ in files), _catalog_bytes(catalog))


def _catalog_bytes(catalog: Catalog) -> int | None:
    url = make_url(catalog.url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    files = [url.database + suffix for suffix in ("", "-wal", "-shm")]
    return sum(os.path.getsize(name) for name in files if os.path.isfile(name))


# -- files -----------------------------------------------------------------------


def _root_files(root: Path) -> Iterator[tuple[str, int, float]]:
    """``(location, size, mtime)`` of payload and temporary files under the root."""
    for directory, subdirs, names in os.walk(root):
        subdirs.sort()
        for name in sorted(names):
            if name.endswith((PAYLOAD_SUFFIX, TEMP_SUFFIX)):
                path = Path(directory) / name
                try:
                    stat = path.stat()
                except FileNotFoundError:  # removed by a writer meanwhile
                    continue
                yield path.relative_to(root).as_posix(), stat.st_size, stat.st_mtime
