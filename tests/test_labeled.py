"""Results as labeled data: a sweep's output as an xarray object or a DataFrame.

Every test runs a real sweep, labels its output, and checks each point's label
against what the function returns for that point.
"""

import itertools
import math
import sys

import numpy as np
import pytest

xr = pytest.importorskip("xarray")
pd = pytest.importorskip("pandas")

from chunk_memo import ChunkCache, run, run_chunks, run_parallel  # noqa: E402
from chunk_memo.labeled import to_dataframe, to_xarray  # noqa: E402

PARAMS = {"alpha": 2}


def make(root, axis_values, chunk_spec, **kwargs):
    return ChunkCache(root, chunk_spec, axis_values, params=PARAMS, verbose=0, **kwargs)


def chunk_fn(point_fn, axis_order):
    """A chunk-level exec_fn: ``point_fn`` at every point, cartesian over ``axis_order``."""
    def exec_fn(params, **axes):
        combos = itertools.product(*(axes[a] for a in axis_order))
        return [point_fn(**dict(zip(axis_order, combo))) for combo in combos]
    return exec_fn


def points_of(cache):
    """The view's points as dicts, in grid order (the last axis fastest)."""
    values = cache.selected_axis_values()
    order = cache.axis_order
    return [dict(zip(order, combo)) for combo in itertools.product(*(values[a] for a in order))]


def flat(output):
    return [value for chunk in output for value in chunk]


def scalar_point(a, b):
    return a * 10 + b * PARAMS["alpha"] + 0.5


# -- scalars ------------------------------------------------------------------------
def test_scalar_sweep_with_uneven_bins_is_a_dataarray_of_every_point(root):
    cache = make(root, {"a": [1, 2, 3, 4, 5], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    output, diag = run(cache, chunk_fn(scalar_point, cache.axis_order))
    assert diag.total_chunks == 6 and [len(chunk) for chunk in output] == [4, 2, 4, 2, 2, 1]

    da = to_xarray(cache, output)
    assert da.dims == ("a", "b") and da.name == "value" and da.dtype == np.float64
    assert da.coords["a"].values.tolist() == [1, 2, 3, 4, 5]
    assert da.coords["b"].values.tolist() == [7, 8, 9]
    for point in points_of(cache):
        assert da.sel(**point).item() == scalar_point(**point), point
    assert sorted(da.values.ravel().tolist()) == sorted(flat(output))

    again, diag = run(cache, chunk_fn(scalar_point, cache.axis_order))
    assert diag.cached_chunks == 6
    xr.testing.assert_identical(to_xarray(cache, again), da)


def test_scalar_sweep_as_a_dataframe_row_by_row(root):
    cache = make(root, {"a": [1, 2, 3, 4, 5], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    output, _ = run(cache, chunk_fn(scalar_point, cache.axis_order))
    df = to_dataframe(cache, output)
    assert list(df.columns) == ["a", "b", "value"] and len(df) == 15
    for row, point in zip(df.itertuples(index=False), points_of(cache)):
        assert (row.a, row.b) == (point["a"], point["b"])
        assert row.value == scalar_point(**point)


def test_integer_and_string_outputs_keep_their_dtype(root):
    cache = make(root, {"a": [1, 2, 3], "b": ["x", "yy"]}, {"a": 2, "b": 1})
    output, _ = run(cache, chunk_fn(lambda a, b: b * a, cache.axis_order))
    da = to_xarray(cache, output, name="word")
    assert da.name == "word" and da.dtype.kind == "U"
    for point in points_of(cache):
        assert da.sel(**point).item() == point["b"] * point["a"]
    counts = make(root, {"a": [1, 2, 3]}, {"a": 2})
    output, _ = run(counts, chunk_fn(lambda a: a * 7, ("a",)))
    assert to_xarray(counts, output).values.tolist() == [7, 14, 21]
    assert to_xarray(counts, output).dtype == np.int64


# -- dicts and arrays ---------------------------------------------------------------------
def dict_point(a, b):
    return {"a": a, "total": a + b, "label": f"{a}-{b}"}


def test_dict_outputs_are_a_dataset_with_one_variable_per_key(root):
    cache = make(root, {"a": [1, 2, 3], "b": [10, 20, 30, 40]}, {"a": 2, "b": 3})
    output, _ = run(cache, chunk_fn(dict_point, cache.axis_order))
    ds = to_xarray(cache, output)
    assert isinstance(ds, xr.Dataset)
    assert sorted(ds.data_vars) == ["label", "total"], "the echoed axis 'a' is a coordinate"
    assert ds["total"].dims == ("a", "b") and ds["total"].dtype == np.int64
    for point in points_of(cache):
        expected = dict_point(**point)
        assert ds["total"].sel(**point).item() == expected["total"]
        assert ds["label"].sel(**point).item() == expected["label"]

    df = to_dataframe(cache, output)
    assert list(df.columns) == ["a", "b", "total", "label"]
    for row, point in zip(df.itertuples(index=False), points_of(cache), strict=True):
        expected = dict_point(**point)
        assert (row.a, row.b, row.total, row.label) == (
            point["a"], point["b"], expected["total"], expected["label"])


def test_dict_outputs_with_other_keys_name_the_point(root):
    cache = make(root, {"a": [1, 2], "b": [1, 2]}, {"a": 2, "b": 2})

    def uneven(a, b):
        return {"x": a} if (a, b) != (2, 1) else {"x": a, "y": b}

    output, _ = run(cache, chunk_fn(uneven, cache.axis_order))
    for label in (to_xarray, to_dataframe):
        with pytest.raises(ValueError, match=r"point \{'a': 2, 'b': 1\} has keys \['x', 'y'\]"):
            label(cache, output)
    other = cache.slice({"alpha": 3})
    output, _ = run(other, chunk_fn(lambda a, b: {"x": a} if a == 1 else a, cache.axis_order))
    with pytest.raises(ValueError, match=r"point \{'a': 2, 'b': 1\} is of type int, but"):
        to_dataframe(other, output)


def test_an_echoed_axis_key_must_hold_the_points_value(root):
    cache = make(root, {"a": [1, 2], "b": [1, 2]}, {"a": 1, "b": 2})
    output, _ = run(cache, chunk_fn(lambda a, b: {"b": a, "v": 1}, cache.axis_order))
    with pytest.raises(ValueError, match=r"point \{'a': 1, 'b': 2\} has 'b': 1.*names an axis"):
        to_xarray(cache, output)


def array_point(a, b):
    return np.arange(3, dtype=np.float32) * a + b


def test_array_outputs_add_trailing_dimensions(root):
    cache = make(root, {"a": [1, 2, 3], "b": [5, 6]}, {"a": 2, "b": 1})
    output, _ = run(cache, chunk_fn(array_point, cache.axis_order))
    da = to_xarray(cache, output)
    assert da.dims == ("a", "b", "dim_0") and da.shape == (3, 2, 3)
    assert da.dtype == np.float32
    named = to_xarray(cache, output, extra_dims=["t"])
    assert named.dims == ("a", "b", "t")
    for point in points_of(cache):
        np.testing.assert_array_equal(da.sel(**point).values, array_point(**point))
        np.testing.assert_array_equal(named.sel(**point).values, array_point(**point))

    df = to_dataframe(cache, output)
    assert list(df.columns) == ["a", "b", "value"] and df["value"].dtype == object
    for row, point in zip(df.itertuples(index=False), points_of(cache), strict=True):
        np.testing.assert_array_equal(row.value, array_point(**point))


def test_lists_of_numbers_are_arrays_and_dict_arrays_get_their_own_dims(root):
    cache = make(root, {"a": [1, 2], "b": [1, 2, 3]}, {"a": 1, "b": 2})

    def point(a, b):
        return {"grid": [[a, b], [b, a]], "mean": (a + b) / 2, "hist": [a] * 4}

    output, _ = run(cache, chunk_fn(point, cache.axis_order))
    ds = to_xarray(cache, output)
    assert ds["grid"].dims == ("a", "b", "grid_dim_0", "grid_dim_1")
    assert ds["hist"].dims == ("a", "b", "hist_dim_0") and ds["mean"].dims == ("a", "b")
    shared = to_xarray(cache, output, extra_dims={"grid": ("row", "col"), "hist": "bin"})
    assert shared["grid"].dims == ("a", "b", "row", "col")
    assert shared["hist"].dims == ("a", "b", "bin")
    for p in points_of(cache):
        expected = point(**p)
        assert ds["grid"].sel(**p).values.tolist() == expected["grid"]
        assert ds["hist"].sel(**p).values.tolist() == expected["hist"]
        assert ds["mean"].sel(**p).item() == expected["mean"]


def test_arrays_of_other_shapes_and_wrong_extra_dims_are_errors(root):
    cache = make(root, {"a": [1, 2], "b": [1, 2]}, {"a": 2, "b": 2})
    output, _ = run(cache, chunk_fn(lambda a, b: np.zeros(a + b == 3 and 2 or 3),
                                    cache.axis_order))
    with pytest.raises(ValueError, match=r"point \{'a': 1, 'b': 2\} is shape \(2,\).*\(3,\)"):
        to_xarray(cache, output)
    flat_cache = make(root, {"a": [1, 2], "b": [3]}, {"a": 2, "b": 1})
    output, _ = run(flat_cache, chunk_fn(lambda a, b: np.zeros(4), ("a", "b")))
    with pytest.raises(ValueError, match=r"extra_dims \['x', 'y'\] names 2 dimensions"):
        to_xarray(flat_cache, output, extra_dims=("x", "y"))
    with pytest.raises(ValueError, match=r"extra_dims \['b'\] are axes"):
        to_xarray(flat_cache, output, extra_dims=("b",))


# -- views ----------------------------------------------------------------------------
def test_a_slice_by_values_is_labeled_with_its_selected_values(root):
    cache = make(root, {"a": [1, 2, 3, 4, 5], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    view = cache.slice(PARAMS, a=[2, 3, 5], b=[9, 7])
    output, _ = run(view, chunk_fn(scalar_point, cache.axis_order))
    da = to_xarray(view, output)
    assert da.coords["a"].values.tolist() == [2, 3, 5]
    assert da.coords["b"].values.tolist() == [7, 9]
    for point in points_of(view):
        assert da.sel(**point).item() == scalar_point(**point)
    assert not np.isnan(da.values).any()
    df = to_dataframe(view, output)
    assert [(r.a, r.b, r.value) for r in df.itertuples(index=False)] == [
        (p["a"], p["b"], scalar_point(**p)) for p in points_of(view)]


def test_a_slice_by_axis_indices_and_a_view_of_stored_chunks(root):
    cache = make(root, {"a": [1, 2, 3, 4, 5], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    run(cache, chunk_fn(scalar_point, cache.axis_order))
    view = cache.slice(PARAMS, axis_indices={"a": slice(1, 4), "b": [0, 2]})
    output, diag = run(view, chunk_fn(lambda a, b: 1 / 0, cache.axis_order))
    assert diag.cached_chunks == diag.total_chunks == 4
    da = to_xarray(view, output)
    assert da.coords["a"].values.tolist() == [2, 3, 4]
    assert da.coords["b"].values.tolist() == [7, 9]
    for point in points_of(view):
        assert da.sel(**point).item() == scalar_point(**point)
    df = to_dataframe(view, output)
    assert [(r.a, r.b, r.value) for r in df.itertuples(index=False)] == [
        (p["a"], p["b"], scalar_point(**p)) for p in points_of(view)]


def three_axis_point(z, a, m):
    return f"{z}|{a}|{m}"


def test_three_axes_in_a_non_default_axis_order(root):
    order = ["z", "a", "m"]
    cache = make(root, {"a": [1, 2, 3], "m": ["p", "q"], "z": [0.5, 1.5, 2.5, 3.5]},
                 {"a": 2, "m": 1, "z": 3}, axis_order=order)
    output, diag = run(cache, chunk_fn(three_axis_point, order))
    assert diag.total_chunks == 8
    da = to_xarray(cache, output)
    assert da.dims == ("z", "a", "m") and da.shape == (4, 3, 2)
    for point in points_of(cache):
        assert da.sel(**point).item() == three_axis_point(**point)
    df = to_dataframe(cache, output)
    assert list(df.columns) == ["z", "a", "m", "value"]
    assert [tuple(r) for r in df.itertuples(index=False)] == [
        (p["z"], p["a"], p["m"], three_axis_point(**p)) for p in points_of(cache)]

    view = cache.slice(PARAMS, m="q", z=[3.5, 0.5])
    output, _ = run(view, chunk_fn(three_axis_point, order))
    da = to_xarray(view, output)
    assert da.shape == (2, 3, 1)
    for point in points_of(view):
        assert da.sel(**point).item() == three_axis_point(**point)


def test_run_chunks_output_is_labeled_with_its_chunk_keys(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    keys = cache.resolved_chunk_keys()[::-1][:3]
    output, _ = run_chunks(keys, chunk_fn(scalar_point, cache.axis_order), cache=cache)
    da = to_xarray(cache, output, chunk_keys=keys)
    computed = {(a, b) for key in keys for a in key[0][1] for b in key[1][1]}
    for point in points_of(cache):
        value = da.sel(**point).item()
        if (point["a"], point["b"]) in computed:
            assert value == scalar_point(**point)
        else:
            assert math.isnan(value)


# -- partly stored chunks and run_parallel ------------------------------------------------
def test_points_a_partly_stored_chunk_lacks_are_fill_values(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8, 9]}, {"a": 3, "b": 3})
    stored = [{"a": 1, "b": 9}, {"a": 3, "b": 8}]
    run_parallel(stored, exec_fn=scalar_point, cache=cache, map_fn=map)
    output, diag = run(cache, chunk_fn(lambda a, b: 1 / 0, cache.axis_order))
    assert diag.partial_chunks == 1 and output == [[scalar_point(1, 9), scalar_point(3, 8)]]

    da = to_xarray(cache, output)
    assert int(da.notnull().sum()) == 2
    for point in points_of(cache):
        if point in stored:
            assert da.sel(**point).item() == scalar_point(**point)
        else:
            assert math.isnan(da.sel(**point).item())
    filled = to_xarray(cache, output, fill_value=-1.0)
    assert filled.sel(a=2, b=7).item() == -1.0 and filled.sel(a=3, b=8).item() == scalar_point(3, 8)

    df = to_dataframe(cache, output)
    assert [(r.a, r.b, r.value) for r in df.itertuples(index=False)] == [
        (1, 9, scalar_point(1, 9)), (3, 8, scalar_point(3, 8))]

    view = cache.slice(PARAMS, a=[3], b=[7, 8])
    output, _ = run(view, chunk_fn(lambda a, b: 1 / 0, cache.axis_order))
    da = to_xarray(view, output)
    assert math.isnan(da.sel(a=3, b=7).item()) and da.sel(a=3, b=8).item() == scalar_point(3, 8)


def test_integer_and_string_outputs_with_gaps_are_promoted(root):
    cache = make(root, {"a": [1, 2]}, {"a": 2})
    run_parallel([2], exec_fn=lambda a: a * 3, cache=cache, map_fn=map)
    output, _ = run(cache, chunk_fn(lambda a: 1 / 0, ("a",)))
    da = to_xarray(cache, output)
    assert da.dtype == np.float64 and da.sel(a=2).item() == 6 and math.isnan(da.sel(a=1).item())
    assert to_xarray(cache, output, fill_value=0).dtype == np.int64

    words = make(root, {"a": [1, 2]}, {"a": 2}, cache_version="words")
    run_parallel([1], exec_fn=lambda a: "w" * a, cache=words, map_fn=map)
    output, _ = run(words, chunk_fn(lambda a: 1 / 0, ("a",)))
    da = to_xarray(words, output)
    assert da.dtype == object and da.sel(a=1).item() == "w" and math.isnan(da.sel(a=2).item())


def test_run_parallel_output_is_labeled_through_its_items(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8, 9]}, {"a": 2, "b": 2},
                 axis_order=["b", "a"])
    items = [{"a": 3, "b": 7}, (9, 1), {"b": 8, "a": 2}, (7, 3)]
    points = [{"a": 3, "b": 7}, {"a": 1, "b": 9}, {"a": 2, "b": 8}, {"a": 3, "b": 7}]
    output, _ = run_parallel(items, exec_fn=scalar_point, cache=cache, map_fn=map)
    assert output == [scalar_point(**p) for p in points]

    df = to_dataframe(cache, output, items=items)
    assert list(df.columns) == ["b", "a", "value"]
    assert [(r.a, r.b, r.value) for r in df.itertuples(index=False)] == [
        (p["a"], p["b"], scalar_point(**p)) for p in points], "one row per item, in order"

    da = to_xarray(cache, output, items=items)
    assert da.dims == ("b", "a")
    for point in points_of(cache):
        value = da.sel(**point).item()
        if point in points:
            assert value == scalar_point(**point)
        else:
            assert math.isnan(value)

    ds = to_xarray(cache, [dict_point(**p) for p in points], items=items)
    assert ds["total"].sel(a=1, b=9).item() == 10


def test_run_parallel_items_must_match_the_output_and_the_view(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8, 9]}, {"a": 2, "b": 2})
    output, _ = run_parallel([(1, 7), (3, 9)], exec_fn=scalar_point, cache=cache, map_fn=map)
    with pytest.raises(ValueError, match="items has 1 entries but output has 2"):
        to_xarray(cache, output, items=[(1, 7)])
    with pytest.raises(ValueError, match=r"item \(3, 9\) is outside this view.*'a' value 3"):
        to_dataframe(cache.slice(PARAMS, a=[1, 2]), output, items=[(1, 7), (3, 9)])


# -- what cannot be labeled ---------------------------------------------------------------
def test_a_chunk_stored_whole_is_an_error_naming_its_key(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8]}, {"a": 2, "b": 2})
    output, _ = run(cache, lambda params, a, b: {"sum": sum(a) + sum(b)})
    for label in (to_xarray, to_dataframe):
        with pytest.raises(ValueError, match=r"chunk \(\('a', \(1, 2\)\), \('b', \(7, 8\)\)\) "
                                             r"was stored whole \(exec_fn returned dict"):
            label(cache, output)

    lists = make(root, {"a": [1, 2, 3], "b": [7, 8]}, {"a": 2, "b": 2}, cache_version="lists")
    view = lists.slice(PARAMS, a=[1], b=[7, 8])
    output, _ = run(view, lambda params, a, b: [0, 0])  # two outputs for four points
    assert output == [[0, 0]]
    with pytest.raises(ValueError, match=r"chunk \(\('a', \(1, 2\)\), \('b', \(7, 8\)\)\) "
                                         r"was stored whole \(exec_fn returned list"):
        to_xarray(view, output)


def test_output_that_does_not_fit_the_view_is_an_error(root):
    cache = make(root, {"a": [1, 2, 3], "b": [7, 8]}, {"a": 2, "b": 2})
    output, _ = run(cache, chunk_fn(scalar_point, cache.axis_order))
    with pytest.raises(ValueError, match="output has 1 chunk entries but this view has 2"):
        to_xarray(cache, [flat(output)])
    with pytest.raises(TypeError, match="output must be the list returned by run"):
        to_dataframe(cache, (x for x in output))
    with pytest.raises(ValueError, match="name 'a' is an axis"):
        to_xarray(cache, output, name="a")


@pytest.mark.parametrize("label, module", [(to_xarray, "xarray"), (to_dataframe, "pandas")])
def test_a_missing_extra_names_what_to_install(root, monkeypatch, label, module):
    cache = make(root, {"a": [1]}, {"a": 1})
    output, _ = run(cache, chunk_fn(lambda a: a, ("a",)))
    monkeypatch.setitem(sys.modules, module, None)  # "import xarray" now raises ImportError
    with pytest.raises(ImportError, match=rf"pip install 'chunk-memo\[{module}\]'"):
        label(cache, output)
