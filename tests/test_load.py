"""Eight processes mixing every operation on one root for a bounded time."""

import multiprocessing

import _load_workers as workers
from chunk_memo import ChunkCache, run


def test_eight_processes_mixing_operations(tmp_path):
    root, errors = tmp_path / "root", tmp_path / "errors.txt"
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=workers.work, args=(str(root), w, 8.0, str(errors)))
                 for w in range(8)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
    assert not errors.exists(), errors.read_text()
    assert [p.exitcode for p in processes] == [0] * 8
    every_a = workers.BASE["a"] + sorted({workers.extension(w, s) for w in range(8)
                                          for s in range(5)})
    union = ChunkCache(root, workers.SPEC, {"a": every_a, "b": workers.BASE["b"]},
                       params=workers.PARAMS, verbose=0)
    status = union.cache_status()
    stored = {dict(key)["a"][0] for key in status["cached_chunks"]}
    assert set(workers.BASE["a"]) <= stored, "nothing of the base sweep was lost"
    output, diag = run(union.slice(workers.PARAMS, a=sorted(stored)),
                       lambda *a, **k: (_ for _ in ()).throw(AssertionError("stored")))
    assert diag.hit
    assert [v for chunk in output for v in chunk] == [
        workers.value(a, b) for a in sorted(stored) for b in workers.BASE["b"]]
