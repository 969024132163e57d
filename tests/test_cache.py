"""ChunkCache: arguments, aliases, identity, slicing and cache_status."""

import pytest

from chunk_memo import ChunkCache, run

PARAMS = {"alpha": 0.4}
AXES = {"strat": ["a", "b"], "s": [1, 2, 3]}


def make(root, **kwargs):
    options = dict(root=root, chunk_spec={"strat": 1, "s": 2}, axis_values=AXES,
                   params=PARAMS, verbose=0)
    options.update(kwargs)
    return ChunkCache(**options)


def test_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cache = ChunkCache(axis_values={"s": [1, 2], "g": {3, 1}}, params={})
    assert cache.root == tmp_path / ".chunk_memo"
    assert cache.chunk_spec == {"g": 1, "s": 2}
    assert cache.axis_order == ("g", "s")
    assert cache.cache_version == "v1" and cache.verbose == 1


def test_aliases_and_their_conflicts(root):
    cache = ChunkCache(cache_root=root, cache_chunk_spec={"s": 1}, axis_values={"s": [1]})
    assert cache.root == root.absolute() and cache.chunk_spec == {"s": 1}
    with pytest.raises(TypeError, match="'root' or its alias 'cache_root'"):
        ChunkCache(root, cache_root=root, axis_values={"s": [1]})
    with pytest.raises(TypeError, match="'chunk_spec' or its alias"):
        ChunkCache(root, {"s": 1}, cache_chunk_spec={"s": 1}, axis_values={"s": [1]})
    with pytest.raises(TypeError, match="'cache_rot'"):
        ChunkCache(cache_rot=root, axis_values={"s": [1]})


@pytest.mark.parametrize("spec, error", [({}, KeyError), ({"strat": 1, "s": 0}, ValueError)])
def test_chunk_spec_errors(root, spec, error):
    with pytest.raises(error):
        make(root, chunk_spec=spec)


def test_identity_ignores_param_keys_naming_axes_and_dict_order(root):
    base = make(root)
    assert make(root, params={"strat": "x", "alpha": 0.4}).cache_hash == base.cache_hash
    assert make(root, params={"alpha": 0.5}).cache_hash != base.cache_hash
    assert make(root, cache_version="v2").cache_hash != base.cache_hash
    assert make(root, axis_order=["strat", "s"]).cache_hash != base.cache_hash
    assert make(root, chunk_spec={"strat": 2, "s": 2}).cache_hash != base.cache_hash


def test_set_params_refreshes_identity_and_rejects_bad_params(root):
    cache = ChunkCache(root, {"s": 1}, {"s": [1]}, verbose=0)
    cache.set_params({"alpha": 1})
    first = cache.cache_hash
    cache.set_params({"alpha": 2})
    assert cache.cache_hash != first
    with pytest.raises(TypeError, match="dict"):
        cache.set_params([("alpha", 1)])
    with pytest.raises(TypeError, match="object"):
        cache.set_params({"alpha": object()})


def test_running_without_params_is_a_clear_error(root):
    cache = ChunkCache(root, {"s": 1}, {"s": [1]}, verbose=0)
    with pytest.raises(ValueError, match="set_params"):
        run(cache, lambda params, s: s)


def test_slice_errors(root):
    cache = make(root)
    with pytest.raises(KeyError, match="'zzz'"):
        cache.slice(PARAMS, strat=["zzz"])
    with pytest.raises(IndexError):
        cache.slice(PARAMS, axis_indices={"s": 7})
    with pytest.raises(TypeError):
        cache.slice(PARAMS, axis_indices={"s": "0"})
    with pytest.raises(ValueError, match="not both"):
        cache.slice(PARAMS, axis_indices={"s": 0}, strat=["a"])
    with pytest.raises(KeyError, match="'nope'"):
        cache.slice(PARAMS, nope=[1])
    single = ChunkCache(root, {}, {}, params={}, verbose=0)
    with pytest.raises(ValueError, match="no axes"):
        single.slice({}, s=[1])


def test_slice_is_a_view_and_leaves_the_cache_whole(root):
    cache = make(root)
    view = cache.slice(PARAMS, strat="b")
    assert view.selected_axis_values() == {"strat": ["b"], "s": [1, 2, 3]}
    assert cache.selected_axis_values() == {"strat": ["a", "b"], "s": [1, 2, 3]}
    assert view.cache_hash == cache.cache_hash


def test_cache_status(root, recorder):
    cache = make(root)
    run(cache.slice(PARAMS, strat=["a"]), recorder)
    status = cache.cache_status()
    assert set(status) >= {"params", "axis_values", "axis_order", "axis_chunk_maps",
                           "total_chunks", "cached_chunks", "cached_chunk_indices",
                           "missing_chunks", "missing_chunk_indices"}
    assert status["params"] == PARAMS
    assert status["axis_order"] == ["s", "strat"]
    assert status["axis_chunk_maps"] == {"strat": {"a": 0, "b": 1}, "s": {1: 0, 2: 0, 3: 1}}
    assert status["total_chunks"] == 4
    assert status["cached_chunks"] == [(("s", (1, 2)), ("strat", ("a",))),
                                       (("s", (3,)), ("strat", ("a",)))]
    assert status["cached_chunk_indices"] == [{"s": [0, 1], "strat": [0]},
                                              {"s": [2], "strat": [0]}]
    assert len(status["missing_chunks"]) == 2
    narrowed = cache.cache_status(axis_indices={"strat": 1})
    assert narrowed["cached_chunks"] == [] and narrowed["total_chunks"] == 2
    assert cache.cache_status(s=[3])["total_chunks"] == 2


def test_chunk_hash_and_resolved_keys(root):
    cache = make(root)
    keys = cache.resolved_chunk_keys()
    assert keys[0] == (("s", (1, 2)), ("strat", ("a",)))
    assert len({cache.chunk_hash(k) for k in keys}) == 4
    assert cache.slice(PARAMS, s=[3]).resolved_chunk_keys() == [
        (("s", (3,)), ("strat", ("a",))), (("s", (3,)), ("strat", ("b",)))]


def test_callable_axis_values_are_refused(root):
    with pytest.raises(TypeError, match="callables"):
        ChunkCache(root, None, {"s": lambda: [1, 2]})


class Opaque:
    """Has no msgpack form: stored through pickle."""


def test_unpicklable_output_is_a_clear_error(root):
    class Local:
        pass

    with pytest.raises(TypeError, match="Local"):
        run(make(root), lambda params, strat, s: Local())


def test_untrusted_cache_refuses_pickled_payloads(root):
    cache = make(root)
    run(cache, lambda params, strat, s: {"obj": Opaque})
    from chunk_memo.errors import UntrustedPayloadError
    with pytest.raises(UntrustedPayloadError):
        run(make(root, trusted=False), lambda *a, **k: None)


def test_views_share_the_thread_storage_and_hasher_follows_identity(root):
    cache = make(root)
    view = cache.slice(PARAMS, strat=["a"])
    assert view.storage() is cache.storage(), "a slice must not reopen the catalog"
    hasher = cache.chunk_hasher()
    key = (("s", (1, 2)), ("strat", ("a",)))
    assert hasher.hexdigest(0) == cache.chunk_hash(key)
    other = cache.slice({"alpha": 9})
    assert other.chunk_hasher().hexdigest(0) == other.chunk_hash(key) != cache.chunk_hash(key)
    cache.extend_axis_values({"s": [4]})
    assert cache.chunk_hasher().hexdigest(1) == cache.chunk_hash(cache.grid.chunk_key(1))


def test_slices_share_what_the_grid_derived_for_their_identity(root):
    cache = make(root)
    same = cache.slice(PARAMS, strat="b")
    other = cache.slice({**PARAMS, "alpha": -1}, strat="b")
    assert same.chunk_hasher() is cache.chunk_hasher()
    assert other.chunk_hasher() is not cache.chunk_hasher()
    assert other.cache_hash != cache.cache_hash
    for view in (same, other):  # what was shared is what a fresh computation gives
        key = view.resolved_chunk_keys()[0]
        assert view.chunk_hasher().hexdigest(view.grid.ordinal_of(key)) == view.chunk_hash(key)
    before = cache.cache_hash
    cache.extend_axis_values({"s": [4]})
    assert cache.cache_hash != before
    assert len(cache.chunk_hasher().hexdigests()) == cache.grid.n_chunks
