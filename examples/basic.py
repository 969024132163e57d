"""Plan the quick start's sweep: its grid, chunk keys, hashes and a selection.

The runners arrive with the public API (issue 4); until then this example shows
what the compiled core decides before any work runs.
"""

from chunk_memo import identity
from chunk_memo.grid import Grid

params = {"alpha": 0.4}
axis_values = {"strat": ["aaa", "bb"], "s": [1, 2, 3, 4]}
chunk_spec = {"strat": 1, "s": 3}

grid = Grid.build(axis_values, chunk_spec)
print(f"{grid.n_points} points in {grid.n_chunks} chunks, axis order {grid.axis_order}")
print("cache hash:", identity.cache_hash(params, grid.axis_values, grid.chunk_spec,
                                         "v1", grid.axis_order))

hasher = grid.chunk_hasher(params, "v1")
for ordinal, (key, chunk_hash) in enumerate(zip(grid.iter_chunk_keys(), hasher.hexdigests())):
    print(f"chunk {ordinal}: {chunk_hash}  {key}")

selection = grid.select({"strat": grid.positions_for_values("strat", ["aaa"]),
                         "s": grid.positions_for_indices("s", slice(1, 4))})
for k in range(selection.n_chunks):
    ordinal = selection.ordinal(k)
    print(f"slice strat=['aaa'], s[1:4] reads chunk {ordinal} at positions "
          f"{list(selection.positions(k))}")
