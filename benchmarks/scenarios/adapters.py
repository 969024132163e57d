"""Ours and the published chunk-memo 0.1.5 behind one small interface.

Every scenario is written once against :class:`Implementation`; each subclass
speaks its own library's API.  The two APIs differ in four places that matter here
(0.1.5 read from its wheel: ``cache.py``, ``runners.py``, ``memo.py``):

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

Both libraries grow an axis in place with ``extend_axis_values({axis: values})``.
"""

from __future__ import annotations

import functools
import importlib.metadata
import itertools
from pathlib import Path
from typing import Any, Iterator, Mapping

AXES = ("a", "b")  # every scenario uses these two axes; sorted, so this is axis order


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


class Implementation:
    """One library under test; ``points_computed`` counts exec_fn's points."""

    name = ""
    distribution = "chunk-memo"

    def __init__(self) -> None:
        import chunk_memo

        self.lib = chunk_memo
        self.points_computed = 0

    def describe(self) -> dict[str, str]:
        """Which chunk_memo this process imported (the caller checks it is the right one)."""
        return {
            "impl": self.name,
            "version": importlib.metadata.version(self.distribution),
            "module": str(Path(self.lib.__file__).resolve().parent),
        }

    def make_cache(self, root: Path, axis_values: dict, chunk_spec: dict, params: dict) -> Any:
        raise NotImplementedError

    def run(self, cache: Any) -> tuple[Any, Any]:
        """``(output, diagnostics)`` of the library's ``run`` with the trivial exec_fn."""
        raise NotImplementedError

    def exec_without_cache(self, axis_values: dict, chunk_spec: dict, params: dict) -> None:
        """Call the trivial exec_fn over the grid's chunks the way the library calls it."""
        raise NotImplementedError

    def slice(self, cache: Any, params: dict, **axes: list) -> Any:
        raise NotImplementedError

    def extend(self, cache: Any, new_values: dict[str, list]) -> Any:
        cache.extend_axis_values(new_values)
        return cache

    def flat(self, output: Any) -> list:
        raise NotImplementedError


class Ours(Implementation):
    """chunk-memo from this repository (the editable install of the main Python)."""

    name = "ours"

    def exec_chunk(self, params: dict, a: list, b: list) -> list:
        self.points_computed += len(a) * len(b)
        k = params["k"]
        return [x * k + y for x in a for y in b]

    def make_cache(self, root, axis_values, chunk_spec, params):
        return self.lib.ChunkCache(root=root, chunk_spec=chunk_spec, axis_values=axis_values,
                                   params=params, verbose=0)

    def run(self, cache):
        return self.lib.run(cache, self.exec_chunk)

    def exec_without_cache(self, axis_values, chunk_spec, params):
        for chunk in chunk_bins(axis_values, chunk_spec):
            self.exec_chunk(params, **chunk)

    def slice(self, cache, params, **axes):
        return cache.slice(params, **axes)

    def flat(self, output):
        return list(itertools.chain.from_iterable(output))


class V015(Implementation):
    """chunk-memo 0.1.5 from PyPI (imported inside its own virtual environment)."""

    name = "v015"

    def __init__(self) -> None:
        super().__init__()
        self._params: dict | None = None

    def exec_point(self, params: dict, a: Any, b: Any) -> Any:
        self.points_computed += 1
        return a * params["k"] + b

    def make_cache(self, root, axis_values, chunk_spec, params):
        self._params = params
        return self.lib.ChunkCache(root=root, chunk_spec=chunk_spec, axis_values=axis_values,
                                   cache_id=self.lib.params_to_cache_id(params),
                                   metadata={"params": params}, verbose=0)

    def run(self, cache):
        return self.lib.run(cache, functools.partial(self.exec_point, self._params))

    def exec_without_cache(self, axis_values, chunk_spec, params):
        point = functools.partial(self.exec_point, params)
        for chunk in chunk_bins(axis_values, chunk_spec):
            for x in chunk["a"]:
                for y in chunk["b"]:
                    point(a=x, b=y)

    def slice(self, cache, params, **axes):
        return cache.slice(**axes)

    def flat(self, output):
        return list(output)


IMPLEMENTATIONS = {cls.name: cls for cls in (Ours, V015)}
