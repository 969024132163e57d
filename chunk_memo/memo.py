"""ChunkMemo: a function decorated so that calling it runs through a cache.

``memo.run_wrap()`` returns ``(output, diagnostics)`` from :func:`run`;
``memo.streaming_wrap()`` returns the diagnostics of :func:`run_streaming`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from chunk_memo.runners import run, run_streaming

_NO_PARAMS = object()


class ChunkMemo:
    """Wraps functions ``fn(params, **axes, **extra)`` with a :class:`ChunkCache`.

    Examples
    --------
    >>> memo = ChunkMemo(cache)                                    # doctest: +SKIP
    >>> @memo.run_wrap()                                           # doctest: +SKIP
    ... def exec_point(params, strat, s, extra=1): ...
    >>> output, diag = exec_point(params, strat=["a"], s=[1, 2], extra=2)  # doctest: +SKIP
    """

    def __init__(self, cache) -> None:
        self.cache = cache

    def run_wrap(self, collate_fn: Callable | None = None) -> Callable[[Callable], "MemoizedFunction"]:
        return lambda fn: MemoizedFunction(self.cache, fn, streaming=False, collate_fn=collate_fn)

    def streaming_wrap(self) -> Callable[[Callable], "MemoizedFunction"]:
        return lambda fn: MemoizedFunction(self.cache, fn, streaming=True)


class MemoizedFunction:
    """A wrapped function: call it like the original, with axis values as lists.

    Axis arguments are single values or lists (or ``axis_indices``); other keyword
    arguments join the memo params (so a different value is another cache) and are
    passed on to the function.
    """

    def __init__(self, cache, fn: Callable, streaming: bool, collate_fn: Callable | None = None):
        self.cache = cache
        self.fn = fn
        self.streaming = streaming
        self.collate_fn = collate_fn
        functools.update_wrapper(self, fn)

    def __call__(self, params: Any = _NO_PARAMS, /, **kwargs: Any) -> Any:
        view = self._view(params, kwargs)
        if self.streaming:
            return run_streaming(view, self.fn)
        return run(view, self.fn, collate_fn=self.collate_fn)

    def cache_status(self, params: Any = _NO_PARAMS, /, **kwargs: Any) -> dict:
        """:meth:`ChunkCache.cache_status` of the cache this call would use."""
        return self._view(params, kwargs).cache_status()

    def _view(self, params: Any, kwargs: dict):
        if "params" in kwargs:
            if params is not _NO_PARAMS:
                raise ValueError("params given both positionally and by keyword")
            params = kwargs.pop("params")
        if params is _NO_PARAMS:
            raise ValueError(f"{self.fn.__name__}() needs params (a dict) as first argument")
        if not isinstance(params, dict):
            raise ValueError(f"params must be a dict, got {type(params).__name__}: {params!r}")
        axis_indices = kwargs.pop("axis_indices", None)
        axes = {k: v for k, v in kwargs.items() if k in self.cache.grid.axis_values}
        extra = {k: v for k, v in kwargs.items() if k not in axes}
        return self.cache.slice({**params, **extra}, axis_indices, **axes)
