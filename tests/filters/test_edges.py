"""Edge and derivative filters, tile by tile, against whole-array scikit-image/SciPy.

Every comparison here is exact (max abs diff 0): each block function runs the same
sequence of float operations as its reference on the same dtype (the reference gets
``image.astype(filter_dtype(image.dtype))``), and the halo covers the whole
footprint, so no tolerance is needed anywhere. The only inexact comparison is
``test_laplace_sign_differs_from_skimage``, which documents a convention, not a
tiling result.
"""

from __future__ import annotations

import itertools
import pathlib

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters as skf
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from skimage.feature import hessian_matrix, hessian_matrix_eigvals

import tilevision
from tilevision._image import make_image
from tilevision.filters import (
    available_steps,
    chain,
    difference_of_gaussians,
    gaussian_gradient_magnitude,
    gaussian_laplace,
    hessian_eigenvalues,
    laplace,
    prewitt,
    scharr,
    sobel,
    step,
)
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    assert_tiled_equals_whole,
    raise_if_dask_computes,
)

RNG = np.random.default_rng(7)
DTYPES = ["uint8", "uint16", "int16", "float32", "float64"]
MODES = ["reflect", "nearest", "mirror", "constant", "wrap"]
EDGES = {
    "sobel": (sobel, skf.sobel),
    "scharr": (scharr, skf.scharr),
    "prewitt": (prewitt, skf.prewitt),
}
CT_PATH = (
    pathlib.Path(tilevision.__file__).parent
    / "datasets"
    / "data"
    / "ct-organs"
    / "example_ct_sm.nii.gz"
)


def _cases(full=(), diag=()):
    """Parameter sets: every ``full`` value × the "diagonal" of the ``diag`` lists
    (their i-th values together, shorter lists cycling) run by default, so every
    dtype/mode/chunking is seen; the rest of the Cartesian product is marked slow."""
    n = max((len(values) for values in diag), default=1)
    diagonal = {tuple(i % len(values) for values in diag) for i in range(n)}
    cases = []
    for head in itertools.product(*full):
        for idx in itertools.product(*(range(len(values)) for values in diag)):
            values = (*head, *(lst[i] for lst, i in zip(diag, idx)))
            marks = () if idx in diagonal else (pytest.mark.slow,)
            cases.append(pytest.param(*values, marks=marks))
    return cases


def _image(shape, dtype):
    if np.dtype(dtype).kind in "ui":
        return RNG.integers(0, 200, size=shape).astype(dtype)
    return (RNG.standard_normal(shape) * 50).astype(dtype)


def _work(a):
    """The reference's input: the dtype policy, values not rescaled."""
    return a.astype(np.float64 if a.dtype == np.float64 else np.float32)


def _tol(dtype):
    """Sobel/Scharr/Prewitt run separably (3 taps per axis); scikit-image convolves with
    the n-D kernel, so the two agree to rounding, not bit for bit. Tiled vs whole-array
    of our own filter is exact (``test_edges_tiled_equal_whole_exactly``)."""
    if np.dtype(dtype) == np.float64:
        return {"rtol": 1e-12, "atol": 1e-9}
    return {"rtol": 1e-5, "atol": 1e-3}


def _hessian_ref(a, sigma, derivs, **kwargs):
    h = hessian_matrix(_work(a), sigma, order="rc", use_gaussian_derivatives=derivs, **kwargs)
    return hessian_matrix_eigvals(h)


def _overlap_layers(x):
    return [k for k in x.dask.layers if k.startswith("overlap")]


# ----------------------------------------------------------------- Sobel / Scharr / Prewitt


@pytest.mark.parametrize(
    ("name", "dtype", "chunks"), _cases([list(EDGES)], [DTYPES, AWKWARD_CHUNKS_2D])
)
def test_edges_2d_dtypes(name, dtype, chunks):
    ours, ref = EDGES[name]
    assert_tiled_equals_whole(
        ours, lambda a: ref(_work(a)), _image(AWKWARD_SHAPE_2D, dtype), chunks, **_tol(dtype)
    )


@pytest.mark.parametrize(
    ("name", "dtype", "chunks"),
    _cases([list(EDGES)], [DTYPES, [*AWKWARD_CHUNKS_2D, *AWKWARD_CHUNKS_3D]]),
)
def test_edges_tiled_equal_whole_exactly(name, dtype, chunks):
    ours, _ = EDGES[name]
    shape = AWKWARD_SHAPE_2D if len(chunks) == 2 else AWKWARD_SHAPE_3D
    for axis in (None, 0):
        assert_tiled_equals_whole(
            lambda a, axis=axis: ours(a, axis=axis),
            lambda a, axis=axis: ours(a, axis=axis),  # NumPy input: the whole array at once
            _image(shape, dtype),
            chunks,
        )


@pytest.mark.parametrize(
    ("axis", "mode", "chunks"), _cases([[None, 0, 1]], [MODES, AWKWARD_CHUNKS_2D])
)
def test_sobel_every_mode_and_axis_2d_exact(axis, mode, chunks):
    assert_tiled_equals_whole(
        lambda a: sobel(a, axis=axis, mode=mode, cval=3.0),
        lambda a: skf.sobel(_work(a), axis=axis, mode=mode, cval=3.0),
        _image(AWKWARD_SHAPE_2D, "float32"),
        chunks,
        **_tol("float32"),
    )


@pytest.mark.parametrize(
    ("name", "axis", "chunks"), _cases([list(EDGES)], [[None, 0, 2, (1, 2)], AWKWARD_CHUNKS_3D])
)
def test_edges_3d_exact(name, axis, chunks):
    ours, ref = EDGES[name]
    assert_tiled_equals_whole(
        lambda a: ours(a, axis=axis),
        lambda a: ref(_work(a), axis=axis),
        _image(AWKWARD_SHAPE_3D, "int16"),
        chunks,
        **_tol("float32"),
    )


@pytest.mark.parametrize(("mode", "chunks"), _cases(diag=[MODES, AWKWARD_CHUNKS_3D]))
def test_sobel_every_mode_3d_exact(mode, chunks):
    assert_tiled_equals_whole(
        lambda a: sobel(a, mode=mode, cval=-2.0),
        lambda a: skf.sobel(a, mode=mode, cval=-2.0),
        _image(AWKWARD_SHAPE_3D, "float64"),
        chunks,
        **_tol("float64"),
    )


def test_axis_by_name_and_negative_axis():
    data = _image((30, 40), "float32")
    img = make_image(da.from_array(data, chunks=(11, 13)), ("y", "x"), spacing=0.5)
    expected = skf.sobel(data, axis=1)
    np.testing.assert_allclose(sobel(img, axis="x").values, expected, **_tol("float32"))
    # skimage 0.26 smooths along the edge axis too for negative axes; -1 here means axis 1
    np.testing.assert_array_equal(sobel(data, axis=-1), sobel(data, axis=1))
    np.testing.assert_allclose(sobel(data, axis=-1), expected, **_tol("float32"))
    np.testing.assert_allclose(
        scharr(img, axis=("y", "x")).values, skf.scharr(data), **_tol("float32")
    )


# ----------------------------------------------------------------- Laplace


@pytest.mark.parametrize(("dtype", "chunks"), _cases(diag=[DTYPES, AWKWARD_CHUNKS_2D]))
def test_laplace_2d_exact(dtype, chunks):
    assert_tiled_equals_whole(
        laplace, lambda a: ndi.laplace(_work(a)), _image(AWKWARD_SHAPE_2D, dtype), chunks
    )


@pytest.mark.parametrize(
    ("mode", "chunks"),
    _cases(diag=[[*MODES, ("wrap", "reflect", "constant")], AWKWARD_CHUNKS_3D]),
)
def test_laplace_3d_modes_exact(mode, chunks):
    assert_tiled_equals_whole(
        lambda a: laplace(a, mode=mode, cval=1.5),
        lambda a: ndi.laplace(_work(a), mode=mode, cval=1.5),
        _image(AWKWARD_SHAPE_3D, "uint16"),
        chunks,
    )


def test_laplace_sign_differs_from_skimage():
    # skimage.filters.laplace(ksize=3) is the same stencil with the opposite sign,
    # summed in another order (hence a rounding-level tolerance)
    data = _image((20, 30), "float64")
    np.testing.assert_allclose(-laplace(data), skf.laplace(data), rtol=0, atol=1e-12)


# ----------------------------------------------------------------- Gaussian derivatives


GAUSS = {
    "gaussian_gradient_magnitude": (gaussian_gradient_magnitude, ndi.gaussian_gradient_magnitude),
    "gaussian_laplace": (gaussian_laplace, ndi.gaussian_laplace),
}


@pytest.mark.parametrize(
    ("name", "dtype", "chunks"), _cases([list(GAUSS)], [DTYPES, AWKWARD_CHUNKS_2D])
)
def test_gaussian_derivatives_2d_exact(name, dtype, chunks):
    ours, ref = GAUSS[name]
    assert_tiled_equals_whole(
        lambda a: ours(a, (1.0, 1.7)),
        lambda a: ref(_work(a), (1.0, 1.7), mode="nearest"),
        _image(AWKWARD_SHAPE_2D, dtype),
        chunks,
    )


@pytest.mark.parametrize(
    ("name", "mode", "chunks"), _cases([list(GAUSS)], [MODES, AWKWARD_CHUNKS_3D])
)
def test_gaussian_derivatives_3d_modes_exact(name, mode, chunks):
    ours, ref = GAUSS[name]
    assert_tiled_equals_whole(
        lambda a: ours(a, (0.7, 1.2, 2.0), mode=mode, cval=4.0, truncate=3.0),
        lambda a: ref(_work(a), (0.7, 1.2, 2.0), mode=mode, cval=4.0, truncate=3.0),
        _image(AWKWARD_SHAPE_3D, "float32"),
        chunks,
    )


@pytest.mark.parametrize(("dtype", "chunks"), _cases(diag=[DTYPES, AWKWARD_CHUNKS_2D]))
def test_difference_of_gaussians_2d_exact(dtype, chunks):
    # default high_sigma = 1.6 × low_sigma and default mode "nearest", as skimage
    assert_tiled_equals_whole(
        lambda a: difference_of_gaussians(a, 1.2),
        lambda a: skf.difference_of_gaussians(_work(a), 1.2),
        _image(AWKWARD_SHAPE_2D, dtype),
        chunks,
    )


@pytest.mark.parametrize(
    ("mode", "chunks"), _cases(diag=[["reflect", "constant", "wrap"], AWKWARD_CHUNKS_3D])
)
def test_difference_of_gaussians_3d_exact(mode, chunks):
    low, high = (0.5, 1.0, 1.5), (1.0, 2.5, 2.0)
    assert_tiled_equals_whole(
        lambda a: difference_of_gaussians(a, low, high, mode=mode, cval=2.0),
        lambda a: skf.difference_of_gaussians(_work(a), low, high, mode=mode, cval=2.0),
        _image(AWKWARD_SHAPE_3D, "uint8"),
        chunks,
    )


# ----------------------------------------------------------------- Hessian eigenvalues


@pytest.mark.parametrize(
    ("mode", "dtype", "chunks"),
    _cases(diag=[MODES, ["uint16", "float32", "float64"], AWKWARD_CHUNKS_2D]),
)
def test_hessian_eigenvalues_2d_exact(mode, dtype, chunks):
    # finite differences (np.gradient) after the Gaussian: one-sided at the true
    # edge, where the tile's edge is the image's, so still exact
    assert_tiled_equals_whole(
        lambda a: hessian_eigenvalues(a, 1.5, mode=mode, cval=1.0),
        lambda a: _hessian_ref(a, 1.5, False, mode=mode, cval=1.0),
        _image(AWKWARD_SHAPE_2D, dtype),
        chunks,
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
def test_hessian_eigenvalues_gaussian_derivatives_2d_exact(chunks):
    assert_tiled_equals_whole(
        lambda a: hessian_eigenvalues(a, 1.2, mode="reflect", use_gaussian_derivatives=True),
        lambda a: _hessian_ref(a, 1.2, True, mode="reflect"),
        _image(AWKWARD_SHAPE_2D, "int16"),
        chunks,
    )


@pytest.mark.parametrize("derivs", [False, True])
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_hessian_eigenvalues_3d_exact(derivs, chunks):
    # 3-D eigenvalues come from np.linalg.eigvalsh per pixel: exact too
    assert_tiled_equals_whole(
        lambda a: hessian_eigenvalues(a, (1.5, 1.5, 2.0), use_gaussian_derivatives=derivs),
        lambda a: _hessian_ref(a, (1.5, 1.5, 2.0), derivs),
        _image(AWKWARD_SHAPE_3D, "float32"),
        chunks,
    )


def test_hessian_eigenvalues_is_one_overlap_sorted_and_a_dataarray():
    data = _image((6, 30, 40), "int16")
    img = make_image(
        da.from_array(data, chunks=(3, 10, 10)), ("z", "y", "x"), spacing=(3.0, 0.5, 0.5)
    )
    img.attrs["note"] = "kept"
    with raise_if_dask_computes():
        out = hessian_eigenvalues(img, 1.5, units="physical")
    assert out.dims == ("eigen", "z", "y", "x")
    assert out.shape == (3, 6, 30, 40)
    assert out.dtype == np.float32
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["note"] == "kept"
    assert out.attrs["spacing"] == img.attrs["spacing"]
    assert out.attrs["filters"][-1].startswith("hessian_eigenvalues(sigma=1.5")
    assert len(_overlap_layers(out.data)) == 1
    values = out.values
    np.testing.assert_array_equal(values, _hessian_ref(data, (0.5, 3.0, 3.0), False))
    assert (np.diff(values, axis=0) <= 0).all()


def test_hessian_eigenvalues_channels():
    data = _image((2, 30, 40), "uint8")
    img = make_image(da.from_array(data, chunks=(1, 9, 11)), ("c", "y", "x"))
    # periodic along y only: the halo beyond the true y edges is dropped again before
    # the one-sided differences there
    mode = ("wrap", "nearest")
    out = hessian_eigenvalues(img, 1.0, mode=mode)
    assert out.dims == ("eigen", "c", "y", "x")
    expected = np.stack([_hessian_ref(c, 1.0, False, mode=mode) for c in data], axis=1)
    np.testing.assert_array_equal(out.values, expected)
    # NumPy with a trailing channel axis: the eigen axis leads, channels stay last
    rgb = np.moveaxis(data, 0, -1)
    out_np = hessian_eigenvalues(rgb, 1.0, mode=mode, channel_axis=-1)
    assert isinstance(out_np, np.ndarray)
    np.testing.assert_array_equal(out_np, np.moveaxis(expected, 1, -1))


# ----------------------------------------------------------------- chains, types, laziness


@pytest.mark.parametrize("chunks", [*AWKWARD_CHUNKS_2D, *AWKWARD_CHUNKS_3D])
def test_gaussian_then_sobel_chain_is_one_overlap_and_exact(chunks):
    shape = AWKWARD_SHAPE_2D if len(chunks) == 2 else AWKWARD_SHAPE_3D
    image = _image(shape, "uint16")
    steps = [step("gaussian", sigma=2.0), step("sobel")]

    def reference(a):
        return skf.sobel(ndi.gaussian_filter(_work(a), 2.0, mode="nearest"))

    assert_tiled_equals_whole(lambda a: chain(a, steps), reference, image, chunks, **_tol("f4"))
    assert_tiled_equals_whole(lambda a: chain(a, steps), lambda a: chain(a, steps), image, chunks)
    fused = chain(da.from_array(image, chunks=chunks), steps)
    assert len(_overlap_layers(fused)) <= 1  # 0 when a single chunk needs no halo


def test_registered_steps():
    names = {
        "sobel",
        "scharr",
        "prewitt",
        "laplace",
        "gaussian_gradient_magnitude",
        "gaussian_laplace",
        "difference_of_gaussians",
    }
    assert names <= set(available_steps())


PUBLIC = [  # (ours, params, whole-array reference on one float32 plane)
    (sobel, {}, skf.sobel),
    (scharr, {"axis": "y"}, lambda a: skf.scharr(a, axis=0)),
    (prewitt, {"mode": "nearest"}, lambda a: skf.prewitt(a, mode="nearest")),
    (laplace, {}, ndi.laplace),
    (gaussian_gradient_magnitude, {"sigma": 1.0},
     lambda a: ndi.gaussian_gradient_magnitude(a, 1.0, mode="nearest")),
    (gaussian_laplace, {"sigma": 1.0}, lambda a: ndi.gaussian_laplace(a, 1.0, mode="nearest")),
    (difference_of_gaussians, {"low_sigma": 1.0}, lambda a: skf.difference_of_gaussians(a, 1.0)),
]  # fmt: skip


@pytest.mark.parametrize(("func", "kwargs", "reference"), PUBLIC)
def test_dataarray_in_dataarray_out_lazy_with_channels(func, kwargs, reference):
    data = _image((3, 20, 30), "uint8")
    img = make_image(
        da.from_array(data, chunks=(3, 7, 9)), ("c", "y", "x"), spacing=0.5,
        channel_names=["R", "G", "B"],
    )  # fmt: skip
    img.attrs["note"] = "kept"
    with raise_if_dask_computes():
        out = func(img, **kwargs)
    assert isinstance(out, xr.DataArray)
    assert out.dims == img.dims
    assert out.dtype == np.float32
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["note"] == "kept"
    assert out.attrs["spacing"] == img.attrs["spacing"]
    assert out.attrs["filters"][-1].startswith(func.__name__)
    # each channel is filtered on its own
    expected = np.stack([reference(_work(c)) for c in data])
    np.testing.assert_allclose(out.values, expected, **_tol("float32"))


@pytest.mark.parametrize(("func", "kwargs", "reference"), PUBLIC)
def test_numpy_in_numpy_out(func, kwargs, reference):
    data = _image((12, 14), "float64")
    out = func(data, **kwargs)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    np.testing.assert_allclose(out, reference(data), **_tol("float64"))


def test_multichannel_numpy_without_channel_axis_is_3d():
    rgb = _image((20, 30, 3), "uint8")
    # no channel_axis: a 3-D volume (documented); with it: per-channel 2-D
    np.testing.assert_allclose(sobel(rgb), skf.sobel(_work(rgb)), **_tol(rgb.dtype))
    per_channel = np.stack([skf.sobel(_work(rgb[..., i])) for i in range(3)], axis=-1)
    tiled = sobel(da.from_array(rgb, chunks=(7, 11, 3)), channel_axis=-1)
    np.testing.assert_array_equal(tiled.compute(), per_channel)


def test_physical_units_use_spacing():
    data = _image((9, 30, 30), "float32")
    img = make_image(
        da.from_array(data, chunks=(3, 11, 11)), ("z", "y", "x"), spacing=(3.0, 0.5, 0.5)
    )
    px = (0.5, 3.0, 3.0)  # 1.5 mm in pixels
    for ours, ref in [
        (gaussian_gradient_magnitude, ndi.gaussian_gradient_magnitude),
        (gaussian_laplace, ndi.gaussian_laplace),
    ]:
        out = ours(img, 1.5, units="physical")
        np.testing.assert_array_equal(out.values, ref(data, px, mode="nearest"))
    out = difference_of_gaussians(img, 1.5, units="physical")
    np.testing.assert_array_equal(out.values, skf.difference_of_gaussians(data, px))


# ----------------------------------------------------------------- properties and real data


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30), st.integers(1, 6)),
    chunk=st.tuples(st.integers(1, 12), st.integers(1, 12), st.integers(1, 6)),
    sigma=st.floats(0.3, 3.0),
    mode=st.sampled_from(MODES),
)
def test_property_gaussian_gradient_magnitude(shape, chunk, sigma, mode):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    assert_tiled_equals_whole(
        lambda a: gaussian_gradient_magnitude(a, sigma, mode=mode),
        lambda a: ndi.gaussian_gradient_magnitude(a, sigma, mode=mode),
        image,
        chunk,
    )


@settings(max_examples=20, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    chunk=st.tuples(st.integers(1, 15), st.integers(1, 15)),
    sigma=st.floats(0.3, 3.0),
    mode=st.sampled_from(MODES),
)
def test_property_gaussian_then_sobel(shape, chunk, sigma, mode):
    image = np.random.default_rng(1).random(shape, dtype=np.float32)
    steps = [step("gaussian", sigma=sigma, mode=mode), step("sobel", mode=mode)]
    assert_tiled_equals_whole(
        lambda a: chain(a, steps),
        lambda a: chain(a, steps),  # NumPy input: the whole array at once, exactly
        image,
        chunk,
    )
    np.testing.assert_allclose(
        chain(image, steps),
        skf.sobel(ndi.gaussian_filter(image, sigma, mode=mode), mode=mode),
        **_tol("float32"),
    )


@pytest.fixture(scope="module")
def ct():
    nib = pytest.importorskip("nibabel")
    volume = np.asarray(nib.load(CT_PATH).dataobj).T  # NIfTI (x, y, z) -> (z, y, x)
    assert volume.dtype == np.int16
    assert volume.shape == (30, 101, 122)
    return volume


def test_ct_sobel_magnitude_3d(ct):
    assert_tiled_equals_whole(sobel, lambda a: skf.sobel(_work(a)), ct, (7, 40, 33), **_tol("f4"))
    assert_tiled_equals_whole(sobel, sobel, ct, (7, 40, 33))


def test_ct_laplacian_of_gaussian_3d(ct):
    assert_tiled_equals_whole(
        lambda a: gaussian_laplace(a, 1.5),
        lambda a: ndi.gaussian_laplace(_work(a), 1.5, mode="nearest"),
        ct,
        (7, 40, 33),
    )


# ----------------------------------------------------------------- bad input


X2 = da.zeros((20, 20), chunks=10, dtype="float32")


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: gaussian_gradient_magnitude(X2, 0), "sigma must be > 0"),
        (lambda: gaussian_laplace(X2, -1.0), "sigma must be > 0"),
        (lambda: difference_of_gaussians(X2, 0), "sigma must be > 0"),
        (lambda: hessian_eigenvalues(X2, 0), "sigma must be > 0"),
        (lambda: gaussian_laplace(X2, (1, 2, 3)), "sigma has 3 values but the image has 2"),
        (lambda: gaussian_laplace(X2, 1, truncate=0), "truncate must be > 0"),
        (lambda: gaussian_laplace(X2, 1, units="mm"), "units must be 'pixel' or 'physical'"),
        (lambda: difference_of_gaussians(X2, 2.0, 1.0), "high_sigma .* must be ≥ low_sigma"),
        (lambda: sobel(X2, axis=2), r"axis 2 is not a spatial axis of this 2-D image"),
        (lambda: sobel(X2, axis="z"), r"axis 'z' is not a spatial axis .* use an index"),
        (lambda: prewitt(X2, axis=(0, 0)), "distinct spatial axes"),
        (lambda: scharr(X2, axis=True), "axis True is not a spatial axis"),
        (lambda: sobel(X2, mode="edge"), "unknown mode 'edge'.* use 'nearest'"),
        (lambda: sobel(X2, mode=("reflect", "wrap")), "takes one mode for all axes"),
        (lambda: laplace(X2, mode="symmetric"), "unknown mode 'symmetric'"),
        (lambda: hessian_eigenvalues(X2, 1, mode="edge"), "unknown mode 'edge'"),
        (lambda: hessian_eigenvalues(np.zeros(8), 1), "needs a 2-D or 3-D image"),
        (lambda: hessian_eigenvalues(np.zeros((1, 8)), 1), "need ≥ 2 pixels along every"),
        (
            lambda: gaussian_laplace(X2.rechunk(2), 1.0, rechunk=False),
            "smaller than the halo of 4 pixels",
        ),
        (lambda: sobel(np.array([["a"]])), "non-numeric dtype"),
    ],
)
def test_bad_input(call, message):
    with pytest.raises((ValueError, TypeError), match=message):
        call()


def test_hessian_with_gaussian_derivatives_handles_single_pixel_axes():
    data = _image((1, 25), "float64")
    np.testing.assert_array_equal(
        hessian_eigenvalues(data, 2.0, use_gaussian_derivatives=True),
        _hessian_ref(data, 2.0, True),
    )
