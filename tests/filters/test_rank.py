from __future__ import annotations

import dask.array as da
import nibabel as nib
import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tilevision as tv
from tilevision._halo import odd_pixels
from tilevision.filters import (
    available_steps,
    chain,
    maximum,
    median,
    minimum,
    percentile,
    step,
    uniform,
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
CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], bool)


def _image(shape, dtype):
    if np.dtype(dtype).kind in "ui":
        # uint16/int16 values beyond uint8 and, for int16, negative ones
        low, high = {"uint8": (0, 255), "uint16": (0, 60000), "int16": (-1000, 3000)}[dtype]
        return RNG.integers(low, high, size=shape, endpoint=True).astype(dtype)
    return (RNG.standard_normal(shape) * 50).astype(dtype)


def _work(dtype):
    return np.float64 if np.dtype(dtype) == np.float64 else np.float32


# each filter with a window that exercises something: odd box, even box, footprint
RANK_CASES = {
    "median-3": (lambda a, **k: median(a, 3, **k), lambda a, **k: ndi.median_filter(a, 3, **k)),
    "minimum-4x5": (
        lambda a, **k: minimum(a, (4, 5), **k),
        lambda a, **k: ndi.minimum_filter(a, (4, 5), **k),
    ),
    "maximum-cross": (
        lambda a, **k: maximum(a, footprint=CROSS, **k),
        lambda a, **k: ndi.maximum_filter(a, footprint=CROSS, **k),
    ),
    "percentile-25-size5": (
        lambda a, **k: percentile(a, 25, 5, **k),
        lambda a, **k: ndi.percentile_filter(a, 25, 5, **k),
    ),
}


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("case", list(RANK_CASES))
def test_rank_filters_2d_exact(case, chunks):
    tiled, ref = RANK_CASES[case]
    image = _image(AWKWARD_SHAPE_2D, "float32")
    assert_tiled_equals_whole(tiled, lambda a: ref(a, mode="nearest"), image, chunks)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", list(RANK_CASES))
def test_rank_filters_dtypes_exact(case, dtype):
    """Integers are filtered as float32 (exact for these dtypes), float64 as float64."""
    tiled, ref = RANK_CASES[case]
    image = _image(AWKWARD_SHAPE_2D, dtype)
    work = _work(dtype)
    assert_tiled_equals_whole(
        tiled, lambda a: ref(a.astype(work), mode="nearest"), image, AWKWARD_CHUNKS_2D[1]
    )


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
@pytest.mark.parametrize(
    ("name", "window"),
    [
        ("median", {"size": 3}),
        ("minimum", {"size": (2, 3, 4)}),
        ("maximum", {"footprint": ndi.generate_binary_structure(3, 1)}),
        ("percentile", {"size": (3, 4, 3)}),
    ],
)
def test_rank_filters_3d_exact(name, window, chunks):
    image = _image(AWKWARD_SHAPE_3D, "int16")
    tiled_fn = {"median": median, "minimum": minimum, "maximum": maximum}.get(name)
    if name == "percentile":
        tiled = lambda a: percentile(a, 80, **window)  # noqa: E731
        ref = lambda a: ndi.percentile_filter(a.astype(np.float32), 80, mode="nearest", **window)  # noqa: E731
    else:
        tiled = lambda a: tiled_fn(a, **window)  # noqa: E731
        scipy_fn = getattr(ndi, f"{name}_filter")
        ref = lambda a: scipy_fn(a.astype(np.float32), mode="nearest", **window)  # noqa: E731
    assert_tiled_equals_whole(tiled, ref, image, chunks)


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("mode", MODES)
def test_modes_and_even_sizes_exact(mode, chunks):
    image = _image(AWKWARD_SHAPE_2D, "float32")
    assert_tiled_equals_whole(
        lambda a: median(a, (4, 3), mode=mode, cval=7.5),
        lambda a: ndi.median_filter(a, (4, 3), mode=mode, cval=7.5),
        image,
        chunks,
    )
    assert_tiled_equals_whole(
        lambda a: minimum(a, 6, mode=mode, cval=-3.0),
        lambda a: ndi.minimum_filter(a, 6, mode=mode, cval=-3.0),
        image,
        chunks,
    )


def test_per_axis_modes():
    image = _image(AWKWARD_SHAPE_2D, "float32")
    assert_tiled_equals_whole(
        lambda a: maximum(a, 5, mode=("reflect", "constant"), cval=100.0),
        lambda a: ndi.maximum_filter(a, 5, mode=("reflect", "constant"), cval=100.0),
        image,
        (9, 10),
    )


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
def test_uniform_2d(chunks, dtype):
    image = _image(AWKWARD_SHAPE_2D, dtype)
    # SciPy's float64 running sums round to the same float32 values here
    assert_tiled_equals_whole(
        lambda a: uniform(a, (5, 4)),
        lambda a: ndi.uniform_filter(a.astype(np.float32), (5, 4), mode="nearest"),
        image,
        chunks,
    )


@pytest.mark.parametrize(("mode", "chunks"), list(zip(MODES, AWKWARD_CHUNKS_3D)))
def test_uniform_3d_float64_to_rounding(mode, chunks):
    """A running sum starts at each tile's edge: float64 agrees to rounding, not bits."""
    image = _image(AWKWARD_SHAPE_3D, "float64")
    assert_tiled_equals_whole(
        lambda a: uniform(a, 3, mode=mode, cval=1.0),
        lambda a: ndi.uniform_filter(a, 3, mode=mode, cval=1.0),
        image,
        chunks,
        rtol=0,
        atol=1e-12 * np.abs(image).max(),
    )


@pytest.mark.parametrize("chunks", [(17, 23), (9, 10), ((5, 30, 10, 1), (7,) * 7 + (1,))])
@pytest.mark.parametrize("mode", ["reflect", "mirror", "wrap", "nearest"])
def test_window_larger_than_image(mode, chunks):
    image = _image(AWKWARD_SHAPE_2D, "float32")
    # 61 rows > 46 and 55 columns > 50: the halo covers whole axes
    assert_tiled_equals_whole(
        lambda a: median(a, (61, 3), mode=mode),
        lambda a: ndi.median_filter(a, (61, 3), mode=mode),
        image,
        chunks,
    )
    assert_tiled_equals_whole(
        lambda a: maximum(a, (3, 55), mode=mode),
        lambda a: ndi.maximum_filter(a, (3, 55), mode=mode),
        image,
        chunks,
    )


def test_footprint_larger_than_image_3d():
    image = _image(AWKWARD_SHAPE_3D, "int16")
    ball = np.zeros((13, 13, 13), bool)
    zz, yy, xx = np.mgrid[-6:7, -6:7, -6:7]
    ball[zz**2 + yy**2 + xx**2 <= 36] = True  # 13 planes > the image's 10
    assert_tiled_equals_whole(
        lambda a: minimum(a, footprint=ball),
        lambda a: ndi.minimum_filter(a.astype(np.float32), footprint=ball, mode="nearest"),
        image,
        (4, 9, 10),
    )


def test_integers_come_out_exact():
    image = np.array([[0, 65535, 40000], [1, 2, 3]], "uint16")
    out = maximum(da.from_array(image, chunks=1), (1, 3)).compute()
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[65535, 65535, 65535], [2, 3, 3]])


def test_percentile_ends_are_min_and_max():
    image = _image(AWKWARD_SHAPE_2D, "float32")
    x = da.from_array(image, chunks=(9, 10))
    np.testing.assert_array_equal(percentile(x, 0, 5).compute(), minimum(x, 5).compute())
    np.testing.assert_array_equal(percentile(x, 100, 5).compute(), maximum(x, 5).compute())
    np.testing.assert_array_equal(percentile(x, 50, 5).compute(), median(x, 5).compute())


def test_physical_units_round_to_odd_pixels():
    data = _image((9, 30, 40), "float32")
    img = tv._image.make_image(
        da.from_array(data, chunks=(3, 10, 10)), ("z", "y", "x"), spacing=(3.0, 0.5, 0.7)
    )
    # 3 mm: 1 plane, 6 → 7 rows (an even count rounds up), 4.29 → 5 columns
    out = median(img, 3.0, units="physical")
    np.testing.assert_array_equal(out.values, ndi.median_filter(data, (1, 7, 5), mode="nearest"))
    # 2.33 → 3 planes, 2 → 3 rows, 1.43 → 1 column
    out = uniform(img, (7.0, 1.0, 1.0), units="physical")
    np.testing.assert_array_equal(out.values, ndi.uniform_filter(data, (3, 3, 1), mode="nearest"))


def test_odd_pixels():
    assert [odd_pixels(v) for v in (0.2, 1.0, 1.99, 2.0, 4.5, 5.0, 6.0)] == [1, 1, 1, 3, 5, 5, 7]


def test_dataarray_in_dataarray_out_keeps_coords_and_is_lazy():
    data = _image((2, 30, 40), "uint8")
    img = tv._image.make_image(
        da.from_array(data, chunks=(1, 10, 10)),
        ("c", "y", "x"),
        spacing=0.5,
        channel_names=["a", "b"],
        attrs={"note": "kept"},
    )
    with raise_if_dask_computes():
        out = median(img, 3)
    assert isinstance(out, xr.DataArray)
    assert out.dims == img.dims
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["note"] == "kept"
    assert out.attrs["spacing"] == img.attrs["spacing"]
    assert out.attrs["filters"][-1].startswith("median(size=3")
    expected = np.stack([ndi.median_filter(c.astype(np.float32), 3, mode="nearest") for c in data])
    np.testing.assert_array_equal(out.values, expected)


def test_numpy_in_numpy_out_and_channel_axis():
    data = _image((20, 20, 3), "float64")
    out = minimum(data, 3, channel_axis=-1)
    assert isinstance(out, np.ndarray)
    assert out.dtype == np.float64
    expected = np.stack(
        [ndi.minimum_filter(data[..., i], 3, mode="nearest") for i in range(3)], -1
    )
    np.testing.assert_array_equal(out, expected)


def test_steps_registered_and_chain_exact():
    for name in ("median", "minimum", "maximum", "percentile", "uniform"):
        assert name in available_steps()
    image = _image(AWKWARD_SHAPE_2D, "int16")
    steps = [step("median", size=3), step("maximum", size=(3, 5)), step("gaussian", sigma=1.0)]

    def reference(a):
        a = ndi.median_filter(a.astype(np.float32), 3, mode="nearest")
        a = ndi.maximum_filter(a, (3, 5), mode="nearest")
        return ndi.gaussian_filter(a, 1.0, mode="nearest")

    assert_tiled_equals_whole(lambda a: chain(a, steps), reference, image, (9, 10))


def test_large_footprints_get_distinct_graphs():
    """Footprints are stored in full (NumPy's repr elides big arrays)."""
    a = np.ones((11, 11, 11), bool)
    b = a.copy()
    b[5, 5, 0] = False
    x = da.zeros((20, 20, 20), chunks=10, dtype="float32")
    assert median(x, footprint=a).name != median(x, footprint=b).name


def test_real_ct_median(data_dir):
    nii = nib.load(data_dir / "ct-organs" / "example_ct_sm.nii.gz")
    volume = np.asarray(nii.dataobj).transpose(2, 1, 0)  # (i, j, k) → (z, y, x)
    assert volume.dtype == np.int16
    lazy = da.from_array(volume, chunks=(7, 40, 50))
    with raise_if_dask_computes():
        out = median(lazy, 3)
    expected = ndi.median_filter(volume.astype(np.float32), 3, mode="nearest")
    np.testing.assert_array_equal(out.compute(), expected)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: median(x, 0), "size must be > 0"),
        (lambda x: median(x, -2), "size must be > 0"),
        (lambda x: median(x, (3, 0)), "size must be > 0"),
        (lambda x: median(x, 2.5), "size must be a whole number of pixels"),
        (lambda x: median(x, (3, 3, 3)), "size has 3 values but the image has 2"),
        (lambda x: uniform(x, 0), "size must be > 0"),
        (lambda x: median(x, 0, units="physical"), "size must be > 0"),
        (lambda x: median(x, 3, units="mm"), "units must be 'pixel' or 'physical'"),
        (lambda x: median(x, footprint=[[0, 2], [1, 1]]), "footprint must be boolean"),
        (lambda x: median(x, footprint=np.full((3, 3), 0.5)), "footprint must be boolean"),
        (lambda x: median(x, footprint=np.ones(3, bool)), "footprint has 1 axes but the image"),
        (lambda x: median(x, footprint=np.zeros((3, 3), bool)), "has no True element"),
        (lambda x: median(x, 3, footprint=CROSS), "either size or footprint, not both"),
        (lambda x: median(x, footprint=CROSS, units="physical"), "a footprint is given in pixels"),
        (lambda x: median(x, 3, mode="edge"), "unknown mode 'edge'"),
        (lambda x: percentile(x, 101, 3), r"percentile must be a number in \[0, 100\]"),
        (lambda x: percentile(x, -5, 3), r"percentile must be a number in \[0, 100\]"),
        (lambda x: percentile(x, float("nan"), 3), r"percentile must be a number in \[0, 100\]"),
        (lambda x: percentile(x, "high", 3), r"percentile must be a number in \[0, 100\]"),
    ],
)
def test_bad_parameters(call, message):
    with pytest.raises(ValueError, match=message):
        call(da.zeros((10, 10), chunks=5))


def test_bad_images():
    with pytest.raises(TypeError, match="non-numeric dtype"):
        median(np.array([["a"]]), 3)
    with pytest.raises(ValueError, match="empty"):
        maximum(np.zeros((0, 4)), 3)
    with pytest.raises(ValueError, match="smaller than the halo of 3 pixels"):
        median(da.zeros((40, 40), chunks=2), 7, rechunk=False)


@settings(max_examples=30, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 30), st.integers(1, 30)),
    chunk=st.tuples(st.integers(1, 12), st.integers(1, 12)),
    size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    mode=st.sampled_from(MODES),
)
def test_property_median_tiled_equals_whole(shape, chunk, size, mode):
    image = np.random.default_rng(1).integers(0, 20, shape).astype(np.float32)
    assert_tiled_equals_whole(
        lambda a: median(a, size, mode=mode, cval=5.0),
        lambda a: ndi.median_filter(a, size, mode=mode, cval=5.0),
        image,
        chunk,
    )
