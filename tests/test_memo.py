"""ChunkMemo wrappers: run_wrap, streaming_wrap, cache_status."""

import pytest

from chunk_memo import ChunkCache, ChunkMemo, Diagnostics


@pytest.fixture
def cache(root):
    return ChunkCache(root, {"strat": 1, "s": 3}, {"strat": ["a", "b"], "s": [1, 2, 3]},
                      verbose=0)


def test_run_wrap_with_values_indices_and_extras(cache):
    calls = []

    @ChunkMemo(cache).run_wrap()
    def exec_point(params, strat, s, extra=1):
        calls.append((strat, s, extra))
        return [(a, b, params["alpha"] * extra) for a in strat for b in s]

    params = {"alpha": 2}
    output, diag = exec_point(params, strat=["a"], s=[1, 2], extra=2)
    assert output == [[("a", 1, 4), ("a", 2, 4)]] and diag.executed_chunks == 1
    output, diag = exec_point(params, axis_indices={"strat": range(0, 1), "s": slice(0, 3)},
                              extra=2)
    assert output == [[("a", 1, 4), ("a", 2, 4), ("a", 3, 4)]] and diag.cached_chunks == 1
    output, diag = exec_point(params=params, strat="a", s=[1], extra=3)
    assert diag.executed_chunks == 1, "another extra is another cache identity"
    assert calls == [(["a"], [1, 2, 3], 2), (["a"], [1, 2, 3], 3)]
    status = exec_point.cache_status(params, axis_indices={"strat": range(0, 2)}, extra=2)
    assert len(status["cached_chunks"]) == 1 and len(status["missing_chunks"]) == 1
    assert exec_point.__name__ == "exec_point"


def test_streaming_wrap_returns_diagnostics(cache):
    @ChunkMemo(cache).streaming_wrap()
    def exec_point(params, strat, s):
        return [a + str(b) for a in strat for b in s]

    diag = exec_point({"alpha": 1}, strat=["a", "b"], s=[1, 2, 3])
    assert isinstance(diag, Diagnostics) and diag.executed_chunks == 2


def test_params_errors(cache):
    @ChunkMemo(cache).run_wrap()
    def exec_point(params, strat, s):
        return []

    with pytest.raises(ValueError, match="both"):
        exec_point({"a": 1}, params={"a": 1})
    with pytest.raises(ValueError, match="needs params"):
        exec_point(strat=["a"])
    with pytest.raises(ValueError, match="must be a dict"):
        exec_point([1, 2])
