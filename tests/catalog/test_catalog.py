"""Conformance tests of the catalog: one ``CatalogTests`` class, run against each database.

A subclass supplies the ``catalog_url`` fixture (a fresh, empty database per test);
``TestSQLiteCatalog`` runs everything on SQLite and ``TestPostgreSQLCatalog`` on a
throwaway server.  ``TestSQLiteSpecifics`` covers what only SQLite has (pragmas, the
default file inside the root, lock retries), ``TestPostgreSQLSpecifics`` what only
the server has (isolation levels, drivers, retried conflicts).
"""

import json
import multiprocessing
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
import os
import queue
import re
import sqlite3
import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text

from _builders import cache_record, chunk_row, h, request, value_hash
from _mp_workers import claim_and_record, record_overlapping
from chunk_memo.catalog import (
    CacheNotFoundError,
    CacheRecord,
    Catalog,
    CatalogBusyError,
    CatalogVersionError,
    ChunkRow,
    LeaseState,
    dispose_engine,
    head_revision,
    upgrade_catalog,
)
from chunk_memo.catalog import chunk_index as chunk_index_module
from chunk_memo.catalog import dialects, engine as engine_module
from chunk_memo.catalog.engine import get_engine, run_transaction
from chunk_memo.catalog.migrate import downgrade, upgrade
from chunk_memo.catalog.schema import metadata

SQLITE_MAX_VARIABLES = 32766

# The sweep of the README: a function of `alpha`, swept over `strat` and `s`.
SWEEP = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3]})


class CatalogTests:
    """Every catalog query against hand-built caches and chunks."""

    #: Whether opening an older schema upgrades it (a local file) or is refused until
    #: ``upgrade_catalog`` runs (a shared server).
    upgrades_on_open = True

    def reopen_after_upgrade(self, root, url, old_revision):
        """Open a catalog left at ``old_revision``, upgrading it the backend's way."""
        if not self.upgrades_on_open:
            with pytest.raises(CatalogVersionError) as refused:
                Catalog(root, url)
            message = str(refused.value)
            assert f"'{old_revision}'" in message and f"'{head_revision()}'" in message
            assert f"python -m chunk_memo.catalog.migrate {url}" in message
            assert upgrade_catalog(url) == (old_revision, head_revision())
        return Catalog(root, url)

    # -- opening --------------------------------------------------------------

    def test_open_creates_the_head_schema(self, catalog, catalog_url):
        assert catalog.revision == head_revision() == "0003"
        with get_engine(catalog_url).connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
        assert differences == []

    def test_opening_again_is_a_no_op(self, catalog, root, catalog_url):
        catalog.register_cache(SWEEP)
        again = Catalog(root, catalog_url)
        assert again.revision == head_revision()
        assert [c.cache_hash for c in again.list_caches()] == [SWEEP.cache_hash]

    # -- caches ---------------------------------------------------------------

    def test_register_then_get_returns_the_same_record(self, catalog):
        assert catalog.register_cache(SWEEP) is True
        stored = catalog.get_cache(SWEEP.cache_hash)
        assert stored == SWEEP
        assert [axis for axis, _ in stored.axes] == ["s", "strat"]
        assert stored.axes[0][1] == ((value_hash(1), b"1"), (value_hash(2), b"2"),
                                     (value_hash(3), b"3"))
        assert stored.params == (("alpha", value_hash(0.4)),)
        assert stored.created_at <= stored.updated_at and stored.last_used_at is None

    def test_register_is_idempotent_and_refreshes_metadata(self, catalog):
        assert catalog.register_cache(SWEEP) is True
        created = catalog.get_cache(SWEEP.cache_hash).created_at
        renamed = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3]},
                               metadata=b'{"note": "renamed"}')
        assert catalog.register_cache(renamed) is False
        assert [c.metadata for c in catalog.list_caches()] == [b'{"note": "renamed"}']
        assert catalog.get_cache(SWEEP.cache_hash).created_at == created

    def test_get_unknown_cache_is_none(self, catalog):
        assert catalog.get_cache(h("nothing")) is None

    def test_singleton_cache_has_no_axes(self, catalog):
        singleton = cache_record({"alpha": 1})
        catalog.register_cache(singleton)
        assert catalog.get_cache(singleton.cache_hash) == singleton

    def test_list_caches_oldest_first(self, catalog):
        records = [cache_record({"alpha": i}, {"s": [1]}) for i in range(3)]
        for record in records:
            catalog.register_cache(record)
        assert [c.cache_hash for c in catalog.list_caches()] == [r.cache_hash for r in records]
        assert catalog.find_caches() == catalog.list_caches()

    @pytest.mark.parametrize("criterion, variants", [
        ("params_hash", [dict(params={"alpha": 1}), dict(params={"alpha": 2})]),
        ("axis_values_hash", [dict(axes={"s": [1, 2]}), dict(axes={"s": [1, 2, 3]})]),
        ("chunk_spec_hash", [dict(spec="size 1"), dict(spec="size 2")]),
        ("cache_version", [dict(version="v1"), dict(version="v2")]),
        ("axis_order_hash", [dict(order=("s", "t")), dict(order=("t", "s"))]),
    ])
    def test_find_caches_matches_each_criterion_exactly(self, catalog, criterion, variants):
        base = dict(params={"alpha": 1}, axes={"s": [1, 2], "t": [0]})
        records = [cache_record(**{**base, **variant}) for variant in variants]
        for record in records:
            catalog.register_cache(record)
        for record in records:
            found = catalog.find_caches(**{criterion: getattr(record, criterion)})
            assert [c.cache_hash for c in found] == [record.cache_hash]
        assert catalog.find_caches(**{criterion: "no such value"}) == []

    def test_find_caches_omitted_criteria_are_wildcards(self, catalog):
        a = cache_record({"alpha": 1}, {"s": [1]}, version="v1")
        b = cache_record({"alpha": 1}, {"s": [1, 2]}, version="v1")
        c = cache_record({"alpha": 1}, {"s": [1]}, version="v2")
        for record in (a, b, c):
            catalog.register_cache(record)
        by_params = catalog.find_caches(params_hash=a.params_hash)
        assert {x.cache_hash for x in by_params} == {a.cache_hash, b.cache_hash, c.cache_hash}
        both = catalog.find_caches(params_hash=a.params_hash, cache_version="v1")
        assert [x.cache_hash for x in both] == [a.cache_hash, b.cache_hash]
        three = catalog.find_caches(params_hash=a.params_hash, cache_version="v1",
                                    axis_values_hash=a.axis_values_hash)
        assert [x.cache_hash for x in three] == [a.cache_hash]

    def test_replace_axis_values_registers_the_grown_cache_and_keeps_the_old(self, catalog):
        catalog.register_cache(SWEEP)
        grown = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3, 4]})
        assert catalog.replace_axis_values(SWEEP.cache_hash, grown) is True
        assert {c.cache_hash for c in catalog.list_caches()} == {SWEEP.cache_hash,
                                                                 grown.cache_hash}
        assert catalog.get_cache(grown.cache_hash) == grown

    def test_replace_axis_values_refuses_unknown_or_different_caches(self, catalog):
        grown = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3, 4]})
        with pytest.raises(CacheNotFoundError, match=SWEEP.cache_hash):
            catalog.replace_axis_values(SWEEP.cache_hash, grown)
        catalog.register_cache(SWEEP)
        other_params = cache_record({"alpha": 0.5}, {"strat": ["a", "b"], "s": [1, 2, 3, 4]})
        with pytest.raises(ValueError, match="params_hash"):
            catalog.replace_axis_values(SWEEP.cache_hash, other_params)

    # -- superset matching ----------------------------------------------------

    def superset(self, catalog, params=None, axes=None, **kwargs):
        found = catalog.find_superset_caches(*request(params, axes), **kwargs)
        return [c.cache_hash for c in found]

    def test_superset_finds_caches_holding_all_requested_values(self, catalog):
        catalog.register_cache(SWEEP)
        assert self.superset(catalog, {"alpha": 0.4}, {"strat": ["b"], "s": [3, 1]}) == [
            SWEEP.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4}, {"strat": ["a", "b"],
                                                       "s": [1, 2, 3]}) == [SWEEP.cache_hash]

    def test_superset_takes_a_param_from_an_axis_of_the_cache(self, catalog):
        # The README's "flexible axis/param mapping": strat fixed as a param.
        catalog.register_cache(SWEEP)
        assert self.superset(catalog, {"alpha": 0.4, "strat": "a"}, {"s": [1, 2]}) == [
            SWEEP.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4, "strat": "a", "s": 2}) == [
            SWEEP.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4, "strat": "c"}, {"s": [1]}) == []

    @pytest.mark.parametrize("params, axes", [
        ({"alpha": 0.4}, {"strat": ["a"], "s": [4]}),            # a value it lacks
        ({"alpha": 0.4}, {"strat": ["a"], "s": [1], "u": [0]}),  # an axis it lacks
        ({"alpha": 0.4}, {"strat": ["a"], "s": [1], "u": []}),   # idem, no values
        ({"alpha": 0.5}, {"strat": ["a"], "s": [1]}),            # another param value
        ({"alpha": 0.4, "beta": 1}, {"strat": ["a"], "s": [1]}),  # a param it lacks
        ({}, {"strat": ["a"], "s": [1]}),                        # its param not asked
        ({"alpha": 0.4, "s": 9}, {"strat": ["a"]}),              # a param its axis lacks
    ])
    def test_superset_rejects(self, catalog, params, axes):
        catalog.register_cache(SWEEP)
        assert self.superset(catalog, params, axes) == []

    def test_superset_accepts_a_cache_with_an_axis_the_request_leaves_out(self, catalog):
        catalog.register_cache(SWEEP)
        assert self.superset(catalog, {"alpha": 0.4}, {"strat": ["a"]}) == [SWEEP.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4}) == [SWEEP.cache_hash]

    def test_superset_rejects_a_cache_computed_with_an_extra_param(self, catalog):
        extra = cache_record({"alpha": 0.4, "seed": 7}, {"strat": ["a", "b"], "s": [1, 2, 3]})
        catalog.register_cache(extra)
        catalog.register_cache(SWEEP)
        assert self.superset(catalog, {"alpha": 0.4}, {"s": [1], "strat": ["a"]}) == [
            SWEEP.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4, "seed": 7},
                             {"s": [1], "strat": ["a"]}) == [extra.cache_hash]

    def test_superset_without_params_matches_only_caches_without_params(self, catalog):
        bare = cache_record({}, {"x": [1, 2, 3]})
        with_param = cache_record({"alpha": 1}, {"x": [1, 2, 3]})
        catalog.register_cache(with_param)
        catalog.register_cache(bare)
        assert self.superset(catalog, {}, {"x": [2, 3]}) == [bare.cache_hash]
        assert self.superset(catalog, {}, {"x": [4]}) == []

    def test_superset_of_a_singleton(self, catalog):
        singleton = cache_record({"alpha": 1})
        empty = cache_record()
        catalog.register_cache(singleton)
        catalog.register_cache(empty)
        assert self.superset(catalog, {"alpha": 1}) == [singleton.cache_hash]
        assert self.superset(catalog) == [empty.cache_hash]

    def test_superset_filters_on_cache_version(self, catalog):
        v2 = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3]}, version="v2")
        catalog.register_cache(SWEEP)
        catalog.register_cache(v2)
        ask = ({"alpha": 0.4}, {"s": [1], "strat": ["a"]})
        assert self.superset(catalog, *ask) == [SWEEP.cache_hash, v2.cache_hash]
        assert self.superset(catalog, *ask, cache_version="v2") == [v2.cache_hash]
        assert self.superset(catalog, *ask, cache_version="v3") == []

    def test_superset_ignores_chunk_spec_and_returns_every_match(self, catalog):
        coarse = cache_record({"alpha": 0.4}, {"strat": ["a", "b"], "s": [1, 2, 3]}, spec="2")
        wider = cache_record({"alpha": 0.4}, {"strat": ["a", "b", "c"], "s": [0, 1, 2, 3]})
        for record in (SWEEP, coarse, wider):
            catalog.register_cache(record)
        assert self.superset(catalog, {"alpha": 0.4}, {"s": [1], "strat": ["b"]}) == [
            SWEEP.cache_hash, coarse.cache_hash, wider.cache_hash]
        assert self.superset(catalog, {"alpha": 0.4}, {"s": [0], "strat": ["c"]}) == [
            wider.cache_hash]

    def test_superset_refuses_a_key_both_param_and_axis(self, catalog):
        with pytest.raises(ValueError, match="strat"):
            catalog.find_superset_caches(*request({"strat": "a"}, {"strat": ["a"]}))

    # -- chunks ---------------------------------------------------------------

    def test_record_then_get_chunks(self, catalog):
        rows = [chunk_row(0), chunk_row(1, present=b"\x05"), chunk_row(2, n_items=None)]
        catalog.record_chunks(rows)
        stored = catalog.get_chunks([r.chunk_hash for r in rows] + [h("absent")])
        assert stored == {r.chunk_hash: r for r in rows}
        assert stored[rows[1].chunk_hash].present == b"\x05"
        assert stored[rows[2].chunk_hash].n_items is None
        assert isinstance(stored[rows[0].chunk_hash], ChunkRow)
        assert catalog.get_chunks([]) == {}

    def test_record_chunks_is_an_idempotent_upsert(self, catalog):
        rows = [chunk_row(i) for i in range(50)]
        catalog.record_chunks(rows)
        catalog.record_chunks(rows)
        assert catalog.get_chunks([r.chunk_hash for r in rows]) == {r.chunk_hash: r for r in rows}
        moved = rows[7]._replace(location="elsewhere.bin", n_present=3, present=b"\x07")
        catalog.record_chunks([moved])
        assert catalog.get_chunks([moved.chunk_hash]) == {moved.chunk_hash: moved}

    def test_record_chunks_accepts_any_iterable_in_several_batches(self, catalog, monkeypatch):
        monkeypatch.setattr(chunk_index_module, "RECORD_BATCH", 7)
        catalog.record_chunks(chunk_row(i) for i in range(30))
        assert len(catalog.existing_chunks([chunk_row(i).chunk_hash for i in range(30)])) == 30

    def test_record_chunks_names_a_malformed_row(self, catalog):
        with pytest.raises(TypeError, match="ChunkRow of 7 fields"):
            catalog.record_chunks([("only", "two")])
        with pytest.raises(ValueError, match="no location"):
            catalog.record_chunks([chunk_row(0)._replace(location=None)])

    def test_existing_chunks_beyond_the_sqlite_variable_limit(self, catalog):
        n = SQLITE_MAX_VARIABLES + 1000
        stored = [chunk_row(i) for i in range(0, 2 * n, 2)]
        catalog.record_chunks(stored)
        asked = [chunk_row(i).chunk_hash for i in range(n)]
        expected = {chunk_row(i).chunk_hash for i in range(0, n, 2)}
        assert catalog.existing_chunks(asked) == expected
        assert catalog.existing_chunks(iter(asked)) == expected

    @pytest.mark.parametrize("page", [7, chunk_index_module.SCAN_PAGE])
    def test_existing_chunks_by_scanning_the_index(self, catalog, monkeypatch, page):
        monkeypatch.setattr(chunk_index_module, "SCAN_MIN_KEYS", 10)
        monkeypatch.setattr(chunk_index_module, "SCAN_PAGE", page)
        catalog.record_chunks(chunk_row(i) for i in range(0, 60, 2))
        asked = [chunk_row(i).chunk_hash for i in range(60)]
        assert catalog.existing_chunks(asked) == {chunk_row(i).chunk_hash
                                                  for i in range(0, 60, 2)}

    def test_existing_chunks_edge_cases(self, catalog):
        catalog.record_chunks([chunk_row(0)])
        assert catalog.existing_chunks([]) == set()
        assert catalog.existing_chunks([chunk_row(0).chunk_hash] * 3) == {chunk_row(0).chunk_hash}
        assert catalog.existing_chunks(['odd "key" \\ with\tescapes']) == set()
        with pytest.raises(TypeError, match="12345"):
            catalog.existing_chunks([chunk_row(0).chunk_hash, 12345])

    def test_chunks_linked_to_a_cache(self, catalog):
        catalog.register_cache(SWEEP)
        other = cache_record({"alpha": 0.4}, {"strat": ["a"], "s": [1]})
        catalog.register_cache(other)
        catalog.record_chunks([chunk_row(0), chunk_row(1)], cache_hash=SWEEP.cache_hash)
        catalog.record_chunks([chunk_row(1)], cache_hash=other.cache_hash)  # shared chunk
        assert catalog.linked_chunks(SWEEP.cache_hash) == {chunk_row(0).chunk_hash,
                                                           chunk_row(1).chunk_hash}
        assert catalog.linked_chunks(other.cache_hash) == {chunk_row(1).chunk_hash}
        with pytest.raises(CacheNotFoundError, match=h("unknown")):
            catalog.record_chunks([chunk_row(2)], cache_hash=h("unknown"))
        with pytest.raises(CacheNotFoundError):
            catalog.linked_chunks(h("unknown"))

    def test_delete_chunks_forgets_rows_and_links(self, catalog):
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(i) for i in range(5)], cache_hash=SWEEP.cache_hash)
        gone = [chunk_row(1).chunk_hash, chunk_row(3).chunk_hash, h("never stored")]
        assert catalog.delete_chunks(gone) == 2
        left = {chunk_row(i).chunk_hash for i in (0, 2, 4)}
        assert catalog.existing_chunks([chunk_row(i).chunk_hash for i in range(5)]) == left
        assert catalog.linked_chunks(SWEEP.cache_hash) == left
        assert catalog.delete_chunks([]) == 0

    def test_touch_marks_the_cache_and_its_chunks_used(self, catalog, catalog_url):
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(0), chunk_row(1)])
        before = time.time()
        catalog.touch(SWEEP.cache_hash, [chunk_row(0).chunk_hash])
        assert catalog.get_cache(SWEEP.cache_hash).last_used_at >= before
        with get_engine(catalog_url).connect() as connection:
            used = dict(connection.execute(
                text("SELECT chunk_hash, last_used_at FROM chunks")).all())
        assert used[chunk_row(0).chunk_hash] >= before > used[chunk_row(1).chunk_hash]
        with pytest.raises(CacheNotFoundError, match=h("unknown")):
            catalog.touch(h("unknown"))

    # -- maintenance (the inspection tools) -----------------------------------

    def test_iter_chunks_walks_the_roots_rows_in_hash_order_page_by_page(
            self, catalog, other_root, catalog_url):
        catalog.record_chunks([chunk_row(i) for i in range(7)])
        Catalog(other_root, catalog_url).record_chunks([chunk_row(99)])
        rows = list(catalog.iter_chunks(page_size=3))
        assert rows == sorted(chunk_row(i) for i in range(7))
        assert list(catalog.iter_chunks()) == rows
        with pytest.raises(ValueError, match="page_size"):
            next(catalog.iter_chunks(page_size=0))

    def test_delete_cache_forgets_the_cache_and_its_links_not_its_chunks(self, catalog):
        other = cache_record({"alpha": 0.4}, {"strat": ["a"], "s": [1]})
        catalog.register_cache(SWEEP)
        catalog.register_cache(other)
        catalog.record_chunks([chunk_row(0), chunk_row(1)], cache_hash=SWEEP.cache_hash)
        catalog.record_chunks([chunk_row(1)], cache_hash=other.cache_hash)
        catalog.delete_cache(SWEEP.cache_hash)
        assert catalog.get_cache(SWEEP.cache_hash) is None
        assert [info.cache_hash for info in catalog.list_caches()] == [other.cache_hash]
        both = {chunk_row(0).chunk_hash, chunk_row(1).chunk_hash}
        assert catalog.existing_chunks(list(both)) == both
        assert catalog.linked_chunks(other.cache_hash) == {chunk_row(1).chunk_hash}
        catalog.register_cache(SWEEP)  # anew: with its axes and params, without old links
        assert catalog.get_cache(SWEEP.cache_hash) == SWEEP
        assert catalog.linked_chunks(SWEEP.cache_hash) == set()
        catalog.delete_cache(SWEEP.cache_hash)
        with pytest.raises(CacheNotFoundError, match=SWEEP.cache_hash):
            catalog.delete_cache(SWEEP.cache_hash)

    def test_delete_chunks_at_keeps_a_row_that_points_elsewhere_now(self, catalog):
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(i) for i in range(3)], cache_hash=SWEEP.cache_hash)
        catalog.record_chunks([chunk_row(1)._replace(location="rewritten.bin")])
        deleted = catalog.delete_chunks_at({
            chunk_row(0).chunk_hash: chunk_row(0).location,
            chunk_row(1).chunk_hash: chunk_row(1).location,  # stale: kept
            h("never stored"): "nowhere.bin",
        })
        assert deleted == {chunk_row(0).chunk_hash}
        left = {chunk_row(1).chunk_hash, chunk_row(2).chunk_hash}
        assert catalog.existing_chunks([chunk_row(i).chunk_hash for i in range(3)]) == left
        assert catalog.linked_chunks(SWEEP.cache_hash) == left
        assert catalog.delete_chunks_at({}) == set()

    # -- leases ---------------------------------------------------------------

    def test_claim_grants_free_chunks_and_skips_those_leased_by_a_live_owner(self, catalog):
        first = [chunk_row(i).chunk_hash for i in range(4)]
        second = [chunk_row(i).chunk_hash for i in range(2, 6)]
        before = time.time()
        assert catalog.claim_chunks(first, "A", ttl=60) == set(first)
        assert catalog.claim_chunks(second, "B", ttl=60) == set(second[2:])
        states = catalog.lease_states(first + second + [h("never claimed")])
        assert {k: s.owner for k, s in states.items()} == {
            **{k: "A" for k in first}, **{k: "B" for k in second[2:]}}
        assert isinstance(states[first[0]], LeaseState)
        assert before + 60 <= states[first[0]].expires_at <= time.time() + 60
        assert catalog.claim_chunks([], "A", ttl=60) == set()
        assert catalog.lease_states([]) == {}

    def test_an_expired_lease_is_taken_over(self, catalog):
        keys = [chunk_row(i).chunk_hash for i in range(3)]
        assert catalog.claim_chunks(keys, "crashed", ttl=0.3) == set(keys)
        assert catalog.claim_chunks(keys, "B", ttl=60) == set()
        time.sleep(0.35)  # "crashed" stopped heartbeating
        assert catalog.claim_chunks(keys, "B", ttl=60) == set(keys)
        assert {s.owner for s in catalog.lease_states(keys).values()} == {"B"}
        assert catalog.heartbeat("crashed", ttl=60) == 0  # it lost them
        assert catalog.claim_chunks(keys, "crashed", ttl=60) == set()

    def test_reclaiming_its_own_chunks_extends_the_lease(self, catalog, catalog_url):
        keys = [chunk_row(i).chunk_hash for i in range(3)]
        catalog.claim_chunks(keys, "A", ttl=0.2)
        (acquired,) = lease_column(catalog_url, "acquired_at", keys[0])
        time.sleep(0.25)
        # Expired but nobody took it over: still A's to extend (duplicates allowed).
        assert catalog.claim_chunks(keys + keys[:1], "A", ttl=60) == set(keys)
        assert catalog.lease_states(keys)[keys[0]].expires_at > time.time() + 50
        assert lease_column(catalog_url, "acquired_at", keys[0]) == [acquired]
        assert catalog.claim_chunks(keys, "B", ttl=60) == set()

    def test_recorded_chunks_are_never_claimed_and_recording_drops_leases(self, catalog):
        catalog.record_chunks([chunk_row(0)])
        keys = [chunk_row(i).chunk_hash for i in range(4)]
        assert catalog.claim_chunks(keys, "A", ttl=60) == set(keys[1:])
        # Recorded by whoever computed them, the chunks' leases go, A's included.
        catalog.record_chunks([chunk_row(1), chunk_row(2)])
        assert set(catalog.lease_states(keys)) == {keys[3]}
        assert catalog.heartbeat("A", ttl=60) == 1
        assert catalog.claim_chunks(keys, "B", ttl=0.01) == set()
        assert catalog.claim_chunks(keys, "A", ttl=60) == {keys[3]}

    def test_release_gives_back_only_the_owners_leases(self, catalog):
        mine = [chunk_row(i).chunk_hash for i in range(5)]
        theirs = [chunk_row(i).chunk_hash for i in range(5, 8)]
        catalog.claim_chunks(mine, "A", ttl=60)
        catalog.claim_chunks(theirs, "B", ttl=60)
        assert catalog.release_chunks(mine[:2] + theirs, "A") == 2
        assert catalog.claim_chunks(mine + theirs, "C", ttl=60) == set(mine[:2])
        assert catalog.release_all("A") == 3
        assert catalog.release_all("A") == 0
        assert set(catalog.lease_states(mine + theirs)) == set(mine[:2] + theirs)
        assert catalog.release_chunks([], "B") == 0

    def test_heartbeat_keeps_leases_alive_past_their_first_expiry(self, catalog):
        keys = [chunk_row(i).chunk_hash for i in range(3)]
        catalog.claim_chunks(keys, "A", ttl=0.3)
        catalog.claim_chunks([chunk_row(9).chunk_hash], "B", ttl=60)
        time.sleep(0.1)
        assert catalog.heartbeat("A", ttl=5) == 3
        time.sleep(0.3)  # past the first expiry
        assert catalog.claim_chunks(keys, "B", ttl=60) == set()
        assert all(s.expires_at > time.time() for s in catalog.lease_states(keys).values())
        assert catalog.heartbeat("nobody", ttl=5) == 0

    def test_leases_are_scoped_to_their_root(self, catalog, other_root, catalog_url):
        other = Catalog(other_root, catalog_url)
        keys = [chunk_row(i).chunk_hash for i in range(3)]
        assert catalog.claim_chunks(keys, "A", ttl=60) == set(keys)
        assert other.claim_chunks(keys, "B", ttl=60) == set(keys)  # other chunks
        assert {k: s.owner for k, s in other.lease_states(keys).items()} == dict.fromkeys(
            keys, "B")
        other.record_chunks([chunk_row(0)])  # drops only the other root's lease
        assert set(catalog.lease_states(keys)) == set(keys)
        assert catalog.heartbeat("B", ttl=60) == 0 and other.heartbeat("B", ttl=60) == 2
        assert other.release_all("A") == 0 and catalog.release_all("A") == 3

    @pytest.mark.parametrize("call, error, message", [
        (lambda c: c.claim_chunks(["x"], "", 60), ValueError, "non-empty str"),
        (lambda c: c.claim_chunks(["x"], 7, 60), TypeError, "got 7"),
        (lambda c: c.claim_chunks(["x"], "A", 0), ValueError, "positive, finite"),
        (lambda c: c.claim_chunks(["x"], "A", "60"), TypeError, "number of seconds"),
        (lambda c: c.claim_chunks(["x", 12345], "A", 60), TypeError, "12345"),
        (lambda c: c.heartbeat("A", float("inf")), ValueError, "positive, finite"),
        (lambda c: c.release_all(None), TypeError, "got None"),
    ])
    def test_lease_calls_refuse_bad_arguments(self, catalog, call, error, message):
        with pytest.raises(error, match=re.escape(message)):
            call(catalog)

    # -- roots ----------------------------------------------------------------

    def test_roots_sharing_a_database_do_not_see_each_other(self, catalog, other_root,
                                                             catalog_url):
        other = Catalog(other_root, catalog_url)
        assert other.root_key != catalog.root_key
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(0), chunk_row(1)])
        assert other.list_caches() == [] and other.get_cache(SWEEP.cache_hash) is None
        assert other.find_caches(params_hash=SWEEP.params_hash) == []
        assert self.superset(other, {"alpha": 0.4}, {"s": [1], "strat": ["a"]}) == []
        assert other.existing_chunks([chunk_row(0).chunk_hash]) == set()
        assert other.get_chunks([chunk_row(0).chunk_hash]) == {}
        with pytest.raises(CacheNotFoundError):
            other.touch(SWEEP.cache_hash)
        # The same cache and chunk in the other root are the other root's own.
        other.register_cache(SWEEP)
        other.record_chunks([chunk_row(0)._replace(location="other.bin")])
        assert other.delete_chunks([chunk_row(1).chunk_hash]) == 0
        first = chunk_row(0)
        assert catalog.get_chunks([first.chunk_hash]) == {first.chunk_hash: first}
        assert catalog.existing_chunks([chunk_row(1).chunk_hash]) == {chunk_row(1).chunk_hash}
        assert len(catalog.list_caches()) == len(other.list_caches()) == 1

    # -- schema versions ------------------------------------------------------

    def test_upgrade_from_0001_keeps_the_data(self, root, catalog_url):
        engine = get_engine(catalog_url)
        upgrade(engine, "0001")
        root_key = os.path.realpath(root)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO roots (id, path, created_at) VALUES (1, :p, 1.0)"),
                {"p": root_key})
            connection.execute(text(
                "INSERT INTO caches (id, root_id, cache_hash, params_hash, axis_values_hash, "
                "chunk_spec_hash, axis_order_hash, cache_version, metadata, created_at, "
                "updated_at) VALUES (1, 1, :c, :p, :v, :s, :o, 'v1', :m, 1.0, 2.0)"),
                {"c": SWEEP.cache_hash, "p": SWEEP.params_hash, "v": SWEEP.axis_values_hash,
                 "s": SWEEP.chunk_spec_hash, "o": SWEEP.axis_order_hash, "m": SWEEP.metadata})
            for position, (axis, values) in enumerate(SWEEP.axes):
                connection.execute(text("INSERT INTO cache_axes VALUES (1, :a, :p, :n)"),
                                   {"a": axis, "p": position, "n": len(values)})
                for i, (vh, blob) in enumerate(values):
                    connection.execute(text("INSERT INTO axis_values VALUES (1, :a, :i, :h, :b)"),
                                       {"a": axis, "i": i, "h": vh, "b": blob})
            for key, vh in SWEEP.params:
                connection.execute(text("INSERT INTO cache_params VALUES (1, :k, :h)"),
                                   {"k": key, "h": vh})
            row = chunk_row(0)
            connection.execute(text(
                "INSERT INTO chunks (root_id, chunk_hash, location, n_items, n_present, "
                "present, byte_size, checksum, created_at, updated_at) "
                "VALUES (1, :h, :l, :n, :p, NULL, :b, :c, 1.0, 1.0)"),
                {"h": row.chunk_hash, "l": row.location, "n": row.n_items, "p": row.n_present,
                 "b": row.byte_size, "c": row.checksum})
        dispose_engine(catalog_url)

        catalog = self.reopen_after_upgrade(root, catalog_url, "0001")
        assert catalog.revision == head_revision()
        assert catalog.get_cache(SWEEP.cache_hash) == SWEEP
        assert catalog.get_chunks([row.chunk_hash]) == {row.chunk_hash: row}
        assert catalog.list_caches()[0].last_used_at is None
        catalog.record_chunks([chunk_row(1)], cache_hash=SWEEP.cache_hash)  # 0002's table
        assert catalog.linked_chunks(SWEEP.cache_hash) == {chunk_row(1).chunk_hash}
        with get_engine(catalog_url).connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []

    def test_upgrade_from_0002_keeps_the_data(self, root, catalog_url):
        engine = get_engine(catalog_url)
        upgrade(engine, "0002")
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO roots (id, path, created_at) VALUES (1, :p, 1.0)"),
                {"p": os.path.realpath(root)})
            connection.execute(text(
                "INSERT INTO caches (id, root_id, cache_hash, params_hash, axis_values_hash, "
                "chunk_spec_hash, axis_order_hash, cache_version, metadata, created_at, "
                "updated_at, last_used_at) VALUES (1, 1, :c, :p, :v, :s, :o, 'v1', :m, 1.0, "
                "2.0, 3.0)"),
                {"c": SWEEP.cache_hash, "p": SWEEP.params_hash, "v": SWEEP.axis_values_hash,
                 "s": SWEEP.chunk_spec_hash, "o": SWEEP.axis_order_hash, "m": SWEEP.metadata})
            row = chunk_row(0)
            connection.execute(text(
                "INSERT INTO chunks (root_id, chunk_hash, location, n_items, n_present, "
                "present, byte_size, checksum, created_at, updated_at, last_used_at) "
                "VALUES (1, :h, :l, :n, :p, NULL, :b, :c, 1.0, 1.0, 4.0)"),
                {"h": row.chunk_hash, "l": row.location, "n": row.n_items, "p": row.n_present,
                 "b": row.byte_size, "c": row.checksum})
            connection.execute(text("INSERT INTO cache_chunks VALUES (1, :h)"),
                               {"h": row.chunk_hash})
        dispose_engine(catalog_url)

        catalog = self.reopen_after_upgrade(root, catalog_url, "0002")
        assert catalog.revision == head_revision()
        assert [c.last_used_at for c in catalog.list_caches()] == [3.0]
        assert catalog.get_chunks([row.chunk_hash]) == {row.chunk_hash: row}
        assert catalog.linked_chunks(SWEEP.cache_hash) == {row.chunk_hash}
        keys = [row.chunk_hash, chunk_row(1).chunk_hash]
        assert catalog.claim_chunks(keys, "A", ttl=60) == {keys[1]}  # 0003's table
        with get_engine(catalog_url).connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), metadata) == []
        downgrade(get_engine(catalog_url), "0002")  # drops the leases, keeps the rest
        dispose_engine(catalog_url)
        reopened = self.reopen_after_upgrade(root, catalog_url, "0002")
        assert reopened.lease_states(keys) == {}
        assert reopened.get_chunks([row.chunk_hash]) == {row.chunk_hash: row}

    def test_downgrade_then_reopen_keeps_every_row(self, catalog, root, catalog_url):
        # Downgrading 0002 rebuilds tables on SQLite: with foreign keys on, dropping
        # the old table would cascade-delete every axis, value and param row.
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(0)])
        downgrade(get_engine(catalog_url), "0001")
        with get_engine(catalog_url).connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM axis_values")).scalar() == 5
        dispose_engine(catalog_url)
        reopened = self.reopen_after_upgrade(root, catalog_url, "0001")
        assert reopened.revision == head_revision()
        assert reopened.get_cache(SWEEP.cache_hash) == SWEEP
        first = chunk_row(0)
        assert reopened.get_chunks([first.chunk_hash]) == {first.chunk_hash: first}

    def test_upgrade_catalog_creates_then_upgrades_then_does_nothing(self, root, catalog_url):
        assert upgrade_catalog(catalog_url) == (None, head_revision())  # empty database
        downgrade(get_engine(catalog_url), "0002")
        dispose_engine(catalog_url)
        assert upgrade_catalog(catalog_url) == ("0002", head_revision())
        assert upgrade_catalog(catalog_url) == (head_revision(), head_revision())
        assert Catalog(root, catalog_url).revision == head_revision()

    def test_the_upgrade_command(self, root, catalog_url):
        upgrade(get_engine(catalog_url), "0001")
        dispose_engine(catalog_url)
        command = [sys.executable, "-m", "chunk_memo.catalog.migrate", catalog_url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "RuntimeWarning" not in done.stderr  # runpy's, about a module imported twice
        assert done.stdout.strip().endswith(
            f"upgraded from schema revision 0001 to {head_revision()}")
        again = subprocess.run(command, capture_output=True, text=True, timeout=60)
        assert again.returncode == 0 and "already at schema revision" in again.stdout
        assert Catalog(root, catalog_url).revision == head_revision()

    def test_the_upgrade_command_refuses_a_catalog_from_a_newer_version(self, catalog,
                                                                       catalog_url):
        with get_engine(catalog_url).begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        dispose_engine(catalog_url)
        done = subprocess.run([sys.executable, "-m", "chunk_memo.catalog.migrate",
                               catalog_url], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1
        assert "'0099_future'" in done.stderr and "newer chunk-memo" in done.stderr

    def test_a_catalog_from_a_newer_version_is_refused(self, catalog, root, catalog_url):
        with get_engine(catalog_url).begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '0099_future'"))
        dispose_engine(catalog_url)
        with pytest.raises(CatalogVersionError) as refused:
            Catalog(root, catalog_url)
        message = str(refused.value)
        assert "'0099_future'" in message and f"'{head_revision()}'" in message
        assert "newer chunk-memo" in message

    # -- processes ------------------------------------------------------------

    def test_threads_registering_one_cache_register_it_once(self, catalog):
        barrier = threading.Barrier(4)

        def register(_):
            barrier.wait(timeout=30)
            return catalog.register_cache(SWEEP)

        with ThreadPoolExecutor(4) as pool:
            assert sorted(pool.map(register, range(4))) == [False, False, False, True]
        assert catalog.get_cache(SWEEP.cache_hash) == SWEEP

    def test_threads_share_one_catalog(self, catalog):
        def record(start):
            for first in range(start, start + 500, 100):
                catalog.record_chunks(chunk_row(i) for i in range(first, first + 100))
            return catalog.existing_chunks([chunk_row(i).chunk_hash for i in range(2000)])

        with ThreadPoolExecutor(4) as pool:
            for seen in pool.map(record, range(0, 2000, 500)):
                assert len(seen) >= 500
        assert len(catalog.existing_chunks([chunk_row(i).chunk_hash for i in range(2000)])) == 2000

    @pytest.mark.parametrize("start_method", ["fork", "spawn"])
    def test_concurrent_first_open_and_recording(self, root, catalog_url, start_method):
        context = multiprocessing.get_context(start_method)
        n_processes, n_rows = 8, 2000
        barrier = context.Barrier(n_processes)
        errors = context.Queue()
        processes = [
            context.Process(target=record_overlapping,
                            args=(i, str(root), catalog_url, barrier, errors, n_rows))
            for i in range(n_processes)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0] * n_processes, drain(errors)
        every = [chunk_row(i).chunk_hash for i in range((n_processes + 1) * n_rows // 2)]
        catalog = Catalog(root, catalog_url)
        assert catalog.existing_chunks(every) == set(every)
        assert len(catalog.get_chunks(every)) == len(every)

    def test_runners_sharing_a_sweep_compute_each_chunk_once(self, root, catalog_url,
                                                             tmp_path):
        Catalog(root, catalog_url)  # created here: the race on creation is tested above
        context = multiprocessing.get_context("spawn")
        n_processes = 4
        hashes = [chunk_row(i).chunk_hash for i in range(2000)]
        barrier = context.Barrier(n_processes)
        errors = context.Queue()
        outputs = [tmp_path / f"claimed-{i}.json" for i in range(n_processes)]
        processes = [
            context.Process(target=claim_and_record, args=(
                i, str(root), catalog_url, hashes, barrier, str(outputs[i]), errors))
            for i in range(n_processes)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join(timeout=120)
        assert [p.exitcode for p in processes] == [0] * n_processes, drain(errors)
        claims = [json.loads(path.read_text()) for path in outputs]
        every = [hash_ for claimed in claims for hash_ in claimed]
        assert len(every) == len(set(every)), "a chunk was granted twice"
        assert set(every) == set(hashes)
        catalog = Catalog(root, catalog_url)
        assert catalog.existing_chunks(hashes) == set(hashes)
        assert catalog.lease_states(hashes) == {}

    def test_a_forked_child_uses_an_inherited_catalog_on_its_own_connection(self, catalog,
                                                                           catalog_url):
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(0)])  # the parent's pool now holds a connection
        parent_engine = get_engine(catalog_url)
        context = multiprocessing.get_context("fork")
        errors = context.Queue()

        def child():
            try:
                assert get_engine(catalog_url) is not parent_engine
                assert catalog.existing_chunks([chunk_row(0).chunk_hash]) == {
                    chunk_row(0).chunk_hash}
                catalog.record_chunks([chunk_row(1)], cache_hash=SWEEP.cache_hash)
            except BaseException as error:
                errors.put(repr(error))
                raise

        process = context.Process(target=child)
        process.start()
        process.join(timeout=60)
        assert process.exitcode == 0, drain(errors)
        assert get_engine(catalog_url) is parent_engine
        assert catalog.existing_chunks([chunk_row(1).chunk_hash]) == {chunk_row(1).chunk_hash}
        catalog.record_chunks([chunk_row(2)])
        assert catalog.linked_chunks(SWEEP.cache_hash) == {chunk_row(1).chunk_hash}


class TestSQLiteCatalog(CatalogTests):
    """The conformance tests on SQLite."""

    @pytest.fixture
    def catalog_url(self, sqlite_url):
        return sqlite_url


class TestPostgreSQLCatalog(CatalogTests):
    """The conformance tests on PostgreSQL: a fresh database per test."""

    upgrades_on_open = False

    @pytest.fixture
    def catalog_url(self, postgres_catalog_url):
        return postgres_catalog_url


class TestSQLiteSpecifics:
    """What only the SQLite backend does."""

    def test_connections_get_the_pragmas(self, root, sqlite_url):
        Catalog(root, sqlite_url)
        with get_engine(sqlite_url).connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            assert pragma("journal_mode") == "wal"
            assert pragma("synchronous") == 1  # NORMAL
            assert pragma("busy_timeout") == dialects.SQLITE_BUSY_TIMEOUT_MS
            assert pragma("foreign_keys") == 1

    def test_default_catalog_lives_in_the_root_and_moves_with_it(self, tmp_path):
        first = tmp_path / "sweep"
        catalog = Catalog(first)
        assert catalog.url == f"sqlite:///{first / 'catalog.sqlite'}"
        assert (first / "catalog.sqlite").is_file() and catalog.root_key == "."
        catalog.register_cache(SWEEP)
        catalog.record_chunks([chunk_row(0)])
        dispose_engine(catalog.url)
        moved = tmp_path / "moved"
        first.rename(moved)
        reopened = Catalog(moved)
        assert reopened.get_cache(SWEEP.cache_hash) == SWEEP
        assert reopened.existing_chunks([chunk_row(0).chunk_hash]) == {chunk_row(0).chunk_hash}
        dispose_engine(reopened.url)

    def test_a_reader_does_not_block_writers(self, catalog_for_lock_tests, sqlite_url):
        catalog = catalog_for_lock_tests
        reader = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM chunks").fetchone()  # holds a read snapshot
        catalog.record_chunks([chunk_row(0)])
        assert catalog.existing_chunks([chunk_row(0).chunk_hash]) == {chunk_row(0).chunk_hash}
        reader.execute("COMMIT")
        reader.close()

    def test_a_locked_database_is_retried_until_free(self, catalog_for_lock_tests, sqlite_url):
        catalog = catalog_for_lock_tests
        release = hold_write_lock(sqlite_url, seconds=0.6)
        catalog.record_chunks([chunk_row(0)])  # busy timeout is 20 ms: the retries wait
        release.join()
        assert catalog.existing_chunks([chunk_row(0).chunk_hash]) == {chunk_row(0).chunk_hash}

    def test_a_lock_held_too_long_is_a_clear_error(self, catalog_for_lock_tests, sqlite_url,
                                                  monkeypatch):
        monkeypatch.setattr(engine_module, "LOCK_RETRY_SECONDS", 0.2)
        release = hold_write_lock(sqlite_url, seconds=1.0)
        with pytest.raises(CatalogBusyError, match="stayed locked"):
            catalog_for_lock_tests.record_chunks([chunk_row(0)])
        release.join()

    def test_checkpoint_empties_the_write_ahead_log(self, catalog_for_lock_tests, sqlite_url):
        catalog_for_lock_tests.record_chunks(chunk_row(i) for i in range(2000))
        wal = sqlite_url.removeprefix("sqlite:///") + "-wal"
        assert os.path.getsize(wal) > 0
        catalog_for_lock_tests.checkpoint()
        assert os.path.getsize(wal) == 0
        assert len(catalog_for_lock_tests.get_chunks([chunk_row(7).chunk_hash])) == 1

    @pytest.fixture
    def catalog_for_lock_tests(self, root, sqlite_url, monkeypatch):
        monkeypatch.setattr(dialects, "SQLITE_BUSY_TIMEOUT_MS", 20)
        return Catalog(root, sqlite_url)


class TestPostgreSQLSpecifics:
    """What only the PostgreSQL backend does: isolation, drivers, retries, locks."""

    @pytest.fixture
    def catalog_url(self, postgres_catalog_url):
        return postgres_catalog_url

    def test_reads_are_snapshots_and_writes_read_committed(self, catalog, catalog_url):
        def setting(connection):
            return tuple(connection.exec_driver_sql(f"SHOW {name}").scalar()
                         for name in ("transaction_isolation", "transaction_read_only"))

        assert catalog._read(setting) == ("repeatable read", "on")
        assert catalog._write(setting) == ("read committed", "off")
        with get_engine(catalog_url).begin() as connection:  # a tool's own transaction
            assert setting(connection) == ("read committed", "off")

    def test_a_bare_postgresql_url_runs_on_psycopg(self, root, catalog_url):
        bare = catalog_url.replace("postgresql+psycopg://", "postgresql://")
        catalog = Catalog(root, bare)
        assert get_engine(bare).dialect.driver == "psycopg"
        catalog.record_chunks([chunk_row(0)])
        assert catalog.existing_chunks([chunk_row(0).chunk_hash]) == {chunk_row(0).chunk_hash}
        dispose_engine(bare)

    def test_other_drivers_are_refused_with_the_url_to_use(self, root, catalog_url):
        other = catalog_url.replace("postgresql+psycopg://", "postgresql+pg8000://")
        with pytest.raises(ValueError, match=re.escape("postgresql+psycopg://")):
            Catalog(root, other)

    def test_serialization_failures_and_deadlocks_are_retried(self, catalog_url):
        attempts = []

        def work(connection):
            attempts.append(len(attempts))
            failure = {0: "serialization_failure", 1: "deadlock_detected"}.get(len(attempts) - 1)
            if failure:
                connection.exec_driver_sql(
                    f"DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = '{failure}'; END $$")
            return "done"

        assert run_transaction(get_engine(catalog_url), work, write=True) == "done"
        assert attempts == [0, 1, 2]

        def unique_violation(connection):
            attempts.append(len(attempts))
            connection.exec_driver_sql(
                "DO $$ BEGIN RAISE EXCEPTION USING ERRCODE = 'unique_violation'; END $$")

        with pytest.raises(Exception, match="UniqueViolation"):
            run_transaction(get_engine(catalog_url), unique_violation, write=True)
        assert attempts == [0, 1, 2, 3]  # not retried: it would fail again

    def test_creating_the_schema_waits_for_the_migration_lock(self, root, catalog_url):
        holder = get_engine(catalog_url).connect()
        holder.execute(text("SELECT pg_advisory_lock(:key)"),
                       {"key": dialects.PG_MIGRATION_LOCK_KEY})
        with ThreadPoolExecutor(1) as pool:
            opening = pool.submit(Catalog, root, catalog_url)
            time.sleep(0.5)
            assert not opening.done(), "the schema was created under another's lock"
            holder.execute(text("SELECT pg_advisory_unlock(:key)"),
                           {"key": dialects.PG_MIGRATION_LOCK_KEY})
            holder.close()
            assert opening.result(timeout=30).revision == head_revision()

    def test_a_claim_waiting_for_a_recorder_does_not_take_the_recorded_chunk(
            self, catalog, catalog_url):
        # The recorder holds the lease on chunk 0 and records it: its transaction
        # deletes the lease (locking the row) and stores the chunk.  A claim of the
        # chunk meanwhile waits on that row; once the recorder commits, the claim's
        # insert goes through, judged on a snapshot without the chunk.
        keys = [chunk_row(0).chunk_hash, chunk_row(1).chunk_hash]
        assert catalog.claim_chunks(keys[:1], "recorder", ttl=60) == set(keys[:1])
        recorder = get_engine(catalog_url).connect()
        recorder.begin()
        recorder.execute(text("DELETE FROM leases WHERE chunk_hash = :h"), {"h": keys[0]})
        with ThreadPoolExecutor(1) as pool:
            claiming = pool.submit(catalog.claim_chunks, keys, "B", 60)
            time.sleep(0.3)
            assert not claiming.done(), "the claim did not wait for the recorder"
            row = chunk_row(0)
            recorder.execute(text(
                "INSERT INTO chunks (root_id, chunk_hash, location, n_items, n_present, "
                "byte_size, checksum, created_at, updated_at) VALUES "
                "(:r, :h, :l, :n, :p, :b, :c, 1.0, 1.0)"),
                {"r": catalog._root_id, "h": row.chunk_hash, "l": row.location,
                 "n": row.n_items, "p": row.n_present, "b": row.byte_size, "c": row.checksum})
            recorder.commit()
            recorder.close()
            assert claiming.result(timeout=30) == {keys[1]}
        assert catalog.lease_states(keys).keys() == {keys[1]}


def lease_column(url, column, chunk_hash) -> list:
    """One column of a chunk's lease rows, read behind the catalog's back."""
    with get_engine(url).connect() as connection:
        return connection.execute(
            text(f"SELECT {column} FROM leases WHERE chunk_hash = :h"), {"h": chunk_hash}
        ).scalars().all()


def drain(errors) -> str:
    """The tracebacks child processes put on ``errors``, for a failure message."""
    messages = []
    while True:
        try:
            messages.append(errors.get(timeout=1))
        except queue.Empty:
            return "\n".join(messages) or "no traceback received"


def hold_write_lock(url, seconds):
    """Take the database's write lock in another connection for ``seconds``."""
    locked = threading.Event()

    def hold():
        connection = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        locked.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    locked.wait()
    return thread


class TestRecords:
    """Records refuse malformed input with a message naming it (no database)."""

    def test_a_record_normalizes_its_params_and_axes(self):
        record = CacheRecord("c", "p", "v", "s", "o", "v1", bytearray(b"m"),
                             axes=[["x", [["h0", b"0"]]]], params=[("b", "2"), ("a", "1")])
        assert record.params == (("a", "1"), ("b", "2"))
        assert record.axes == (("x", (("h0", b"0"),)),) and record.metadata == b"m"
        assert record.info.cache_hash == "c"

    @pytest.mark.parametrize("change, error, message", [
        (dict(cache_hash=""), ValueError, "cache_hash must not be empty"),
        (dict(params_hash=7), TypeError, "params_hash must be a str hash, got 7"),
        (dict(metadata="text"), TypeError, "metadata must be bytes"),
        (dict(axes=[("x", []), ("x", [])]), ValueError, "axis 'x' appears twice"),
        (dict(axes=[("x", [("h", b""), ("h", b"")])]), ValueError, "value hash 'h' twice"),
        (dict(axes=[("x", [("h", 1.5)])]), TypeError, "on axis 'x' must be bytes"),
        (dict(params=[("k", "1"), ("k", "2")]), ValueError, "param 'k' appears twice"),
        (dict(axes=[("x", [])], params=[("x", "1")]), ValueError, "'x' is both a param"),
    ])
    def test_a_malformed_record_is_refused(self, change, error, message):
        fields = dict(cache_hash="c", params_hash="p", axis_values_hash="v",
                      chunk_spec_hash="s", axis_order_hash="o", cache_version="v1",
                      metadata=b"")
        with pytest.raises(error, match=re.escape(message)):
            CacheRecord(**{**fields, **change})


def test_has_cache(tmp_path):
    from chunk_memo.catalog import Catalog, CacheRecord

    catalog = Catalog(tmp_path)
    record = CacheRecord("ab" * 16, "p", "v", "s", "o", "v1", b"")
    assert not catalog.has_cache(record.cache_hash)
    catalog.register_cache(record)
    assert catalog.has_cache(record.cache_hash)
    assert not Catalog(tmp_path / "other").has_cache(record.cache_hash)


def test_head_revision_constant_is_the_newest_migration_script():
    from chunk_memo.catalog import migrate

    assert migrate.head_revision() == migrate.scripts_head_revision()


def test_opening_an_up_to_date_catalog_does_not_import_alembic(tmp_path):
    import subprocess
    import sys

    from chunk_memo.catalog import Catalog

    Catalog(tmp_path)  # created and migrated here
    script = ("import sys; from chunk_memo.catalog import Catalog; "
              f"Catalog({str(tmp_path)!r}).list_caches(); print('alembic' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
