"""Plans of chunk work: which chunks a cache view touches, their hashes and points.

A plan yields batches of :class:`PlannedChunk`, so that runners ask the catalog
once per batch and a grid of millions of chunks never exists as one list.  On the
default path hashes come from the compiled batch hasher and chunk keys are built
only for chunks that are executed or listed.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from chunk_memo import identity

if TYPE_CHECKING:
    from chunk_memo.cache import ChunkCache

BATCH_SIZE = 4096


@dataclass
class PlannedChunk:
    """One chunk of a run.

    ``positions`` are the selected points inside the chunk (row-major over its
    values), or ``None`` when every point of the chunk is selected.
    """

    chunk_hash: str
    n_points: int
    positions: Sequence[int] | None
    ordinal: int | None = None
    key: tuple | None = None


class Plan:
    """The chunks of ``cache`` (a view: its selection applies), in order.

    Parameters
    ----------
    cache : ChunkCache
    chunk_keys : sequence of chunk keys, optional
        Explicit keys (``run_chunks``); by default the cache's enumerator, if it has
        one, else the grid's chunks touched by the selection.
    """

    def __init__(self, cache: "ChunkCache", chunk_keys: Sequence[tuple] | None = None):
        self.cache = cache
        self.grid = cache.grid
        if chunk_keys is None and cache.cache_chunk_enumerator is not None:
            chunk_keys = list(cache.cache_chunk_enumerator(cache.axis_values))
        self.keys = None if chunk_keys is None else [_as_key(k) for k in chunk_keys]
        self.selection = None
        if self.keys is None:
            self.selection = self.grid.select(cache.selected_positions)

    def __len__(self) -> int:
        if self.keys is not None:
            return len(self.keys)
        return self.selection.n_chunks

    @property
    def n_points(self) -> int:
        if self.keys is not None:
            return sum(len(_selected_offsets(self, key)) for key in self.keys)
        return self.selection.n_points

    def key_of(self, chunk: PlannedChunk) -> tuple:
        if chunk.key is None:
            chunk.key = self.grid.chunk_key(chunk.ordinal)
        return chunk.key

    def batches(self, size: int = BATCH_SIZE) -> Iterator[list[PlannedChunk]]:
        if self.keys is not None:
            yield from self._key_batches(size)
        else:
            yield from self._grid_batches(size)

    def _grid_batches(self, size: int) -> Iterator[list[PlannedChunk]]:
        selection, geometry = self.selection, self.grid.geometry
        custom_hash = self.cache.chunk_hash_fn is not None
        hasher = None if custom_hash else self.cache.chunk_hasher()
        for start in range(0, selection.n_chunks, size):
            batch = selection.ordinals(start, start + size)
            hashes = (None if custom_hash else hasher.hexdigests(batch))
            chunks = []
            for i, ordinal in enumerate(batch):
                n_points = geometry.chunk_size(ordinal)
                positions = selection.positions(start + i)
                chunk = PlannedChunk(
                    chunk_hash="" if custom_hash else hashes[i], n_points=n_points,
                    positions=None if len(positions) == n_points else positions,
                    ordinal=ordinal,
                )
                if custom_hash:
                    chunk.chunk_hash = self.cache.chunk_hash(self.key_of(chunk))
                chunks.append(chunk)
            yield chunks

    def _key_batches(self, size: int) -> Iterator[list[PlannedChunk]]:
        for start in range(0, len(self.keys), size):
            chunks = []
            for key in self.keys[start:start + size]:
                positions = _selected_offsets(self, key)
                n_points = math.prod(len(values) for _, values in key)
                if not positions and n_points:
                    continue
                chunks.append(PlannedChunk(
                    chunk_hash=self.cache.chunk_hash(key), n_points=n_points,
                    positions=None if len(positions) == n_points else positions, key=key,
                ))
            yield chunks


def _as_key(key: Any) -> tuple:
    try:
        return tuple((str(axis), tuple(values)) for axis, values in key)
    except (TypeError, ValueError):
        raise TypeError(f"a chunk key is ((axis, values), ...), got {key!r}") from None


def _selected_offsets(plan: Plan, key: tuple) -> list[int]:
    """Row-major positions inside ``key``'s chunk of the points the view selects."""
    cache = plan.cache
    per_axis = []
    for axis, values in key:
        chosen = cache.selected_positions.get(axis)
        if chosen is None:
            per_axis.append(range(len(values)))
            continue
        wanted = {identity.encode(cache.grid.axis_values[axis][p]) for p in chosen}
        per_axis.append([j for j, v in enumerate(values) if identity.encode(v) in wanted])
    lengths = [len(values) for _, values in key]
    out = []
    for combo in itertools.product(*per_axis):
        flat = 0
        for offset, length in zip(combo, lengths):
            flat = flat * length + offset
        out.append(flat)
    return out
