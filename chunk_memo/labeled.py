"""Results as labeled data: run outputs as ``xarray`` objects or ``pandas`` DataFrames.

``run`` returns one entry per chunk of a view, each the list of its selected
points' outputs; ``run_parallel`` returns one output per item.  Neither says which
point an output belongs to: that is known only to the cache view, so these
functions rebuild it from the view's plan (the same :class:`~chunk_memo.planning.Plan`
the run walked) or from the items, then label each output with its axis values.

xarray and pandas are optional: they are imported when a function here is called,
and a missing one is an ``ImportError`` that names the extra to install.
"""

from __future__ import annotations

import importlib
import itertools
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from chunk_memo import identity
from chunk_memo.planning import Plan
from chunk_memo.runners_parallel import _as_point
from chunk_memo.storage import stored_positions

__all__ = ["to_xarray", "to_dataframe"]


def to_xarray(cache, output: Sequence, name: str = "value", *, items: Sequence | None = None,
              chunk_keys: Sequence | None = None,
              extra_dims: Sequence[str] | Mapping[Any, Sequence[str]] | None = None,
              fill_value: Any = float("nan")):
    """Label a run's output with the view's axis values, as an ``xarray`` object.

    Parameters
    ----------
    cache : ChunkCache
        The cache or slice the output was run on, unchanged since (same selection,
        same axis values).
    output : list
        ``run(cache, exec_fn)``'s output without a ``collate_fn`` (one entry per chunk
        of the view, each a list with one output per selected point), or with
        ``items`` the flat output of ``run_parallel(items, ...)``.
    name : str
        Name of the DataArray for non-dict outputs.
    items : sequence, optional
        The items given to ``run_parallel``, in the same order as ``output``.
    chunk_keys : sequence of chunk keys, optional
        The keys given to ``run_chunks``, when ``output`` came from it.
    extra_dims : sequence of str, or dict of output key -> sequence of str, optional
        Names of the trailing dimensions of array-like outputs.  Defaults:
        ``dim_0, dim_1, ...``, and ``<key>_dim_0, ...`` for an array under a dict key
        (so that arrays of different shapes under different keys never clash).
    fill_value : scalar
        Value of the view's points that have no output (points of a partly stored
        chunk that ``run`` served as they were, or points absent from ``items``).
        Default NaN; the data is then promoted as NumPy promotes (ints to float, str
        to object).  Complete results keep their dtype.

    Returns
    -------
    xarray.DataArray or xarray.Dataset
        Dims are the axes in ``cache.axis_order`` followed by any trailing
        dimensions; the coords are the view's ``selected_axis_values()``.  Scalar
        outputs give a DataArray; array-like outputs (NumPy arrays, or lists of
        numbers, one shape at every point) add trailing dimensions; dict outputs
        give a Dataset with one variable per key.  Other values (strings, tuples of
        mixed types, ...) are kept as they are, in object arrays where needed.

    Raises
    ------
    ImportError
        xarray is not installed (``pip install 'chunk-memo[xarray]'``).
    ValueError
        A chunk was stored whole (``exec_fn`` did not return one output per point);
        ``output`` does not fit the view; dict outputs differ in their keys, or
        arrays in their shape, at some point (the error names it).

    Notes
    -----
    A dict key that names an axis (outputs often echo their inputs) must hold that
    point's axis value and is dropped, since the coordinate already says it.

    Examples
    --------
    >>> output, _ = run(cache, exec_fn)                        # doctest: +SKIP
    >>> to_xarray(cache, output).sel(strat="bb", s=2)          # doctest: +SKIP
    """
    xr = _require("xarray", extra="xarray")
    import numpy as np  # a dependency of xarray and pandas, so present with them
    points = _collect(cache, output, items, chunk_keys)
    shape = tuple(len(points.coords[axis]) for axis in points.axes)
    coords = {axis: _scalar_array(np, values) for axis, values in points.coords.items()}
    flat = _flat_indices(np, points.index, shape)
    variables = {}
    for key, values in _fields(points, name).items():
        variables[key] = _dense(np, points, key, values, flat, shape, extra_dims, fill_value)
    if points.is_dict:
        return xr.Dataset(variables, coords=coords)
    # An empty view has no output to tell the dtype or trailing dims: all fill_value.
    dims, data = variables.get(name) or (points.axes, np.full(shape, fill_value))
    return xr.DataArray(data, coords=coords, dims=dims, name=name)


def to_dataframe(cache, output: Sequence, name: str = "value", *,
                 items: Sequence | None = None, chunk_keys: Sequence | None = None):
    """Label a run's output as a ``pandas.DataFrame`` with one row per point.

    Parameters
    ----------
    cache : ChunkCache
        The cache or slice the output was run on, unchanged since.
    output : list
        ``run``'s output without a ``collate_fn``, or with ``items`` the output of
        ``run_parallel``.
    name : str
        Column of non-dict outputs.
    items, chunk_keys : sequence, optional
        As for :func:`to_xarray`: the items of ``run_parallel``, or the keys of
        ``run_chunks``.

    Returns
    -------
    pandas.DataFrame
        One column per axis (in ``cache.axis_order``) holding the point's values,
        then ``name`` for non-dict outputs or one column per key for dict outputs
        (array outputs stay whole, one per cell).  Rows are the points that have an
        output, in the view's grid order (the last axis fastest); with ``items``,
        one row per item in item order.  Points without an output (partly stored
        chunks) have no row.

    Raises
    ------
    ImportError
        pandas is not installed (``pip install 'chunk-memo[pandas]'``).
    ValueError
        As for :func:`to_xarray`.

    Examples
    --------
    >>> output, _ = run(cache, exec_fn)                        # doctest: +SKIP
    >>> to_dataframe(cache, output).groupby("strat")["value"].mean()   # doctest: +SKIP
    """
    pd = _require("pandas", extra="pandas")
    import numpy as np
    points = _collect(cache, output, items, chunk_keys)
    order = range(len(points.index))
    if items is None:
        order = sorted(order, key=points.index.__getitem__)
    columns = {axis: [points.coords[axis][points.index[i][k]] for i in order]
               for k, axis in enumerate(points.axes)}
    for key, values in (_fields(points, name) or {name: []}).items():
        columns[key] = [values[i] for i in order]
    return pd.DataFrame({key: _column(np, pd, values) for key, values in columns.items()},
                        columns=list(columns))


# -- optional imports -----------------------------------------------------------------
def _require(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"chunk_memo.labeled needs {module}, which is not installed: "
            f"pip install 'chunk-memo[{extra}]'") from error


# -- which output belongs to which point ----------------------------------------------
@dataclass
class _Points:
    """Outputs with their place in the view: ``index[i]`` holds, per axis, the index
    into ``coords[axis]`` of the point whose output is ``values[i]``."""

    axes: tuple
    coords: dict
    index: list
    values: list

    @property
    def is_dict(self) -> bool:
        return bool(self.values) and isinstance(self.values[0], Mapping)

    def label(self, i: int) -> dict:
        return {axis: self.coords[axis][j] for axis, j in zip(self.axes, self.index[i])}


def _collect(cache, output: Sequence, items: Sequence | None,
             chunk_keys: Sequence | None) -> _Points:
    if items is not None and chunk_keys is not None:
        raise ValueError("pass items= (run_parallel output) or chunk_keys= (run_chunks "
                         "output), not both")
    if not isinstance(output, (list, tuple)):
        raise TypeError(
            f"output must be the list returned by run or run_parallel, got "
            f"{type(output).__name__}; labeling needs the output without a collate_fn")
    points = _Points(tuple(cache.axis_order), cache.selected_axis_values(), [], [])
    view = _view_positions(cache)
    if items is not None:
        _from_items(cache, output, items, view, points)
    else:
        _from_plan(Plan(cache, chunk_keys), output, view, points)
    return points


def _view_positions(cache) -> dict[str, dict[int, int]]:
    """Per axis: grid position -> index among the view's selected values."""
    out = {}
    for axis, values in cache.grid.axis_values.items():
        chosen = cache.selected_positions.get(axis, range(len(values)))
        out[axis] = {position: i for i, position in enumerate(chosen)}
    return out


def _from_items(cache, output: Sequence, items: Sequence, view: dict, points: _Points) -> None:
    items = list(items)
    if len(items) != len(output):
        raise ValueError(
            f"items has {len(items)} entries but output has {len(output)}: pass the items "
            "given to run_parallel, in the same order")
    for item, value in zip(items, output):
        place = []
        for axis, position in zip(points.axes, _as_point(cache, item, False)):
            index = view[axis].get(position)
            if index is None:
                raise ValueError(
                    f"item {item!r} is outside this view of the cache (axis {axis!r} value "
                    f"{cache.grid.axis_values[axis][position]!r} is not selected); pass the "
                    "cache the items were run on")
            place.append(index)
        points.index.append(tuple(place))
        points.values.append(value)


def _from_plan(plan: Plan, output: Sequence, view: dict, points: _Points) -> None:
    if len(output) != len(plan):
        raise ValueError(
            f"output has {len(output)} chunk entries but this view has {len(plan)} chunks: "
            "pass run's output (without collate_fn) for this same cache view, unchanged "
            "since the run, or items= for run_parallel's output")
    storage = plan.cache.storage()
    outputs = iter(output)
    for batch in plan.batches():
        rows = storage.rows(chunk.chunk_hash for chunk in batch)
        for chunk in batch:
            chunk_output = next(outputs)
            present = _present_selection(plan, chunk, chunk_output, rows.get(chunk.chunk_hash))
            cells = list(itertools.product(*(
                [view[axis].get(position) for position in positions]
                for axis, positions in zip(points.axes, _chunk_positions(plan, chunk)))))
            points.index.extend(cells[p] for p in present)
            points.values.extend(chunk_output)


def _chunk_positions(plan: Plan, chunk) -> list:
    """Per axis, the grid positions of the chunk's values."""
    grid = plan.grid
    if chunk.ordinal is not None:
        bins = grid.geometry.bin_indices(chunk.ordinal)
        return [range(*grid.geometry.bin_range(i, b)) for i, b in enumerate(bins)]
    return [[grid.position(axis, v) for v in values] for axis, values in plan.key_of(chunk)]


def _present_selection(plan: Plan, chunk, chunk_output: Any, row) -> list[int]:
    """Positions in the chunk (row-major) of the outputs in ``chunk_output``.

    ``run`` serves a partly stored chunk as it is: only the selected points that are
    stored, so a short list is matched to the stored points through the chunk's row.
    """
    key = plan.key_of(chunk)
    if (row is not None and row.n_items is None) or not isinstance(chunk_output, list):
        raise ValueError(
            f"chunk {key!r} was stored whole (exec_fn returned "
            f"{type(chunk_output).__name__}, not a list with one output per point), so "
            "its outputs cannot be labeled by point; make exec_fn return one output per "
            "point, in cartesian order over the chunk's axis values")
    selected = range(chunk.n_points) if chunk.positions is None else list(chunk.positions)
    if len(chunk_output) == len(selected):
        return list(selected)
    if row is not None:
        present = stored_positions(row)
        stored = [p for p in selected if p in present]
        if len(stored) == len(chunk_output):
            return stored
    raise ValueError(
        f"chunk {key!r} has {len(chunk_output)} outputs for {len(selected)} selected points "
        "and they do not match its stored points; its storage changed since the run, or "
        "output is from another view: run again and label that output")


# -- values -------------------------------------------------------------------------
def _fields(points: _Points, name: str) -> dict[Any, list]:
    """Output values by variable: ``{name: values}``, or one entry per dict key."""
    if not points.is_dict:
        if name in points.axes:
            raise ValueError(f"name {name!r} is an axis of this cache; choose another name")
        for i, value in enumerate(points.values):
            if isinstance(value, Mapping):
                raise ValueError(
                    f"the output at point {points.label(i)!r} is a dict but the first "
                    "point's is not; outputs must all be dicts or all not")
        return {name: points.values} if points.values else {}
    keys = list(points.values[0])
    echoed = [k for k in keys if k in points.axes]
    fields = {k: [] for k in keys if k not in echoed}
    for i, value in enumerate(points.values):
        if not isinstance(value, Mapping):
            raise ValueError(
                f"the output at point {points.label(i)!r} is of type {type(value).__name__}, but "
                "the first point's is a dict; outputs must all be dicts or all not")
        if set(value) != set(keys):
            raise ValueError(
                f"the output at point {points.label(i)!r} has keys "
                f"{sorted(value, key=repr)}, but the first point's has "
                f"{sorted(keys, key=repr)}; dict outputs need the same keys at every point")
        label = points.label(i) if echoed else None
        for k in echoed:
            if identity.encode(value[k]) != identity.encode(label[k]):
                raise ValueError(
                    f"the output at point {label!r} has {k!r}: {value[k]!r}, which names an "
                    "axis but differs from the point's value; rename that key")
        for k, values in fields.items():
            values.append(value[k])
    return fields


def _is_array_like(np, value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return True
    if not isinstance(value, (list, tuple)):
        return False
    try:
        return np.asarray(value).dtype.kind in "biufc"
    except ValueError:  # ragged
        return False


def _dim_names(key: Any, extra_dims, points: _Points, n_extra: int) -> tuple:
    """Names of the trailing dims of ``key``'s variable, checked against its shape."""
    chosen = extra_dims.get(key) if isinstance(extra_dims, Mapping) else extra_dims
    if chosen is None:
        prefix = f"{key}_dim_" if points.is_dict else "dim_"
        return tuple(f"{prefix}{i}" for i in range(n_extra))
    names = (chosen,) if isinstance(chosen, str) else tuple(chosen)
    if len(names) != n_extra:
        where = f" under {key!r}" if points.is_dict else ""
        raise ValueError(f"extra_dims {list(names)} names {len(names)} dimensions but the "
                         f"outputs{where} have {n_extra} (array-like outputs add one each)")
    clash = [n for n in names if n in points.axes]
    if clash:
        raise ValueError(f"extra_dims {clash} are axes of this cache; choose other names")
    return names


def _dense(np, points: _Points, key: Any, values: list, flat, shape: tuple, extra_dims,
           fill_value) -> tuple[tuple, Any]:
    """``(dims, array)`` of one variable over the whole view, ``fill_value`` where absent."""
    data = _values_array(np, points, values)
    extra = data.shape[1:]
    names = _dim_names(key, extra_dims, points, len(extra))
    size = 1
    for n in shape:
        size *= n
    if len(np.unique(flat)) == size:
        dense = np.empty((size,) + extra, dtype=data.dtype)
    else:
        dense = np.full((size,) + extra, fill_value, dtype=_promote(np, data.dtype, fill_value))
    dense[flat] = data
    return points.axes + names, dense.reshape(shape + extra)


def _values_array(np, points: _Points, values: list):
    """Outputs as one array: ``(n,)`` for scalars, ``(n, *shape)`` for array-likes."""
    if not _is_array_like(np, values[0]):
        for i, value in enumerate(values):
            if _is_array_like(np, value):
                raise ValueError(
                    f"the output at point {points.label(i)!r} is array-like but the first "
                    "point's is not; outputs must all be arrays of one shape or all not")
        return _scalar_array(np, values)
    arrays = []
    first = np.asarray(values[0]).shape
    for i, value in enumerate(values):
        array = np.asarray(value) if _is_array_like(np, value) else None
        if array is None or array.shape != first:
            found = "not array-like" if array is None else f"shape {array.shape}"
            raise ValueError(
                f"the output at point {points.label(i)!r} is {found}, but the first "
                f"point's is an array of shape {first}; array outputs need one shape at "
                "every point")
        arrays.append(array)
    return np.stack(arrays)


def _scalar_array(np, values: Sequence):
    """A 1-d array of ``values``, of object dtype unless NumPy keeps each value as it is.

    NumPy would turn ``[1, "a"]`` into strings and a tuple into a row; neither is
    what the caller stored.
    """
    if not any(isinstance(v, (list, tuple, Mapping, np.ndarray)) for v in values):
        data = np.asarray(values)
        if data.dtype.kind not in "USO" or all(isinstance(v, str) for v in values):
            return data
    data = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        data[i] = value
    return data


def _promote(np, dtype, fill_value):
    """The dtype that holds both ``dtype`` values and ``fill_value``."""
    try:
        promoted = np.result_type(dtype, np.asarray(fill_value).dtype)
    except TypeError:  # e.g. str with float: no common NumPy dtype
        return np.dtype(object)
    if promoted.kind in "US" and not isinstance(fill_value, str):
        return np.dtype(object)
    return promoted


def _flat_indices(np, index: list, shape: tuple):
    """Row-major offsets in the view of the points at ``index``."""
    if not index:
        return np.zeros(0, dtype=np.intp)
    if not shape:  # a cache without axes has one point
        return np.zeros(len(index), dtype=np.intp)
    return np.ravel_multi_index(tuple(np.array(index, dtype=np.intp).T), shape)


def _column(np, pd, values: list):
    """A DataFrame column; array-like and container outputs stay whole, one per cell."""
    if any(isinstance(v, (list, tuple, Mapping, np.ndarray)) for v in values):
        return pd.Series(_scalar_array(np, values), dtype=object)
    return values
