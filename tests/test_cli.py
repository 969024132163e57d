"""The chunk-memo command, run as a separate process on roots built by real sweeps.

Every command is run through ``python -m chunk_memo.cli`` (what the ``chunk-memo``
console script calls), in text and in ``--json``.
"""

import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time

from pathlib import Path

import pytest

from chunk_memo import ChunkCache, run

PARAMS = {"alpha": 0.4}
AXES = {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}
SPEC = {"strat": 1, "s": 3}
HOUR = 3600


@pytest.fixture(autouse=True)
def own_catalog(monkeypatch):
    """Each root keeps its catalog in its own catalog.sqlite, whatever the environment says."""
    monkeypatch.delenv("CHUNK_MEMO_CATALOG_URL", raising=False)


def make(root, axes=AXES, spec=SPEC, **kwargs):
    return ChunkCache(root=root, chunk_spec=spec, axis_values=axes, params=PARAMS, verbose=0,
                      **kwargs)


def cli(root, *args, status=0):
    """Run ``chunk-memo --root ROOT ARGS`` in a new process; check its exit status."""
    env = {k: v for k, v in os.environ.items() if k != "CHUNK_MEMO_CATALOG_URL"}
    done = subprocess.run([sys.executable, "-m", "chunk_memo.cli", "--root", str(root), *args],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == status, (done.stdout, done.stderr)
    return done


def cli_json(root, *args, status=0):
    return json.loads(cli(root, *args, "--json", status=status).stdout)


def location_of(cache, key):
    chunk_hash = cache.chunk_hash(key)
    return chunk_hash, cache.storage().rows([chunk_hash])[chunk_hash].location


def files_under(root):
    """Every file of the root (but SQLite's journal) with its size and mtime."""
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            if not name.endswith(("-wal", "-shm")):
                path = os.path.join(directory, name)
                stat = os.stat(path)
                found[os.path.relpath(path, root)] = (stat.st_size, stat.st_mtime_ns)
    return found


def catalog_dump(root):
    with sqlite3.connect(root / "catalog.sqlite") as connection:
        return list(connection.iterdump())


def age(path, seconds):
    past = time.time() - seconds
    os.utime(path, (past, past))


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


# -- ls, show, du ------------------------------------------------------------------

def test_ls_and_show_describe_every_cache_and_json_names_them_as_discovery_does(
        root, recorder):
    sweep = make(root)
    run(sweep.slice(PARAMS, strat=["aaa"]), recorder)
    other = make(root, axes={"strat": ["aaa"], "s": [1, 2, 3, 4, 5]})
    listed = cli_json(root, "ls")
    assert [c["cache_hash"] for c in listed] == [
        entry["cache_hash"] for entry in ChunkCache.discover_caches(root)]
    first = listed[0]
    assert first["cache_hash"] == sweep.cache_hash
    assert (first["params"], first["axes"], first["chunk_spec"]) == (
        PARAMS, {"s": 4, "strat": 2}, {"s": 3, "strat": 1})
    assert (first["chunks_cached"], first["chunks_total"]) == (2, 4) and first["bytes"] > 0
    # `other` holds the stored chunk (aaa, 1..3) too: chunks are shared by hash.
    assert (listed[1]["chunks_cached"], listed[1]["chunks_total"]) == (1, 2)
    text = cli(root, "ls").stdout
    assert sweep.cache_hash in text and other.cache_hash in text and "2/4" in text

    shown = cli_json(root, "show", sweep.cache_hash)
    assert shown["axis_order"] == ["s", "strat"] and shown["cache_version"] == "v1"
    assert shown["axis_values"]["s"] == {"count": 4, "bins": 2, "head": [1, 2, 3], "tail": [4]}
    assert set(shown["identity"]) == {"params_hash", "axis_values_hash", "chunk_spec_hash",
                                      "axis_order_hash"}
    assert shown["created_at"] <= time.time()
    text = cli(root, "--json", "show", sweep.cache_hash[:8]).stdout  # --json first, a prefix
    assert json.loads(text)["cache_hash"] == sweep.cache_hash
    text = cli(root, "show", sweep.cache_hash).stdout
    assert "s: 4 values in 2 bins: 1, 2, 3, ..., 4" in text and "2 cached" in text


def test_du_counts_shared_chunks_for_each_cache_and_says_so(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    part = make(root, axes={"strat": ["aaa"], "s": [1, 2, 3, 4]})
    usage = cli_json(root, "du")
    by_cache = {c["cache_hash"]: c for c in usage["caches"]}
    assert by_cache[sweep.cache_hash]["chunks"] == 4
    assert by_cache[part.cache_hash]["chunks"] == by_cache[part.cache_hash]["shared_chunks"] == 2
    assert by_cache[sweep.cache_hash]["shared_bytes"] == by_cache[part.cache_hash]["bytes"]
    payloads = [size for path, (size, _) in files_under(root).items() if path.endswith(".cmp")]
    assert usage["payload_files"] == usage["recorded_chunks"] == 4
    assert usage["payload_bytes"] == usage["recorded_bytes"] == sum(payloads)
    assert usage["catalog_bytes"] >= os.path.getsize(root / "catalog.sqlite") > 0
    text = cli(root, "du").stdout
    assert "2 chunks" in text and "shared" in text and "catalog" in text


# -- status ----------------------------------------------------------------------

def test_status_draws_a_half_computed_cache(root, recorder):
    sweep = make(root)
    run(sweep.slice(PARAMS, strat=["aaa"]), recorder)
    lines = cli(root, "status", sweep.cache_hash, "--axes", "strat,s").stdout.splitlines()
    assert [line.split()[-1] for line in lines if line.startswith(("aaa ", "bb "))] == [
        "##", ".."]
    assert any(line.startswith("strat \\ s") for line in lines)
    assert any("'#'" in line and "'+'" in line and "'.'" in line for line in lines)
    assert "2 cached, 0 partial, 2 missing of 4" in lines[-1]
    status = cli_json(root, "status", sweep.cache_hash, "--axes", "s,strat")
    assert status["map"]["cells"] == ["#.", "#."]  # rows s, columns strat
    assert status["map"]["row_labels"] == ["1..3", "4"]
    assert status["counts"] == {"cached": 2, "partial": 0, "missing": 2, "total": 4}
    assert sorted(status["states"]) == ["#", "#", ".", "."]


def test_status_summarizes_the_other_axes_per_cell(root, recorder):
    cube = make(root, axes={"x": [0, 1, 2], "y": [0, 1], "z": ["a", "b"]},
                spec={"x": 1, "y": 1, "z": 1})
    run(cube.slice(PARAMS, x=[0]), recorder)
    run(cube.slice(PARAMS, x=[1], z=["a"]), recorder)
    assert cli_json(root, "status", cube.cache_hash, "--axes", "x,y")["map"]["cells"] == [
        "##", "++", ".."]
    assert cli_json(root, "status", cube.cache_hash, "--axes", "y,x")["map"]["cells"] == [
        "#+.", "#+."]
    assert cli_json(root, "status", cube.cache_hash, "--axes", "z")["map"]["cells"] == [
        "+", "+"]
    text = cli(root, "status", cube.cache_hash, "--axes", "x,y").stdout
    assert "summarizes the other axes: z (2 bins)" in text
    error = cli(root, "status", cube.cache_hash, "--axes", "x,w", status=2).stderr
    assert "'w'" in error and "['x', 'y', 'z']" in error


def test_status_png_is_a_picture_of_the_coverage(root, recorder, tmp_path):
    image = pytest.importorskip("matplotlib.image")
    sweep = make(root)
    run(sweep.slice(PARAMS, strat=["aaa"]), recorder)
    target = tmp_path / "coverage.png"
    status = cli_json(root, "status", sweep.cache_hash, "--png", str(target))
    assert status["png"] == str(target)
    data = target.read_bytes()
    width, height = png_size(data)
    assert len(data) > 2000 and width > 200 and height > 150
    pixels = image.imread(str(target))
    assert pixels.shape[:2] == (height, width)
    colours = {tuple(pixel) for pixel in pixels.reshape(-1, pixels.shape[-1])[::7].tolist()}
    assert len(colours) > 3 and pixels.std() > 0.05


def test_png_without_matplotlib_names_the_extra_to_install(root, recorder, tmp_path):
    sweep = make(root)
    run(sweep, recorder)
    blocker = tmp_path / "blocked" / "matplotlib"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('matplotlib is blocked here')\n")
    env = {**os.environ, "PYTHONPATH": str(blocker.parent)}
    env.pop("CHUNK_MEMO_CATALOG_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "chunk_memo.cli", "--root", str(root), "status",
         sweep.cache_hash, "--png", str(tmp_path / "x.png")],
        capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 2
    assert "chunk-memo[plot]" in done.stderr and not (tmp_path / "x.png").exists()


# -- verify ----------------------------------------------------------------------

def test_verify_names_broken_payloads_and_repair_makes_the_next_run_recompute_them(
        root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    keys = sweep.resolved_chunk_keys()
    truncated, truncated_at = location_of(sweep, keys[1])
    deleted, deleted_at = location_of(sweep, keys[2])
    with open(root / truncated_at, "r+b") as payload:
        payload.truncate(10)
    os.remove(root / deleted_at)

    text = cli(root, "verify", status=1).stdout
    assert truncated in text and truncated_at in text and deleted_at in text
    assert "--repair" in text
    report = cli_json(root, "verify", sweep.cache_hash, status=1)
    assert {(b["chunk_hash"], b["problem"]) for b in report["broken"]} == {
        (truncated, "corrupt"), (deleted, "missing")}
    assert report["checked"] == 4 and report["ok"] is False

    repaired = cli_json(root, "verify", "--repair")
    assert sorted(repaired["dropped"]) == sorted([truncated, deleted])
    assert not (root / truncated_at).exists()
    assert cli_json(root, "verify")["ok"] is True
    recorder.calls.clear()
    _, diag = run(make(root), recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (2, 2)
    assert recorder.calls == [{name: list(values) for name, values in key}
                              for key in (keys[1], keys[2])]


def test_verify_reports_orphans_and_repair_keeps_the_young_ones(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    _, location = location_of(sweep, sweep.resolved_chunk_keys()[0])
    old, young = root / "chunks" / "old.cmp", root / "chunks" / "young.cmp"
    for orphan in (old, young):
        orphan.write_bytes((root / location).read_bytes())
    age(old, 2 * HOUR)
    report = cli_json(root, "verify", status=1)
    assert {(o["location"], o["stale"]) for o in report["orphans"]} == {
        ("chunks/old.cmp", True), ("chunks/young.cmp", False)}
    assert report["broken"] == []
    repaired = cli_json(root, "verify", "--repair", "--min-age", "30m")
    assert repaired["removed_orphans"] == ["chunks/old.cmp"]
    assert young.exists() and not old.exists() and (root / location).exists()
    assert cli(root, "verify").returncode == 0  # a young orphan is no problem yet


# -- prune -----------------------------------------------------------------------

def test_prune_dry_run_removes_nothing_and_the_real_run_only_what_it_listed(root, recorder):
    sweep = make(root)
    run(sweep, recorder)
    # Registered, never run: it holds the `aaa` chunks by its grid alone (no link rows).
    part = make(root, axes={"strat": ["aaa"], "s": [1, 2, 3, 4]})
    old, young = root / "chunks" / "old.cmp", root / "chunks" / "young.cmp"
    for orphan in (old, young):
        orphan.write_bytes(b"left by a crash")
    age(old, 2 * HOUR)
    bb = {location_of(sweep, key) for key in sweep.resolved_chunk_keys()
          if dict(key)["strat"] == ("bb",)}
    before_files, before_rows = files_under(root), catalog_dump(root)

    plan = cli_json(root, "prune", "--cache", sweep.cache_hash, "--orphans")
    assert plan["applied"] is False and plan["caches"] == [sweep.cache_hash]
    assert {(c["chunk_hash"], c["location"]) for c in plan["chunks"]} == bb
    assert len(plan["kept_shared"]) == 2
    assert [o["location"] for o in plan["orphans"]] == ["chunks/old.cmp"]
    assert plan["young_orphans"] == 1
    assert "dry run" in cli(root, "prune", "--cache", sweep.cache_hash).stdout
    assert files_under(root) == before_files and catalog_dump(root) == before_rows

    done = cli_json(root, "prune", "--cache", sweep.cache_hash, "--orphans", "--yes")
    assert done["applied"] is True
    assert (done["caches"], done["chunks"]) == (plan["caches"], plan["chunks"])
    assert [o["location"] for o in done["orphans"]] == ["chunks/old.cmp"]
    gone = {location for _, location in bb} | {"chunks/old.cmp"}
    assert set(before_files) - set(files_under(root)) == gone
    assert young.exists()
    assert [c["cache_hash"] for c in cli_json(root, "ls")] == [part.cache_hash]
    _, diag = run(make(root, axes={"strat": ["aaa"], "s": [1, 2, 3, 4]}), recorder)
    assert (diag.executed_chunks, diag.cached_chunks) == (0, 2)


def test_prune_older_than_picks_caches_by_last_use(root, recorder):
    stale = make(root, axes={"strat": ["aaa"], "s": [1, 2, 3]})
    fresh = make(root, axes={"strat": ["bb"], "s": [1, 2, 3]})
    run(stale, recorder)
    run(fresh, recorder)
    with sqlite3.connect(root / "catalog.sqlite") as connection:
        connection.execute("UPDATE caches SET last_used_at = ?, updated_at = ? "
                           "WHERE cache_hash = ?", (time.time() - 10 * 86400,
                                                   time.time() - 10 * 86400, stale.cache_hash))
    plan = cli_json(root, "prune", "--older-than", "5")
    assert plan["caches"] == [stale.cache_hash] and len(plan["chunks"]) == 1
    assert cli_json(root, "prune", "--older-than", "20")["caches"] == []
    cli(root, "prune", "--older-than", "5", "--yes")
    assert [c["cache_hash"] for c in cli_json(root, "ls")] == [fresh.cache_hash]


# -- errors and read-only ------------------------------------------------------------

def test_a_bad_root_or_an_unknown_cache_exits_2_with_a_clear_message(root, recorder, tmp_path):
    run(make(root), recorder)
    empty = tmp_path / "empty"
    empty.mkdir()
    for command in (["ls"], ["prune", "--orphans"]):
        error = cli(empty, *command, status=2).stderr
        assert "not a chunk-memo root" in error and str(empty) in error
    assert "no such folder" in cli(tmp_path / "missing", "ls", "--json", status=2).stderr
    for command in (["show"], ["status"], ["verify"], ["prune", "--cache"]):
        error = cli(root, *command, "feedbeef", status=2).stderr
        assert "no cache 'feedbeef'" in error and "chunk-memo: error" in error
    assert "nothing to prune" in cli(root, "prune", status=2).stderr
    assert not (empty / "catalog.sqlite").exists()


def test_read_only_commands_change_nothing(root, recorder, tmp_path):
    sweep = make(root)
    run(sweep.slice(PARAMS, strat=["aaa"]), recorder)
    orphan = root / "chunks" / "old.cmp"
    orphan.write_bytes(b"orphan")
    age(orphan, 2 * HOUR)
    before_files, before_rows = files_under(root), catalog_dump(root)
    for command in (["ls"], ["show", sweep.cache_hash], ["status", sweep.cache_hash],
                    ["du"], ["prune", "--cache", sweep.cache_hash, "--orphans"]):
        cli(root, *command)
    cli(root, "verify", status=1)
    assert files_under(root) == before_files and catalog_dump(root) == before_rows


def test_the_console_script_reads_the_default_root_of_the_working_folder(tmp_path, recorder):
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())
    assert project["project"]["scripts"] == {"chunk-memo": "chunk_memo.cli:main"}
    sweep = make(tmp_path / ".chunk_memo")
    run(sweep, recorder)
    script = "import sys; from chunk_memo.cli import main; sys.exit(main())"
    commands = [[sys.executable, "-c", script]]
    if shutil.which("chunk-memo"):  # installed with the package
        commands.append([shutil.which("chunk-memo")])
    env = {k: v for k, v in os.environ.items() if k != "CHUNK_MEMO_CATALOG_URL"}
    for command in commands:
        done = subprocess.run([*command, "ls", "--json"], cwd=tmp_path, capture_output=True,
                              text=True, timeout=120, env=env, check=True)
        assert [c["cache_hash"] for c in json.loads(done.stdout)] == [sweep.cache_hash]


SLOW_SWEEP = """
import sys, time
from chunk_memo import ChunkCache, run

def slow(params, s):
    time.sleep(0.03)
    return [params["alpha"] * v for v in s]

cache = ChunkCache(root=sys.argv[1], chunk_spec={"s": 1}, axis_values={"s": list(range(80))},
                   params={"alpha": 0.4}, verbose=0)
run(cache, slow)
"""


def test_commands_during_a_sweep_in_another_process_see_no_damage_and_remove_nothing(
        root, tmp_path):
    sweep = ChunkCache(root=root, chunk_spec={"s": 1}, axis_values={"s": list(range(80))},
                       params={"alpha": 0.4}, verbose=0)
    script = tmp_path / "sweep.py"
    script.write_text(SLOW_SWEEP)
    env = {k: v for k, v in os.environ.items() if k != "CHUNK_MEMO_CATALOG_URL"}
    worker = subprocess.Popen([sys.executable, str(script), str(root)], env=env)
    try:
        rounds = 0
        while worker.poll() is None or rounds == 0:
            assert cli_json(root, "verify")["broken"] == []
            pruned = cli_json(root, "prune", "--orphans", "--yes")
            assert pruned["orphans"] == [] and pruned["chunks"] == []
            assert cli_json(root, "status", sweep.cache_hash)["counts"]["total"] == 80
            rounds += 1
        assert worker.wait(timeout=120) == 0
    finally:
        worker.kill()
    assert cli_json(root, "verify")["ok"] is True
    assert cli_json(root, "ls")[0]["chunks_cached"] == 80
    _, diag = run(sweep, lambda params, s: 1 / 0)
    assert diag.executed_chunks == 0
