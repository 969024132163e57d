"""run_parallel: point-level work through a map function, stored by chunk."""

import functools

import pytest

from chunk_memo import ChunkCache, run, run_parallel
from chunk_memo import runners_parallel

PARAMS = {"alpha": 2}


def point_fn(params, strat, s):
    return f"{strat}{s * params['alpha']}"


def make(root, **kwargs):
    options = dict(chunk_spec={"strat": 1, "s": 2}, axis_values={"strat": ["a", "b"], "s": [1, 2, 3]},
                   params=PARAMS, verbose=0, leases=False,
                   axis_order=["strat", "s"])
    options.update(kwargs)
    return ChunkCache(root, **options)


class CountingMap:
    """A map_fn that records what it was asked to compute."""

    def __init__(self):
        self.items = []

    def __call__(self, func, items):
        for item in items:
            self.items.append(item)
            yield func(item)


def test_items_as_dicts_tuples_and_scalars_in_item_order(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    mapper = CountingMap()
    output, diag = run_parallel([{"s": 3, "strat": "b"}, ("a", 1), {"strat": "a", "s": 2}],
                                exec_fn=exec_fn, cache=cache, map_fn=mapper)
    assert output == ["b6", "a2", "a4"]
    assert len(mapper.items) == 3 and diag.executed_chunks == 2 and diag.total_chunks == 2
    one_axis = ChunkCache(root, {"s": 2}, {"s": [1, 2, 3]}, params=PARAMS, verbose=0,
                          leases=False)
    output, _ = run_parallel([3, 1], exec_fn=lambda s: s * 10, cache=one_axis, map_fn=map)
    assert output == [30, 10]


def test_cached_items_are_loaded_locally_and_partial_chunks_merge(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    run_parallel([("a", 1)], exec_fn=exec_fn, cache=cache, map_fn=map)
    output, diag = run(cache.slice(PARAMS, strat="a", s=[1, 2]), lambda *a, **k: 1 / 0)
    assert output == [["a2"]] and diag.partial_chunks == 1
    mapper = CountingMap()
    output, diag = run_parallel([("a", 1), ("a", 2)], exec_fn=exec_fn, cache=cache, map_fn=mapper)
    assert output == ["a2", "a4"]
    assert mapper.items == [{"strat": "a", "s": 2}], "only the missing item runs"
    assert diag.merges == 1 and diag.partial_chunks == 1
    output, diag = run(cache.slice(PARAMS, strat="a", s=[1, 2]), lambda *a, **k: 1 / 0)
    assert output == [["a2", "a4"]] and diag.cached_chunks == 1


def test_what_run_parallel_stores_is_visible_to_run_and_vice_versa(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    items = [(strat, s) for strat in "ab" for s in (1, 2, 3)]
    run_parallel(items, exec_fn=exec_fn, cache=cache, map_fn=map)
    output, diag = run(cache, lambda *a, **k: 1 / 0)
    assert diag.cached_chunks == 4 and diag.executed_chunks == 0
    assert sorted(v for chunk in output for v in chunk) == sorted(exec_fn(*i) for i in items)
    other = make(root, axis_values={"strat": ["a", "c"], "s": [1, 2, 3]})
    mapper = CountingMap()
    output, _ = run_parallel([("a", 3), ("c", 1)], exec_fn=exec_fn, cache=other, map_fn=mapper)
    assert output == ["a6", "c2"] and mapper.items == [{"strat": "c", "s": 1}]


def test_flush_on_chunk_writes_each_chunk_when_its_last_item_returns(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    first_chunk = cache.chunk_hash((("strat", ("a",)), ("s", (1, 2))))
    seen = []

    def watching_map(func, items):
        for item in items:
            seen.append(bool(cache.storage().existing([first_chunk])))
            yield func(item)

    run_parallel([("a", 1), ("a", 2), ("b", 1)], exec_fn=exec_fn, cache=cache,
                 map_fn=watching_map, flush_on_chunk=True)
    assert seen == [False, False, True]


def test_return_output_false_streams_and_consumes_items_in_batches(root, monkeypatch):
    monkeypatch.setattr(runners_parallel, "ITEM_BATCH", 2)
    cache = make(root)
    calls = []

    def batched_map(func, items):
        items = list(items)
        calls.append(len(items))
        return map(func, items)

    items = ((strat, s) for strat in "ab" for s in (1, 2, 3))
    output, diag = run_parallel(items, exec_fn=functools.partial(point_fn, PARAMS),
                                cache=cache, map_fn=batched_map, return_output=False)
    assert output is None and calls == [2, 2, 2]
    assert diag.max_parallel_items == 2
    assert run(cache, lambda *a, **k: 1 / 0)[1].cached_chunks == 4


def test_extend_cache_grows_axes_in_place(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    with pytest.raises(KeyError, match="extend_cache"):
        run_parallel([("a", 9)], exec_fn=exec_fn, cache=cache, map_fn=map)
    output, _ = run_parallel([("a", 9), ("z", 1)], exec_fn=exec_fn, cache=cache, map_fn=map,
                             extend_cache=True)
    assert output == ["a18", "z2"]
    assert cache.axis_values == {"strat": ["a", "b", "z"], "s": [1, 2, 3, 9]}
    assert cache.cache_hash in [c["cache_hash"] for c in ChunkCache.discover_caches(root)]


def test_default_map_fn_is_a_process_pool(root):
    cache = make(root)
    output, diag = run_parallel([("a", 1), ("b", 3)], exec_fn=functools.partial(point_fn, PARAMS),
                                cache=cache)
    assert output == ["a2", "b6"] and diag.executed_chunks == 2


def test_exec_fn_error_keeps_finished_items_and_propagates(root):
    cache = make(root)

    def fragile(strat, s):
        if s == 3:
            raise ArithmeticError("s=3 is cursed")
        return s

    with pytest.raises(ArithmeticError, match="cursed"):
        run_parallel([("a", 1), ("a", 2), ("a", 3)], exec_fn=fragile, cache=cache, map_fn=map)
    mapper = CountingMap()
    output, _ = run_parallel([("a", 1), ("a", 2)], exec_fn=fragile, cache=cache, map_fn=mapper)
    assert output == [1, 2] and mapper.items == []


def test_bad_items_and_arguments(root):
    cache = make(root)
    exec_fn = functools.partial(point_fn, PARAMS)
    with pytest.raises(KeyError, match="exactly the axes"):
        run_parallel([{"strat": "a"}], exec_fn=exec_fn, cache=cache, map_fn=map)
    with pytest.raises(ValueError, match="one value per axis"):
        run_parallel([("a", 1, 2)], exec_fn=exec_fn, cache=cache, map_fn=map)
    with pytest.raises(TypeError, match="scalar item"):
        run_parallel(["a"], exec_fn=exec_fn, cache=cache, map_fn=map)
    with pytest.raises(TypeError, match="bogus"):
        run_parallel([], exec_fn=exec_fn, cache=cache, map_fn=map, bogus=1)


def test_overrides(root):
    cache = make(root)
    seen = []

    def chunk_hash(key):
        seen.append(key)
        return cache.chunk_hash(key)

    run_parallel([("a", 1)], exec_fn=functools.partial(point_fn, PARAMS), cache=cache,
                 map_fn=map, chunk_hash=chunk_hash)
    assert seen == [(("strat", ("a",)), ("s", (1, 2)))]
    with pytest.warns(UserWarning, match="load_chunk_index"):
        run_parallel([("a", 1)], exec_fn=point_fn, cache=cache, map_fn=map,
                     load_chunk_index=lambda: {})
