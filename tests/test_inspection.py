"""Inspection from Python: listing, coverage, verify and prune on roots of real sweeps."""

import os
import time

import pytest

from chunk_memo import ChunkCache, inspection, maintenance, run
from chunk_memo.catalog import CacheNotFoundError
from chunk_memo.coverage import CACHED, MISSING, PARTIAL, Coverage

PARAMS = {"alpha": 0.4}
AXES = {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}
SPEC = {"strat": 1, "s": 3}


@pytest.fixture(autouse=True)
def own_catalog(monkeypatch):
    monkeypatch.delenv("CHUNK_MEMO_CATALOG_URL", raising=False)


def make(root, axes=AXES, **kwargs):
    return ChunkCache(root=root, chunk_spec=SPEC, axis_values=axes, params=PARAMS, verbose=0,
                      **kwargs)


def test_a_half_computed_sweep_as_listed_described_and_covered(root, recorder):
    sweep = make(root)
    run(sweep.slice(PARAMS, strat=["aaa"]), recorder)
    (summary,) = inspection.list_caches(root)
    assert (summary.cache_hash, summary.chunks_cached, summary.chunks_total) == (
        sweep.cache_hash, 2, 4)
    assert summary.axes == {"s": 4, "strat": 2} and summary.error is None
    details = inspection.describe_cache(root, sweep.cache_hash[:6])
    assert details.cache_hash == sweep.cache_hash and details.chunks_linked == 2
    assert details.bytes == summary.bytes > 0
    coverage = inspection.cache_coverage(root, sweep.cache_hash)
    assert coverage.shape == (2, 2)  # s bins x strat bins, axis order (s, strat)
    assert coverage.counts() == {"cached": 2, "partial": 0, "missing": 2, "total": 4}
    assert coverage.map("strat", "s").lines() == ["##", ".."]
    assert coverage.map("s", "strat").lines() == ["#.", "#."]


def test_a_chunk_with_some_items_stored_is_partial(root):
    sweep = make(root)
    key = sweep.resolved_chunk_keys()[0]
    sweep.storage().save_items(sweep.chunk_hash(key), {0: "first point"}, 3,
                               cache_hash=sweep.cache_hash)
    coverage = inspection.cache_coverage(root, sweep.cache_hash)
    assert list(coverage.states) == [PARTIAL, MISSING, MISSING, MISSING]
    assert coverage.map("s", "strat").lines() == ["+.", ".."]
    assert inspection.list_caches(root)[0].chunks_partial == 1


def test_a_map_groups_bins_beyond_its_size_and_refuses_bad_axes():
    states = bytes([CACHED] * 150 + [MISSING] * 149 + [PARTIAL])
    coverage = Coverage("c0", ("s",), {"s": tuple(range(300))}, {"s": 1}, states)
    wide = coverage.map(None, "s", max_columns=100)
    assert len(wide.column_groups) == 100 and len(wide.column_groups[0]) == 3
    assert wide.lines() == ["#" * 50 + "." * 49 + "+"]
    assert wide.label("s", wide.column_groups[-1]) == "297..299"
    with pytest.raises(KeyError, match="'t'.*\\['s'\\]"):
        coverage.map("t")
    with pytest.raises(ValueError, match="'s' twice"):
        coverage.map("s", "s")
    with pytest.raises(ValueError, match="3 chunk states"):
        Coverage("c0", ("s",), {"s": (1, 2)}, {"s": 1}, bytes(3))


def test_a_singleton_cache_is_one_cell(root):
    single = ChunkCache(root=root, axis_values={}, params={"alpha": 1}, verbose=0)
    run(single, lambda params: [params["alpha"]])
    coverage = inspection.cache_coverage(root, single.cache_hash)
    assert coverage.shape == () and coverage.map().lines() == ["#"]


def test_open_root_and_resolve_cache_name_what_is_wrong(root, recorder, tmp_path):
    with pytest.raises(inspection.RootNotFoundError, match="no such folder"):
        inspection.open_root(tmp_path / "missing")
    with pytest.raises(inspection.RootNotFoundError, match="no catalog.sqlite"):
        inspection.open_root(tmp_path)
    run(make(root), recorder)
    with pytest.raises(CacheNotFoundError, match="'feedbeef'"):
        inspection.describe_cache(root, "feedbeef")


def test_verify_reports_a_missing_file_and_repair_drops_only_its_row(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    chunk_hash = sweep.chunk_hash(sweep.resolved_chunk_keys()[3])
    row = sweep.storage().rows([chunk_hash])[chunk_hash]
    os.remove(root / row.location)
    report = maintenance.verify(root, sweep.cache_hash)
    assert not report.ok and report.checked == 4
    assert report.broken == [maintenance.ChunkFile(chunk_hash, row.location, row.byte_size,
                                                  "missing")]
    repaired = maintenance.verify(root, repair=True)
    assert repaired.repaired and repaired.dropped == [chunk_hash]
    assert sweep.storage().existing(sweep.chunk_hash(k) for k in sweep.resolved_chunk_keys()) \
        == {sweep.chunk_hash(k) for k in sweep.resolved_chunk_keys()[:3]}
    assert maintenance.verify(root).ok


def test_prune_plans_refuse_nothing_to_do_and_unknown_caches(root, recorder):
    run(make(root), recorder)
    with pytest.raises(ValueError, match="nothing to prune"):
        maintenance.plan_prune(root)
    with pytest.raises(ValueError, match="-1"):
        maintenance.plan_prune(root, older_than_days=-1)
    with pytest.raises(CacheNotFoundError, match="'feedbeef'"):
        maintenance.plan_prune(root, caches=["feedbeef"])


def test_apply_prune_keeps_chunks_a_cache_registered_after_the_plan_holds(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    plan = maintenance.plan_prune(root, caches=[sweep.cache_hash])
    assert len(plan.chunks) == 4 and plan.kept_shared == []
    late = make(root, axes={"strat": ["bb"], "s": [1, 2, 3, 4]})  # holds the 2 `bb` chunks
    done = maintenance.apply_prune(plan)
    assert done.applied and done.caches == [sweep.cache_hash]
    bb = {late.chunk_hash(key) for key in late.resolved_chunk_keys()}
    assert {c.chunk_hash for c in done.chunks} == {c.chunk_hash for c in plan.chunks} - bb
    assert set(done.kept_shared) == bb
    assert all((root / c.location).exists() != (c in done.chunks) for c in plan.chunks)
    assert not (root / "caches" / sweep.cache_hash).exists()
    assert [c.cache_hash for c in inspection.list_caches(root)] == [late.cache_hash]
    assert inspection.list_caches(root)[0].chunks_cached == 2


def test_orphans_within_a_cache_scope_and_their_grace_period(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    chunk_hash = sweep.chunk_hash(sweep.resolved_chunk_keys()[0])
    mine = root / "chunks" / f"{chunk_hash}.leftover.cmp"
    foreign = root / "chunks" / "0000.foreign.cmp"
    for orphan in (mine, foreign):
        orphan.write_bytes(b"no row points here")
        past = time.time() - 7200
        os.utime(orphan, (past, past))
    scoped = maintenance.verify(root, sweep.cache_hash)
    assert [o.location for o in scoped.orphans] == [f"chunks/{chunk_hash}.leftover.cmp"]
    assert {o.location for o in maintenance.verify(root).orphans} == {
        f"chunks/{chunk_hash}.leftover.cmp", "chunks/0000.foreign.cmp"}
    not_yet = maintenance.verify(root, repair=True, min_age=3 * 3600)
    assert not_yet.removed_orphans == [] and mine.exists()
    plan = maintenance.plan_prune(root, orphans=True, min_age=60)
    assert sorted(o.location for o in plan.orphans) == [
        "chunks/0000.foreign.cmp", f"chunks/{chunk_hash}.leftover.cmp"]
    assert plan.caches == [] and plan.chunks == [] and plan.bytes == 36
    maintenance.apply_prune(plan)
    assert not mine.exists() and not foreign.exists()
    assert maintenance.verify(root).ok


def test_disk_usage_with_unshared_chunks(root, recorder):
    run(make(root), recorder)
    usage = inspection.disk_usage(root)
    (cache,) = usage.caches
    assert (cache.chunks, cache.shared_chunks, cache.shared_bytes) == (4, 0, 0)
    assert cache.bytes == usage.recorded_bytes == usage.payload_bytes
