"""Grid geometry against a brute-force itertools.product oracle."""

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chunk_memo import identity
from chunk_memo.grid import Grid


def oracle_chunks(grid):
    """Chunk keys by brute force: per-axis bins, cartesian product in axis order."""
    per_axis = []
    for name in grid.axis_order:
        values = grid.axis_values[name]
        size = grid.chunk_spec[name]
        per_axis.append([(name, tuple(values[i:i + size])) for i in range(0, len(values), size)])
    return list(itertools.product(*per_axis))


def oracle_points(key):
    return list(itertools.product(*[values for _, values in key]))


@st.composite
def grids(draw):
    n_axes = draw(st.integers(0, 3))
    names = draw(st.lists(st.sampled_from("abcdefg"), min_size=n_axes, max_size=n_axes,
                          unique=True))
    axis_values = {name: list(range(draw(st.integers(1, 7)))) for name in names}
    chunk_spec = {name: draw(st.integers(1, 4)) for name in names}
    order = draw(st.permutations(names))
    return Grid.build(axis_values, chunk_spec, order)


@settings(max_examples=150, deadline=None)
@given(grids())
def test_chunk_keys_and_ordinals_match_the_oracle(grid):
    expected = oracle_chunks(grid)
    assert grid.n_chunks == len(expected)
    assert list(grid.iter_chunk_keys()) == expected
    for ordinal, key in enumerate(expected):
        assert grid.ordinal_of(key) == ordinal
        assert grid.geometry.ordinal(grid.geometry.bin_indices(ordinal)) == ordinal
        assert grid.geometry.chunk_shape(ordinal) == tuple(len(v) for _, v in key)
        assert grid.geometry.chunk_size(ordinal) == len(oracle_points(key))


@settings(max_examples=150, deadline=None)
@given(grids(), st.randoms(use_true_random=False))
def test_selection_matches_the_oracle(grid, rnd):
    chosen = {name: sorted(rnd.sample(range(len(v)), rnd.randint(1, len(v))))
              for name, v in grid.axis_values.items() if rnd.random() < 0.7}
    selection = grid.select(chosen)
    wanted = {name: {grid.axis_values[name][p] for p in chosen.get(name, range(len(values)))}
              for name, values in grid.axis_values.items()}
    expected = []
    for ordinal, key in enumerate(oracle_chunks(grid)):
        points = oracle_points(key)
        inside = [i for i, point in enumerate(points)
                  if all(v in wanted[name] for (name, _), v in zip(key, point))]
        if inside:
            expected.append((ordinal, inside))
    assert selection.n_chunks == len(expected)
    assert list(selection.ordinals()) == [ordinal for ordinal, _ in expected]
    for k, (ordinal, inside) in enumerate(expected):
        assert selection.ordinal(k) == ordinal
        assert list(selection.positions(k)) == inside
    assert selection.n_points == sum(len(inside) for _, inside in expected)
    # Ranges of the ordinals (how plans and statuses walk huge grids) are slices.
    everything = [ordinal for ordinal, _ in expected]
    start = rnd.randint(0, len(everything) + 1)
    stop = rnd.randint(start, len(everything) + 2)
    assert list(selection.ordinals(start, stop)) == everything[start:stop]
    assert list(selection.ordinals(start)) == everything[start:]


@settings(max_examples=60, deadline=None)
@given(grids())
def test_batch_chunk_hashes_equal_per_key_hashes(grid):
    params = {"alpha": 0.4, grid.axis_order[0] if grid.axis_order else "z": "dropped"}
    hasher = grid.chunk_hasher(params, "v1")
    keys = oracle_chunks(grid)
    expected = [identity.chunk_hash(params, key, "v1") for key in keys]
    assert hasher.hexdigests() == expected
    assert hasher.digests() == b"".join(bytes.fromhex(h) for h in expected)
    some = list(range(0, len(keys), 2))
    assert hasher.hexdigests(some) == [expected[i] for i in some]


def test_locate_gives_bin_and_offset():
    grid = Grid.build({"s": [10, 20, 30, 40, 50]}, {"s": 2})
    assert [grid.locate("s", v) for v in [10, 20, 30, 40, 50]] == [
        (0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]
    with pytest.raises(KeyError, match="60"):
        grid.locate("s", 60)


def test_normalization_rules():
    grid = Grid.build({"s": {10, 2, 1}, "t": ("b", "a", "b"), "r": range(3)})
    assert grid.axis_values == {"r": (0, 1, 2), "s": (1, 2, 10), "t": ("b", "a")}
    assert grid.chunk_spec == {"r": 3, "s": 1, "t": 2}
    assert grid.axis_order == ("r", "s", "t")
    mixed = Grid.build({"m": {1, "a", 2.5}})
    assert mixed.axis_values["m"] == tuple(sorted({1, "a", 2.5}, key=identity.encode))
    assert Grid.build({"x": [1, True, 1.0]}).axis_values["x"] == (1, True, 1.0)
    assert Grid.build({"g": (v for v in [3, 1])}).axis_values["g"] == (1, 3)
    assert Grid.build({"s": [1, 2]}, {"s": {"size": 1}}).chunk_spec == {"s": 1}


@pytest.mark.parametrize("kwargs, error, text", [
    ({"axis_values": {"s": [1]}, "chunk_spec": {}}, KeyError, "'s'"),
    ({"axis_values": {"s": [1]}, "chunk_spec": {"s": 0}}, ValueError, "> 0"),
    ({"axis_values": {"s": [1]}, "chunk_spec": {"s": -2}}, ValueError, "-2"),
    ({"axis_values": {"s": [1]}, "chunk_spec": {"s": 1.5}}, TypeError, "1.5"),
    ({"axis_values": {"s": [1]}, "chunk_spec": {"s": 1, "t": 1}}, ValueError, "'t'"),
    ({"axis_values": {"s": lambda: [1]}}, TypeError, "callables"),
    ({"axis_values": {"s": "abc"}}, TypeError, "'abc'"),
    ({"axis_values": {"s": 5}}, TypeError, "int"),
    ({"axis_values": {"s": [1], "t": [2]}, "axis_order": ["s"]}, ValueError, "axis_order"),
    ({"axis_values": {1: [1]}}, TypeError, "axis names"),
])
def test_bad_input_is_a_clear_error(kwargs, error, text):
    with pytest.raises(error, match=text):
        Grid.build(**kwargs)


def test_index_selection():
    grid = Grid.build({"s": list("abcdef")}, {"s": 4})
    assert grid.positions_for_indices("s", slice(0, 3)) == [0, 1, 2]
    assert grid.positions_for_indices("s", [range(0, 2), 5, -1]) == [0, 1, 5, 5]
    with pytest.raises(IndexError, match="6"):
        grid.positions_for_indices("s", 6)
    with pytest.raises(TypeError, match="'x'"):
        grid.positions_for_indices("s", "x")
    with pytest.raises(TypeError):
        grid.positions_for_indices("s", True)
    assert grid.positions_for_values("s", "c") == [2]
    with pytest.raises(KeyError, match="'z'"):
        grid.positions_for_values("s", ["z"])


def test_singleton_grid_has_one_empty_chunk():
    grid = Grid.build({}, {})
    assert grid.n_chunks == 1
    assert grid.chunk_key(0) == ()
    assert grid.chunk_hasher({"a": 1}, "v1").hexdigest(0) == identity.chunk_hash({"a": 1}, (), "v1")


def test_large_grid_works_on_ordinals_without_keys():
    grid = Grid.build({a: range(1000) for a in "xyz"}, {a: 1 for a in "xyz"})
    assert grid.n_chunks == 10**9
    ordinal = 123_456_789
    key = grid.chunk_key(ordinal)
    assert key == (("x", (123,)), ("y", (456,)), ("z", (789,)))
    hasher = grid.chunk_hasher({}, "v1")
    assert hasher.hexdigest(ordinal) == identity.chunk_hash({}, key, "v1")
    selection = grid.select({"x": [5], "y": [6, 7]})
    assert list(selection.ordinals())[:2] == [5_006_000, 5_006_001]
    with pytest.raises(IndexError):
        grid.geometry.bin_indices(10**9)
    rnd = random.Random(0)
    for _ in range(100):
        o = rnd.randrange(grid.n_chunks)
        assert grid.ordinal_of(grid.chunk_key(o)) == o
