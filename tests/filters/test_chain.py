from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tilevision as tv
from tilevision.filters import chain, gaussian, step
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    assert_tiled_equals_whole,
    raise_if_dask_computes,
)

RNG = np.random.default_rng(42)


def _image(shape, dtype):
    if np.dtype(dtype).kind in "ui":
        return RNG.integers(0, 200, size=shape).astype(dtype)
    return (RNG.standard_normal(shape) * 50).astype(dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("mode", ["reflect", "nearest", "mirror", "constant", "wrap"])
def test_gaussian_2d_exact(dtype, chunks, mode):
    image = _image(AWKWARD_SHAPE_2D, dtype)
    work = np.float64 if dtype == "float64" else np.float32
    assert_tiled_equals_whole(
        lambda a: gaussian(a, 2.0, mode=mode, cval=3.0),
        lambda a: ndi.gaussian_filter(a.astype(work), 2.0, mode=mode, cval=3.0),
        image,
        chunks,
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_gaussian_3d_anisotropic_exact(chunks):
    image = _image(AWKWARD_SHAPE_3D, "int16")
    assert_tiled_equals_whole(
        lambda a: gaussian(a, (0.8, 1.5, 2.5)),
        lambda a: ndi.gaussian_filter(a.astype(np.float32), (0.8, 1.5, 2.5), mode="nearest"),
        image,
        chunks,
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
def test_chain_is_one_overlap_and_exact(chunks):
    image = _image(AWKWARD_SHAPE_2D, "float32")
    steps = [step("gaussian", sigma=1.2, mode="reflect"), step("gaussian", sigma=2.0)]

    def reference(a):
        return ndi.gaussian_filter(
            ndi.gaussian_filter(a, 1.2, mode="reflect"), 2.0, mode="nearest"
        )

    assert_tiled_equals_whole(lambda a: chain(a, steps), reference, image, chunks)
    fused = chain(da.from_array(image, chunks=chunks), steps)
    overlap_layers = [k for k in fused.dask.layers if k.startswith("overlap")]
    assert len(overlap_layers) <= 1


def test_physical_units_use_spacing():
    data = _image((9, 40, 40), "float32")
    img = tv._image.make_image(
        da.from_array(data, chunks=(3, 13, 13)), ("z", "y", "x"), spacing=(3.0, 0.5, 0.5)
    )
    out = gaussian(img, 1.5, units="physical")
    expected = ndi.gaussian_filter(data, (0.5, 3.0, 3.0), mode="nearest")
    np.testing.assert_array_equal(out.values, expected)


def test_dataarray_in_dataarray_out_keeps_coords_and_is_lazy():
    data = _image((3, 30, 40), "uint8")
    img = tv._image.make_image(
        da.from_array(data, chunks=(3, 10, 10)), ("c", "y", "x"), spacing=0.5,
        channel_names=["R", "G", "B"],
    )  # fmt: skip
    with raise_if_dask_computes():
        out = gaussian(img, 1.0)
    assert isinstance(out, xr.DataArray)
    assert out.dims == img.dims
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["spacing"] == img.attrs["spacing"]
    assert out.attrs["filters"] == ["gaussian(sigma=1.0, mode='nearest', cval=0.0, truncate=4.0, "
                                    "units='pixel')"]  # fmt: skip
    assert out.dtype == np.float32
    expected = np.stack([ndi.gaussian_filter(c.astype(np.float32), 1.0, mode="nearest")
                         for c in data])  # fmt: skip
    np.testing.assert_array_equal(out.values, expected)


def test_numpy_in_numpy_out():
    data = _image((20, 20), "float64")
    out = gaussian(data, 1.0)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, ndi.gaussian_filter(data, 1.0, mode="nearest"))


def test_no_rechunk_raises_when_chunks_are_smaller_than_halo():
    x = da.zeros((40, 40), chunks=5, dtype="float32")
    with pytest.raises(ValueError, match="smaller than the halo of 8 pixels"):
        gaussian(x, 2.0, rechunk=False)
    assert gaussian(x, 2.0).chunks[0][0] >= 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sigma": 0}, "sigma must be > 0"),
        ({"sigma": -1}, "sigma must be > 0"),
        ({"sigma": 1, "mode": "edge"}, "unknown mode 'edge'"),
        ({"sigma": (1, 2, 3)}, "sigma has 3 values but the image has 2"),
        ({"sigma": 1, "truncate": 0}, "truncate must be > 0"),
    ],
)
def test_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        gaussian(da.zeros((10, 10), chunks=5), **kwargs)


def test_bad_images_and_steps():
    with pytest.raises(TypeError, match="non-numeric dtype"):
        gaussian(np.array([["a"]]), 1.0)
    with pytest.raises(ValueError, match="empty"):
        gaussian(np.zeros((0, 4)), 1.0)
    with pytest.raises(ValueError, match="unknown filter step 'gausian'; known steps:"):
        chain(np.zeros((4, 4)), ["gausian"])
    with pytest.raises(ValueError, match="at least one step"):
        chain(np.zeros((4, 4)), [])
    with pytest.raises(TypeError, match="cannot make a filter step"):
        chain(np.zeros((4, 4)), [42])


def test_wrap_cannot_mix_with_other_modes():
    x = da.zeros((30, 30), chunks=10, dtype="float32")
    with pytest.raises(ValueError, match="mode='wrap' along 'y' cannot be combined"):
        chain(x, [step("gaussian", sigma=1, mode="wrap"), step("gaussian", sigma=1)])


def test_one_pixel_image():
    out = gaussian(da.ones((1, 1), chunks=1, dtype="float32"), 2.0).compute()
    np.testing.assert_array_equal(out, np.ones((1, 1), np.float32))


@settings(max_examples=25, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 40), st.integers(1, 40)),
    chunk=st.tuples(st.integers(1, 15), st.integers(1, 15)),
    sigma=st.floats(0.3, 3.0),
    mode=st.sampled_from(["reflect", "nearest", "mirror", "constant", "wrap"]),
)
def test_property_tiled_equals_whole(shape, chunk, sigma, mode):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    assert_tiled_equals_whole(
        lambda a: chain(
            a, [step("gaussian", sigma=sigma, mode=mode), step("gaussian", sigma=1, mode=mode)]
        ),
        lambda a: ndi.gaussian_filter(ndi.gaussian_filter(a, sigma, mode=mode), 1, mode=mode),
        image,
        chunk,
    )


def test_steps_with_large_array_parameters_get_distinct_names():
    # numpy abbreviates the repr of big arrays: names must come from the values
    x = da.from_array(np.random.default_rng(3).random((30, 30, 30)), chunks=15)
    a = np.ones((11, 11, 11), bool)
    b = a.copy()
    b[0, 0, 0] = False
    ya = chain(x, [step("median", footprint=a)])
    yb = chain(x, [step("median", footprint=b)])
    assert ya.name != yb.name
    got_a, got_b = da.compute(ya, yb)
    np.testing.assert_array_equal(
        got_b, ndi.median_filter(x.compute().astype(np.float64), footprint=b, mode="nearest")
    )
    assert not np.array_equal(got_a, got_b)
