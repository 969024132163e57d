"""Verifying and pruning a root: checksums, orphan files, removal of caches and chunks.

The functions behind ``chunk-memo verify`` and ``chunk-memo prune`` (listing and
describing caches lives in :mod:`chunk_memo.inspection`).  Both are safe while a
sweep runs in another process: a chunk row is deleted only while it still points to
the file that was judged (``Catalog.delete_chunks_at``), and a file without a row is
removed only once it is older than a grace period (``min_age``), because a writer
stores a payload file *before* committing its row.  If the grace period is shorter
than that gap, the price is a recomputation, never a wrong result.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from chunk_memo.catalog import CacheNotFoundError, Catalog, ChunkRow
from chunk_memo.coverage import held_by_caches, held_rows, scan_cache
from chunk_memo.store import ChunkStore

__all__ = ["ChunkFile", "OrphanFile", "PrunePlan", "VerifyReport", "apply_prune", "plan_prune",
           "verify"]

from chunk_memo.inspection import _DAY, DEFAULT_MIN_AGE, _root_files, open_root, resolve_cache

@dataclass(frozen=True)
class ChunkFile:
    """A chunk row's file; ``problem`` (from :func:`verify`): ``"missing"``, ``"corrupt"``."""

    chunk_hash: str
    location: str
    bytes: int
    problem: str | None = None


@dataclass(frozen=True)
class OrphanFile:
    """A payload (or temporary) file no chunk row points to; ``stale``: past the grace."""

    location: str
    bytes: int
    age_seconds: float
    stale: bool


@dataclass(frozen=True)
class VerifyReport:
    """What :func:`verify` checked and found, and (with ``repair``) what it removed."""

    root: str
    cache_hash: str | None
    checked: int
    broken: list
    orphans: list
    min_age: float
    repaired: bool = False
    dropped: list = field(default_factory=list)
    removed_orphans: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No broken row and no stale orphan (young orphans may be writes in flight)."""
        return not self.broken and not any(orphan.stale for orphan in self.orphans)


@dataclass(frozen=True)
class PrunePlan:
    """What :func:`plan_prune` would remove, or (``applied``) what :func:`apply_prune` did.

    ``kept_shared`` are chunks of the removed caches that another cache holds.
    """

    root: str
    caches: list
    chunks: list
    kept_shared: list
    orphans: list
    young_orphans: int
    min_age: float
    applied: bool = False

    @property
    def bytes(self) -> int:
        return sum(c.bytes for c in self.chunks) + sum(o.bytes for o in self.orphans)


# -- opening ---------------------------------------------------------------------

def _orphans(catalog: Catalog, files: list, in_scope: Callable[[str], bool],
             min_age: float, referenced: set[str] | None = None) -> list[OrphanFile]:
    """Files (listed *before* the rows are read) that no row points to."""
    if referenced is None:
        referenced = {row.location for row in catalog.iter_chunks()}
    now = time.time()
    return [OrphanFile(location, size, now - mtime, now - mtime >= min_age)
            for location, size, mtime in files
            if location not in referenced and in_scope(location)]


def _remove_orphans(catalog: Catalog, orphans: Iterable[OrphanFile],
                    min_age: float) -> list[str]:
    """Remove the stale ``orphans`` still without a row and still past the grace."""
    referenced = {row.location for row in catalog.iter_chunks()}
    store, now, removed = ChunkStore(catalog.root), time.time(), []
    for orphan in orphans:
        path = store.path(orphan.location)
        try:
            fresh = now - path.stat().st_mtime < min_age
        except FileNotFoundError:
            continue
        if orphan.stale and not fresh and orphan.location not in referenced:
            store.remove(orphan.location)
            removed.append(orphan.location)
    return removed


def _file_chunk_hash(location: str) -> str:
    """The chunk hash a payload or temporary file name starts with."""
    return location.rsplit("/", 1)[-1].lstrip(".").split(".", 1)[0]


# -- verify ----------------------------------------------------------------------

def _file_problem(store: ChunkStore, row: ChunkRow) -> str | None:
    try:
        if store.verify(row.location, row.checksum):
            return None
        return "corrupt" if store.path(row.location).exists() else "missing"
    except ValueError:  # a location outside the root
        return "corrupt"


def _broken_rows(catalog: Catalog, store: ChunkStore, rows: Iterable[ChunkRow],
                 seen: set[str]) -> tuple[int, list[ChunkFile]]:
    checked, suspects = 0, {}
    for row in rows:
        checked += 1
        seen.add(row.location)
        if _file_problem(store, row) is not None:
            suspects[row.chunk_hash] = row
    # Another process may have rewritten (or dropped) a chunk since its row was read.
    broken = []
    for chunk_hash, row in catalog.get_chunks(list(suspects)).items():
        problem = _file_problem(store, row)
        if problem is not None:
            broken.append(ChunkFile(chunk_hash, row.location, row.byte_size, problem))
    return checked, sorted(broken, key=lambda p: p.location)


def verify(root: str | os.PathLike | None = None, cache_hash: str | None = None, *,
           repair: bool = False, min_age: float = DEFAULT_MIN_AGE,
           catalog_url: str | None = None) -> VerifyReport:
    """Check payload files against their rows' checksums, and rows against files.

    Parameters
    ----------
    root : path, optional
    cache_hash : str, optional
        Check only the chunks this cache holds (and orphans of its chunks or its
        folder); default the whole root.
    repair : bool
        Drop broken rows and their files (the next run recomputes those chunks) and
        remove orphan files older than ``min_age``.
    min_age : float
        Seconds; younger orphans may be writes whose row is not committed yet.

    Returns
    -------
    VerifyReport
        ``ok`` is ``False`` when something was broken (before any repair).
    """
    catalog = open_root(root, catalog_url=catalog_url)
    store = ChunkStore(catalog.root)
    files = list(_root_files(catalog.root))  # before reading rows: see _orphans
    seen: set[str] = set()
    if cache_hash is None:
        checked, broken = _broken_rows(catalog, store, catalog.iter_chunks(), seen)
        orphans = _orphans(catalog, files, lambda location: True, min_age, seen)
    else:
        record = resolve_cache(catalog, cache_hash)
        cache_hash, hashes = record.cache_hash, set()
        scan = scan_cache(catalog, cache_hash, record.metadata, hashes)
        checked, broken = _broken_rows(catalog, store, scan.rows.values(), seen)
        hashes |= scan.rows.keys()
        folder = f"caches/{cache_hash}/"
        orphans = _orphans(catalog, files, lambda location: location.startswith(folder)
                           or _file_chunk_hash(location) in hashes, min_age)
    report = VerifyReport(str(catalog.root), cache_hash, checked, broken, orphans, min_age)
    if not repair:
        return report
    dropped = catalog.delete_chunks_at({p.chunk_hash: p.location for p in broken})
    for problem in broken:
        if problem.chunk_hash in dropped:
            store.remove(problem.location)
    removed = _remove_orphans(catalog, orphans, min_age)
    return VerifyReport(report.root, cache_hash, checked, broken, orphans, min_age,
                        repaired=True, dropped=sorted(dropped), removed_orphans=removed)


# -- prune -----------------------------------------------------------------------

def plan_prune(root: str | os.PathLike | None = None, *, caches: Iterable[str] = (),
               older_than_days: float | None = None, orphans: bool = False,
               min_age: float = DEFAULT_MIN_AGE, catalog_url: str | None = None) -> PrunePlan:
    """What pruning would remove; nothing is removed (see :func:`apply_prune`).

    Parameters
    ----------
    caches : iterable of str
        Caches to remove (hashes or unique prefixes).
    older_than_days : float, optional
        Also remove caches last used (or, never used, last registered) longer ago.
    orphans : bool
        Also remove payload and temporary files that no row points to and that are
        older than ``min_age`` seconds.

    Removing a cache removes its catalog entry and those of its chunks that no
    remaining cache holds, by grid or by link.

    Raises
    ------
    ValueError
        Nothing selected, or a negative age.
    CacheNotFoundError
        A named cache is unknown.
    """
    caches = list(caches)
    if not caches and older_than_days is None and not orphans:
        raise ValueError("nothing to prune: name caches (--cache HASH), an age "
                         "(--older-than DAYS) or --orphans")
    if (older_than_days is not None and older_than_days < 0) or min_age < 0:
        raise ValueError(f"ages must be >= 0, got older_than_days={older_than_days!r}, "
                         f"min_age={min_age!r}")
    catalog = open_root(root, catalog_url=catalog_url)
    doomed = list(dict.fromkeys(resolve_cache(catalog, c).cache_hash for c in caches))
    infos = catalog.list_caches()
    if older_than_days is not None:
        cutoff = time.time() - older_than_days * _DAY
        doomed += [info.cache_hash for info in infos if info.cache_hash not in doomed
                   and (info.last_used_at or info.updated_at) < cutoff]
    metadata = {info.cache_hash: info.metadata for info in infos}
    candidates: dict[str, ChunkRow] = {}
    for cache_hash in doomed:
        candidates.update(held_rows(catalog, cache_hash, metadata[cache_hash]))
    kept = held_by_caches(catalog, set(candidates), skip=set(doomed)) if candidates else set()
    chunks = [ChunkFile(h, row.location, row.byte_size)
              for h, row in sorted(candidates.items()) if h not in kept]
    found = []
    if orphans:
        found = _orphans(catalog, list(_root_files(catalog.root)), lambda loc: True, min_age)
    return PrunePlan(str(catalog.root), doomed, chunks, sorted(kept),
                     [o for o in found if o.stale], sum(not o.stale for o in found), min_age)


def apply_prune(plan: PrunePlan, *, catalog_url: str | None = None) -> PrunePlan:
    """Remove what ``plan`` lists, re-checking each item first; returns what was removed.

    A chunk that a cache registered since the plan now holds, a chunk rewritten
    since (its row points elsewhere), and an orphan that got a row are kept.
    """
    catalog = open_root(plan.root, catalog_url=catalog_url)
    store = ChunkStore(catalog.root)
    removed_caches = []
    for cache_hash in plan.caches:
        try:
            catalog.delete_cache(cache_hash)
        except CacheNotFoundError:
            continue  # removed meanwhile
        removed_caches.append(cache_hash)
    wanted = {c.chunk_hash for c in plan.chunks}
    held = held_by_caches(catalog, wanted, skip=set()) if wanted else set()
    deleted = catalog.delete_chunks_at({c.chunk_hash: c.location for c in plan.chunks
                                        if c.chunk_hash not in held})
    for chunk in plan.chunks:
        if chunk.chunk_hash in deleted:
            store.remove(chunk.location)
    for cache_hash in removed_caches:
        _remove_empty_folders(catalog.root / "caches" / cache_hash)
    removed = set(_remove_orphans(catalog, plan.orphans, plan.min_age))
    return PrunePlan(plan.root, removed_caches,
                     [c for c in plan.chunks if c.chunk_hash in deleted],
                     sorted(set(plan.kept_shared) | held),
                     [o for o in plan.orphans if o.location in removed],
                     plan.young_orphans, plan.min_age, applied=True)


def _remove_empty_folders(folder: Path) -> None:
    for directory, _, _ in os.walk(folder, topdown=False):
        try:
            os.rmdir(directory)
        except OSError:  # not empty: it holds something that is not ours to remove
            pass
