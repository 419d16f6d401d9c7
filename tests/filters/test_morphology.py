from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import skimage.morphology as morph
import xarray as xr

import tilevision as tv
from tilevision.filters import (
    binary_closing,
    binary_dilation,
    binary_erosion,
    binary_opening,
    chain,
    closing,
    dilation,
    erosion,
    make_footprint,
    opening,
    remove_small_objects,
    step,
)
from tilevision.filters._chain import image_context
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    assert_tiled_equals_whole,
    raise_if_dask_computes,
)

RNG = np.random.default_rng(11)
GREY = {"erosion": erosion, "dilation": dilation, "opening": opening, "closing": closing}
BINARY = {
    "erosion": binary_erosion,
    "dilation": binary_dilation,
    "opening": binary_opening,
    "closing": binary_closing,
}
#: an asymmetric, even-sized footprint: catches mirroring and padding mistakes
ODD_SHAPE_FP = np.array([[1, 1, 0, 0], [0, 1, 0, 0], [0, 1, 1, 1]], bool)


def _image(shape, dtype):
    if np.dtype(dtype) == bool:
        return RNG.random(shape) < 0.55
    if np.dtype(dtype).kind in "ui":
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, size=shape, endpoint=True).astype(dtype)
    return (RNG.standard_normal(shape) * 50).astype(dtype)


def _skimage_binary(name, image, footprint, mode="ignore"):
    with warnings.catch_warnings():  # deprecated since scikit-image 0.26
        warnings.simplefilter("ignore", FutureWarning)
        return getattr(morph, f"binary_{name}")(image, footprint, mode=mode)


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
def test_grey_2d_equals_skimage(name, chunks):
    image = _image(AWKWARD_SHAPE_2D, "uint16")
    assert_tiled_equals_whole(
        lambda a: GREY[name](a, "disk(2)"),
        lambda a: getattr(morph, name)(a, morph.disk(2)),
        image,
        chunks,
    )


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64", "bool"])
def test_grey_keeps_dtype_exactly(name, dtype):
    chunks = ((5, 30, 10, 1), 7)
    image = _image(AWKWARD_SHAPE_2D, dtype)
    assert_tiled_equals_whole(
        lambda a: GREY[name](a, "disk(2)"),
        lambda a: getattr(morph, name)(a, morph.disk(2)),
        image,
        chunks,
    )


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize("footprint", [ODD_SHAPE_FP, "square(4)", "diamond(3)", None])
@pytest.mark.parametrize("chunks", [(1, -1), ((5, 30, 10, 1), 7)])
def test_grey_footprints_even_and_asymmetric(name, footprint, chunks):
    image = _image(AWKWARD_SHAPE_2D, "int16")
    if isinstance(footprint, str):
        expected_fp = morph.footprint_rectangle((4, 4)) if footprint == "square(4)" else None
        expected_fp = morph.diamond(3) if footprint == "diamond(3)" else expected_fp
    else:
        expected_fp = footprint  # None: skimage's own default, the cross
    assert_tiled_equals_whole(
        lambda a: GREY[name](a, footprint),
        lambda a: getattr(morph, name)(a, expected_fp),
        image,
        chunks,
    )


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize(
    ("mode", "dtype"),
    [
        ("reflect", "uint8"),
        ("constant", "float32"),
        ("nearest", "int16"),
        ("mirror", "uint16"),
        ("wrap", "float64"),
        ("max", "uint8"),
        ("max", "float32"),
        ("min", "int16"),
        ("ignore", "uint8"),
        ("ignore", "bool"),
    ],
)
def test_grey_modes(name, mode, dtype):
    image = _image(AWKWARD_SHAPE_2D, dtype)
    assert_tiled_equals_whole(
        lambda a: GREY[name](a, ODD_SHAPE_FP, mode=mode, cval=7),
        lambda a: getattr(morph, name)(a, ODD_SHAPE_FP, mode=mode, cval=7),
        image,
        (9, 10),
    )


@pytest.mark.parametrize("name", list(GREY))
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
@pytest.mark.parametrize(
    ("footprint", "reference"),
    [("ball(1)", morph.ball(1)), ("cube(2)", morph.footprint_rectangle((2, 2, 2)))],
)
def test_grey_3d(name, chunks, footprint, reference):
    image = _image(AWKWARD_SHAPE_3D, "uint16")
    assert_tiled_equals_whole(
        lambda a: GREY[name](a, footprint),
        lambda a: getattr(morph, name)(a, reference),
        image,
        chunks,
    )


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
def test_binary_2d_equals_skimage(name, chunks):
    footprint = "disk(2)"  # the asymmetric even footprint: test_binary_modes
    image = _image(AWKWARD_SHAPE_2D, bool)
    fp = make_footprint(footprint, 2)
    assert_tiled_equals_whole(
        lambda a: BINARY[name](a, footprint),
        lambda a: _skimage_binary(name, a, fp),
        image,
        chunks,
    )


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("mode", ["ignore", "max", "min"])
def test_binary_modes(name, mode):
    image = _image(AWKWARD_SHAPE_2D, bool)
    assert_tiled_equals_whole(
        lambda a: BINARY[name](a, ODD_SHAPE_FP, mode=mode),
        lambda a: _skimage_binary(name, a, ODD_SHAPE_FP, mode=mode),
        image,
        (9, 10),
    )


@pytest.mark.parametrize("name", list(BINARY))
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_binary_3d_and_integer_masks(name, chunks):
    image = RNG.integers(0, 3, size=AWKWARD_SHAPE_3D).astype(np.uint8)  # nonzero = True
    assert_tiled_equals_whole(
        lambda a: BINARY[name](a, "octahedron(1)"),
        lambda a: _skimage_binary(name, a != 0, morph.octahedron(1)),
        image,
        chunks,
    )


def test_opening_halo_is_twice_the_footprint_radius():
    ctx = image_context(np.zeros((5, 5), "uint8"), ("y", "x"), (1.0, 1.0))
    assert step("erosion", footprint="disk(3)").bind(ctx).radius == (3, 3)
    assert step("opening", footprint="disk(3)").bind(ctx).radius == (6, 6)
    assert step("binary_erosion", footprint=ODD_SHAPE_FP).bind(ctx).radius == (1, 2)
    assert step("binary_closing", footprint=ODD_SHAPE_FP).bind(ctx).radius == (2, 4)
    assert step("closing", footprint=ODD_SHAPE_FP).bind(ctx).radius == (2, 4)
    # chunks narrower than the halo are merged, and the result is still exact
    image = _image((40, 40), "uint8")
    out = opening(da.from_array(image, chunks=5), "disk(3)")
    assert min(out.chunks[0]) >= 5
    np.testing.assert_array_equal(out.compute(), morph.opening(image, morph.disk(3)))


def test_steps_chain_into_one_overlap():
    image = _image(AWKWARD_SHAPE_2D, "uint8")
    steps = [step("closing", footprint="disk(1)"), step("erosion", footprint="square(3)")]
    out = chain(da.from_array(image, chunks=(9, 10)), steps)
    expected = morph.erosion(morph.closing(image, morph.disk(1)), np.ones((3, 3), bool))
    np.testing.assert_array_equal(out.compute(), expected)
    assert sum(name.startswith("overlap") for name in out.dask.layers) <= 1


def test_dataarray_channels_and_numpy():
    data = _image((2, 30, 40), "uint8")
    img = tv._image.make_image(
        da.from_array(data, chunks=(1, 11, 13)), ("c", "y", "x"), spacing=0.5,
        channel_names=["a", "b"],
    )  # fmt: skip
    with raise_if_dask_computes():
        out = dilation(img, "disk(2)")
    assert isinstance(out, xr.DataArray)
    assert out.dims == img.dims
    assert out.dtype == np.uint8
    expected = np.stack([morph.dilation(c, morph.disk(2)) for c in data])
    np.testing.assert_array_equal(out.values, expected)
    plain = erosion(data[0], "disk(1)")
    assert isinstance(plain, np.ndarray)
    np.testing.assert_array_equal(plain, morph.erosion(data[0], morph.disk(1)))


# -- remove_small_objects ---------------------------------------------------------------


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("max_size", [0, 3, 40])
def test_remove_small_objects_2d(chunks, connectivity, max_size):
    mask = RNG.random(AWKWARD_SHAPE_2D) < 0.45
    assert_tiled_equals_whole(
        lambda a: remove_small_objects(a, max_size, connectivity=connectivity),
        lambda a: morph.remove_small_objects(a, max_size=max_size, connectivity=connectivity),
        mask,
        chunks,
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_remove_small_objects_3d_and_label_images(chunks):
    mask = RNG.random(AWKWARD_SHAPE_3D) < 0.3
    assert_tiled_equals_whole(
        lambda a: remove_small_objects(a, 4, connectivity=3),
        lambda a: morph.remove_small_objects(a, max_size=4, connectivity=3),
        mask,
        chunks,
    )
    # an integer label image: its ids are the objects (split ones count as one)
    labels = RNG.integers(0, 60, size=AWKWARD_SHAPE_3D).astype(np.uint16)
    assert_tiled_equals_whole(
        lambda a: remove_small_objects(a, 230),
        lambda a: morph.remove_small_objects(a, max_size=230),
        labels,
        chunks,
    )


def test_remove_small_objects_object_spanning_chunks_survives():
    mask = np.zeros((30, 30), bool)
    mask[2, :] = True  # 30 pixels across 6 chunks of 5 columns
    mask[10:12, 10:12] = True  # 4 pixels
    out = remove_small_objects(da.from_array(mask, chunks=5), 10).compute()
    np.testing.assert_array_equal(out, mask & (np.arange(30) == 2)[:, None])
    numpy_out = remove_small_objects(mask, 10)
    assert isinstance(numpy_out, np.ndarray)
    np.testing.assert_array_equal(numpy_out, out)


def test_remove_small_objects_dataarray_lazy():
    mask = RNG.random((30, 40)) < 0.4
    img = tv._image.make_image(da.from_array(mask, chunks=(11, 13)), ("y", "x"))
    with raise_if_dask_computes():
        out = remove_small_objects(img, 5)
    assert isinstance(out, xr.DataArray)
    assert out.dtype == bool
    assert out.attrs["filters"][-1] == "remove_small_objects(max_size=5, connectivity=1)"
    np.testing.assert_array_equal(out.values, morph.remove_small_objects(mask, max_size=5))


def test_remove_small_objects_bad_input():
    floats = da.zeros((10, 10), chunks=5, dtype="float32")
    with pytest.raises(TypeError, match=r"boolean mask or an integer label image.*image > 0.5"):
        remove_small_objects(floats, 3)
    with pytest.raises(ValueError, match=r"max_size must be an integer ≥ 0"):
        remove_small_objects(da.zeros((10, 10), dtype=bool), -1)
    with pytest.raises(ValueError, match="connectivity must be between 1"):
        remove_small_objects(da.zeros((10, 10), dtype=bool), 3, connectivity=3)
    negative = da.from_array(np.full((10, 10), -1, np.int32), chunks=5)
    out = remove_small_objects(negative, 3)  # lazy: found when computed
    with pytest.raises(ValueError, match=r"negative labels.*label images must be ≥ 0"):
        out.compute()


# -- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda a: binary_erosion(a.astype("float32")), TypeError, r"needs a binary mask.*> 0.5"),
        (lambda a: binary_dilation(a, mode="reflect"), ValueError, "binary modes are 'ignore'"),
        (lambda a: erosion(a, mode="edge"), ValueError, "unknown mode 'edge'.*use 'nearest'"),
        (lambda a: erosion(a, "ball(2)"), ValueError, r"3-D but the image has 2.*disk\(2\)"),
        (lambda a: dilation(a, np.ones((3, 3, 3))), ValueError, "footprint has 3 axes but"),
        (lambda a: opening(a, "blob(3)"), ValueError, "unknown footprint 'blob'"),
        (lambda a: closing(a, "disk 3"), ValueError, "cannot read the footprint 'disk 3'"),
        (lambda a: erosion(a, np.zeros((3, 3))), ValueError, "footprint has no True element"),
        (lambda a: erosion(a, np.full((3, 3), 2)), ValueError, r"True/False \(or 0/1\)"),
        (lambda a: erosion(a, ("disk", 0)), ValueError, "size must be an integer ≥ 1"),
    ],
)
def test_bad_input(call, error, message):
    image = da.zeros((20, 20), chunks=10, dtype="uint8")
    with pytest.raises(error, match=message):
        call(image)
