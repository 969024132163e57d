"""Which chunks of a cache are stored, and pictures of it over two axes.

:func:`scan_cache` asks the catalog which chunks of a cache's grid (hashed as the
runners hash them) have a row, and collects the rows of every chunk the cache
*holds*: those, plus the chunks linked to it when they were stored (which covers
caches with their own ``chunk_hash_fn``).  A chunk is shared by every cache that
holds it.

A :class:`Coverage` holds one state per chunk of a cache's grid (cached, partly
cached, missing), one byte each in chunk ordinal order: row-major over the per-axis
bin indices, the last axis of the axis order fastest (as in ``grid.py``).  A
:class:`CoverageMap` projects it onto two axes: a cell is a bin of each, and it
summarizes every chunk of that pair of bins over the other axes as full, partial or
empty.  The map renders as text for a terminal or as a PNG (matplotlib, the
optional extra ``chunk-memo[plot]``).
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from chunk_memo.grid import Grid
from chunk_memo.metadata import decode_metadata
from chunk_memo.planning import BATCH_SIZE

if TYPE_CHECKING:
    from chunk_memo.catalog import Catalog, ChunkRow

#: States of one chunk, and of one cell of a map.
MISSING, PARTIAL, CACHED = 0, 1, 2
#: Terminal characters of a cell: every chunk cached, some data, no data.
CELL_CHARS = {CACHED: "#", PARTIAL: "+", MISSING: "."}
LEGEND = {CACHED: "all chunks cached", PARTIAL: "partly cached", MISSING: "nothing cached"}
#: PNG colours of a cell (colour-blind safe: blue, orange, light grey).
CELL_COLOURS = {CACHED: "#1f77b4", PARTIAL: "#ff7f0e", MISSING: "#e6e6e6"}
#: Most rows and columns of a map; an axis with more bins gets several bins per cell.
MAX_ROWS, MAX_COLUMNS = 60, 100
_LABEL_WIDTH = 14


def chunk_state(row: "ChunkRow | None") -> int:
    """State of a chunk from its catalog row (``None``: no row)."""
    if row is None:
        return MISSING
    if row.n_items is None or row.n_present >= row.n_items:
        return CACHED
    return PARTIAL if row.n_present > 0 else MISSING


# -- what a cache holds (catalog rows only; no payload file is opened) -------------

@dataclass
class CacheScan:
    """One cache's decoded metadata, grid, chunk states (by ordinal) and held rows."""

    meta: dict
    grid: Grid
    states: bytearray
    rows: dict  # chunk hash -> ChunkRow of every chunk the cache holds
    linked: int  # chunks linked to the cache when stored


def grid_of(meta: dict) -> Grid:
    """The grid of a cache from its decoded metadata (as ``load_from_cache`` builds it)."""
    return Grid.build(meta["axis_values"], meta["chunk_spec"], meta["axis_order"])


def grid_hash_batches(grid: Grid, meta: dict) -> Iterator[tuple[int, list[str]]]:
    """``(first ordinal, chunk hashes)`` of the grid's chunks, in batches."""
    hasher = grid.chunk_hasher(meta["params"], meta["cache_version"])
    for start in range(0, grid.n_chunks, BATCH_SIZE):
        yield start, hasher.hexdigests(range(start, min(grid.n_chunks, start + BATCH_SIZE)))


def scan_cache(catalog: "Catalog", cache_hash: str, metadata: bytes,
               grid_hashes: set | None = None) -> CacheScan:
    """What a cache holds; ``grid_hashes``, if given, receives every grid chunk's hash.

    Raises
    ------
    ValueError
        The cache's metadata is unreadable (the message names the cache).
    """
    meta = decode_metadata(metadata, cache_hash)
    grid = grid_of(meta)
    states = bytearray(grid.n_chunks)
    rows: dict[str, ChunkRow] = {}
    for start, batch in grid_hash_batches(grid, meta):
        found = catalog.get_chunks(batch)
        states[start:start + len(batch)] = bytes(chunk_state(found.get(h)) for h in batch)
        rows.update(found)
        if grid_hashes is not None:
            grid_hashes.update(batch)
    linked = catalog.linked_chunks(cache_hash)
    rows.update(catalog.get_chunks(list(linked - rows.keys())))
    return CacheScan(meta, grid, states, rows, len(linked))


def held_rows(catalog: "Catalog", cache_hash: str, metadata: bytes) -> dict[str, "ChunkRow"]:
    """Rows of the chunks a cache holds (only its links if its metadata is unreadable)."""
    try:
        return scan_cache(catalog, cache_hash, metadata).rows
    except ValueError:
        return catalog.get_chunks(list(catalog.linked_chunks(cache_hash)))


def held_by_caches(catalog: "Catalog", candidates: set[str], skip: set[str]) -> set[str]:
    """The ``candidates`` that some cache of the root, not in ``skip``, holds."""
    held: set[str] = set()
    for info in catalog.list_caches():
        if info.cache_hash in skip or held >= candidates:
            continue
        held |= catalog.linked_chunks(info.cache_hash) & candidates
        try:
            meta = decode_metadata(info.metadata, info.cache_hash)
        except ValueError:
            continue
        for _, batch in grid_hash_batches(grid_of(meta), meta):
            held.update(candidates.intersection(batch))
    return held


# -- coverage --------------------------------------------------------------------

@dataclass(frozen=True)
class Coverage:
    """The stored state of every chunk of one cache.

    Attributes
    ----------
    cache_hash : str
    axis_order : tuple of str
    axis_values : dict of str to tuple
        Each axis's values, in order.
    chunk_spec : dict of str to int
        Bin size of each axis.
    states : bytes
        :data:`CACHED`, :data:`PARTIAL` or :data:`MISSING` per chunk, by ordinal.

    Examples
    --------
    >>> cov = Coverage("c0", ("s",), {"s": (1, 2, 3)}, {"s": 2}, bytes([2, 0]))
    >>> cov.shape, cov.counts()["cached"]
    ((2,), 1)
    >>> cov.map("s").lines()
    ['#', '.']
    """

    cache_hash: str
    axis_order: tuple
    axis_values: dict
    chunk_spec: dict
    states: bytes

    @classmethod
    def of_scan(cls, cache_hash: str, scan: CacheScan) -> "Coverage":
        """The coverage of a scanned cache."""
        grid = scan.grid
        return cls(cache_hash, grid.axis_order, dict(grid.axis_values), dict(grid.chunk_spec),
                   bytes(scan.states))

    def __post_init__(self) -> None:
        if len(self.states) != math.prod(self.shape):
            raise ValueError(f"{len(self.states)} chunk states for a grid of shape {self.shape}")

    @property
    def shape(self) -> tuple[int, ...]:
        """Number of bins of each axis, in axis order."""
        return tuple(math.ceil(len(self.axis_values[name]) / self.chunk_spec[name])
                     for name in self.axis_order)

    def counts(self) -> dict[str, int]:
        """Chunks by state: ``{"cached", "partial", "missing", "total"}``."""
        return {"cached": self.states.count(CACHED), "partial": self.states.count(PARTIAL),
                "missing": self.states.count(MISSING), "total": len(self.states)}

    def to_dict(self) -> dict:
        """For JSON: shape, counts, and ``states`` as one character per chunk, by ordinal."""
        return {"cache_hash": self.cache_hash, "axis_order": list(self.axis_order),
                "shape": list(self.shape), "chunk_spec": dict(self.chunk_spec),
                "counts": self.counts(),
                "states": "".join(CELL_CHARS[state] for state in self.states)}

    def bin_values(self, axis: str, first: int, stop: int | None = None) -> tuple:
        """Values of bins ``first`` to ``stop - 1`` (default: bin ``first`` alone) of ``axis``."""
        size = self.chunk_spec[axis]
        stop = first + 1 if stop is None else stop
        return tuple(self.axis_values[axis][first * size:stop * size])

    def map(self, rows: str | None = None, columns: str | None = None, *,
            max_rows: int = MAX_ROWS, max_columns: int = MAX_COLUMNS) -> "CoverageMap":
        """Project onto two axes: a cell per (bin of ``rows``, bin of ``columns``).

        Either axis may be ``None`` (a single row or column).  An axis with more bins
        than ``max_rows``/``max_columns`` gets several consecutive bins per cell.

        Raises
        ------
        KeyError
            An axis that is not one of the cache's (the message lists them).
        ValueError
            The same axis twice.
        """
        for axis in (rows, columns):
            if axis is not None and axis not in self.axis_order:
                raise KeyError(f"unknown axis {axis!r}; this cache's axes are "
                               f"{list(self.axis_order)}")
        if rows is not None and rows == columns:
            raise ValueError(f"pick two different axes, got {rows!r} twice")
        full, some, n_rows, n_columns = self._project(rows, columns)
        row_groups = _groups(n_rows, max_rows)
        column_groups = _groups(n_columns, max_columns)
        cells = [[_merge(full, some, r, c) for c in column_groups] for r in row_groups]
        others = [name for name in self.axis_order if name not in (rows, columns)]
        return CoverageMap(self, rows, columns, row_groups, column_groups, cells, others)

    def _project(self, rows: str | None, columns: str | None):
        shape = self.shape
        i = None if rows is None else self.axis_order.index(rows)
        j = None if columns is None else self.axis_order.index(columns)
        n_rows, n_columns = (1 if i is None else shape[i]), (1 if j is None else shape[j])
        full = [[True] * n_columns for _ in range(n_rows)]
        some = [[False] * n_columns for _ in range(n_rows)]
        for bins, state in zip(itertools.product(*map(range, shape)), self.states):
            r = 0 if i is None else bins[i]
            c = 0 if j is None else bins[j]
            if state != CACHED:
                full[r][c] = False
            if state != MISSING:
                some[r][c] = True
        return full, some, n_rows, n_columns


def _groups(n_bins: int, most: int) -> list[range]:
    per_cell = max(1, math.ceil(n_bins / max(1, most)))
    return [range(start, min(start + per_cell, n_bins)) for start in range(0, n_bins, per_cell)]


def _merge(full, some, rows: range, columns: range) -> int:
    cells = [(r, c) for r in rows for c in columns]
    if all(full[r][c] for r, c in cells):
        return CACHED
    return PARTIAL if any(some[r][c] for r, c in cells) else MISSING


@dataclass(frozen=True)
class CoverageMap:
    """A :class:`Coverage` over two axes: ``cells[row][column]`` in {CACHED, PARTIAL, MISSING}.

    ``row_groups`` and ``column_groups`` are the bins of each cell (one bin per cell
    unless an axis had too many); ``others`` are the axes each cell summarizes.
    """

    coverage: Coverage
    rows: str | None
    columns: str | None
    row_groups: list
    column_groups: list
    cells: list
    others: list

    def lines(self) -> list[str]:
        """The cells as strings of :data:`CELL_CHARS`, one per row."""
        return ["".join(CELL_CHARS[cell] for cell in row) for row in self.cells]

    def label(self, axis: str | None, group: range) -> str:
        """Short label of the values in a group of bins of ``axis``."""
        if axis is None:
            return "(all)"
        values = self.coverage.bin_values(axis, group.start, group.stop)
        if len(values) == 1:
            return _short(values[0])
        return f"{_short(values[0])}..{_short(values[-1])}"

    def text(self) -> str:
        """The map for a terminal: header, column ruler, labelled rows and legend."""
        cov = self.coverage
        others = ", ".join(f"{name} ({cov.shape[cov.axis_order.index(name)]} bins)"
                           for name in self.others) or "none"
        out = [f"cache {cov.cache_hash}: rows {self._describe(self.rows, self.row_groups)}, "
               f"columns {self._describe(self.columns, self.column_groups)}",
               f"each cell summarizes the other axes: {others}"]
        corner = f"{self.rows or '-'} \\ {self.columns or '-'}"[:_LABEL_WIDTH]
        rulers = _rulers(len(self.column_groups))
        out += [" " * (_LABEL_WIDTH + 1) + ruler for ruler in rulers[:-1]]
        out.append(f"{corner:<{_LABEL_WIDTH}} {rulers[-1]}")
        for group, line in zip(self.row_groups, self.lines()):
            out.append(f"{self.label(self.rows, group)[:_LABEL_WIDTH]:<{_LABEL_WIDTH}} {line}")
        out.append("columns: " + self._column_key())
        out.append("legend: " + "  ".join(f"'{CELL_CHARS[s]}' {LEGEND[s]}"
                                          for s in (CACHED, PARTIAL, MISSING)))
        counts = cov.counts()
        share = 100.0 * counts["cached"] / counts["total"] if counts["total"] else 100.0
        out.append(f"chunks: {counts['cached']} cached, {counts['partial']} partial, "
                   f"{counts['missing']} missing of {counts['total']} ({share:.0f}% cached)")
        return "\n".join(out)

    def _describe(self, axis: str | None, groups: list) -> str:
        if axis is None:
            return "(none)"
        n_bins = sum(len(group) for group in groups)
        per_cell = f", {len(groups[0])} bins per cell" if len(groups[0]) > 1 else ""
        return f"{axis} ({n_bins} bins{per_cell})"

    def _column_key(self, keep: int = 3) -> str:
        labels = [f"{i}={self.label(self.columns, group)}"
                  for i, group in enumerate(self.column_groups)]
        if len(labels) > 2 * keep:
            labels = labels[:keep] + ["..."] + labels[-keep:]
        return f"{self.columns or '(none)'}: " + ", ".join(labels)

    def to_dict(self) -> dict:
        """The map for JSON: axes, cell labels and the rows as strings of characters."""
        return {
            "rows": self.rows, "columns": self.columns, "others": list(self.others),
            "row_labels": [self.label(self.rows, g) for g in self.row_groups],
            "column_labels": [self.label(self.columns, g) for g in self.column_groups],
            "cells": self.lines(),
            "legend": {CELL_CHARS[s]: LEGEND[s] for s in (CACHED, PARTIAL, MISSING)},
        }

    def save_png(self, path: str | os.PathLike) -> None:
        """Draw the map to a PNG file (needs matplotlib: ``pip install 'chunk-memo[plot]'``).

        Raises
        ------
        ImportError
            matplotlib is not installed; the message names the extra to install.
        """
        try:
            from matplotlib.colors import ListedColormap
            from matplotlib.figure import Figure
            from matplotlib.patches import Patch
        except ImportError as error:
            raise ImportError("drawing coverage as PNG needs matplotlib; install it with "
                              "pip install 'chunk-memo[plot]'") from error
        n_rows, n_columns = len(self.cells), len(self.cells[0])
        figure = Figure(figsize=(min(14, 3 + 0.3 * n_columns), min(10, 2 + 0.3 * n_rows)))
        axes = figure.subplots()
        colours = ListedColormap([CELL_COLOURS[s] for s in (MISSING, PARTIAL, CACHED)])
        axes.imshow(self.cells, cmap=colours, vmin=-0.5, vmax=2.5, aspect="auto",
                    interpolation="nearest")
        _ticks(axes.set_xticks, [self.label(self.columns, g) for g in self.column_groups])
        _ticks(axes.set_yticks, [self.label(self.rows, g) for g in self.row_groups])
        axes.tick_params(axis="x", labelrotation=90)
        axes.set_xlabel(self.columns or "")
        axes.set_ylabel(self.rows or "")
        counts = self.coverage.counts()
        axes.set_title(f"cache {self.coverage.cache_hash[:12]}: {counts['cached']}/"
                       f"{counts['total']} chunks cached", fontsize=10)
        axes.legend(handles=[Patch(color=CELL_COLOURS[s], label=LEGEND[s])
                             for s in (CACHED, PARTIAL, MISSING)],
                    loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
        figure.savefig(os.fspath(path), format="png", dpi=100, bbox_inches="tight")


def _ticks(set_ticks, labels: Sequence[str], most: int = 20) -> None:
    step = max(1, math.ceil(len(labels) / most))
    positions = list(range(0, len(labels), step))
    set_ticks(positions, [labels[p] for p in positions], fontsize=8)


def _rulers(n_columns: int) -> list[str]:
    """Column numbers written downwards: a tens line (if needed) over a units line."""
    units = "".join(str(i % 10) for i in range(n_columns))
    if n_columns <= 10:
        return [units]
    tens = "".join(str(i // 10 % 10) if i % 10 == 0 else " " for i in range(n_columns))
    return [tens.rstrip(), units]


def _short(value: Any, width: int = 12) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[:width - 1] + "~"
