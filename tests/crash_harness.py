"""Crash injection: kill a sweep with SIGKILL at random moments, then check the root.

Each trial starts a child process that sweeps a grid into a fresh root (``run``,
``run_streaming`` or ``run_parallel``, chosen by the trial) and kills it with
SIGKILL, either after a random delay or at a chosen point inside chunk-memo (a
payload write before its rename, a catalog commit, a lease claim or heartbeat).
Then it checks that

- the catalog passes ``PRAGMA integrity_check``;
- every result chunk-memo serves equals a fresh recomputation;
- a re-run completes and executes only the chunks that were not stored.

The test suite runs a few trials; run hundreds by hand::

    python tests/crash_harness.py --trials 200
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

AXES = {"a": list(range(60)), "b": list(range(8))}
PARAMS = {"seed": 7}
MODES = ("run", "run_streaming", "run_parallel")
#: Where a targeted kill can strike: (module, object, attribute) patched in the child.
KILL_POINTS = {
    "payload_before_rename": ("chunk_memo.store", "os", "replace"),
    "catalog_commit": ("chunk_memo.catalog.chunk_index", None, "record_chunks"),
    "lease_claim": ("chunk_memo.catalog.leases", None, "claim_chunks"),
    "lease_heartbeat": ("chunk_memo.catalog.leases", None, "heartbeat"),
}


def value(a, b):
    """The function swept: deterministic, so results can be recomputed and compared."""
    return {"a": a, "b": b, "v": (a * 31 + b * 17 + PARAMS["seed"]) % 1009}


#: exec time per point: a sweep lasts about 1.5 s, so kills land all along it.
POINT_COST_S = 0.003


def chunk_fn(params, a, b):
    time.sleep(POINT_COST_S * len(a) * len(b))
    return [value(x, y) for x in a for y in b]


def point_fn(a, b):
    time.sleep(POINT_COST_S)
    return value(a, b)


def make_cache(root, spec):
    from chunk_memo import ChunkCache

    return ChunkCache(root, spec, AXES, params=PARAMS, verbose=0, lease_ttl=1.0)


def _arm(point: str, after_calls: int) -> None:
    """Patch a function so that its ``after_calls``-th call kills this process."""
    import importlib

    module_name, holder_name, attribute = KILL_POINTS[point]
    module = importlib.import_module(module_name)
    if holder_name is None:
        holder = next(v for v in vars(module).values()
                      if isinstance(v, type) and attribute in vars(v))
    else:
        holder = getattr(module, holder_name)
    original = getattr(holder, attribute)
    calls = {"n": 0}

    def deadly(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] >= after_calls:
            if point == "lease_heartbeat":
                original(*args, **kwargs)  # die right after a heartbeat commits
            os.kill(os.getpid(), signal.SIGKILL)
        return original(*args, **kwargs)

    setattr(holder, attribute, deadly)


def _child(root: str, mode: str, spec: dict, point: str | None, after_calls: int) -> None:
    from chunk_memo import run, run_parallel, run_streaming

    if point is not None:
        _arm(point, after_calls)
    cache = make_cache(root, spec)
    if mode == "run":
        run(cache, chunk_fn)
    elif mode == "run_streaming":
        run_streaming(cache, chunk_fn)
    else:
        items = [(a, b) for a in AXES["a"] for b in AXES["b"]]
        run_parallel(items, exec_fn=point_fn, cache=cache, map_fn=map, return_output=False)
    if point == "lease_heartbeat":
        time.sleep(5)  # keep the heartbeat thread beating until it strikes


def check_root(root: str, spec: dict, mode: str) -> dict:
    """Integrity, a completing re-run of only what is missing, exact served results."""
    from chunk_memo import run, run_parallel, run_streaming

    with sqlite3.connect(Path(root) / "catalog.sqlite") as con:
        integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
    cache = make_cache(root, spec)
    hashes = cache.chunk_hasher().hexdigests()
    rows = cache.storage().rows(hashes)
    points_per_chunk = [len(k[0][1]) * len(k[1][1]) for k in cache.resolved_chunk_keys()]
    missing_chunks = sum(1 for h in hashes if h not in rows)
    missing_points = sum(n - (rows[h].n_present if h in rows else 0)
                         for h, n in zip(hashes, points_per_chunk))
    executed = []

    def counting_chunks(params, a, b):
        executed.append(len(a) * len(b))
        return [value(x, y) for x in a for y in b]

    def counting_points(a, b):
        executed.append(1)
        return value(a, b)

    if mode == "run_parallel":
        items = [(a, b) for a in AXES["a"] for b in AXES["b"]]
        run_parallel(items, exec_fn=counting_points, cache=cache, map_fn=map)
        reran_only_missing = len(executed) == missing_points
    else:
        (run if mode == "run" else run_streaming)(cache, counting_chunks)
        reran_only_missing = sum(executed) == missing_points

    def must_not_run(*args, **kwargs):
        raise AssertionError("everything should be stored after the re-run")

    output, diag = run(cache, must_not_run)
    served = [p for chunk in output for p in chunk]
    expected = [value(a, b) for key in cache.resolved_chunk_keys()
                for a in dict(key)["a"] for b in dict(key)["b"]]
    return {
        "integrity": integrity,
        "wrong_results": sum(1 for got, want in zip(served, expected) if got != want)
        + abs(len(served) - len(expected)),
        "missing_before": missing_points,
        "executed": sum(executed),
        "reran_only_missing": reran_only_missing,
        "complete_after": diag.hit,
    }


def trial(rng: random.Random, workdir: str) -> dict:
    """One kill, then the checks."""
    root = str(Path(tempfile.mkdtemp(dir=workdir)) / "root")
    mode = rng.choice(MODES)
    spec = {"a": rng.choice([1, 2, 3, 7]), "b": rng.choice([2, 4, 8])}
    point = rng.choice([None, None, *KILL_POINTS])
    n_chunks = (len(AXES["a"]) // spec["a"] + 1) * (len(AXES["b"]) // spec["b"] + 1)
    after_calls = rng.randint(1, n_chunks if point == "payload_before_rename" else 4)
    process = multiprocessing.get_context("spawn").Process(
        target=_child, args=(root, mode, spec, point, after_calls))
    process.start()
    if point is None:
        time.sleep(rng.uniform(0.4, 2.2))  # startup (imports, catalog) takes ~0.4 s
        os.kill(process.pid, signal.SIGKILL)
    process.join(60)
    if process.is_alive():
        process.kill()
        process.join()
    outcome = {"mode": mode, "spec": spec, "point": point or "random",
               "exitcode": process.exitcode}
    if not (Path(root) / "catalog.sqlite").exists():
        outcome.update(integrity="ok", wrong_results=0, missing_before=0, executed=0,
                       reran_only_missing=True, complete_after=True, note="killed before open")
        return outcome
    outcome.update(check_root(root, spec, mode))
    return outcome


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--verbose", action="store_true", help="print every trial")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    failures, wrong, damaged, by_point = 0, 0, 0, {}
    with tempfile.TemporaryDirectory(prefix="chunk-memo-crash-") as workdir:
        for i in range(args.trials):
            outcome = trial(rng, workdir)
            by_point[outcome["point"]] = by_point.get(outcome["point"], 0) + 1
            bad = (outcome["integrity"] != "ok" or outcome["wrong_results"]
                   or not outcome["complete_after"] or not outcome["reran_only_missing"])
            wrong += outcome["wrong_results"]
            damaged += outcome["integrity"] != "ok"
            failures += bool(bad)
            if bad or args.verbose:
                print(f"trial {i}: {'FAILED ' if bad else ''}{outcome}", flush=True)
    print(f"{args.trials} trials (kill points: {by_point}): {failures} failed, "
          f"{wrong} wrong results served, {damaged} damaged catalogs")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
