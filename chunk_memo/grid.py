"""The grid of a cache: axis values, chunk spec, axis order, chunk keys and selections.

A grid cuts each axis into consecutive bins of its chunk size; a chunk is one
element of the cartesian product of those bins.  Chunks are addressed by ordinal
(row-major over per-axis bin indices, the last axis of ``axis_order`` fastest), and
the geometry behind it is integer arithmetic in ``chunk_memo._core``: nothing here
builds one Python object per chunk unless asked for chunk keys.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Mapping, Sequence

from chunk_memo import _core, identity

ChunkKey = tuple  # ((axis, (v1, v2, ...)), ...) in axis order

_ORDERED_KINDS = (list, tuple, range)


def _is_ordered(values: Any) -> bool:
    if isinstance(values, _ORDERED_KINDS):
        return True
    return type(values).__module__ == "numpy" and type(values).__name__ == "ndarray"


def normalize_axis_values(name: str, values: Any) -> tuple:
    """Values of one axis as a tuple: sequences keep order, other iterables are sorted.

    Duplicates (equal canonical encodings) collapse to their first occurrence.
    """
    if callable(values) and not hasattr(values, "__iter__"):
        raise TypeError(
            f"axis {name!r}: callables are not supported as axis values; "
            f"pass a list of values instead of {values!r}"
        )
    if isinstance(values, (str, bytes)):
        raise TypeError(
            f"axis {name!r}: got the string {values!r}; pass a list of values, e.g. [{values!r}]"
        )
    if _is_ordered(values):
        items = values.tolist() if hasattr(values, "tolist") else list(values)
    else:
        try:
            items = list(values)
        except TypeError:
            raise TypeError(
                f"axis {name!r}: values must be a list or another iterable, "
                f"got {type(values).__name__}"
            ) from None
        try:
            items.sort()
        except TypeError:
            items.sort(key=identity.encode)
    seen: set[bytes] = set()
    unique = []
    for value in items:
        encoded = identity.encode(value)
        if encoded not in seen:
            seen.add(encoded)
            unique.append(value)
    return tuple(unique)


def normalize_chunk_spec(
    chunk_spec: Mapping[str, Any] | None, raw_axis_values: Mapping[str, Any],
    axis_values: Mapping[str, tuple],
) -> dict[str, int]:
    """Bin size per axis, following SPEC.md's defaults and errors."""
    if chunk_spec is None:
        return {
            name: max(len(values), 1) if _is_ordered(raw_axis_values[name]) else 1
            for name, values in axis_values.items()
        }
    if not isinstance(chunk_spec, Mapping):
        raise TypeError(f"chunk_spec must be a dict of axis -> size, got {chunk_spec!r}")
    unknown = sorted(set(chunk_spec) - set(axis_values), key=str)
    if unknown:
        raise ValueError(f"chunk_spec names axes that are not in axis_values: {unknown}")
    sizes = {}
    for name in axis_values:
        if name not in chunk_spec:
            raise KeyError(f"chunk_spec has no size for axis {name!r}")
        sizes[name] = _bin_size(name, chunk_spec[name])
    return sizes


def _bin_size(name: str, spec: Any) -> int:
    size = spec.get("size") if isinstance(spec, Mapping) else spec
    if isinstance(spec, Mapping) and "size" not in spec:
        raise KeyError(f"chunk_spec for axis {name!r} is a dict without 'size': {spec!r}")
    if isinstance(size, bool) or not isinstance(size, int):
        raise TypeError(f"chunk size of axis {name!r} must be an int, got {size!r}")
    if size <= 0:
        raise ValueError(f"chunk size of axis {name!r} must be > 0, got {size}")
    return size


def normalize_axis_order(axis_order: Sequence[str] | None, names: Iterable[str]) -> tuple:
    names = list(names)
    if axis_order is None:
        return tuple(sorted(names))
    order = tuple(axis_order)
    if sorted(order) != sorted(names) or len(set(order)) != len(order):
        raise ValueError(
            f"axis_order {list(order)} must name each axis exactly once; axes are {sorted(names)}"
        )
    return order


class Grid:
    """Axis values cut into chunks.

    Build with :meth:`Grid.build`.  Attributes: ``axis_order`` (tuple of names),
    ``axis_values`` (name -> tuple, in axis order), ``chunk_spec`` (name -> bin size),
    ``geometry`` (the compiled :class:`chunk_memo._core.Geometry`).

    Examples
    --------
    >>> grid = Grid.build({"strat": ["a", "b"], "s": [1, 2, 3]}, {"strat": 1, "s": 2})
    >>> grid.n_chunks
    4
    >>> grid.chunk_key(1)
    (('s', (1, 2)), ('strat', ('b',)))
    """

    __slots__ = ("axis_order", "axis_values", "chunk_spec", "geometry", "_index", "derived")

    #: How many (params, version) identities :attr:`derived` remembers per grid.
    DERIVED_ENTRIES = 32

    def __init__(self, axis_order: tuple, axis_values: dict, chunk_spec: dict):
        self.axis_order = axis_order
        self.axis_values = {name: axis_values[name] for name in axis_order}
        self.chunk_spec = {name: chunk_spec[name] for name in axis_order}
        self.geometry = _core.Geometry(
            [len(self.axis_values[a]) for a in axis_order],
            [self.chunk_spec[a] for a in axis_order],
        )
        self._index: dict[str, dict[bytes, int]] = {}
        # Values derived from this grid and one identity (cache hash, chunk hasher),
        # keyed by (params hash, version): slices of one cache share them instead of
        # rehashing every axis value per lookup.  See :meth:`remember`.
        self.derived: dict[tuple, dict] = {}

    @classmethod
    def build(
        cls,
        axis_values: Mapping[str, Any],
        chunk_spec: Mapping[str, Any] | None = None,
        axis_order: Sequence[str] | None = None,
    ) -> "Grid":
        """Normalize user input (SPEC.md rules) into a grid; errors name the bad value."""
        if not isinstance(axis_values, Mapping):
            raise TypeError(f"axis_values must be a dict of axis -> values, got {axis_values!r}")
        for name in axis_values:
            if not isinstance(name, str):
                raise TypeError(f"axis names must be strings, got {name!r}")
        values = {name: normalize_axis_values(name, v) for name, v in axis_values.items()}
        spec = normalize_chunk_spec(chunk_spec, axis_values, values)
        return cls(normalize_axis_order(axis_order, values), values, spec)

    # -- sizes ---------------------------------------------------------------
    @property
    def n_chunks(self) -> int:
        return self.geometry.n_chunks

    @property
    def n_points(self) -> int:
        total = 1
        for name in self.axis_order:
            total *= len(self.axis_values[name])
        return total

    def _axis(self, name: str) -> int:
        try:
            return self.axis_order.index(name)
        except ValueError:
            raise KeyError(f"unknown axis {name!r}; axes are {list(self.axis_order)}") from None

    # -- chunk keys ------------------------------------------------------------
    def bin_values(self, name: str, b: int) -> tuple:
        start, stop = self.geometry.bin_range(self._axis(name), b)
        return self.axis_values[name][start:stop]

    def chunk_key(self, ordinal: int) -> ChunkKey:
        """The key ``((axis, values), ...)`` of chunk ``ordinal``."""
        bins = self.geometry.bin_indices(ordinal)
        return tuple((name, self.bin_values(name, b)) for name, b in zip(self.axis_order, bins))

    def iter_chunk_keys(self, ordinals: Iterable[int] | None = None) -> Iterator[ChunkKey]:
        for ordinal in range(self.n_chunks) if ordinals is None else ordinals:
            yield self.chunk_key(ordinal)

    def ordinal_of(self, chunk_key: ChunkKey) -> int:
        """Ordinal of a chunk key of this grid; ``KeyError`` if it is not one of its chunks."""
        names = tuple(name for name, _ in chunk_key)
        if names != self.axis_order:
            raise KeyError(f"chunk key axes {list(names)} differ from axis order {list(self.axis_order)}")
        bins = []
        for name, values in chunk_key:
            values = tuple(values)
            if not values:
                raise KeyError(f"chunk key has no values for axis {name!r}")
            b, offset = self.locate(name, values[0])
            if offset != 0 or [identity.encode(v) for v in self.bin_values(name, b)] != [
                identity.encode(v) for v in values
            ]:
                raise KeyError(f"values {list(values)} are not a chunk bin of axis {name!r}")
            bins.append(b)
        return self.geometry.ordinal(bins)

    # -- values and selections -----------------------------------------------
    def position(self, name: str, value: Any) -> int:
        """Index of ``value`` in axis ``name``; ``KeyError`` naming both if absent."""
        index = self._index.get(name)
        if index is None:
            self._axis(name)
            index = {identity.encode(v): i for i, v in enumerate(self.axis_values[name])}
            self._index[name] = index
        try:
            return index[identity.encode(value)]
        except KeyError:
            raise KeyError(f"value {value!r} is not in axis {name!r}") from None

    def locate(self, name: str, value: Any) -> tuple[int, int]:
        """``(bin, offset)`` of ``value`` on axis ``name``."""
        return self.geometry.locate(self._axis(name), self.position(name, value))

    def positions_for_values(self, name: str, values: Any) -> list[int]:
        """Positions of ``values`` (a list, or one value meaning ``[value]``)."""
        if not isinstance(values, (list, tuple)):
            values = [values]
        return [self.position(name, v) for v in values]

    def positions_for_indices(self, name: str, spec: Any) -> list[int]:
        """Positions selected by an int, range, slice or a list of those."""
        size = len(self.axis_values[name]) if name in self.axis_values else None
        if size is None:
            raise KeyError(f"unknown axis {name!r}; axes are {list(self.axis_order)}")
        if isinstance(spec, (list, tuple)):
            return [p for part in spec for p in self._index_part(name, part, size)]
        return self._index_part(name, spec, size)

    @staticmethod
    def _index_part(name: str, part: Any, size: int) -> list[int]:
        if isinstance(part, bool) or not isinstance(part, (int, range, slice)):
            raise TypeError(
                f"axis_indices for {name!r} must be ints, ranges, slices or lists of them, "
                f"got {part!r}"
            )
        if isinstance(part, slice):
            return list(range(size)[part])
        indices = [part] if isinstance(part, int) else list(part)
        out = []
        for i in indices:
            if not -size <= i < size:
                raise IndexError(f"index {i} out of range for axis {name!r} of {size} values")
            out.append(i % size)
        return out

    def select(self, positions: Mapping[str, Iterable[int]] | None = None) -> "_core.Selection":
        """Chunks touched by per-axis positions (an omitted axis means all of it)."""
        positions = positions or {}
        for name in positions:
            self._axis(name)
        return self.geometry.select([positions.get(name) for name in self.axis_order])

    # -- hashing ---------------------------------------------------------------
    def remember(self, identity_key: tuple) -> dict:
        """The dict of values derived from this grid and ``identity_key`` (created empty).

        Bounded: past :data:`DERIVED_ENTRIES` identities it starts over empty.
        """
        entry = self.derived.get(identity_key)
        if entry is None:
            if len(self.derived) >= self.DERIVED_ENTRIES:
                self.derived.clear()
            entry = self.derived.setdefault(identity_key, {})
        return entry

    def chunk_hasher(self, params: Mapping[str, Any] | None, cache_version: str) -> "_core.ChunkHasher":
        """Batch hasher whose digests equal :func:`identity.chunk_hash` of each chunk key."""
        prefix, suffix = identity.chunk_hash_prefix_suffix(params, self.axis_order, cache_version)
        segments = []
        for i, name in enumerate(self.axis_order):
            n_bins = self.geometry.bins_per_axis()[i]
            segments.append([identity.chunk_key_segment(name, self.bin_values(name, b))
                             for b in range(n_bins)])
        return _core.ChunkHasher(self.geometry, prefix, segments, suffix)

    def __reduce__(self):
        # The compiled geometry is rebuilt from the normalized values on unpickling.
        return (Grid, (self.axis_order, self.axis_values, self.chunk_spec))

    def __repr__(self) -> str:
        sizes = {name: len(v) for name, v in self.axis_values.items()}
        return f"Grid(sizes={sizes}, chunk_spec={self.chunk_spec}, chunks={self.n_chunks})"
