"""Map functions for :func:`chunk_memo.run_parallel` on other engines.

The driver keeps the catalog; workers only run ``exec_fn`` and return results.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Iterator


def dask_map(client, **map_kwargs: Any) -> Callable[..., Iterator[Any]]:
    """A ``map_fn`` running items on a Dask cluster through ``client.map``.

    Results are taken with ``distributed.as_completed`` as workers finish them and
    handed back in item order (a result that arrives early waits in a small
    buffer), so ``run_parallel`` stores each chunk as soon as its items are in.
    Tasks are submitted with ``pure=False`` so equal items are not merged.

    Parameters
    ----------
    client : distributed.Client
    **map_kwargs
        Passed to ``client.map`` (``resources=``, ``retries=``, ...).

    Examples
    --------
    >>> from distributed import Client, LocalCluster                  # doctest: +SKIP
    >>> client = Client(LocalCluster(n_workers=2))                    # doctest: +SKIP
    >>> run_parallel(items, exec_fn=fn, cache=cache, map_fn=dask_map(client))  # doctest: +SKIP
    """
    try:
        from distributed import as_completed
    except ImportError as error:  # pragma: no cover - exercised without the extra
        raise ImportError("dask_map needs Dask's distributed scheduler: "
                          "pip install 'chunk-memo[dask]'") from error
    options = {"pure": False, **map_kwargs}

    def map_fn(func: Callable[[Any], Any], items: Iterable[Any]) -> Iterator[Any]:
        futures = client.map(func, list(items), **options)
        position = {future.key: i for i, future in enumerate(futures)}
        arrived: dict[int, Any] = {}
        next_index = 0
        try:
            for future in as_completed(futures):
                arrived[position[future.key]] = future.result()
                future.release()
                while next_index in arrived:
                    yield arrived.pop(next_index)
                    next_index += 1
        finally:
            for future in futures[next_index:]:
                future.cancel()

    return map_fn
