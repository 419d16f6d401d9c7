from __future__ import annotations

import warnings

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import Dataset
from pydicom.pixels import apply_rescale
from skimage.exposure import rescale_intensity

import tilevision as tv
from tilevision.filters import (
    WINDOW_PRESETS,
    available_steps,
    chain,
    global_percentiles,
    histogram,
    normalize,
    rescale_hu,
    step,
    window,
)
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    assert_tiled_equals_whole,
    raise_if_dask_computes,
)

from ..test_graph import ReadCounter, peak_alive

RNG = np.random.default_rng(11)
DTYPES = ["uint8", "uint16", "int16", "float32", "float64"]
INT_DTYPES = ["uint8", "int8", "uint16", "int16", "int32", "uint32", "int64"]
FLOAT_DTYPES = ["float16", "float32", "float64"]


def _image(shape, dtype):
    if np.dtype(dtype).kind in "ui":
        low, high = {"uint8": (0, 255), "uint16": (0, 60000), "int16": (-1000, 3000)}[dtype]
        return RNG.integers(low, high, size=shape, endpoint=True).astype(dtype)
    return (RNG.standard_normal(shape) * 300 + 40).astype(dtype)


def _work(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


def _ct(data_dir):
    nii = nib.load(data_dir / "ct-organs" / "example_ct_sm.nii.gz")
    return np.asarray(nii.dataobj).transpose(2, 1, 0)  # (i, j, k) → (z, y, x)


def _assert_same(got, expected):
    """Equal values (NaN where NaN) and the same dtype."""
    got, expected = np.asarray(got), np.asarray(expected)
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}"
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


# -- global percentiles -----------------------------------------------------------------


# every chunking with two dtypes, every dtype with two chunkings
CHUNKS_X_DTYPES = sorted(
    {(i, d) for i in range(len(AWKWARD_CHUNKS_2D)) for d in ("uint16", "float32")}
    | {(i, d) for i in (1, 4) for d in DTYPES}
)
CASES_2D = [pytest.param(AWKWARD_CHUNKS_2D[i], d, id=f"chunks{i}-{d}") for i, d in CHUNKS_X_DTYPES]


@pytest.mark.parametrize(("chunks", "dtype"), CASES_2D)
def test_global_percentiles_equal_numpy_2d(chunks, dtype):
    image = _image(AWKWARD_SHAPE_2D, dtype)
    lazy = da.from_array(image, chunks=chunks)
    q = [0, 2.5, 99.9]
    with raise_if_dask_computes():
        p = global_percentiles(lazy, q)
        p_scalar = global_percentiles(lazy, 100)
    assert isinstance(p, da.Array)
    _assert_same(p.compute(), np.percentile(image, q))
    # a scalar q: NumPy's weak promotion keeps float32 float32
    _assert_same(p_scalar.compute(), np.percentile(image, 100))


@pytest.mark.parametrize("dtype", ["int16", "float32"])
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_global_percentiles_equal_numpy_3d(chunks, dtype):
    image = _image(AWKWARD_SHAPE_3D, dtype)
    p = global_percentiles(da.from_array(image, chunks=chunks), (1, 99))
    _assert_same(p.compute(), np.percentile(image, (1, 99)))


@pytest.mark.parametrize("dtype", ["uint8", "float32", "float64"])
@pytest.mark.parametrize("method", ["linear", "lower", "higher", "nearest", "midpoint"])
def test_global_percentile_methods(method, dtype):
    image = _image(AWKWARD_SHAPE_3D, dtype)
    p = global_percentiles(da.from_array(image, chunks=(4, 9, 10)), (0, 33.3, 99), method=method)
    _assert_same(p.compute(), np.percentile(image, (0, 33.3, 99), method=method))


def test_global_percentiles_numpy_and_dataarray_input():
    image = _image((20, 30), "float32")
    _assert_same(global_percentiles(image, [5, 95]), np.percentile(image, [5, 95]))
    img = tv._image.make_image(da.from_array(image, chunks=7), ("y", "x"))
    _assert_same(global_percentiles(img, [5, 95]).compute(), np.percentile(image, [5, 95]))
    flags = RNG.random((10, 10)) < 0.3
    _assert_same(
        global_percentiles(da.from_array(flags, chunks=3), 80),
        np.percentile(flags.astype("uint8"), 80),
    )


def test_nan_policies():
    image = _image(AWKWARD_SHAPE_2D, "float32")
    image[3, 4] = image[40, 0] = np.nan
    lazy = da.from_array(image, chunks=(17, 23))
    q = (1, 50, 99)
    with raise_if_dask_computes():
        propagate = global_percentiles(lazy, q)
        omit = global_percentiles(lazy, q, nan_policy="omit")
        raising = global_percentiles(lazy, q, nan_policy="raise")
    assert np.isnan(propagate.compute()).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected = np.nanpercentile(image, q)
    _assert_same(omit.compute(), expected)
    with pytest.raises(ValueError, match="holds 2 NaN value"):
        raising.compute()
    with pytest.raises(ValueError, match="nan_policy='raise'"):
        global_percentiles(image, q, nan_policy="raise")  # NumPy input: at once
    all_nan = da.full((4, 4), np.nan, chunks=2, dtype="float32")
    assert np.isnan(global_percentiles(all_nan, q, nan_policy="omit").compute()).all()
    # no NaN: every policy gives NumPy's result
    clean = _image((9, 9), "float32")
    for policy in ("propagate", "omit", "raise"):
        got = global_percentiles(da.from_array(clean, chunks=4), q, nan_policy=policy)
        _assert_same(got.compute(), np.percentile(clean, q))


def test_infinities_and_signed_zeros():
    image = np.array([[-np.inf, -0.0, 0.0, 1e-30], [np.inf, -1e-30, 5.0, np.inf]], "float64")
    q = [0, 10, 40, 50, 60, 90, 100]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy warns about inf - inf
        expected = np.percentile(image, q)
    got = global_percentiles(da.from_array(image, chunks=1), q).compute()
    _assert_same(got, expected)


def test_int16_extremes_do_not_overflow():
    """NumPy subtracts int16 order statistics in int16; the exact answer is wanted here."""
    image = np.array([-30000, 30000], "int16")
    got = global_percentiles(da.from_array(image, chunks=1), 50).compute()
    assert got == 0.0


def test_graph_reads_each_pass_once_and_is_deterministic():
    lazy = da.from_array(_image((1024, 512), "float32"), chunks=512)
    a, b = global_percentiles(lazy, (1, 99)), global_percentiles(lazy, (1, 99))
    assert a.name == b.name
    # float32 in blocks of 2**18 values: two 16-bit radix passes of one task per block,
    # and no duplicated subgraphs
    names = [k[0] if isinstance(k, tuple) else k for k in dict(a.__dask_graph__())]
    assert sum(n.startswith("_block_radix_hist") for n in names) == 2 * 2
    _assert_same(a.compute(), np.percentile(lazy.compute(), (1, 99)))


@settings(max_examples=40, deadline=None)
@given(
    dtype=st.sampled_from(INT_DTYPES + FLOAT_DTYPES),
    shape=st.tuples(st.integers(1, 25), st.integers(1, 6)),
    chunk=st.tuples(st.integers(1, 9), st.integers(1, 4)),
    q=st.one_of(
        st.floats(0, 100),
        st.integers(0, 100),
        st.lists(st.floats(0, 100), min_size=1, max_size=4),
    ),
    method=st.sampled_from(["linear", "lower", "higher", "nearest", "midpoint"]),
    omit=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_property_global_percentiles_equal_numpy(dtype, shape, chunk, q, method, omit, seed):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        image = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3)).astype(dtype)
        special = rng.choice([np.nan, np.inf, -np.inf, -0.0, 0.0, 1.0], size=shape)
        image = np.where(rng.random(shape) < 0.15, special, image).astype(dtype)
    else:
        info = np.iinfo(dtype)
        # small ranges (many ties) and wide ones; NumPy subtracts in the input dtype,
        # so keep max - min within it (the overflow case has its own test)
        wide = (max(info.min // 2, -(2**40)), min(info.max // 2, 2**40))
        low, high = (0, 5) if rng.random() < 0.3 else wide
        image = rng.integers(low, high, size=shape, endpoint=True).astype(dtype)
    policy = "omit" if omit else "propagate"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # all-NaN slices, inf - inf
        reference = (np.nanpercentile if omit else np.percentile)(image, q, method=method)
        if omit and np.isnan(image).all():
            reference = np.asarray(reference).astype(np.asarray(np.percentile(image, q)).dtype)
    got = global_percentiles(
        da.from_array(image, chunks=chunk), q, method=method, nan_policy=policy
    )
    _assert_same(got.compute(), reference)


# -- histogram --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "bool"])
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D[1:])
def test_histogram_equals_numpy(chunks, dtype):
    image = (
        RNG.random(AWKWARD_SHAPE_2D) < 0.4 if dtype == "bool" else _image(AWKWARD_SHAPE_2D, dtype)
    )
    reference = image.astype("uint8") if dtype == "bool" else image
    lazy = da.from_array(image, chunks=chunks)
    for bins, range_ in [
        (17, None),
        (50, (-100.5, 200.1)),
        (np.array([-500, 0, 3.5, 100, 1e4]), None),
    ]:
        with raise_if_dask_computes():
            counts, edges = histogram(lazy, bins, range_)
        ref_counts, ref_edges = np.histogram(reference, bins, range_)
        _assert_same(counts.compute(), ref_counts)
        _assert_same(edges.compute() if isinstance(edges, da.Array) else edges, ref_edges)


@pytest.mark.parametrize("dtype", ["uint16", "float64"])
def test_histogram_3d_and_constant_image(dtype):
    image = _image(AWKWARD_SHAPE_3D, dtype)
    counts, edges = histogram(da.from_array(image, chunks=(4, 9, 10)), 64)
    ref_counts, ref_edges = np.histogram(image, 64)
    _assert_same(counts.compute(), ref_counts)
    _assert_same(edges.compute(), ref_edges)
    flat = np.full((5, 5), 3, "uint16")
    counts, edges = histogram(da.from_array(flat, chunks=2), 4)
    ref_counts, ref_edges = np.histogram(flat, 4)
    _assert_same(counts.compute(), ref_counts)
    _assert_same(edges.compute(), ref_edges)
    counts, edges = histogram(flat, 4)  # NumPy input: NumPy's result
    _assert_same(counts, ref_counts)


def test_histogram_nan():
    image = np.array([[1.0, np.nan], [2.0, 3.0]])
    counts, _ = histogram(da.from_array(image, chunks=1), 3, (0, 3))
    _assert_same(counts.compute(), np.histogram(image, 3, (0, 3))[0])
    counts, _ = histogram(da.from_array(image, chunks=1), 3)  # lazy: raises when computed
    with pytest.raises(ValueError, match="not finite"):
        counts.compute()


# -- percentile normalisation -----------------------------------------------------------


@pytest.mark.parametrize(("chunks", "dtype"), CASES_2D)
def test_normalize_percentiles_2d(chunks, dtype):
    image = _image(AWKWARD_SHAPE_2D, dtype)

    def reference(a):
        low, high = np.percentile(a, (2, 98))
        return rescale_intensity(
            a.astype(_work(dtype)), in_range=(low, high), out_range=(0.0, 1.0)
        )

    assert_tiled_equals_whole(lambda a: normalize(a, (2, 98)), reference, image, chunks)


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_normalize_percentiles_3d_out_range(chunks):
    image = _image(AWKWARD_SHAPE_3D, "uint16")

    def reference(a):
        low, high = np.percentile(a, (1, 99))
        return rescale_intensity(a.astype(np.float32), in_range=(low, high), out_range=(-1.0, 1.0))

    assert_tiled_equals_whole(lambda a: normalize(a, out_range=(-1, 1)), reference, image, chunks)


def test_normalize_without_clip_and_constant_image():
    image = _image(AWKWARD_SHAPE_2D, "float32")
    out = normalize(da.from_array(image, chunks=(9, 10)), (10, 90), clip=False).compute()
    low, high = (float(v) for v in np.percentile(image, (10, 90)))
    _assert_same(out, ((image - low) / (high - low) * 1.0 + 0.0).astype(np.float32))
    assert out.min() < 0
    assert out.max() > 1
    flat = np.full((6, 6), 7, "int16")
    out = normalize(da.from_array(flat, chunks=4)).compute()
    _assert_same(
        out, rescale_intensity(flat.astype(np.float32), in_range=(7.0, 7.0), out_range=(0.0, 1.0))
    )


def test_normalize_nan_policies():
    image = _image((20, 20), "float64")
    image[5, 5] = np.nan
    lazy = da.from_array(image, chunks=7)
    with raise_if_dask_computes():
        propagate = normalize(lazy)
        omit = normalize(lazy, nan_policy="omit")
        raising = normalize(lazy, nan_policy="raise")
    assert np.isnan(propagate.compute()).all()
    low, high = np.nanpercentile(image, (1, 99))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skimage is not needed to warn here
        expected = rescale_intensity(image, in_range=(low, high), out_range=(0.0, 1.0))
    got = omit.compute()
    np.testing.assert_array_equal(got, expected)
    assert np.isnan(got[5, 5])
    assert np.isfinite(np.delete(got.ravel(), 5 * 20 + 5)).all()
    with pytest.raises(ValueError, match="nan_policy='raise'"):
        raising.compute()


def test_normalize_dataarray_per_channel():
    data = np.stack([_image((30, 40), "uint16"), _image((30, 40), "uint16") // 7])
    img = tv._image.make_image(
        da.from_array(data, chunks=(2, 11, 13)), ("c", "y", "x"), spacing=0.5,
        channel_names=["a", "b"], attrs={"note": "kept"},
    )  # fmt: skip
    with raise_if_dask_computes():
        out = normalize(img)
    assert isinstance(out, xr.DataArray)
    assert out.dims == img.dims
    assert out.data.chunks[0] == (2,)
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["note"] == "kept"
    assert out.attrs["filters"][-1].startswith("normalize(percentiles=(1.0, 99.0)")
    expected = np.stack(
        [rescale_intensity(c.astype(np.float32), in_range=tuple(np.percentile(c, (1, 99))),
                           out_range=(0.0, 1.0)) for c in data]
    )  # fmt: skip
    _assert_same(out.values, expected)
    # NumPy input with a channel axis
    _assert_same(
        normalize(np.moveaxis(data, 0, -1), channel_axis=-1), np.moveaxis(expected, 0, -1)
    )


def test_normalize_linear():
    image = _image(AWKWARD_SHAPE_2D, "int16")
    assert_tiled_equals_whole(
        lambda a: normalize(a, alpha=0.5, beta=-3.0),
        lambda a: a.astype(np.float32) * 0.5 + -3.0,
        image,
        (9, 10),
    )
    _assert_same(normalize(image, beta=2), image.astype(np.float32) * 1.0 + 2.0)


# -- windowing and rescale --------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("preset", list(WINDOW_PRESETS))
def test_window_presets_equal_skimage(preset, dtype):
    image = _image(AWKWARD_SHAPE_2D, dtype)
    level, width = WINDOW_PRESETS[preset]
    for chunks in (AWKWARD_CHUNKS_2D[1], AWKWARD_CHUNKS_2D[3]):
        assert_tiled_equals_whole(
            lambda a: window(a, preset=preset),
            lambda a: rescale_intensity(
                a.astype(_work(dtype)), in_range=(level - width / 2, level + width / 2),
                out_range=(0.0, 1.0),
            ),
            image,
            chunks,
        )  # fmt: skip


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_window_level_width_3d(chunks):
    image = _image(AWKWARD_SHAPE_3D, "float64")
    assert_tiled_equals_whole(
        lambda a: window(a, 100, 250, out_range=(0, 255)),
        lambda a: rescale_intensity(a, in_range=(-25.0, 225.0), out_range=(0.0, 255.0)),
        image,
        chunks,
    )


def test_rescale_hu_equals_pydicom():
    ds = Dataset()
    for raw_dtype, slope, intercept, out_dtype in [
        ("uint16", 1, -1024, "int32"),
        ("int16", 1, 0, "int16"),
        ("uint16", 0.5, -1024, "float32"),
        ("float64", 2.5, 10, "float64"),
    ]:
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        raw = _image((20, 30), "uint16").astype(raw_dtype)
        with raise_if_dask_computes():
            out = rescale_hu(da.from_array(raw, chunks=(7, 11)), slope, intercept)
        assert out.dtype == np.dtype(out_dtype)
        got = out.compute()
        assert got.dtype == np.dtype(out_dtype)
        np.testing.assert_array_equal(got, apply_rescale(raw, ds).astype(out_dtype))


def test_intensity_steps_chain_with_rank_filters():
    for name in ("window", "rescale_hu", "linear"):
        assert name in available_steps()
    raw = _image(AWKWARD_SHAPE_2D, "uint16") // 10
    steps = [
        step("rescale_hu", slope=1, intercept=-1024),
        step("window", preset="lung"),
        step("median", size=3),
    ]

    def reference(a):
        hu = a.astype(np.int64) - 1024
        shown = rescale_intensity(
            hu.astype(np.float32), in_range=(-1350.0, 150.0), out_range=(0.0, 1.0)
        )
        return ndi.median_filter(shown, 3, mode="nearest")

    assert_tiled_equals_whole(lambda a: chain(a, steps), reference, raw, (9, 10))


# -- real data --------------------------------------------------------------------------


def test_real_ct_soft_tissue_window_and_normalize(data_dir):
    volume = _ct(data_dir)
    assert volume.dtype == np.int16
    assert volume.shape == (30, 101, 122)
    lazy = tv._image.make_image(
        da.from_array(volume, chunks=(8, 40, 50)), ("z", "y", "x"), spacing=3.0
    )
    with raise_if_dask_computes():
        shown = window(lazy, preset="soft_tissue")
        normalised = normalize(lazy, (0.5, 99.5))
    assert isinstance(shown, xr.DataArray)
    assert shown.attrs["spacing"] == lazy.attrs["spacing"]
    assert shown.attrs["filters"] == ["window(preset='soft_tissue', out_range=(0.0, 1.0))"]
    # soft tissue: level 40, width 400 → [-160, 240], by hand in NumPy
    expected = (np.clip(volume.astype(np.float32), -160.0, 240.0) - -160.0) / 400.0
    _assert_same(shown.values, (expected * 1.0 + 0.0).astype(np.float32))
    assert shown.values.min() == 0
    assert shown.values.max() == 1
    low, high = np.percentile(volume, (0.5, 99.5))
    _assert_same(
        normalised.values,
        rescale_intensity(volume.astype(np.float32), in_range=(low, high), out_range=(0.0, 1.0)),
    )


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: normalize(x, (99, 1)), ValueError, "0 <= low < high <= 100"),
        (lambda x: normalize(x, (-1, 50)), ValueError, "0 <= low < high <= 100"),
        (lambda x: normalize(x, (5, 5)), ValueError, "two different finite numbers"),
        (lambda x: normalize(x, (1, 2, 3)), ValueError, "percentiles must be a pair"),
        (lambda x: normalize(x, out_range=(0, 0)), ValueError, "out_range must be two different"),
        (lambda x: normalize(x, (1, 99), alpha=2), ValueError, "not both"),
        (lambda x: normalize(x, nan_policy="ignore"), ValueError, "nan_policy must be one of"),
        (lambda x: normalize(x, alpha=float("inf")), ValueError, "alpha and beta must be finite"),
        (lambda x: global_percentiles(x, 101), ValueError, r"must be in \[0, 100\]"),
        (lambda x: global_percentiles(x, [[1, 2]]), ValueError, "1-D sequence"),
        (lambda x: global_percentiles(x, "median"), ValueError, "q must be a number"),
        (lambda x: global_percentiles(x, 5, method="hazen"), ValueError, "unknown method 'hazen'"),
        (lambda x: global_percentiles(x, 5, nan_policy="no"), ValueError, "nan_policy must be"),
        (lambda x: histogram(x, "auto"), ValueError, "bins='auto'"),
        (lambda x: histogram(x, 0), ValueError, "bins must be a positive whole number"),
        (lambda x: window(x), ValueError, "a window needs level= and width="),
        (lambda x: window(x, 40), ValueError, "a window needs level= and width="),
        (lambda x: window(x, preset="liver"), ValueError, "unknown window preset 'liver'"),
        (lambda x: window(x, 40, 400, preset="bone"), ValueError, "either preset or level"),
        (lambda x: window(x, 40, 0), ValueError, "window width must be > 0"),
        (lambda x: window(x, 40, 400, out_range=(1, 1)), ValueError, "out_range must be two"),
        (lambda x: rescale_hu(x, 0, -1024), ValueError, "slope must be finite and non-zero"),
        (lambda x: rescale_hu(x.astype(bool), 1, 0), TypeError, "not booleans"),
    ],
)
def test_bad_parameters(call, error, message):
    with pytest.raises(error, match=message):
        call(da.zeros((10, 10), chunks=5, dtype="float32"))


def test_bad_images():
    with pytest.raises(TypeError, match="non-numeric dtype"):
        global_percentiles(np.array(["a"]), 50)
    with pytest.raises(TypeError, match="complex dtype"):
        histogram(np.zeros(3, complex), 4)
    with pytest.raises(ValueError, match="empty"):
        global_percentiles(da.zeros((0, 3), chunks=1), 50)
    with pytest.raises(ValueError, match="empty"):
        normalize(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        histogram(np.zeros((3, 0)), 4)


# -- memory: later passes read the image again instead of holding it ---------------------


def _counted(shape=(256, 256), chunks=32, dtype="float32"):
    """A 64-chunk image that counts its reads (see tests/test_graph.py)."""
    return ReadCounter(shape, chunks, dtype, seed=5)


def test_histogram_reads_again_after_the_range():
    counter = _counted()
    with raise_if_dask_computes():
        counts, edges = histogram(counter.array, bins=50)
    peak, (got_counts, got_edges) = peak_alive((counts, edges), (32, 32))
    assert peak <= 2  # was 64: every chunk held until min and max were known
    assert counter.counts() == {2}  # the range, then the counts
    ref_counts, ref_edges = np.histogram(counter.whole(), bins=50)
    _assert_same(got_counts, ref_counts)
    _assert_same(got_edges, ref_edges)
    # a given range needs one pass only
    counts, _ = histogram(counter.array, bins=50, range=(-100, 100))
    counts.compute(scheduler="sync")
    assert counter.counts() == {1}


@pytest.mark.parametrize(("dtype", "passes"), [("float32", 4), ("uint16", 2), ("uint8", 1)])
def test_global_percentiles_passes_hold_no_chunk(dtype, passes):
    counter = ReadCounter((256, 256), 32, "float32", seed=5)
    image = counter.array if dtype == "float32" else abs(counter.array).astype(dtype)
    with raise_if_dask_computes():
        p = global_percentiles(image, [1, 50, 99.5])
    peak, got = peak_alive(p, (32, 32))
    assert peak <= 2
    assert counter.counts() == {passes}  # one read per radix pass (8 bits: small chunks)
    whole = counter.whole()
    whole = whole if dtype == "float32" else abs(whole).astype(dtype)
    _assert_same(got, np.percentile(whole, [1, 50, 99.5]))


def test_normalize_reads_again_for_the_transform():
    counter = _counted()
    with raise_if_dask_computes():
        out = normalize(counter.array, (2, 98))
    peak, got = peak_alive(out.sum(dtype="float64"), (32, 32))
    assert peak <= 2  # was 64
    assert counter.counts() == {5}  # 4 radix passes (float32, small chunks), the transform
    whole = counter.whole()
    ref = rescale_intensity(whole, in_range=tuple(np.percentile(whole, (2, 98))), out_range=(0, 1))
    np.testing.assert_allclose(got, ref.sum(dtype="float64"), rtol=1e-9)
    _assert_same(out.compute(), ref)


def test_normalize_per_channel_reads_again():
    """Channels are slices of the image: the re-read copies the slicing too."""
    counter = ReadCounter((2, 128, 128), (1, 32, 32), "float32", seed=3)
    img = tv._image.make_image(counter.array, ("c", "y", "x"))
    out = normalize(img, (5, 95))
    peak, got = peak_alive(out.data.sum(dtype="float64"), (1, 32, 32))
    assert peak <= 2
    assert counter.counts() == {5}
    whole = counter.whole()
    ref = np.stack(
        [rescale_intensity(c, in_range=tuple(np.percentile(c, (5, 95))), out_range=(0, 1))
         for c in whole]
    )  # fmt: skip
    np.testing.assert_allclose(got, ref.sum(dtype="float64"), rtol=1e-9)
