from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage import exposure, filters

import tilevision as tv
from tilevision._dtype import filter_dtype
from tilevision.filters import (
    THRESHOLD_METHODS,
    _threshold,
    apply_threshold,
    chain,
    gaussian,
    normalize,
    step,
    threshold,
    threshold_li,
    threshold_local,
    threshold_mean,
    threshold_otsu,
    threshold_quantile,
    threshold_triangle,
    threshold_yen,
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

DTYPES = ["uint8", "uint16", "int16", "float32", "float64"]
FUNCS = {
    "otsu": (threshold_otsu, filters.threshold_otsu),
    "yen": (threshold_yen, filters.threshold_yen),
    "triangle": (threshold_triangle, filters.threshold_triangle),
    "li": (threshold_li, filters.threshold_li),
}


def _image(shape, dtype, seed=0):
    """Two overlapping populations (background and brighter objects) in the dtype's range."""
    rng = np.random.default_rng(seed)
    low, high, spread = {
        "uint8": (40, 170, 25),
        "uint16": (300, 2500, 400),
        "int16": (-700, 400, 150),
    }.get(dtype, (-1.5, 2.0, 0.8))
    values = np.where(rng.random(shape) < 0.7, low, high) + rng.normal(0, spread, shape)
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        values = np.clip(np.round(values), info.min, info.max)
    return values.astype(dtype)


def _lazy_threshold(func, image, chunks, **kwargs):
    x = da.from_array(image, chunks=chunks)
    with raise_if_dask_computes():
        t = func(x, **kwargs)
    assert isinstance(t, da.Array)
    assert t.shape == ()
    assert t.dtype == np.float64
    return t.compute()


def _li_bin(image):
    """(max - min) / 2**16: the scale of Li's float-image accuracy (see threshold_li)."""
    finite = image[np.isfinite(image)]
    return (float(finite.max()) - float(finite.min())) / 2**16


def _check(method, image, got, expected):
    if method == "li" and image.dtype.kind == "f":
        # Li on float images iterates on histogram bin means: within a small
        # fraction of a bin width of scikit-image's iteration on the pixels
        assert abs(got - expected) <= 0.05 * _li_bin(image), (method, got, expected)
    else:
        assert got == expected, (method, got, expected)


# -- global thresholds against scikit-image on the whole array ----------------------------


def _check_all_methods(image, chunks):
    """otsu, yen, triangle and li built lazily, computed together, vs scikit-image."""
    x = da.from_array(image, chunks=chunks)
    with raise_if_dask_computes():
        lazy = {method: ours(x) for method, (ours, _) in FUNCS.items()}
    for t in lazy.values():
        assert isinstance(t, da.Array)
        assert t.shape == ()
        assert t.dtype == np.float64
    values = dict(zip(lazy, dask.compute(*lazy.values())))
    for method, (_, reference) in FUNCS.items():
        _check(method, image, values[method], reference(image))


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("dtype", DTYPES)
def test_global_thresholds_2d_equal_skimage(dtype, chunks):
    _check_all_methods(_image(AWKWARD_SHAPE_2D, dtype), chunks)


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
@pytest.mark.parametrize("dtype", DTYPES)
def test_global_thresholds_3d_equal_skimage(dtype, chunks):
    _check_all_methods(_image(AWKWARD_SHAPE_3D, dtype, seed=1), chunks)


@pytest.mark.parametrize("nbins", [2, 17, 1000])
@pytest.mark.parametrize("method", ["otsu", "yen", "triangle"])
def test_float_nbins_equals_skimage(method, nbins):
    image = _image((37, 41), "float32", seed=3)
    ours, reference = FUNCS[method]
    got = _lazy_threshold(ours, image, (10, 9), nbins=nbins)
    assert got == reference(image, nbins=nbins)


@pytest.mark.parametrize("dtype", ["uint8", "int16", "int32", "int64", "uint32"])
@pytest.mark.parametrize("chunks", [(7, 11), (-1, 5)])
def test_integer_histogram_is_skimages(dtype, chunks):
    # one bin per integer value over [min, max]: exposure.histogram's bincount
    rng = np.random.default_rng(4)
    offset = 0 if np.dtype(dtype).kind == "u" else -300
    image = (rng.integers(0, 900, (30, 40)) + offset).astype(dtype)
    x = da.from_array(image, chunks=chunks)
    lo, hi, n_bad = _threshold._finite_range(x)
    with raise_if_dask_computes():
        counts = _threshold._counts(x, lo, hi, 256)
    ref_counts, ref_centers = exposure.histogram(image)
    np.testing.assert_array_equal(counts.compute(), ref_counts)
    centers = _threshold._centers(lo.compute(), hi.compute(), 256, image.dtype)
    np.testing.assert_array_equal(centers, ref_centers)
    assert n_bad is None


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_float_histogram_is_skimages(dtype):
    image = _image((30, 40), dtype, seed=5)
    x = da.from_array(image, chunks=(7, 11))
    lo, hi, _ = _threshold._finite_range(x)
    counts = _threshold._counts(x, lo, hi, 100).compute()
    centers = _threshold._centers(lo.compute(), hi.compute(), 100, image.dtype)
    ref_counts, ref_centers = exposure.histogram(image, nbins=100)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(centers, ref_centers)
    assert centers.dtype == ref_centers.dtype


@pytest.mark.parametrize("dtype", ["int64", "uint32", "int8"])
@pytest.mark.parametrize("method", ["otsu", "yen", "triangle", "li"])
def test_other_integer_dtypes(method, dtype):
    rng = np.random.default_rng(6)
    if dtype == "int8":  # Li's image - min stays inside int8 here (scikit-image wraps)
        image = rng.integers(-60, 60, (25, 30)).astype(dtype)
    else:
        image = rng.gamma(2.0, 300.0, (25, 30)) - (1000 if dtype == "int64" else 0)
        image = image.astype(dtype)
    ours, reference = FUNCS[method]
    assert _lazy_threshold(ours, image, (6, 7)) == reference(image)


def test_li_int16_wide_range_does_not_wrap():
    # scikit-image computes image - min in int16 and wraps around past 32767
    rng = np.random.default_rng(13)
    image = np.where(rng.random((30, 30)) < 0.5, -20000, 15000) + rng.integers(-900, 900, (30, 30))
    image = image.astype(np.int16)
    got = _lazy_threshold(threshold_li, image, (7, 8))
    assert got == filters.threshold_li(image.astype(np.int32))


def test_li_options_equal_skimage():
    image = _image((40, 50), "uint16", seed=7)
    for guess in (600.0, 2100.5):
        got = _lazy_threshold(threshold_li, image, (9, 13), initial_guess=guess)
        assert got == filters.threshold_li(image, initial_guess=guess)
    got = _lazy_threshold(threshold_li, image, (9, 13), tolerance=40.0)
    assert got == filters.threshold_li(image, tolerance=40.0)
    image = _image((40, 50), "float64", seed=7)
    got = _lazy_threshold(threshold_li, image, (9, 13), initial_guess=1.0)
    assert abs(got - filters.threshold_li(image, initial_guess=1.0)) <= 0.05 * _li_bin(image)


def test_li_initial_guess_outside_range_raises_when_computed():
    image = da.from_array(_image((20, 20), "uint8"), chunks=7)
    with raise_if_dask_computes():
        t = threshold_li(image, initial_guess=1000.0)
    with pytest.raises(ValueError, match="initial guess for threshold_li must be within"):
        t.compute()
    with pytest.raises(ValueError, match="initial_guess must be a finite number"):
        threshold_li(image, initial_guess=np.mean)
    with pytest.raises(ValueError, match="tolerance must be a finite number"):
        threshold_li(image, tolerance=-1.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean(dtype):
    image = _image((33, 47), dtype, seed=8)
    got = _lazy_threshold(threshold_mean, image, (10, 9))
    expected = filters.threshold_mean(image)
    if image.dtype.kind in "ui":
        assert got == expected  # exact float64 sums of integers
    else:  # float64 sums here; NumPy sums float32 in float32
        np.testing.assert_allclose(got, expected, rtol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("dtype", DTYPES)
def test_quantile_equals_numpy(dtype):
    image = _image((33, 47), dtype, seed=9)
    x = da.from_array(image, chunks=(17, 24))
    methods = ("linear", "lower", "higher", "nearest", "midpoint")
    cases = [(0.0, "linear"), (0.5, "linear"), (1.0, "linear")]
    cases += [(q, m) for q in (0.07, 0.93) for m in methods]
    with raise_if_dask_computes():
        lazy = [threshold_quantile(x, q, method=m) for q, m in cases]
    for (q, m), got in zip(cases, dask.compute(*lazy)):
        assert got == np.quantile(image, q, method=m), (q, m)
    assert threshold_quantile(image, 0.07) == np.quantile(image, 0.07)  # NumPy in
    # 0.007 * 100 / 100 != 0.007: NumPy's percentile of 100 * q, a rounding from its quantile
    got = threshold_quantile(x, 0.007).compute()
    assert got == np.percentile(image, 0.007 * 100)
    np.testing.assert_allclose(got, np.quantile(image, 0.007), rtol=1e-15)


def test_quantiles_with_two_decimals_are_numpys_quantiles():
    # the documented guarantee: 100 * q / 100 == q for every q with two decimals
    assert all((k / 100) * 100 / 100 == k / 100 for k in range(101))
    image = _image((20, 30), "float32", seed=14)
    x = da.from_array(image, chunks=(7, 8))
    qs = [k / 100 for k in range(0, 101, 7)]
    for q, got in zip(qs, dask.compute(*[threshold_quantile(x, q) for q in qs])):
        assert got == np.quantile(image, q), q


# -- NaN / inf / constant images -----------------------------------------------------------


def _with_non_finite(dtype="float32"):
    image = _image((30, 40), dtype, seed=10)
    image[3, 4] = np.nan
    image[10, 20] = np.inf
    image[29, 0] = -np.inf
    return image


ALL_GLOBAL = {
    **{name: pair[0] for name, pair in FUNCS.items()},
    "mean": threshold_mean,
    "quantile": lambda a, **kw: threshold_quantile(a, 0.3, **kw),
}
ALL_REFERENCES = {
    **{name: pair[1] for name, pair in FUNCS.items()},
    "mean": filters.threshold_mean,
    "quantile": lambda a: np.quantile(a, 0.3),
}


@pytest.mark.parametrize("method", list(ALL_GLOBAL))
def test_nan_policies(method):
    image = _with_non_finite()
    func = ALL_GLOBAL[method]
    assert np.isnan(_lazy_threshold(func, image, (7, 9)))  # propagate (default)
    got = _lazy_threshold(func, image, (7, 9), nan_policy="omit")
    finite = image[np.isfinite(image)]
    expected = ALL_REFERENCES[method](finite)
    if method == "mean":
        np.testing.assert_allclose(got, expected, rtol=1e-6)
    else:
        _check(method, image, got, expected)
    lazy = func(da.from_array(image, chunks=(7, 9)), nan_policy="raise")
    with pytest.raises(ValueError, match=r"3 NaN or infinite value.*nan_policy='omit'"):
        lazy.compute()
    clean = _image((30, 40), "float32", seed=10)  # "raise" is harmless without NaN
    assert _lazy_threshold(func, clean, (7, 9), nan_policy="raise") == _lazy_threshold(
        func, clean, (7, 9)
    )


@pytest.mark.parametrize("method", list(ALL_GLOBAL))
def test_all_nan_gives_nan(method):
    image = np.full((6, 7), np.nan, np.float32)
    image[0, 0] = np.inf
    assert np.isnan(_lazy_threshold(ALL_GLOBAL[method], image, 3, nan_policy="omit"))


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64"])
@pytest.mark.parametrize("method", list(ALL_GLOBAL))
def test_constant_image_threshold_is_its_value(method, dtype):
    image = np.full((9, 11), 7, dtype)
    got = _lazy_threshold(ALL_GLOBAL[method], image, (4, 5))
    assert got == 7.0
    mask = threshold(
        da.from_array(image, chunks=4), method, **({"q": 0.5} if method == "quantile" else {})
    )
    assert not mask.compute().any()
    if not (method == "yen" and dtype.startswith("float")):
        assert ALL_REFERENCES[method](image) == 7  # what scikit-image returns too


def test_numpy_in_numpy_scalar_out():
    image = _image((20, 30), "uint8")
    for name, func in ALL_GLOBAL.items():
        t = func(image)
        assert type(t) is np.float64, name
        assert t == ALL_REFERENCES[name](image), name
    t = threshold_otsu(_image((20, 30), "float32"))
    assert type(t) is np.float64
    assert threshold_otsu(np.array([[False, True], [True, True]])) == 0.0


def test_dataarray_input_gives_lazy_threshold():
    data = _image((5, 30, 40), "int16")
    img = tv._image.make_image(da.from_array(data, chunks=(2, 13, 17)), ("z", "y", "x"))
    with raise_if_dask_computes():
        t = threshold_otsu(img)
    assert isinstance(t, da.Array)
    assert t.compute() == filters.threshold_otsu(data)


# -- masks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", THRESHOLD_METHODS)
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D[:2])
def test_threshold_mask_dataarray_in_out(method, chunks):
    data = _image(AWKWARD_SHAPE_3D, "uint16", seed=11)
    img = tv._image.make_image(
        da.from_array(data, chunks=chunks), ("z", "y", "x"), spacing=(2.0, 0.5, 0.5),
        units="millimeter", name="mr", attrs={"modality": "MR"},
    )  # fmt: skip
    kwargs = {"q": 0.8} if method == "quantile" else {}
    with raise_if_dask_computes():
        mask = threshold(img, method, **kwargs)
    assert isinstance(mask, xr.DataArray)
    assert mask.dtype == bool
    assert mask.dims == img.dims
    assert mask.name == "mr"
    xr.testing.assert_identical(mask.coords.to_dataset(), img.coords.to_dataset())
    assert mask.attrs["spacing"] == img.attrs["spacing"]
    assert mask.attrs["modality"] == "MR"
    assert mask.attrs["threshold"]["method"] == method
    assert mask.attrs["threshold"].get("q") == kwargs.get("q")
    assert mask.attrs["filters"][-1].startswith(f"threshold({method!r}")
    assert isinstance(mask.data, da.Array)
    reference = ALL_REFERENCES[method] if method != "quantile" else lambda a: np.quantile(a, 0.8)
    np.testing.assert_array_equal(mask.values, data > reference(data))


def test_threshold_per_channel():
    data = np.stack([_image((30, 40), "uint8", seed=s) for s in (1, 2)])
    data[1] //= 2
    img = tv._image.make_image(da.from_array(data, chunks=(1, 13, 17)), ("c", "y", "x"))
    with raise_if_dask_computes():
        mask = threshold(img, "otsu")
    expected = np.stack([c > filters.threshold_otsu(c) for c in data])
    np.testing.assert_array_equal(mask.values, expected)
    assert mask.attrs["threshold"]["per_channel"] is True
    out = threshold(da.from_array(data, chunks=(1, 13, 17)), "yen", channel_axis=0)
    expected = np.stack([c > filters.threshold_yen(c) for c in data])
    np.testing.assert_array_equal(out.compute(), expected)
    np.testing.assert_array_equal(threshold(data, "yen", channel_axis=0), expected)


def test_mask_is_map_blocks_with_a_zero_d_threshold():
    data = _image((40, 50), "float32")
    x = da.from_array(data, chunks=(13, 17))
    with raise_if_dask_computes():
        t = threshold_otsu(x)
        mask = apply_threshold(x, t)
    assert mask.chunks == x.chunks
    assert mask.dtype == bool
    np.testing.assert_array_equal(mask.compute(), data > filters.threshold_otsu(data))
    # NaN pixels are background; a NaN threshold (propagate) gives an empty mask
    data[0, 0] = np.nan
    nan_image = da.from_array(data, chunks=(13, 17))
    assert not threshold(nan_image, "otsu").compute().any()
    omitted = threshold(nan_image, "otsu", nan_policy="omit").compute()
    assert not omitted[0, 0]
    np.testing.assert_array_equal(omitted, data > filters.threshold_otsu(data[1:]))
    np.testing.assert_array_equal(apply_threshold(data, 0.5), data > 0.5)
    img = tv._image.make_image(x, ("y", "x"))
    out = apply_threshold(img, 0.25)
    assert isinstance(out, xr.DataArray)
    assert out.attrs["filters"] == ["apply_threshold(value=0.25)"]
    with pytest.raises(ValueError, match="one threshold"):
        apply_threshold(x, np.array([1.0, 2.0]))


def test_threshold_numpy_in_numpy_out():
    data = _image((30, 40), "int16")
    mask = threshold(data, "triangle")
    assert isinstance(mask, np.ndarray)
    np.testing.assert_array_equal(mask, data > filters.threshold_triangle(data))


def test_threshold_nbins_reaches_the_method():
    data = _image((30, 40), "float64", seed=12)
    mask = threshold(da.from_array(data, chunks=11), "otsu", nbins=16)
    np.testing.assert_array_equal(mask.compute(), data > filters.threshold_otsu(data, 16))


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda x: threshold(x, "isodata"), ValueError,
         "unknown threshold method 'isodata'; methods are otsu, yen, li, triangle, mean"),
        (lambda x: threshold(x, "quantile"), ValueError, "q .* is required for method='quantile'"),
        (lambda x: threshold(x, "otsu", q=0.5), ValueError, "applies to it only"),
        (lambda x: threshold(x, "mean", nbins=10), ValueError, "nbins does not apply"),
        (lambda x: threshold(x, nan_policy="ignore"), ValueError, "nan_policy must be one of"),
        (lambda x: threshold_otsu(x, nbins=1), ValueError, "nbins must be a whole number ≥ 2"),
        (lambda x: threshold_yen(x, nbins=2.5), ValueError, "nbins must be a whole number ≥ 2"),
        (lambda x: threshold_triangle(x, nbins=0), ValueError, "nbins must be"),
        (lambda x: threshold_li(x, nbins=1), ValueError, "nbins must be"),
        (lambda x: threshold_quantile(x, 95), ValueError, "fraction in \\[0, 1\\].*p / 100"),
        (lambda x: threshold_quantile(x, -0.1), ValueError, "fraction in \\[0, 1\\]"),
        (lambda x: threshold_quantile(x, [0.1, 0.2]), ValueError, "one number in \\[0, 1\\]"),
        (lambda x: threshold_quantile(x, 0.5, method="cubic"), ValueError, "unknown method"),
        (lambda x: threshold_mean(x, nan_policy="drop"), ValueError, "nan_policy must be"),
        (lambda x: threshold_local(x, 4), ValueError, "block_size must be odd.*\\(5, 5\\)"),
        (lambda x: threshold_local(x, (3, 5, 7)), ValueError, "block_size has 3 values"),
        (lambda x: threshold_local(x, 0), ValueError, "block_size must be a whole number"),
        (lambda x: threshold_local(x, 3, "generic"), ValueError,
         "unknown method 'generic'; methods are gaussian, mean, median"),
        (lambda x: threshold_local(x, 3, "mean", param=2), ValueError, "param is the Gaussian"),
        (lambda x: threshold_local(x, 3, param=-1), ValueError, "must be ≥ 0"),
        (lambda x: threshold_local(x, 3, mode="edge"), ValueError, "unknown mode 'edge'"),
        (lambda x: threshold_local(x, 3, offset=np.inf), ValueError, "offset and cval"),
    ],
)  # fmt: skip
def test_bad_input(call, error, message):
    x = da.from_array(_image((20, 20), "uint8"), chunks=7)
    with pytest.raises(error, match=message):
        call(x)


def test_bad_images():
    with pytest.raises(ValueError, match="empty"):
        threshold_otsu(np.zeros((0, 3)))
    with pytest.raises(TypeError, match="non-numeric dtype"):
        threshold_otsu(np.array([["a"]]))
    with pytest.raises(TypeError, match="complex dtype"):
        threshold(np.ones((2, 2), complex))


def test_too_wide_integer_range_raises_when_computed(monkeypatch):
    monkeypatch.setattr(_threshold, "MAX_INTEGER_BINS", 1000)
    image = da.from_array(np.array([[0, 5000], [7, 9]], "int32"), chunks=1)
    t = threshold_otsu(image)
    with pytest.raises(ValueError, match=r"spans 5001 values.*astype\('float64'\)"):
        t.compute()


# -- local threshold -------------------------------------------------------------------------


def _local_reference(**kwargs):
    def reference(a):
        return filters.threshold_local(a.astype(filter_dtype(a.dtype)), **kwargs)

    return reference


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs",
    [
        {"block_size": 11},
        {"block_size": 7, "method": "mean", "offset": 3.5},
        {"block_size": (5, 9), "method": "median", "mode": "nearest"},
        {"block_size": 9, "param": (1.0, 2.5), "mode": "constant", "cval": 2.0},
        {"block_size": 15, "mode": "wrap", "offset": -1.0},
    ],
)
def test_threshold_local_2d_equals_skimage(kwargs, dtype, chunks):
    # SciPy's box mean is a running sum along each line, which starts elsewhere in a
    # tile: float64 results agree to rounding (float32 ones bit for bit in practice)
    inexact = kwargs.get("method") == "mean" and dtype == "float64"
    assert_tiled_equals_whole(
        lambda a: threshold_local(a, **kwargs),
        _local_reference(**kwargs),
        _image(AWKWARD_SHAPE_2D, dtype),
        chunks,
        rtol=1e-13 if inexact else 0,
        atol=1e-13 if inexact else 0,
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
@pytest.mark.parametrize(
    "kwargs",
    [{"block_size": 7}, {"block_size": (3, 5, 7), "method": "mean", "mode": "mirror"},
     {"block_size": 5, "method": "median", "offset": 10}],
)  # fmt: skip
def test_threshold_local_3d_equals_skimage(kwargs, chunks):
    assert_tiled_equals_whole(
        lambda a: threshold_local(a, **kwargs),
        _local_reference(**kwargs),
        _image(AWKWARD_SHAPE_3D, "int16", seed=2),
        chunks,
    )


def test_threshold_local_is_a_step_and_fuses():
    data = _image((40, 50), "float32")
    x = da.from_array(data, chunks=(13, 17))
    fused = threshold_local(gaussian(x, 1.0), 9, offset=0.1)
    assert sum(name.startswith("overlap") for name in fused.dask.layers) == 1
    smooth = filters.gaussian(data, 1.0, mode="nearest", preserve_range=True)
    expected = filters.threshold_local(smooth, 9, offset=0.1)
    np.testing.assert_array_equal(fused.compute(), expected)
    chained = chain(x, [step("threshold_local", block_size=5, method="mean")])
    np.testing.assert_array_equal(chained.compute(), filters.threshold_local(data, 5, "mean"))
    numpy_out = threshold_local(data, 5, "median")
    assert isinstance(numpy_out, np.ndarray)
    np.testing.assert_array_equal(numpy_out, filters.threshold_local(data, 5, "median"))
    img = tv._image.make_image(x, ("y", "x"), spacing=0.5)
    out = threshold_local(img, 7)
    assert isinstance(out, xr.DataArray)
    assert out.attrs["spacing"] == img.attrs["spacing"]
    local_mask = img > out
    np.testing.assert_array_equal(local_mask.values, data > filters.threshold_local(data, 7))


# -- real data ---------------------------------------------------------------------------------


def _ct(data_dir):
    nib = pytest.importorskip("nibabel")
    volume = np.asanyarray(nib.load(data_dir / "ct-organs" / "example_ct_sm.nii.gz").dataobj)
    return np.ascontiguousarray(volume.T)  # (i, j, k) = (x, y, z) → (z, y, x)


def test_ct_otsu_body_mask(data_dir):
    volume = _ct(data_dir)
    assert volume.dtype == np.int16
    img = tv._image.make_image(da.from_array(volume, chunks=(7, 40, 33)), ("z", "y", "x"))
    with raise_if_dask_computes():
        t = threshold_otsu(img)
        body = threshold(img, "otsu")
    expected = filters.threshold_otsu(volume)
    assert t.compute() == expected
    mask = body.values
    np.testing.assert_array_equal(mask, volume > expected)
    assert 0.05 < mask.mean() < 0.95  # a body, not noise


def test_mr_lesion_li_yen_triangle(data_dir):
    nrrd = pytest.importorskip("nrrd")
    image, _ = nrrd.read(str(data_dir / "mr-lesions" / "brain1_image.nrrd"), index_order="C")
    x = da.from_array(image, chunks=(6, 70, 90))
    for method in ("li", "yen", "triangle"):
        ours, reference = FUNCS[method]
        assert _lazy_threshold(ours, image, (6, 70, 90)) == reference(image), method
    # the float32 version: Li on histogram bin means, otsu/yen exactly
    as_float = image.astype(np.float32) / 7
    got = _lazy_threshold(threshold_li, as_float, (6, 70, 90))
    assert abs(got - filters.threshold_li(as_float)) <= 0.05 * _li_bin(as_float)
    assert _lazy_threshold(threshold_yen, as_float, x.chunks) == filters.threshold_yen(as_float)


# -- properties ----------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    chunk=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    dtype=st.sampled_from(["uint8", "int16", "uint16", "int32"]),
    span=st.integers(1, 3000),
    seed=st.integers(0, 2**16),
)
def test_property_otsu_equals_skimage(shape, chunk, dtype, span, seed):
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    low = int(rng.integers(info.min, max(info.min + 1, info.max - span)))
    image = (low + rng.integers(0, min(span, info.max - low) + 1, shape)).astype(dtype)
    got = _lazy_threshold(threshold_otsu, image, chunk)
    assert got == filters.threshold_otsu(image)


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(  # the last axis ≥ 5: scikit-image warns about (..., 3|4) shapes as RGB
    shape=st.tuples(st.integers(1, 6), st.integers(2, 40), st.integers(5, 40)),
    chunk=st.tuples(st.integers(1, 6), st.integers(1, 15), st.integers(1, 15)),
    method=st.sampled_from(["otsu", "yen", "triangle", "li"]),
    seed=st.integers(0, 2**16),
)
def test_property_slow_all_methods_3d(shape, chunk, method, seed):
    image = _image(shape, "uint16", seed=seed)
    ours, reference = FUNCS[method]
    with dask.config.set(scheduler="threads"):
        assert ours(da.from_array(image, chunks=chunk)).compute() == reference(image)


# -- memory: later passes read the image again instead of holding it ---------------------

# reads of each chunk: (threshold value, mask ``threshold(image, method)``)
PASSES = {
    ("otsu", "float32"): (2, 3),  # range, histogram (+ the mask)
    ("otsu", "int16"): (2, 3),
    ("yen", "float32"): (2, 3),
    ("triangle", "uint16"): (2, 3),
    ("li", "float32"): (3, 4),  # range, coarse and fine histograms
    ("li", "int16"): (2, 3),
    ("mean", "float32"): (1, 2),
    ("quantile", "float32"): (4, 5),  # four 8-bit radix passes (small chunks)
}


def _counted_image(dtype):
    counter = ReadCounter((256, 256), 32, "float32", seed=7)  # 64 chunks
    if dtype == "float32":
        return counter, counter.array, counter.whole()
    scale = {"int16": 1, "uint16": 3}[dtype]
    image = (abs(counter.array) * scale).astype(dtype)
    return counter, image, (abs(counter.whole()) * scale).astype(dtype)


@pytest.mark.parametrize(("method", "dtype"), list(PASSES))
def test_global_threshold_passes_hold_no_chunk(method, dtype):
    counter, image, whole = _counted_image(dtype)
    kwargs = {"q": 0.8} if method == "quantile" else {}
    with raise_if_dask_computes():
        value = getattr(_threshold, f"threshold_{method}")(image, **kwargs)
        mask = threshold(image, method, **kwargs)
    peak, got = peak_alive(value, (32, 32))
    assert peak <= 2  # was 64: every chunk held until the range / threshold was known
    assert counter.counts() == {PASSES[method, dtype][0]}
    counter.reads.clear()
    peak, count = peak_alive(mask.sum(), (32, 32))
    assert peak <= 2
    assert counter.counts() == {PASSES[method, dtype][1]}
    if method == "quantile":
        expected = np.quantile(whole, 0.8)
    elif method == "li" and dtype == "float32":
        expected = got  # checked against scikit-image elsewhere (binned, not bit-exact)
    else:
        expected = getattr(filters, f"threshold_{method}")(whole)
    # float32 means: NumPy sums in float32, tilevision in float64
    np.testing.assert_allclose(got, expected, rtol=1e-6 if method == "mean" else 0)
    assert count == np.count_nonzero(whole > got)


def test_apply_threshold_reads_again():
    counter, image, whole = _counted_image("float32")
    mask = apply_threshold(image, threshold_otsu(image))
    peak, count = peak_alive(mask.sum(), (32, 32))
    assert peak <= 2
    assert counter.counts() == {3}
    assert count == np.count_nonzero(whole > filters.threshold_otsu(whole))
    # a threshold that does not come from Dask: one pass, nothing to wait for
    counter.reads.clear()
    apply_threshold(image, 0.5).sum().compute(scheduler="sync")
    assert counter.counts() == {1}


def test_chained_global_operations_share_the_statistics():
    """threshold(normalize(x)): the copies share normalize's percentiles, not recompute them."""
    counter, image, whole = _counted_image("float32")
    normalized = normalize(image, (2, 98))
    peak, count = peak_alive(threshold(normalized, "otsu").sum(), (32, 32))
    assert peak <= 2
    # 4 radix passes + the transform, and otsu's range, histogram and mask each read
    # the normalized image (hence the image) once more: never the percentiles again
    assert counter.counts() == {7}
    ref = exposure.rescale_intensity(whole, tuple(np.percentile(whole, (2, 98))), (0.0, 1.0))
    assert count == np.count_nonzero(ref > filters.threshold_otsu(ref))
