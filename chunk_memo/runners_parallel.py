"""run_parallel: point-level work through a user's map function, chunked storage.

Items (points) are grouped by chunk; stored items are loaded locally, also from
partial chunks and from chunks written by other caches with the same params; only
missing items go through ``map_fn(func, items)``.  Results are consumed as they
arrive and each chunk's new items are merged into its stored payload, so memory is
bounded by one batch of items, not by the sweep.  Only this process (the driver)
touches the catalog: workers just run ``exec_fn``.
"""

from __future__ import annotations

import functools
import math
import warnings
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from typing import Any, Callable, Iterable, Mapping

from chunk_memo.leasing import Leases
from chunk_memo.progress import Progress
from chunk_memo.runners import Diagnostics
from chunk_memo.storage import MISSING, stored_positions

__all__ = ["run_parallel"]

#: Items taken from the iterable at a time: bounds memory and each map_fn call.
ITEM_BATCH = 20_000
#: Items whose chunks are claimed together (and sent to map_fn in one call) when
#: processes cooperate through leases: small enough to spread a sweep over them.
CLAIM_ITEMS = 256

#: Overrides of cache methods the original library accepted.  ``chunk_hash`` is
#: honoured; the others addressed its JSON files and have no effect here.
_OVERRIDES = {
    "chunk_hash", "write_metadata", "resolve_cache_path", "load_payload",
    "write_chunk_payload", "update_chunk_index", "load_chunk_index",
    "build_item_maps_from_axis_values", "build_item_maps_from_chunk_output",
    "reconstruct_output_from_items", "collect_chunk_data", "item_hash", "context",
}


def run_parallel(
    items: Iterable[Any], *, exec_fn: Callable[..., Any], cache, map_fn: Callable | None = None,
    map_fn_kwargs: Mapping[str, Any] | None = None, collate_fn: Callable | None = None,
    flush_on_chunk: bool = False, return_output: bool = True, extend_cache: bool = False,
    **overrides: Any,
) -> tuple[Any, Diagnostics]:
    """Run a point-level ``exec_fn(**point)`` over ``items``, storing results by chunk.

    Parameters
    ----------
    items : iterable
        Points: dicts with every axis, tuples in axis order, or scalars when the
        cache has one axis.
    exec_fn : callable
        ``exec_fn(**point) -> output`` (bind params first, e.g. ``functools.partial``).
        Must be picklable for process-based map functions.
    cache : ChunkCache
        The cache (or a slice of it) the points belong to.
    map_fn : callable, optional
        ``map_fn(func, items, **map_fn_kwargs) -> iterable of results in order``.
        Default: a ``ProcessPoolExecutor``'s ``map``.
    flush_on_chunk : bool
        Write each chunk as soon as its last item returns (else at the end of each
        batch of items).
    return_output : bool
        ``False`` streams results to disk, returns ``None`` output, implies
        ``flush_on_chunk``.
    extend_cache : bool
        Grow the cache's axis values in place for values not yet in it (else an
        unknown value is a ``KeyError``).
    **overrides
        ``chunk_hash=fn(chunk_key) -> str`` replaces chunk hashing; the original
        library's other method overrides are accepted and have no effect.

    Returns
    -------
    (output, Diagnostics)
        ``output`` is the list of item outputs in the order of ``items``
        (``collate_fn(list)`` if given), or ``None`` with ``return_output=False``.
    """
    chunk_hash_fn = _check_overrides(overrides)
    if not callable(exec_fn):
        raise TypeError(f"exec_fn must be callable, got {exec_fn!r}")
    flush_on_chunk = flush_on_chunk or not return_output
    cache.register()
    diag = Diagnostics()
    outputs: list | None = [] if return_output else None
    progress = Progress(cache.verbose, 0, 0, label="run_parallel")
    leases = Leases.for_cache(cache)
    executor = None
    if map_fn is None:
        executor = ProcessPoolExecutor()
        map_fn = executor.map
    try:
        iterator = iter(items)
        while batch := list(islice(iterator, ITEM_BATCH)):
            points = [_as_point(cache, item, extend_cache) for item in batch]
            if extend_cache:
                cache.register()
            results = _Batch(cache, points, chunk_hash_fn, leases, diag, progress).run(
                exec_fn, map_fn, dict(map_fn_kwargs or {}), flush_on_chunk, return_output)
            if outputs is not None:
                outputs.extend(results)
    finally:
        cache.storage().flush()
        leases.close()
        progress.close(diag)
        if executor is not None:
            executor.shutdown()
    cache.mark_used()
    if outputs is None:
        return None, diag
    collate = collate_fn or cache.collate_fn
    return (collate(outputs) if collate is not None else outputs), diag


def _check_overrides(overrides: dict) -> Callable | None:
    unknown = sorted(set(overrides) - _OVERRIDES)
    if unknown:
        raise TypeError(f"run_parallel() got unexpected keyword arguments {unknown}")
    ignored = sorted(k for k, v in overrides.items() if k != "chunk_hash" and v is not None)
    if ignored:
        warnings.warn(f"run_parallel: the overrides {ignored} addressed the original "
                      "library's JSON files and have no effect here", UserWarning, stacklevel=3)
    return overrides.get("chunk_hash")


def _as_point(cache, item: Any, extend: bool) -> tuple:
    """An item as a tuple of axis positions, growing the axes if ``extend``."""
    order = cache.axis_order
    if isinstance(item, Mapping):
        missing = [a for a in order if a not in item]
        extra = [k for k in item if k not in order]
        if missing or extra:
            raise KeyError(f"item {dict(item)!r} must name exactly the axes {list(order)}")
        values = tuple(item[a] for a in order)
    elif isinstance(item, (tuple, list)) and len(order) != 1:
        if len(item) != len(order):
            raise ValueError(f"item {item!r} needs one value per axis {list(order)}")
        values = tuple(item)
    elif len(order) == 1:
        values = (item,)
    else:
        raise TypeError(f"item {item!r}: a scalar item needs a cache with one axis; "
                        f"this cache has axes {list(order)}")
    positions = []
    for axis, value in zip(order, values):
        try:
            positions.append(cache.grid.position(axis, value))
        except KeyError:
            if not extend:
                raise KeyError(f"item value {value!r} is not in axis {axis!r} "
                               "(pass extend_cache=True to add it)") from None
            cache.extend_axis_values({axis: [value]})
            positions.append(cache.grid.position(axis, value))
    return tuple(positions)


def call_point(exec_fn: Callable, point: dict) -> Any:
    """What a worker runs for one item: ``exec_fn(**point)``."""
    return exec_fn(**point)


class _Batch:
    """One batch of points: which chunks they fall in, what is stored, what runs."""

    def __init__(self, cache, points: list[tuple], chunk_hash_fn, leases, diag, progress):
        self.cache = cache
        self.leases = leases
        self.diag = diag
        self.progress = progress
        geometry = cache.grid.geometry
        sizes = [cache.grid.chunk_spec[a] for a in cache.axis_order]
        self.place = []  # per point: (ordinal, flat position in its chunk)
        for point in points:
            bins = [p // s for p, s in zip(point, sizes)]
            ordinal = geometry.ordinal(bins)
            shape = geometry.chunk_shape(ordinal)
            flat = 0
            for p, s, n in zip(point, sizes, shape):
                flat = flat * n + p % s
            self.place.append((ordinal, flat))
        self.points = points
        ordinals = sorted({o for o, _ in self.place})
        if chunk_hash_fn is None:
            hashes = cache.chunk_hasher().hexdigests(ordinals)
        else:
            hashes = [str(chunk_hash_fn(cache.grid.chunk_key(o))) for o in ordinals]
        self.hash_of = dict(zip(ordinals, hashes))
        self.n_points = {o: math.prod(geometry.chunk_shape(o)) for o in ordinals}

    def run(self, exec_fn, map_fn, map_kwargs, flush_on_chunk: bool, keep: bool) -> list:
        storage = self.cache.storage()
        rows = storage.rows(self.hash_of.values())
        results: list = [MISSING] * len(self.points)
        wanted: dict[int, list[int]] = {}
        for i, (ordinal, flat) in enumerate(self.place):
            wanted.setdefault(ordinal, []).append(i)
        todo = self._load_stored(storage, rows, wanted, results, keep)
        self.diag.total_chunks += len(wanted)
        if todo:
            self._execute(storage, rows, todo, results, exec_fn, map_fn, map_kwargs,
                          flush_on_chunk, keep)
        return results if keep else []

    def _load_stored(self, storage, rows, wanted, results, keep) -> dict[int, list[int]]:
        """Fill ``results`` from storage; return ordinal -> item indices still to run."""
        todo: dict[int, list[int]] = {}
        for ordinal, indices in wanted.items():
            row = rows.get(self.hash_of[ordinal])
            stored = stored_positions(row, self.n_points[ordinal])
            hits = [i for i in indices if self.place[i][1] in stored]
            misses = [i for i in indices if self.place[i][1] not in stored]
            if hits and keep:
                loaded = storage.load(self.hash_of[ordinal], [self.place[i][1] for i in hits], row)
                if loaded is MISSING:
                    hits, misses = [], indices
                else:
                    for i, value in zip(hits, loaded):
                        results[i] = value
            if misses:
                todo[ordinal] = misses
                if hits:
                    self.diag.count_partial(self.hash_of[ordinal])
            else:
                self.diag.count_loaded(self.hash_of[ordinal])
                self.progress.reused(self.hash_of[ordinal])
        return todo

    def _execute(self, storage, rows, todo, results, exec_fn, map_fn, map_kwargs,
                 flush_on_chunk, keep) -> None:
        """Run the missing items, cooperating with other processes through leases.

        Chunks nobody has recorded are claimed first; items of a chunk that is
        already recorded (partly) run without a lease.  Chunks leased by another
        live process are waited for, then loaded or, if still missing, claimed.
        """
        pending = todo
        while pending:
            waiting = {}
            groups = _claim_groups(pending) if self.leases.enabled else [pending]
            for group in groups:
                recorded = {o for o in group if rows.get(self.hash_of[o]) is not None}
                claimed = self.leases.claim(self.hash_of[o] for o in group if o not in recorded)
                runnable = {o: indices for o, indices in group.items()
                            if o in recorded or self.hash_of[o] in claimed}
                self._map(storage, rows, runnable, results, exec_fn, map_fn, map_kwargs,
                          flush_on_chunk, keep)
                waiting.update((o, ix) for o, ix in group.items() if o not in runnable)
            if not waiting:
                return
            self.leases.wait()
            fresh = storage.rows(self.hash_of[o] for o in waiting)
            rows.update(fresh)
            pending = self._load_stored(storage, fresh, waiting, results, keep)

    def _map(self, storage, rows, todo, results, exec_fn, map_fn, map_kwargs,
             flush_on_chunk, keep) -> None:
        order = [i for indices in todo.values() for i in indices]
        if not order:
            return
        remaining = {ordinal: len(indices) for ordinal, indices in todo.items()}
        done: dict[int, dict[int, Any]] = {}
        axis_order = self.cache.axis_order
        axis_values = self.cache.grid.axis_values
        points = ({a: axis_values[a][p] for a, p in zip(axis_order, self.points[i])}
                  for i in order)
        self.diag.max_parallel_items = max(self.diag.max_parallel_items, len(order))
        func = functools.partial(call_point, exec_fn)
        try:
            for i, output in zip(order, map_fn(func, points, **map_kwargs)):
                ordinal, flat = self.place[i]
                if keep:
                    results[i] = output
                done.setdefault(ordinal, {})[flat] = output
                remaining[ordinal] -= 1
                if flush_on_chunk and remaining[ordinal] == 0:
                    self._write(storage, rows, ordinal, done.pop(ordinal))
        finally:
            # Also when exec_fn raised in a worker: keep every result that arrived.
            for ordinal, items in done.items():
                self._write(storage, rows, ordinal, items)

    def _write(self, storage, rows, ordinal: int, items: dict[int, Any]) -> None:
        chunk_hash = self.hash_of[ordinal]
        if rows.get(chunk_hash) is not None:
            self.diag.merges += 1
        storage.save_items(chunk_hash, items, self.n_points[ordinal],
                           cache_hash=self.cache.cache_hash)
        self.diag.count_executed(chunk_hash)
        self.diag.stream_flushes += 1
        self.diag.max_stream_items = max(self.diag.max_stream_items, len(items))
        self.progress.executed(chunk_hash, (), len(items))


def _claim_groups(pending: dict[int, list[int]]):
    """``pending`` cut into groups of chunks claimed together: up to CLAIM_ITEMS items."""
    group: dict[int, list[int]] = {}
    n_items = 0
    for ordinal, indices in pending.items():
        group[ordinal] = indices
        n_items += len(indices)
        if n_items >= CLAIM_ITEMS:
            yield group
            group, n_items = {}, 0
    if group:
        yield group
