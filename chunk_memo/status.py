"""``cache_status``: which chunks of a view are stored, without a list per chunk.

A status over a grid of 10^7 chunks must not build 10^7 key tuples.  The chunks of
a view are numbered ``0 .. n - 1`` in plan order; the status asks the catalog which
exist, batch by batch, and keeps each class (cached, missing) as runs of
consecutive numbers.  :class:`ChunkList` presents one class as a read-only sequence
whose items (chunk keys, or per-axis index lists) are built when read.  A sweep with
nothing stored is one run, whatever its size.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Iterator

from chunk_memo import identity
from chunk_memo.planning import Plan

if TYPE_CHECKING:
    from chunk_memo.cache import ChunkCache

#: Chunks hashed and looked up per catalog question.  Large: past 50,000 keys the
#: catalog reads the root's chunk index through once when that is smaller.
STATUS_BATCH = 65_536


class Runs:
    """Ascending, disjoint runs ``[start, stop)`` of chunk numbers, appended in order."""

    __slots__ = ("starts", "stops", "ends")

    def __init__(self) -> None:
        self.starts = array("q")
        self.stops = array("q")
        self.ends = array("q")  # running total of run lengths: the index after each run

    def add(self, start: int, stop: int) -> None:
        if stop <= start:
            return
        if self.stops and self.stops[-1] == start:  # extends the last run
            self.stops[-1] = stop
            self.ends[-1] += stop - start
            return
        self.starts.append(start)
        self.stops.append(stop)
        self.ends.append((self.ends[-1] if self.ends else 0) + stop - start)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def number(self, index: int) -> int:
        """The chunk number at position ``index`` (0 <= index < len)."""
        run = bisect.bisect_right(self.ends, index)
        before = self.ends[run - 1] if run else 0
        return self.starts[run] + index - before

    def __iter__(self) -> Iterator[int]:
        for start, stop in zip(self.starts, self.stops):
            yield from range(start, stop)


class ChunkList(Sequence):
    """A read-only list of one class of chunks of a status, built item by item.

    Indexing, slicing, ``len``, iteration and ``==`` with any sequence behave as on
    a list; ``list(chunks)`` makes a real one.
    """

    __slots__ = ("_runs", "_item")

    def __init__(self, runs: Runs, item: Callable[[int], Any]) -> None:
        self._runs = runs
        self._item = item

    def __len__(self) -> int:
        return len(self._runs)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        n = len(self)
        position = index + n if index < 0 else index
        if not 0 <= position < n:
            raise IndexError(f"chunk index {index} out of range for {n} chunks")
        return self._item(self._runs.number(position))

    def __iter__(self) -> Iterator[Any]:
        item = self._item
        for number in self._runs:
            yield item(number)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # compares by content, like a list

    def __repr__(self) -> str:
        shown = [repr(x) for x in self[:3]]
        more = f", ... ({len(self)} chunks)" if len(self) > 3 else ""
        return f"[{', '.join(shown)}{more}]"


def cache_status(cache: "ChunkCache", view: "ChunkCache") -> dict:
    """The status dict of ``view`` (a slice of ``cache``, or ``cache`` itself)."""
    plan = Plan(view)
    storage = cache.storage()
    grid = cache.grid
    cached, missing = Runs(), Runs()
    if plan.keys is None and cache.chunk_hash_fn is None:
        key_of, indices_of = _grid_items(plan)
        _classify_grid(plan, storage, cached, missing)
    else:
        key_of, indices_of = _listed_items(plan, cached, missing, storage)
    selected = view.selected_axis_values()
    return {
        "cache_hash": cache.cache_hash if cache._params is not None else None,
        "params": cache.params,
        "axis_values": selected,
        "axis_order": list(cache.axis_order),
        "axis_chunk_maps": {
            name: {v: i // grid.chunk_spec[name] for i, v in enumerate(values)}
            for name, values in selected.items()
        },
        "total_chunks": len(plan),
        "cached_chunks": ChunkList(cached, key_of),
        "cached_chunk_indices": ChunkList(cached, indices_of),
        "missing_chunks": ChunkList(missing, key_of),
        "missing_chunk_indices": ChunkList(missing, indices_of),
    }


def _classify_grid(plan: Plan, storage, cached: Runs, missing: Runs) -> None:
    """Hash the view's chunks in compiled batches and sort them into the two classes."""
    selection = plan.selection
    hasher = plan.cache.chunk_hasher()
    for start in range(0, selection.n_chunks, STATUS_BATCH):
        hashes = hasher.hexdigests(selection.ordinals(start, start + STATUS_BATCH))
        present = storage.existing(hashes)
        if not present:
            missing.add(start, start + len(hashes))
            continue
        if len(present) == len(hashes):
            cached.add(start, start + len(hashes))
            continue
        for offset, chunk_hash in enumerate(hashes):
            (cached if chunk_hash in present else missing).add(start + offset,
                                                               start + offset + 1)


def _grid_items(plan: Plan) -> tuple[Callable[[int], tuple], Callable[[int], dict]]:
    """Chunk number -> key, and -> per-axis indices, for a view of the cache's grid."""
    selection, grid = plan.selection, plan.grid
    geometry = grid.geometry

    def key_of(number: int) -> tuple:
        return grid.chunk_key(selection.ordinal(number))

    def indices_of(number: int) -> dict[str, list[int]]:
        bins = geometry.bin_indices(selection.ordinal(number))
        return {name: list(range(*geometry.bin_range(i, b)))
                for i, (name, b) in enumerate(zip(grid.axis_order, bins))}

    return key_of, indices_of


def _listed_items(plan: Plan, cached: Runs, missing: Runs, storage
                  ) -> tuple[Callable[[int], tuple], Callable[[int], dict]]:
    """Explicit keys (an enumerator) or a custom chunk_hash_fn: one planned chunk at a time."""
    keys: list[tuple] = []
    for batch in plan.batches():
        present = storage.existing(c.chunk_hash for c in batch)
        for chunk in batch:
            number = len(keys)
            keys.append(plan.key_of(chunk))
            (cached if chunk.chunk_hash in present else missing).add(number, number + 1)
    index_of = {name: {identity.encode(v): i for i, v in enumerate(values)}
                for name, values in plan.grid.axis_values.items()}

    def indices_of(number: int) -> dict[str, list]:
        return {axis: [index_of[axis].get(identity.encode(v)) for v in values]
                for axis, values in keys[number]}

    return keys.__getitem__, indices_of
