"""A process of the load test: mixed operations on one root until a deadline."""

import random
import time

from chunk_memo import ChunkCache, auto_load, run, run_parallel, run_streaming

PARAMS = {"model": "load"}
BASE = {"a": list(range(20)), "b": list(range(4))}
SPEC = {"a": 1, "b": 4}


def value(a, b):
    return a * 100 + b


def chunk_fn(params, a, b):
    time.sleep(0.001)
    return [value(x, y) for x in a for y in b]


def point_fn(a, b):
    return value(a, b)


def extension(worker, step):
    return 1000 + worker * 10 + step % 5


def work(root, worker, seconds, errors_path):
    rng = random.Random(worker)
    try:
        cache = ChunkCache(root, SPEC, BASE, params=PARAMS, verbose=0)
        run(cache, chunk_fn)
        deadline, step = time.time() + seconds, 0
        while time.time() < deadline:
            a, b = rng.choice(BASE["a"]), rng.choice(BASE["b"])
            op = step % 5
            if op == 0:
                output, _ = run(cache.slice(PARAMS, a=[a], b=[b]), chunk_fn)
                assert output == [[value(a, b)]], output
            elif op == 1:
                longer = ChunkCache(root, SPEC, BASE, params=PARAMS, verbose=0)
                longer.extend_axis_values({"a": [extension(worker, step)]})
                output, _ = run(longer.slice(PARAMS, a=[extension(worker, step)]), chunk_fn)
                assert output == [[value(extension(worker, step), y) for y in BASE["b"]]]
            elif op == 2:
                output, _ = run_parallel([(a, b)], exec_fn=point_fn, cache=cache, map_fn=map)
                assert output == [value(a, b)], output
            elif op == 3:
                assert ChunkCache.discover_caches(root)
                assert ChunkCache.find_compatible_caches(root, params=PARAMS)
                view = auto_load(root, PARAMS, axis_values={"a": [a]}, allow_superset=True,
                                 verbose=0)
                output, _ = run(view, chunk_fn)
                assert [v for chunk in output for v in chunk] == [value(a, y) for y in BASE["b"]]
            else:
                run_streaming(cache, chunk_fn)
            step += 1
    except BaseException as error:  # noqa: BLE001 - written for the parent to report
        with open(errors_path, "a") as errors:
            errors.write(f"worker {worker}: {type(error).__name__}: {error}\n")
        raise
