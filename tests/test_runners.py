"""run, run_streaming, run_chunks: what is executed, reused, returned and stored."""

import subprocess
import sys
import textwrap

import pytest

from chunk_memo import ChunkCache, Diagnostics, run, run_chunks, run_chunks_streaming, run_streaming

PARAMS = {"alpha": 0.4}
AXES = {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}
SPEC = {"strat": 1, "s": 3}


def make(root, **kwargs):
    options = dict(root=root, chunk_spec=SPEC, axis_values=AXES, params=PARAMS, verbose=0)
    options.update(kwargs)
    return ChunkCache(**options)


def point(strat, s):
    return {"alpha": 0.4, "s": s, "strat": strat}


def test_first_run_executes_everything_and_rerun_reuses_it(root, recorder):
    output, diag = run(make(root), recorder)
    assert diag.total_chunks == 4 and diag.executed_chunks == 4 and diag.cached_chunks == 0
    assert output[0] == [point("aaa", 1), point("aaa", 2), point("aaa", 3)]
    assert sorted(p["s"] for chunk in output for p in chunk) == [1, 1, 2, 2, 3, 3, 4, 4]
    again, diag2 = run(make(root), recorder)
    assert (diag2.executed_chunks, diag2.cached_chunks) == (0, 4)
    assert again == output
    assert recorder.points == 8


def test_slice_runs_whole_missing_chunks_and_returns_only_the_selection(root, recorder):
    cache = make(root)
    output, diag = run(cache.slice(PARAMS, strat=["aaa"], s=[2, 4]), recorder)
    assert output == [[point("aaa", 2)], [point("aaa", 4)]]
    assert recorder.calls == [{"s": [1, 2, 3], "strat": ["aaa"]}, {"s": [4], "strat": ["aaa"]}]
    _, diag = run(cache, recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 2)


def test_slice_by_index(root, recorder):
    cache = make(root)
    output, _ = run(cache.slice(PARAMS, axis_indices={"strat": range(0, 1), "s": slice(0, 3)}),
                    recorder)
    assert output == [[point("aaa", 1), point("aaa", 2), point("aaa", 3)]]


def test_collate_fn_from_cache_and_from_run(root, recorder):
    cache = make(root, collate_fn=lambda chunks: sum(len(c) for c in chunks))
    assert run(cache, recorder)[0] == 8
    assert run(cache, recorder, collate_fn=len)[0] == 4


def test_run_streaming_keeps_nothing_and_stores_everything(root, recorder):
    diag = run_streaming(make(root), recorder)
    assert isinstance(diag, Diagnostics)
    assert (diag.executed_chunks, diag.stream_flushes, diag.max_stream_items) == (4, 4, 3)
    _, diag = run(make(root), recorder)
    assert diag.cached_chunks == 4 and diag.executed_chunks == 0


def test_run_chunks_over_explicit_keys(root, recorder):
    cache = make(root)
    keys = cache.resolved_chunk_keys()
    assert len(keys) == 4
    output, diag = run_chunks(keys[:2], recorder, cache=cache)
    assert diag.total_chunks == 2 and len(output) == 2
    diag = run_chunks_streaming(keys, recorder, cache=cache)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 2)
    with pytest.raises(TypeError, match="cache"):
        run_chunks(keys, recorder)


def test_exception_keeps_finished_chunks_and_propagates_unchanged(root, recorder):
    class Boom(RuntimeError):
        pass

    def flaky(params, strat, s):
        if strat == ["bb"] and s == [4]:
            raise Boom("chunk 4 failed")
        return recorder(params, strat=strat, s=s)

    with pytest.raises(Boom, match="chunk 4 failed"):
        run(make(root), flaky)
    assert len(recorder.calls) == 3
    _, diag = run(make(root), recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (1, 3)


def test_output_of_wrong_length_is_stored_whole(root):
    def summary(params, strat, s):
        return {"n": len(s), "first": s[0]}

    cache = make(root)
    output, _ = run(cache, summary)
    assert output[0] == {"n": 3, "first": 1}
    calls = []
    again, diag = run(cache.slice(PARAMS, s=[2]), lambda *a, **k: calls.append(1))
    assert diag.cached_chunks == 2 and not calls
    assert again == [{"n": 3, "first": 1}, {"n": 3, "first": 1}]


def test_singleton_cache(root):
    calls = []

    def fn(params):
        calls.append(params)
        return params["x"] * 2

    cache = ChunkCache(root, chunk_spec={}, axis_values={}, params={"x": 21}, verbose=0)
    assert run(cache, fn)[0] == [42]
    assert run(cache, fn)[0] == [42]
    assert len(calls) == 1


def test_axis_fixed_as_param_reaches_exec_fn(root):
    def fn(params, s, strat):
        return [f"{strat}-{v}" for v in s]

    cache = ChunkCache(root, {"s": 2}, {"s": [1, 2]}, params={"strat": "a", "alpha": 1}, verbose=0)
    assert run(cache, fn)[0] == [["a-1", "a-2"]]


def test_an_unhashable_callable_with_a_fixed_axis_is_bound_too(root):
    class Labeller:
        __hash__ = None  # compares by value: cannot be remembered by identity

        def __eq__(self, other):
            return isinstance(other, Labeller)

        def __call__(self, params, s, strat):
            return [f"{strat}-{v}" for v in s]

    cache = ChunkCache(root, {"s": 2}, {"s": [1, 2]}, params={"strat": "b", "alpha": 1}, verbose=0)
    for _ in range(2):  # computed, then served
        assert run(cache, Labeller())[0] == [["b-1", "b-2"]]


def test_extending_axis_values_reuses_unchanged_chunks(root, recorder):
    cache = make(root, chunk_spec={"strat": 1, "s": 2})
    run(cache, recorder)
    cache.extend_axis_values({"s": [5, 6, 1]})
    assert cache.axis_values["s"] == [1, 2, 3, 4, 5, 6]
    _, diag = run(cache, recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 4)
    longer = make(root, chunk_spec={"strat": 1, "s": 2},
                  axis_values={"strat": ["aaa", "bb"], "s": [1, 2, 3, 4, 5, 6, 7, 8]})
    _, diag = run(longer, recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 6)
    with pytest.raises(KeyError, match="'nope'"):
        cache.extend_axis_values({"nope": [1]})


def test_chunks_are_shared_by_caches_with_the_same_params_and_version(root, recorder):
    run(make(root), recorder)
    other = make(root, axis_values={"strat": ["bb", "zz"], "s": [1, 2, 3, 4]})
    assert other.cache_hash != make(root).cache_hash
    _, diag = run(other, recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 2)
    _, diag = run(make(root, cache_version="v2"), recorder)
    assert diag.executed_chunks == 4
    _, diag = run(make(root, params={"alpha": 0.5}), recorder)
    assert diag.executed_chunks == 4


def test_a_fresh_process_finds_what_the_first_stored(root, recorder):
    run(make(root), recorder)
    script = textwrap.dedent(f"""
        from chunk_memo import ChunkCache, run
        cache = ChunkCache({str(root)!r}, {SPEC!r}, {AXES!r}, params={PARAMS!r}, verbose=0)
        calls = []
        output, diag = run(cache, lambda *a, **k: calls.append(1))
        assert not calls and diag.cached_chunks == 4, diag
        print(output[0][0]["strat"], diag.cached_chunks)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["aaa", "4"]


def test_custom_chunk_hash_fn_and_cache_path_fn(root, recorder):
    seen = []

    def chunk_hash_fn(params, key, version):
        seen.append(key)
        return f"{abs(hash((repr(params), repr(key), version))):032x}"[-32:]

    def cache_path_fn(params, key, version, chunk_hash):
        return f"custom/{chunk_hash}.bin"

    cache = make(root, chunk_hash_fn=chunk_hash_fn, cache_path_fn=cache_path_fn)
    run(cache, recorder)
    assert seen
    assert len(list((cache.cache_dir / "custom").glob("*.bin"))) == 4
    _, diag = run(cache, recorder)
    assert diag.cached_chunks == 4
    escaping = make(root, cache_path_fn=lambda *a: "../../../../elsewhere.bin")
    with pytest.raises(ValueError, match="escapes the root"):
        run(escaping, recorder)


def test_cache_chunk_enumerator_defines_the_chunks(root, recorder):
    def enumerator(axis_values):
        return [(("s", (1, 2)), ("strat", ("aaa", "bb")))]

    cache = make(root, cache_chunk_enumerator=enumerator)
    assert cache.resolved_chunk_keys() == [(("s", (1, 2)), ("strat", ("aaa", "bb")))]
    output, diag = run(cache, recorder)
    assert diag.total_chunks == 1 and len(output[0]) == 4


def test_verbose_prints_a_summary_and_zero_prints_nothing(root, recorder, capsys):
    run(make(root, verbose=1), recorder)
    err = capsys.readouterr().err
    assert "executed 4 (8 points), reused 0" in err
    run(make(root, verbose=0), recorder)
    assert capsys.readouterr() == ("", "")
    run(make(root, verbose=2), recorder)
    assert "reused chunk" in capsys.readouterr().err


def test_partial_chunks_return_what_is_stored(root, recorder):
    cache = make(root)
    storage = cache.storage()
    plan_hash = cache.chunk_hash((("s", (1, 2, 3)), ("strat", ("aaa",))))
    storage.save_items(plan_hash, {0: "first", 2: "third"}, n_points=3)
    output, diag = run(cache.slice(PARAMS, strat="aaa", s=[1, 2, 3]), recorder)
    assert diag.partial_chunks == 1 and output == [["first", "third"]]
    output, diag = run(cache.slice(PARAMS, strat="aaa", s=[3]), recorder)
    assert diag.cached_chunks == 1 and output == [["third"]]


def test_profile_prints_phase_timings(root, recorder, capsys):
    run(make(root, verbose=1, profile=True), recorder)
    out = capsys.readouterr().out
    assert "profile total_s=" in out and "status_s=" in out and "execute_s=" in out


def test_diagnostics_say_which_chunks_were_loaded_executed_or_partial(root, recorder):
    cache = make(root)
    _, first = run(cache.slice(PARAMS, strat=["aaa"]), recorder)
    assert not first.hit and len(first.executed) == 2 and first.loaded == []
    _, second = run(cache, recorder)
    assert sorted(second.loaded) == sorted(first.executed)
    assert len(second.executed) == 2 and not set(second.executed) & set(first.executed)
    _, third = run(cache, recorder)
    assert third.hit and len(third.loaded) == 4
    assert "loaded" not in repr(third), "hash lists stay out of the printed summary"


def test_runs_mark_the_cache_as_used(root, recorder):
    cache = make(root)
    before = ChunkCache.discover_caches(root)[0]["metadata"]["last_used_at"]
    run(cache, recorder)
    after = ChunkCache.discover_caches(root)[0]["metadata"]["last_used_at"]
    assert before is None and after is not None
