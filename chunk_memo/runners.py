"""Runners: execute what a cache view is missing, store it, return the collated output.

``run`` and ``run_streaming`` work on the cache's own chunks; ``run_chunks`` and
``run_chunks_streaming`` on explicit chunk keys.  They plan in batches
(``planning.py``), ask the catalog once per batch which chunks exist, load cached
payloads (whole or just the selected points), execute missing chunks whole, and
commit finished chunks in small batches.  When ``exec_fn`` raises, every chunk
finished before is committed, then the exception propagates unchanged.
"""

from __future__ import annotations

import functools
import inspect
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from chunk_memo.leasing import Leases
from chunk_memo.planning import Plan, PlannedChunk
from chunk_memo.progress import Progress
from chunk_memo.storage import MISSING, stored_positions

__all__ = ["Diagnostics", "run", "run_streaming", "run_chunks", "run_chunks_streaming"]

#: Chunks are claimed (``leasing.py``) in groups worth about this much exec_fn time,
#: starting with CLAIM_GROUP_FIRST chunks and never more than CLAIM_GROUP_MAX.
CLAIM_SECONDS = 0.1
CLAIM_GROUP_FIRST = 8
CLAIM_GROUP_MAX = 1024


@dataclass
class Diagnostics:
    """What a run did.

    ``total_chunks`` chunks were planned: ``cached_chunks`` were served from storage,
    ``executed_chunks`` computed, ``partial_chunks`` served partly (only some of
    their points stored).  ``stream_flushes`` counts chunk writes and
    ``max_stream_items`` the most points held for one write.

    Which chunks, by hash: ``loaded`` (served from storage), ``executed``,
    ``partial``; ``hit`` is true when nothing had to be executed.
    """

    total_chunks: int = 0
    cached_chunks: int = 0
    executed_chunks: int = 0
    partial_chunks: int = 0
    merges: int = 0
    max_stream_items: int = 0
    stream_flushes: int = 0
    max_parallel_items: int = 0
    loaded: list[str] = field(default_factory=list, repr=False)
    executed: list[str] = field(default_factory=list, repr=False)
    partial: list[str] = field(default_factory=list, repr=False)

    @property
    def hit(self) -> bool:
        """True when every requested chunk came from storage (nothing executed)."""
        return self.executed_chunks == 0 and self.partial_chunks == 0

    def count_loaded(self, chunk_hash: str) -> None:
        self.cached_chunks += 1
        self.loaded.append(chunk_hash)

    def count_partial(self, chunk_hash: str) -> None:
        self.partial_chunks += 1
        self.partial.append(chunk_hash)

    def count_executed(self, chunk_hash: str) -> None:
        self.executed_chunks += 1
        self.executed.append(chunk_hash)


def run(cache, exec_fn: Callable, collate_fn: Callable | None = None) -> tuple[Any, Diagnostics]:
    """Run the missing chunks of ``cache`` (or of a slice) and return ``(output, diagnostics)``.

    ``output`` is ``collate_fn(list_of_chunk_outputs)`` (default: the list itself),
    where a chunk's output is the list of its selected points' outputs in cartesian
    order, or the whole object ``exec_fn`` returned when that was not one output per
    point.
    """
    return _run(cache, exec_fn, Plan(cache), collate_fn, keep=True)


def run_streaming(cache, exec_fn: Callable, collate_fn: Callable | None = None) -> Diagnostics:
    """Like :func:`run`, but only writes to disk: nothing is kept or loaded."""
    return _run(cache, exec_fn, Plan(cache), collate_fn, keep=False)[1]


def run_chunks(chunk_keys: Sequence, exec_fn: Callable, cache=None,
               collate_fn: Callable | None = None) -> tuple[Any, Diagnostics]:
    """:func:`run` over explicit ``chunk_keys`` of ``cache`` (already sliced if needed)."""
    _require_cache(cache)
    return _run(cache, exec_fn, Plan(cache, chunk_keys), collate_fn, keep=True)


def run_chunks_streaming(chunk_keys: Sequence, exec_fn: Callable, cache=None,
                         collate_fn: Callable | None = None) -> Diagnostics:
    """:func:`run_streaming` over explicit ``chunk_keys`` of ``cache``."""
    _require_cache(cache)
    return _run(cache, exec_fn, Plan(cache, chunk_keys), collate_fn, keep=False)[1]


def _require_cache(cache) -> None:
    if cache is None:
        raise TypeError("run_chunks needs the cache: run_chunks(keys, exec_fn, cache=cache)")


def _run(cache, exec_fn: Callable, plan: Plan, collate_fn: Callable | None,
         keep: bool) -> tuple[Any, Diagnostics]:
    if not callable(exec_fn):
        raise TypeError(f"exec_fn must be callable, got {exec_fn!r}")
    cache.register()
    started = time.perf_counter()
    storage = cache.storage()
    call = bind_exec_fn(exec_fn, cache)
    diag = Diagnostics(total_chunks=len(plan))
    progress = Progress(cache.verbose, diag.total_chunks, plan.n_points,
                        label="run" if keep else "run_streaming")
    timings = {"status": 0.0, "load": 0.0, "execute": 0.0}
    leases = Leases.for_cache(cache)
    run = _Run(cache, plan, storage, call, keep, diag, progress, timings, leases)
    try:
        for batch in plan.batches():
            run.batch(batch)
        run.wait_for_others()
    finally:
        storage.flush()  # commit rows (which drops their leases) before giving up the rest
        leases.close()
        progress.close(diag)
        if cache.profile and cache.verbose >= 1:
            print(f"[chunk-memo] profile total_s={time.perf_counter() - started:.3f} "
                  + " ".join(f"{k}_s={v:.3f}" for k, v in timings.items()))
    cache.mark_used()
    outputs = run.outputs
    if not keep:
        return None, diag
    collate = collate_fn or cache.collate_fn
    return (collate(outputs) if collate is not None else outputs), diag


class _Run:
    """One run's chunks: served, executed, or left to the process that leased them."""

    def __init__(self, cache, plan, storage, call, keep, diag, progress, timings, leases):
        self.cache, self.plan, self.storage, self.call = cache, plan, storage, call
        self.keep, self.diag, self.progress, self.timings = keep, diag, progress, timings
        self.leases = leases
        self.outputs: list | None = [] if keep else None
        self.deferred: list[tuple[PlannedChunk, int]] = []

    def batch(self, batch: list[PlannedChunk]) -> None:
        tick = time.perf_counter()
        rows = self.storage.rows(chunk.chunk_hash for chunk in batch)
        self.timings["status"] += time.perf_counter() - tick
        missing = []
        for chunk in batch:
            result = _serve(self.storage, chunk, rows.get(chunk.chunk_hash), self.keep,
                            self.diag, self.progress, self.timings)
            slot = self._put(result)
            if result is MISSING:
                missing.append((chunk, slot))
        self._run_claimed(missing, rows)

    def wait_for_others(self) -> None:
        """Serve chunks other processes were computing, taking over expired leases."""
        while self.deferred:
            self.storage.flush()  # let others see what we computed while we wait on theirs
            self.leases.wait()
            waiting, self.deferred = self.deferred, []
            rows = self.storage.rows(chunk.chunk_hash for chunk, _ in waiting)
            missing = []
            for chunk, slot in waiting:
                result = _serve(self.storage, chunk, rows.get(chunk.chunk_hash), self.keep,
                                self.diag, self.progress, self.timings)
                if result is MISSING:
                    missing.append((chunk, slot))
                elif self.keep:
                    self.outputs[slot] = result
            self._run_claimed(missing, rows)

    def _run_claimed(self, missing: list, rows: dict) -> None:
        # Claim chunks just before computing them, in groups worth about CLAIM_SECONDS
        # of exec_fn time: processes sharing a sweep spread over it, and a run of cheap
        # chunks does not pay a catalog transaction every few chunks.
        start = 0
        while start < len(missing):
            group = missing[start:start + self._claim_group()]
            start += len(group)
            claimed = self.leases.claim(chunk.chunk_hash for chunk, _ in group)
            for chunk, slot in group:
                if chunk.chunk_hash not in claimed:
                    self.deferred.append((chunk, slot))
                    continue
                result = _execute(self.cache, self.plan, chunk, self.call, self.storage,
                                  rows, self.diag, self.progress, self.timings)
                if self.keep:
                    self.outputs[slot] = result

    def _claim_group(self) -> int:
        if not self.leases.enabled:
            return CLAIM_GROUP_MAX
        if not self.diag.executed_chunks:
            return CLAIM_GROUP_FIRST
        per_chunk = self.timings["execute"] / self.diag.executed_chunks
        return max(1, min(CLAIM_GROUP_MAX, int(CLAIM_SECONDS / max(per_chunk, 1e-9))))

    def _put(self, result) -> int:
        if not self.keep:
            return -1
        self.outputs.append(result)
        return len(self.outputs) - 1


def _serve(storage, chunk: PlannedChunk, row, keep: bool, diag: Diagnostics,
           progress: Progress, timings: dict) -> Any:
    """The stored output of ``chunk`` (``None`` when not kept), or ``MISSING``."""
    if row is None:
        return MISSING
    wanted = chunk.positions
    if row.n_items is not None and row.n_present < row.n_items:
        stored = stored_positions(row)
        selected = range(chunk.n_points) if wanted is None else wanted
        available = [p for p in selected if p in stored]
        if len(available) < len(selected):
            diag.count_partial(chunk.chunk_hash)
            progress.reused(chunk.chunk_hash, partial=True)
            return storage.load(chunk.chunk_hash, available, row) if keep else None
        wanted = available
    if not keep:
        diag.count_loaded(chunk.chunk_hash)
        progress.reused(chunk.chunk_hash)
        return None
    tick = time.perf_counter()
    result = storage.load(chunk.chunk_hash, wanted, row)
    timings["load"] += time.perf_counter() - tick
    if result is not MISSING:
        diag.count_loaded(chunk.chunk_hash)
        progress.reused(chunk.chunk_hash)
    return result


def _execute(cache, plan: Plan, chunk: PlannedChunk, call: Callable, storage, rows: dict,
             diag: Diagnostics, progress: Progress, timings: dict) -> Any:
    key = plan.key_of(chunk)
    tick = time.perf_counter()
    output = call(key)
    timings["execute"] += time.perf_counter() - tick
    storage.save(chunk.chunk_hash, output, chunk.n_points, cache_hash=cache.cache_hash,
                 location=cache.chunk_location(key, chunk.chunk_hash),
                 previous=rows.get(chunk.chunk_hash), defer=True)
    diag.count_executed(chunk.chunk_hash)
    diag.stream_flushes += 1
    diag.max_stream_items = max(diag.max_stream_items, chunk.n_points)
    progress.executed(chunk.chunk_hash, key, chunk.n_points)
    if chunk.positions is not None and isinstance(output, list) and len(output) == chunk.n_points:
        return [output[p] for p in chunk.positions]
    return output


@functools.lru_cache(maxsize=256)
def _declared_names(exec_fn: Callable) -> tuple[str, ...]:
    """Names ``exec_fn`` declares after its first (params) argument, if it has a signature.

    Remembered per function: a service doing one-point lookups calls this per run,
    and ``inspect.signature`` costs tens of microseconds.
    """
    try:
        return tuple(inspect.signature(exec_fn).parameters)[1:]
    except (TypeError, ValueError):
        return ()


def bind_exec_fn(exec_fn: Callable, cache) -> Callable[[tuple], Any]:
    """``key -> exec_fn(params, **axis_lists, **fixed)``.

    ``fixed`` holds params that ``exec_fn`` declares by name but that are not axes of
    this cache (an axis fixed as a param).
    """
    params = cache.params
    axes = set(cache.axis_order)
    try:
        names = _declared_names(exec_fn)
    except TypeError:  # an unhashable callable: not remembered
        names = _declared_names.__wrapped__(exec_fn)
    fixed = {name: params[name] for name in names if name not in axes and name in params}

    def call(key: tuple) -> Any:
        return exec_fn(params, **{axis: list(values) for axis, values in key}, **fixed)

    return call
