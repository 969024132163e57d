"""Ours, the published chunk-memo 0.1.5 and joblib.Memory behind one small interface.

Every scenario is written once against :class:`Implementation`; each subclass
speaks its own library's API and imports only that library (the joblib virtual
environment has no chunk_memo, the 0.1.5 one has no joblib).

**Ours and 0.1.5** differ in five places that matter here (0.1.5 read from its
wheel: ``cache.py``, ``runners.py``, ``memo.py``, ``identity.py``):

- **Params.**  0.1.5's ``ChunkCache`` takes no ``params``; it takes a ``cache_id``
  and ``metadata``.  Its own ``ChunkMemo.cache_for_params`` derives them as
  ``params_to_cache_id(params)`` and ``{"params": params}``; :class:`V015` does the
  same.  Ours takes ``params=`` directly.
- **exec_fn.**  0.1.5's ``run`` calls ``exec_fn(**point)`` once per *point* with
  single values (its ``_execute_chunk_items``), with params bound beforehand
  (``ChunkMemo`` uses ``functools.partial``).  Ours calls ``exec_fn(params, **axes)``
  once per *chunk* with lists.  Both compute the same value per point,
  ``a * params["k"] + b``, each in the shape its library calls.
- **slice.**  0.1.5's ``slice(axis_indices=None, **axes)`` takes no params (the
  cache_id fixes them); ours is ``slice(params, axis_indices=None, **axes)``.
- **output.**  0.1.5 flattens the chunk outputs into one list of points; ours
  returns one list per chunk.  :meth:`Implementation.flat` makes both a flat list,
  outside any timed phase.
- **Discovery.**  Ours records a cache in its catalog when the cache is constructed
  with params (``set_params`` calls ``register``).  0.1.5 writes a cache's
  ``metadata.json`` only through ``write_metadata()``, which its ``run`` calls
  first; registering a cache there means constructing it and calling that.  Its
  ``discover_caches(root)`` lists the root's directories; its
  ``find_compatible_caches`` matches a ``cache_id`` rather than params, so
  :class:`V015` passes ``params_to_cache_id(params)`` (exact params, as ours);
  its ``auto_load`` is ``ChunkMemo.auto_load`` and returns a ``ChunkMemo``, whose
  ``cache_for_params(params)`` hands back the (sliced) cache it loaded.

Both chunk-memos grow an axis in place with ``extend_axis_values({axis: values})``.

**joblib.Memory** memoizes a function by its arguments, so the grid is cut into
chunks here and one memoized function computes a whole chunk:
:func:`joblib_chunk(params, a, b) <joblib_chunk>` with ``a`` and ``b`` the chunk's
value lists, as ours calls exec_fn.  A "cache" is a :class:`JoblibGrid`: the
memoized function plus the axis values, chunk sizes, params and an optional
selection.  Its ``run`` calls the memoized function for every chunk that holds a
selected point (joblib loads the stored result or computes and stores it) and keeps
the selected points of each chunk's output, giving ours' output shape.  Status is
``check_call_in_cache`` per chunk; a slice only records the selection; extending an
axis builds a new grid with the values appended (chunks whose value lists are
unchanged hash to the same arguments, so joblib finds them).  joblib has no notion
of a cache's metadata, so discovery is not available.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import importlib.metadata
import itertools
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Iterator, Mapping

AXES = ("a", "b")  # every scenario uses these two axes; sorted, so this is axis order


class NotAvailable(Exception):
    """The library has nothing that does what a scenario measures (reported as n/a)."""


def chunk_bins(axis_values: Mapping[str, list], chunk_spec: Mapping[str, int]
               ) -> Iterator[dict[str, list]]:
    """The chunks of a grid as ``{axis: values}``, in the libraries' chunk order."""
    per_axis = [
        [axis_values[axis][i:i + chunk_spec[axis]]
         for i in range(0, len(axis_values[axis]), chunk_spec[axis])]
        for axis in AXES
    ]
    for combo in itertools.product(*per_axis):
        yield dict(zip(AXES, combo))


def chunk_key(chunk: Mapping[str, list]) -> tuple:
    return tuple((axis, tuple(chunk[axis])) for axis in AXES)


class Implementation:
    """One library under test; ``points_computed`` counts exec_fn's points.

    ``exec_name`` names the method the library calls (``coop`` wraps it to log
    executions); ``unavailable`` maps a scenario to why this library cannot run it.
    """

    name = ""
    module = "chunk_memo"
    distribution = "chunk-memo"
    exec_name = "exec_chunk"
    unavailable: dict[str, str] = {}

    def __init__(self) -> None:
        self.lib = importlib.import_module(self.module)
        self.points_computed = 0
        self.chunks_computed = 0

    def describe(self) -> dict[str, str]:
        """Which library this process imported (the caller checks it is the right one)."""
        return {
            "impl": self.name,
            "version": importlib.metadata.version(self.distribution),
            "module": str(Path(self.lib.__file__).resolve().parent),
        }

    def require(self, scenario: str) -> None:
        if scenario in self.unavailable:
            raise NotAvailable(self.unavailable[scenario])

    # The trivial exec_fn, per chunk with lists (ours, joblib); V015 works per point.
    def exec_chunk(self, params: dict, a: list, b: list) -> list:
        self.points_computed += len(a) * len(b)
        self.chunks_computed += 1
        k = params["k"]
        return [x * k + y for x in a for y in b]

    def exec_without_cache(self, axis_values: dict, chunk_spec: dict, params: dict) -> None:
        """Call the trivial exec_fn over the grid's chunks the way the library calls it."""
        for chunk in chunk_bins(axis_values, chunk_spec):
            self.exec_chunk(params, **chunk)

    def make_cache(self, root: Path, axis_values: dict, chunk_spec: dict, params: dict) -> Any:
        raise NotImplementedError

    def run(self, cache: Any) -> tuple[Any, Any]:
        """``(output, diagnostics)`` of the library's ``run`` with the trivial exec_fn."""
        raise NotImplementedError

    def status(self, cache: Any) -> dict:
        """The library's ``cache_status()``: ``total_chunks``, ``cached_chunks``, ..."""
        return cache.cache_status()

    def slice(self, cache: Any, params: dict, **axes: Any) -> Any:
        raise NotImplementedError

    def extend(self, cache: Any, new_values: dict[str, list]) -> Any:
        cache.extend_axis_values(new_values)
        return cache

    def flat(self, output: Any) -> list:
        return list(itertools.chain.from_iterable(output))

    # Discovery (the ``discovery`` scenario).
    def register(self, root: Path, axis_values: dict, chunk_spec: dict, params: dict) -> None:
        """Record a cache under ``root`` the way the library's own first use does."""
        raise NotImplementedError

    def discover(self, root: Path) -> list:
        return self.lib.ChunkCache.discover_caches(root)

    def find(self, root: Path, params: dict) -> list:
        raise NotImplementedError

    def auto_load(self, root: Path, params: dict, axis_values: dict) -> Any:
        """The cache for ``params`` holding ``axis_values``, sliced to them (allow_superset)."""
        raise NotImplementedError


class Ours(Implementation):
    """chunk-memo from this repository (the editable install of the main Python)."""

    name = "ours"

    def make_cache(self, root, axis_values, chunk_spec, params):
        return self.lib.ChunkCache(root=root, chunk_spec=chunk_spec, axis_values=axis_values,
                                   params=params, verbose=0)

    def run(self, cache):
        return self.lib.run(cache, self.exec_chunk)

    def slice(self, cache, params, **axes):
        return cache.slice(params, **axes)

    def register(self, root, axis_values, chunk_spec, params):
        self.make_cache(root, axis_values, chunk_spec, params)  # construction registers

    def find(self, root, params):
        return self.lib.ChunkCache.find_compatible_caches(root, params=params)

    def auto_load(self, root, params, axis_values):
        return self.lib.ChunkCache.auto_load(root, params, axis_values=axis_values,
                                             allow_superset=True, verbose=0)


class V015(Implementation):
    """chunk-memo 0.1.5 from PyPI (imported inside its own virtual environment)."""

    name = "v015"
    exec_name = "exec_point"

    def __init__(self) -> None:
        super().__init__()
        self._params: dict | None = None

    def exec_point(self, params: dict, a: Any, b: Any) -> Any:
        self.points_computed += 1
        return a * params["k"] + b

    def exec_without_cache(self, axis_values, chunk_spec, params):
        point = functools.partial(self.exec_point, params)
        for chunk in chunk_bins(axis_values, chunk_spec):
            for x in chunk["a"]:
                for y in chunk["b"]:
                    point(a=x, b=y)

    def make_cache(self, root, axis_values, chunk_spec, params):
        self._params = params
        return self.lib.ChunkCache(root=root, chunk_spec=chunk_spec, axis_values=axis_values,
                                   cache_id=self.lib.params_to_cache_id(params),
                                   metadata={"params": params}, verbose=0)

    def run(self, cache):
        return self.lib.run(cache, functools.partial(self.exec_point, self._params))

    def slice(self, cache, params, **axes):
        return cache.slice(**axes)

    def flat(self, output):
        return list(output)

    def register(self, root, axis_values, chunk_spec, params):
        self.make_cache(root, axis_values, chunk_spec, params).write_metadata()

    def find(self, root, params):
        return self.lib.ChunkCache.find_compatible_caches(
            root, cache_id=self.lib.params_to_cache_id(params))

    def auto_load(self, root, params, axis_values):
        memo = self.lib.auto_load(root, params, axis_values=axis_values, allow_superset=True,
                                  verbose=0)
        return memo.cache_for_params(params)


# -- joblib.Memory --------------------------------------------------------------------

_ACTIVE: "Joblib | None" = None  # the adapter whose exec_chunk joblib_chunk calls


def joblib_chunk(params: dict, a: list, b: list) -> list:
    """The function joblib.Memory memoizes: one whole chunk, like ours' exec_fn.

    Module level, because joblib keys its store by the function's module, name and
    source; it forwards to the active adapter so that points can be counted (and
    ``coop`` can log them) without changing this function's code.
    """
    return _ACTIVE.exec_chunk(params, a=a, b=b)


@dataclasses.dataclass(frozen=True)
class JoblibGrid:
    """A grid over one joblib store: what the chunk-memo cache objects hold."""

    fn: Any  # joblib's MemorizedFunc around joblib_chunk
    axis_values: dict[str, list]
    chunk_spec: dict[str, int]
    params: dict
    positions: dict[str, dict]  # axis -> {value: position}
    selected: dict[str, list] | None = None  # a slice: the requested values per axis

    def chunks(self) -> Iterator[dict[str, list]]:
        """The chunks holding a selected point (all of them without a selection)."""
        per_axis = []
        for axis in AXES:
            values, size = self.axis_values[axis], self.chunk_spec[axis]
            if self.selected is None or axis not in self.selected:
                starts = range(0, len(values), size)
            else:
                starts = sorted({self.positions[axis][v] // size * size
                                 for v in self.selected[axis]})
            per_axis.append([values[s:s + size] for s in starts])
        for combo in itertools.product(*per_axis):
            yield dict(zip(AXES, combo))


class Joblib(Implementation):
    """joblib.Memory around a per-chunk function (imported inside its own virtual environment)."""

    name = "joblib"
    module = "joblib"
    distribution = "joblib"
    unavailable = {"discovery": "no catalog: joblib keys results by function and arguments"}

    def __init__(self) -> None:
        global _ACTIVE
        super().__init__()
        _ACTIVE = self

    def make_cache(self, root, axis_values, chunk_spec, params):
        memory = self.lib.Memory(str(root), verbose=0)
        values = {axis: list(axis_values[axis]) for axis in AXES}
        return JoblibGrid(memory.cache(joblib_chunk), values, dict(chunk_spec), dict(params),
                          {axis: {v: i for i, v in enumerate(values[axis])} for axis in AXES})

    def run(self, grid):
        computed_before = self.chunks_computed
        output = []
        for chunk in grid.chunks():
            result = grid.fn(grid.params, chunk["a"], chunk["b"])
            if grid.selected is not None:
                wanted = {axis: set(grid.selected.get(axis, chunk[axis])) for axis in AXES}
                n_b = len(chunk["b"])
                result = [result[i * n_b + j]
                          for i, x in enumerate(chunk["a"]) if x in wanted["a"]
                          for j, y in enumerate(chunk["b"]) if y in wanted["b"]]
            output.append(result)
        executed = self.chunks_computed - computed_before
        return output, SimpleNamespace(executed_chunks=executed,
                                       cached_chunks=len(output) - executed)

    def status(self, grid):
        cached, missing = [], []
        for chunk in grid.chunks():
            stored = grid.fn.check_call_in_cache(grid.params, chunk["a"], chunk["b"])
            (cached if stored else missing).append(chunk_key(chunk))
        return {"total_chunks": len(cached) + len(missing), "cached_chunks": cached,
                "missing_chunks": missing}

    def slice(self, grid, params, **axes):
        selected = {axis: list(v) if isinstance(v, (list, tuple)) else [v]
                    for axis, v in axes.items()}
        return dataclasses.replace(grid, selected=selected)

    def extend(self, grid, new_values):
        values = {axis: grid.axis_values[axis]
                  + [v for v in new_values.get(axis, ()) if v not in grid.positions[axis]]
                  for axis in AXES}
        return dataclasses.replace(
            grid, axis_values=values,
            positions={axis: {v: i for i, v in enumerate(values[axis])} for axis in AXES})


IMPLEMENTATIONS = {cls.name: cls for cls in (Ours, V015, Joblib)}
