"""The quick start, end to end: a sweep, a re-run, a slice, and a longer axis.

Run it twice: the second time everything is reused from the default root,
./.chunk_memo (a SQLite catalog and the chunk files).
"""

from chunk_memo import ChunkCache, run


def exec_fn(params, strat, s):
    outputs = []
    for strat_value in strat:
        for s_value in s:
            outputs.append({"strat": strat_value, "s": s_value,
                            "value": params["alpha"] * (len(strat_value) + s_value)})
    return outputs


def report(what, diag):
    print(f"{what}: executed {diag.executed_chunks} of {diag.total_chunks} chunks, "
          f"reused {diag.cached_chunks}")


params = {"alpha": 0.4}
axis_values = {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}

memo = ChunkCache(
    chunk_spec={"strat": 1, "s": 3},
    axis_values=axis_values,
    params=params,
    verbose=0,
)

output, diag = run(memo, exec_fn)
report("first run", diag)
print("first chunk:", output[0])

output, diag = run(memo, exec_fn)
report("second run", diag)

sliced = memo.slice(params, strat=["bb"], s=[2, 4])
output, diag = run(sliced, exec_fn)
report("slice strat=['bb'], s=[2, 4]", diag)
print("slice output:", output)

memo.extend_axis_values({"s": [5, 6]})
output, diag = run(memo, exec_fn)
report("after adding s=5, 6", diag)
