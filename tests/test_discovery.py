"""discover_caches, find_compatible_caches, load_from_cache, auto_load, exclusivity."""

import warnings

import pytest

import chunk_memo
from chunk_memo import ChunkCache, auto_load, run

PARAMS = {"alpha": 0.4}


def exec_fn(params, strat, s):
    return [{"strat": a, "s": b} for a in strat for b in s]


def broad(root, **kwargs):
    options = dict(chunk_spec={"strat": 1, "s": 3}, axis_values={"strat": ["a", "b"], "s": [1, 2, 3]},
                   params=PARAMS, verbose=0)
    options.update(kwargs)
    return ChunkCache(root, **options)


def test_discover_lists_every_cache_with_its_metadata(root):
    first = broad(root)
    second = broad(root, params={"alpha": 0.5})
    found = ChunkCache.discover_caches(root)
    assert [entry["cache_hash"] for entry in found] == [first.cache_hash, second.cache_hash]
    meta = found[0]["metadata"]
    assert meta["params"] == PARAMS
    assert meta["axis_values"] == {"strat": ["a", "b"], "s": [1, 2, 3]}
    assert meta["chunk_spec"] == {"strat": 1, "s": 3}
    assert meta["cache_version"] == "v1" and meta["axis_order"] == ["s", "strat"]
    assert meta["created_at"] > 0
    assert found[0]["path"] == first.cache_dir and first.cache_dir.is_dir()
    assert ChunkCache.discover_caches(root / "empty") == []


def test_find_compatible_by_each_criterion(root):
    a = broad(root)
    b = broad(root, chunk_spec={"strat": 2, "s": 1})
    c = broad(root, params={"alpha": 0.5}, cache_version="v2")
    find = ChunkCache.find_compatible_caches

    def hashes(**criteria):
        return {entry["cache_hash"] for entry in find(root, **criteria)}

    assert hashes() == {a.cache_hash, b.cache_hash, c.cache_hash}
    assert hashes(params=PARAMS) == {a.cache_hash, b.cache_hash}
    assert hashes(chunk_spec={"strat": 2, "s": {"size": 1}}) == {b.cache_hash}
    assert hashes(cache_version="v2") == {c.cache_hash}
    assert hashes(axis_values={"s": [1, 2, 3], "strat": ["a", "b"]}) == {
        a.cache_hash, b.cache_hash, c.cache_hash}
    assert hashes(axis_values={"strat": ["a"], "s": [1, 2, 3]}) == set()
    assert hashes(axis_order=["strat", "s"]) == set()
    assert hashes(params={"alpha": 0.4}, axis_values={"strat": ["a"]}, allow_superset=True) == {
        a.cache_hash, b.cache_hash}
    assert hashes(params={"alpha": 0.4, "strat": "b"}, axis_values={"s": [2]},
                  allow_superset=True) == {a.cache_hash, b.cache_hash}
    assert hashes(params={"alpha": 0.4, "strat": "z"}, axis_values={"s": [2]},
                  allow_superset=True) == set()
    assert hashes(params={"alpha": 0.4}, axis_values={"s": [4]}, allow_superset=True) == set()


def test_load_from_cache(root):
    cache = broad(root)
    run(cache, exec_fn)
    loaded = ChunkCache.load_from_cache(root, cache.cache_hash, verbose=0, collate_fn=len)
    assert loaded.cache_hash == cache.cache_hash and loaded.params == PARAMS
    output, diag = run(loaded, exec_fn)
    assert output == 2 and diag.cached_chunks == 2
    with pytest.raises(FileNotFoundError, match="0" * 32):
        ChunkCache.load_from_cache(root, "0" * 32)


def test_auto_load_finds_or_creates(root):
    created = auto_load(root, params=PARAMS, axis_values={"strat": ["a"], "s": [1, 2]}, verbose=0)
    assert created.chunk_spec == {"strat": 1, "s": 1}
    again = chunk_memo.auto_load(root, PARAMS, axis_values={"strat": ["a"], "s": [1, 2]}, verbose=0)
    assert again.cache_hash == created.cache_hash
    only = ChunkCache.auto_load(root, PARAMS, verbose=0)
    assert only.cache_hash == created.cache_hash
    auto_load(root, PARAMS, axis_values={"strat": ["b"]}, verbose=0)
    with pytest.raises(ValueError, match="found 2"):
        auto_load(root, PARAMS)
    with pytest.raises(ValueError, match="found 0"):
        auto_load(root, {"alpha": 9})


def test_auto_load_superset_serves_the_subset_without_executing(root):
    """The README's example."""
    cache = broad(root)
    output1, diag1 = run(cache, exec_fn)
    assert diag1.executed_chunks == 2
    memo_a = auto_load(root, params=PARAMS, axis_values={"strat": ["a"]}, allow_superset=True,
                       verbose=0)
    memo_a.set_params(PARAMS)
    calls = []
    output2, diag2 = run(memo_a, lambda *a, **k: calls.append(1))
    assert diag2.cached_chunks == 1 and diag2.executed_chunks == 0 and not calls
    assert output2 == [[{"strat": "a", "s": 1}, {"strat": "a", "s": 2}, {"strat": "a", "s": 3}]]
    fixed = ChunkCache.auto_load(root, params={"alpha": 0.4, "strat": "b"},
                                 axis_values={"s": [2, 3]}, allow_superset=True, verbose=0)
    output3, diag3 = run(fixed, lambda *a, **k: calls.append(1))
    assert output3 == [[{"strat": "b", "s": 2}, {"strat": "b", "s": 3}]] and not calls


def test_exclusive_refuses_equal_and_overlapping_caches(root):
    cache = broad(root)
    with pytest.raises(ValueError, match=cache.cache_hash):
        broad(root, chunk_spec={"strat": 2, "s": 1}, exclusive=True)
    subset = broad(root, axis_values={"strat": ["a"], "s": [1, 2, 3]}, exclusive=True)
    run(subset, exec_fn)
    with pytest.raises(ValueError, match="strict superset"):
        broad(root, axis_values={"strat": ["a", "b", "c"], "s": [1, 2, 3]}, exclusive=True)
    broad(root, params={"alpha": 1.0}, exclusive=True)


def test_warn_on_overlap(root):
    broad(root)
    with pytest.warns(UserWarning, match="partially overlapping"):
        broad(root, axis_values={"strat": ["b", "c"], "s": [1, 2, 3]}, warn_on_overlap=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        broad(root, axis_values={"strat": ["x"], "s": [1, 2, 3]}, warn_on_overlap=True)


def test_load_from_cache_with_unreadable_metadata_is_a_value_error(root):
    import sqlite3

    cache = broad(root)
    with sqlite3.connect(root / "catalog.sqlite") as con:
        con.execute("UPDATE caches SET metadata = ? WHERE cache_hash = ?",
                    (b"\xc1 not msgpack", cache.cache_hash))
    with pytest.raises(ValueError, match=cache.cache_hash):
        ChunkCache.load_from_cache(root, cache.cache_hash)


def test_catalog_url_from_the_environment(root, tmp_path, monkeypatch):
    elsewhere = tmp_path / "shared-catalog.sqlite"
    monkeypatch.setenv("CHUNK_MEMO_CATALOG_URL", f"sqlite:///{elsewhere}")
    cache = broad(root)
    run(cache, exec_fn)
    assert elsewhere.is_file() and not (root / "catalog.sqlite").exists()
    assert [c["cache_hash"] for c in ChunkCache.discover_caches(root)] == [cache.cache_hash]
    monkeypatch.delenv("CHUNK_MEMO_CATALOG_URL")
    explicit = broad(root, catalog_url=f"sqlite:///{elsewhere}")
    assert run(explicit, exec_fn)[1].cached_chunks == 2
