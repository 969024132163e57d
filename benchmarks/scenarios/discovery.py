"""Discovery: find caches among many under one root.

A root holds --size N caches (default 1,000), params {"k": i} for i < N, each with the
same tiny grid (a: [0, 1, 2, 3] in chunks of 2, b: [0]), registered through the
library's public API (ours: constructing the cache registers it in the catalog;
0.1.5: constructing it and ``write_metadata()``, as its ``run`` does first).  The
setup runs in a child process (setup_s), so that this process starts with nothing of
the root in memory.  Then, each timed separately and in this order (the first call
also opens whatever the library reads):

- discover: ``ChunkCache.discover_caches(root)``, which must list all N;
- find: ``ChunkCache.find_compatible_caches(root, params={"k": N // 2})`` (0.1.5: by
  the cache_id of those params), which must return exactly one;
- auto_load: ``auto_load(root, params={"k": N // 2}, axis_values={"a": [1, 2]},
  allow_superset=True)``, which must return that cache sliced to a = [1, 2], and
  create no new cache.

Metric: the slower of find and auto_load, in ms; discover is reported beside it.
"""

import multiprocessing
import os
import sys
import time

from adapters import IMPLEMENTATIONS
from harness import main, timed

AXIS_VALUES = {"a": [0, 1, 2, 3], "b": [0]}
CHUNK_SPEC = {"a": 2, "b": 1}
REQUEST = {"a": [1, 2]}


def _register_all(impl_name: str, root: str, caches: int) -> None:
    impl = IMPLEMENTATIONS[impl_name]()
    for i in range(caches):
        impl.register(root, AXIS_VALUES, CHUNK_SPEC, {"k": i})


def discovery(impl, root, measure, caches):
    impl.require("discovery")
    started = time.perf_counter()
    setup = multiprocessing.get_context("spawn").Process(
        target=_register_all, args=(impl.name, str(root), caches))
    setup.start()
    setup.join()
    if setup.exitcode != 0:
        raise SystemExit(f"registering {caches:,} caches failed: exit code {setup.exitcode}")
    setup_s = time.perf_counter() - started
    params = {"k": caches // 2}
    with measure:
        listed, discover_s = timed(lambda: impl.discover(root))
        found, find_s = timed(lambda: impl.find(root, params))
        loaded, auto_load_s = timed(lambda: impl.auto_load(root, params, REQUEST))
    loaded_a = impl.status(loaded)["axis_values"]["a"]
    after = len(impl.discover(root))
    if (len(listed), len(found), list(loaded_a), after) != (caches, 1, REQUEST["a"], caches):
        raise SystemExit(f"discover listed {len(listed):,} of {caches:,} caches, find returned "
                         f"{len(found)} (not 1), auto_load gave a = {loaded_a} (not "
                         f"{REQUEST['a']}) and left {after:,} caches")
    return {
        "metric": max(find_s, auto_load_s) * 1e3,
        "caches": caches,
        "discover_ms": discover_s * 1e3,
        "find_ms": find_s * 1e3,
        "auto_load_ms": auto_load_s * 1e3,
        "setup_s": setup_s,
        "exec_points": 0,
        "n_outputs": len(listed),
        "checksum": len(found),
    }


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main(discovery, 1_000)
