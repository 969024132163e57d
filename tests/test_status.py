"""cache_status over large grids: run-length classes read as lists, built on demand."""

import itertools
import tracemalloc

import pytest

from chunk_memo import ChunkCache, run, status
from chunk_memo.status import ChunkList, Runs

PARAMS = {"k": 2}


def exec_fn(params, a, b):
    return [params["k"] * x + y for x in a for y in b]


def test_runs_merge_and_number_like_the_list_they_stand_for():
    runs, numbers = Runs(), []
    for start, stop in [(0, 3), (3, 5), (7, 8), (8, 8), (10, 14), (20, 21)]:
        runs.add(start, stop)
        numbers.extend(range(start, stop))
    assert len(runs.starts) == 4  # (0, 5), (7, 8), (10, 14), (20, 21)
    assert len(runs) == len(numbers) and list(runs) == numbers
    assert [runs.number(i) for i in range(len(numbers))] == numbers


def test_chunk_list_behaves_as_a_read_only_list():
    runs = Runs()
    runs.add(2, 6)
    runs.add(9, 11)
    chunks = ChunkList(runs, lambda n: ("chunk", n))
    expected = [("chunk", n) for n in (2, 3, 4, 5, 9, 10)]
    assert len(chunks) == 6 and list(chunks) == expected and chunks == expected
    assert chunks[0] == expected[0] and chunks[-1] == expected[-1] and chunks[4] == ("chunk", 9)
    assert chunks[1:5] == expected[1:5] and chunks[::-2] == expected[::-2]
    assert chunks != expected[:-1] and chunks != [*expected[:-1], ("chunk", 99)]
    with pytest.raises(IndexError, match="chunk index 6 out of range for 6 chunks"):
        chunks[6]
    with pytest.raises(IndexError):
        chunks[-7]
    assert ("chunk", 9) in chunks and ("chunk", 6) not in chunks
    assert repr(chunks) == "[('chunk', 2), ('chunk', 3), ('chunk', 4), ... (6 chunks)]"
    assert ChunkList(Runs(), str) == [] and repr(ChunkList(Runs(), str)) == "[]"


def _oracle(cache, stored_a):
    """(cached keys, missing keys) by brute force over the grid's chunk keys."""
    cached, missing = [], []
    for key in cache.resolved_chunk_keys():
        (cached if set(dict(key)["a"]) <= stored_a else missing).append(key)
    return cached, missing


def test_status_across_batches_matches_the_oracle(tmp_path, monkeypatch):
    monkeypatch.setattr(status, "STATUS_BATCH", 7)  # many batches, runs crossing them
    axes = {"a": list(range(30)), "b": list(range(4))}
    cache = ChunkCache(tmp_path, {"a": 2, "b": 1}, axes, params=PARAMS, verbose=0)
    stored_a = {0, 1, 2, 3, 8, 9, 14, 15, 16, 17, 18, 19, 28, 29}
    run(cache.slice(PARAMS, a=sorted(stored_a)), exec_fn)
    state = cache.cache_status()
    cached, missing = _oracle(cache, stored_a)
    assert state["total_chunks"] == 60
    assert state["cached_chunks"] == cached and state["missing_chunks"] == missing
    assert list(state["missing_chunks"]) == missing
    for keys, indices in [(cached, state["cached_chunk_indices"]),
                          (missing, state["missing_chunk_indices"])]:
        assert indices == [{axis: [axes[axis].index(v) for v in values] for axis, values in key}
                           for key in keys]
    view = cache.cache_status(a=[8, 9, 10], b=[1])
    assert view["cached_chunks"] == [(("a", (8, 9)), ("b", (1,)))]
    assert view["missing_chunks"] == [(("a", (10, 11)), ("b", (1,)))]
    assert view["missing_chunk_indices"] == [{"a": [10, 11], "b": [1]}]


def test_status_of_a_million_chunks_stays_small(tmp_path):
    axes = {"a": list(range(1000)), "b": list(range(1000))}
    cache = ChunkCache(tmp_path, {"a": 1, "b": 1}, axes, params=PARAMS, verbose=0)
    run(cache.slice(PARAMS, a=[999], b=[998, 999]), exec_fn)
    tracemalloc.start()
    try:
        state = cache.cache_status()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 10^6 key tuples would take hundreds of MB; batches of hashes take a few.
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.1f} MiB"
    assert state["total_chunks"] == 10**6
    assert len(state["missing_chunks"]) == 10**6 - 2
    assert state["cached_chunks"] == [(("a", (999,)), ("b", (998,))),
                                      (("a", (999,)), ("b", (999,)))]
    assert state["missing_chunks"][0] == (("a", (0,)), ("b", (0,)))
    assert state["missing_chunks"][-1] == (("a", (999,)), ("b", (997,)))
    assert state["missing_chunk_indices"][123_456] == {"a": [123], "b": [456]}
    first = list(itertools.islice(state["missing_chunks"], 3))
    assert first == [(("a", (0,)), ("b", (n,))) for n in range(3)]


def test_status_with_an_enumerator_lists_its_keys(tmp_path):
    keys = [(("a", (1, 2)),), (("a", (5,)),)]
    cache = ChunkCache(tmp_path, {"a": 2}, {"a": list(range(6))}, params=PARAMS, verbose=0,
                       cache_chunk_enumerator=lambda axis_values: keys)
    run(cache, lambda params, a: [x * 10 for x in a])
    state = cache.cache_status()
    assert state["cached_chunks"] == keys and state["missing_chunks"] == []
    assert state["cached_chunk_indices"] == [{"a": [1, 2]}, {"a": [5]}]
