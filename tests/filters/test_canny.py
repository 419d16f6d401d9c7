"""Canny edges, tile by tile with hysteresis across tiles, against whole-array references.

2-D: ``skimage.feature.canny`` on the whole image, pixel for pixel (assert_array_equal),
for every dtype, several sigmas/thresholds/modes, masks, quantile thresholds and every
awkward chunking. 3-D: ``canny_reference.canny_3d``, a plain whole-array
implementation of the documented 3-D definition.
"""

from __future__ import annotations

import pathlib

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.data
import skimage.feature as skf
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilevision
from tilevision._image import make_image
from tilevision.filters import _canny, canny
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    raise_if_dask_computes,
)

from .canny_reference import canny_3d

RNG = np.random.default_rng(11)
CT = pathlib.Path(tilevision.__file__).parent / "datasets" / "data" / "ct-organs"


def _in_range(unit: np.ndarray, dtype) -> np.ndarray:
    """An image in [0, 1] as ``dtype``, using the dtype's range as scikit-image does."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return unit > 0.5
    if dtype.kind in "ui":
        return np.round(unit * np.iinfo(dtype).max).astype(dtype)
    return unit.astype(dtype)


def _synthetic(shape=AWKWARD_SHAPE_2D, noise=0.08, seed=0) -> np.ndarray:
    """A disk, a bar and a diagonal step, plus noise, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    img = 0.2 + 0.5 * ((yy - shape[0] / 3) ** 2 + (xx - shape[1] / 3) ** 2 < (shape[0] / 5) ** 2)
    img[shape[0] // 2 : shape[0] // 2 + 5, 4:-4] = 0.9
    img = img + 0.3 * (yy + 0.7 * xx > 1.2 * shape[0])
    return np.clip(img + noise * rng.standard_normal(shape), 0, 1)


def _check(image: np.ndarray, chunks, **kwargs) -> np.ndarray:
    """Tiled == skimage.feature.canny on the whole image; built lazily; bool out."""
    lazy = da.from_array(image, chunks=chunks)
    with raise_if_dask_computes():
        result = canny(lazy, **kwargs)
    assert isinstance(result, da.Array)
    assert result.dtype == bool
    got = result.compute()
    mask = kwargs.pop("mask", None)
    ref = skf.canny(
        image,
        kwargs.pop("sigma", 1.0),
        kwargs.pop("low_threshold", None),
        kwargs.pop("high_threshold", None),
        mask.compute() if isinstance(mask, da.Array) else mask,
        kwargs.pop("use_quantiles", False),
        **kwargs,
    )
    np.testing.assert_array_equal(got, ref, err_msg=f"chunks={lazy.chunks}")
    return got


# --------------------------------------------------------------------------- 2-D vs skimage


def test_camera_default_parameters():
    edges = _check(skimage.data.camera(), (100, 77))
    assert edges.sum() > 10_000  # a test that can fail: many edges, many seams


@pytest.mark.parametrize(
    ("dtype", "kwargs"),
    [
        ("uint8", dict(sigma=2.0)),
        ("uint16", dict(sigma=1.0, low_threshold=3000, high_threshold=9000)),
        ("float32", dict(sigma=1.5, low_threshold=0.05, high_threshold=0.15)),
        ("float64", dict(sigma=0.7, low_threshold=0.1, high_threshold=0.3, mode="nearest")),
    ],
)
def test_camera_dtypes(dtype, kwargs):
    image = _in_range(skimage.data.camera()[96:320, 128:352] / 255.0, dtype)
    edges = _check(image, (61, 50), **kwargs)
    assert edges.any()


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(),
        dict(sigma=3.0, low_threshold=5, high_threshold=20),
        dict(sigma=1.0, mode="reflect", low_threshold=10, high_threshold=30),
        dict(sigma=(1.0, 2.5), mode="mirror"),
        dict(sigma=2.0, mode="wrap", low_threshold=5, high_threshold=15),
        dict(sigma=1.0, mode="constant", cval=200.0),
        dict(sigma=0.0, low_threshold=40, high_threshold=80),
    ],
)
def test_brick(kwargs):
    _check(skimage.data.brick()[:200, :230], (57, 64), **kwargs)


DTYPES_2D = ["uint8", "uint16", "float32", "float64"]


def _diagonal_cases(first, second):
    """Every pair; those off the "diagonal" (i-th with i-th, cycling) are marked slow,
    so that each value of both lists runs by default."""
    n = max(len(first), len(second))
    default = {(i % len(first), i % len(second)) for i in range(n)}
    return [
        pytest.param(a, b, marks=() if (i, j) in default else (pytest.mark.slow,))
        for i, a in enumerate(first)
        for j, b in enumerate(second)
    ]


@pytest.mark.parametrize(("chunks", "dtype"), _diagonal_cases(AWKWARD_CHUNKS_2D, DTYPES_2D))
def test_awkward_chunks(chunks, dtype):
    _check(_in_range(_synthetic(), dtype), chunks, sigma=1.0)


@pytest.mark.parametrize("dtype", ["int8", "int16", "bool", "float16", "uint32"])
def test_other_dtypes(dtype):
    image = _in_range(_synthetic(), dtype)
    _check(image, (17, 23), sigma=1.0)


@pytest.mark.parametrize("offset", [-1, 0, 1])
def test_chunks_close_to_the_halo(offset):
    sigma = 1.5
    radius = _canny.canny_radius(sigma, 2)
    assert radius == (int(4 * sigma + 0.5) + 2,) * 2
    size = radius[0] + offset
    _check(_in_range(_synthetic((40, 44)), "uint8"), (size, size + 1), sigma=sigma)


def test_halo_is_needed(monkeypatch):
    """One pixel less than Sobel + NMS (here, without smoothing) gives seam errors."""
    image = _synthetic((60, 64), noise=0.2)
    lazy = da.from_array(image, chunks=(15, 16))
    ref = skf.canny(image, 0.0, 0.1, 0.3)
    np.testing.assert_array_equal(canny(lazy, 0.0, 0.1, 0.3).compute(), ref)
    monkeypatch.setattr(_canny, "canny_radius", lambda sigma, ndim: (1,) * ndim)
    assert not np.array_equal(canny(lazy, 0.0, 0.1, 0.3).compute(), ref)


@pytest.mark.parametrize(
    ("chunks", "mode"),
    _diagonal_cases([(17, 23), ((5, 30, 10, 1), (7,) * 7 + (1,))], ["constant", "nearest"]),
)
def test_mask(chunks, mode):
    image = _in_range(_synthetic(), "uint8")
    yy, xx = np.mgrid[: image.shape[0], : image.shape[1]]
    mask = (yy - 20) ** 2 + (xx - 28) ** 2 < 18**2
    _check(image, chunks, sigma=1.0, mask=mask, mode=mode)
    # a Dask mask with other chunks is aligned to the image's
    _check(image, chunks, sigma=1.0, mask=da.from_array(mask, chunks=(9, 40)), mode=mode)


@pytest.mark.parametrize(
    ("dtype", "chunks", "low", "high"),
    [
        ("float32", (70, 61), 0.8, 0.9),
        ("uint8", (100, 128), None, None),
        ("float64", (11, 9), 0.5, 0.95),
    ],
)
def test_quantile_thresholds(dtype, chunks, low, high):
    if chunks == (11, 9):
        image = _in_range(_synthetic(), dtype)
    else:
        image = _in_range(skimage.data.camera()[200:456, 100:356] / 255.0, dtype)
    _check(image, chunks, sigma=1.0, low_threshold=low, high_threshold=high, use_quantiles=True)


def test_quantile_thresholds_with_mask_and_wrap():
    image = _in_range(_synthetic(), "float32")
    mask = np.ones(image.shape, bool)
    mask[10:20, 5:45] = False
    _check(image, (12, 13), sigma=1.0, mask=mask, use_quantiles=True, low_threshold=0.7,
           high_threshold=0.9, mode="wrap")  # fmt: skip


def _spiral(n=96, turns=3, width=3):
    """A thick spiral, dim (0.1) except its outer tenth, which rises to 1."""
    img = np.zeros((n, n))
    t = np.linspace(0, 1, 8000)
    r = 4 + (n / 2 - 8) * t
    y = (n / 2 + r * np.sin(2 * np.pi * turns * t)).round().astype(int)
    x = (n / 2 + r * np.cos(2 * np.pi * turns * t)).round().astype(int)
    value = 0.1 + 0.9 * np.clip((t - 0.9) / 0.1, 0, 1)
    for dy in range(width):
        for dx in range(width):
            img[y + dy, x + dx] = np.maximum(img[y + dy, x + dx], value)
    return img


def _diagonal(n=96):
    """A long oblique step whose contrast rises from 0.1 to 1 near its right end."""
    yy, xx = np.mgrid[:n, :n]
    contrast = 0.1 + 0.9 * np.clip((xx - 0.85 * n) / (0.1 * n), 0, 1)
    return 0.5 * contrast * (yy > 0.7 * xx + 4)


def _tiles(mask, chunks):
    ys, xs = np.nonzero(mask)
    return len(set(zip(ys // chunks[0], xs // chunks[1])))


@pytest.mark.parametrize(("make", "low", "high"), [(_spiral, 0.02, 0.5), (_diagonal, 0.02, 0.5)])
def test_hysteresis_crosses_many_seams(make, low, high):
    image = make()
    chunks = (16, 14)
    edges = _check(image, chunks, sigma=1.0, low_threshold=low, high_threshold=high)
    strong = skf.canny(image, 1.0, high, high)  # the strong pixels alone
    # the edges reach many tiles from a few tiles of strong pixels: hysteresis
    # propagated across many seams (a per-tile hysteresis would lose them)
    assert _tiles(strong, chunks) * 3 <= _tiles(edges, chunks)
    assert _tiles(edges, chunks) >= 10


def test_numpy_in_numpy_out():
    image = _in_range(_synthetic(), "uint8")
    out = canny(image, 1.5, 10, 30)
    assert isinstance(out, np.ndarray)
    np.testing.assert_array_equal(out, skf.canny(image, 1.5, 10, 30))
    out = canny(image, use_quantiles=True, low_threshold=0.6, high_threshold=0.9)
    ref = skf.canny(image, use_quantiles=True, low_threshold=0.6, high_threshold=0.9)
    np.testing.assert_array_equal(out, ref)


def test_no_edges():
    flat = np.full((30, 40), 7, np.uint8)
    got = canny(da.from_array(flat, chunks=(10, 10))).compute()
    np.testing.assert_array_equal(got, skf.canny(flat))
    assert not got.any()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.tuples(st.integers(8, 32), st.integers(8, 32)),
    dtype=st.sampled_from(["uint8", "float32", "float64"]),
    sigma=st.sampled_from([0.0, 0.5, 1.0, 1.7]),
    low=st.floats(0.0, 0.3),
    spread=st.floats(0.0, 0.3),
    mode=st.sampled_from(["constant", "nearest", "reflect", "wrap"]),
    data=st.data(),
)
def test_property_equals_skimage(shape, dtype, sigma, low, spread, mode, data):
    chunks = tuple(data.draw(st.integers(1, n), label=f"chunk{i}") for i, n in enumerate(shape))
    seed = data.draw(st.integers(0, 2**16), label="seed")
    image = _in_range(_synthetic(shape, noise=0.2, seed=seed), dtype)
    scale = 255 if dtype == "uint8" else 1
    _check(image, chunks, sigma=sigma, low_threshold=low * scale,
           high_threshold=(low + spread) * scale, mode=mode)  # fmt: skip


# --------------------------------------------------------------------------- 3-D vs reference


def _volume(shape=AWKWARD_SHAPE_3D, seed=1):
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.mgrid[: shape[0], : shape[1], : shape[2]]
    ball = (zz - shape[0] / 2) ** 2 + (yy - shape[1] / 2) ** 2 + (xx - shape[2] / 3) ** 2
    vol = 0.3 + 0.5 * (ball < (shape[1] / 3) ** 2) + 0.2 * (xx + yy > shape[2])
    return np.clip(vol + 0.05 * rng.standard_normal(shape), 0, 1)


def _check_3d(image, chunks, **kwargs):
    lazy = da.from_array(image, chunks=chunks)
    with raise_if_dask_computes():
        result = canny(lazy, **kwargs)
    got = result.compute()
    ref = canny_3d(image, **kwargs)
    np.testing.assert_array_equal(got, ref, err_msg=f"chunks={lazy.chunks}")
    np.testing.assert_array_equal(canny(image, **kwargs), ref)  # NumPy in
    assert ref.any()
    return got


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
def test_3d_awkward_chunks(chunks):
    _check_3d(_in_range(_volume(), "float32"), chunks, sigma=1.0, low_threshold=0.05,
              high_threshold=0.2)  # fmt: skip


@pytest.mark.parametrize(
    ("dtype", "kwargs"),
    [
        ("uint8", dict(sigma=0.7)),
        (
            "uint16",
            dict(sigma=(0.5, 1, 1), mode="nearest", low_threshold=3e3, high_threshold=12e3),
        ),
        ("float64", dict(sigma=1.0, use_quantiles=True, low_threshold=0.7, high_threshold=0.9)),
        ("float32", dict(sigma=1.0, mode="wrap", low_threshold=0.05, high_threshold=0.2)),
    ],
)
def test_3d_settings(dtype, kwargs):
    _check_3d(_in_range(_volume(), dtype), (4, 12, 14), **kwargs)


def test_3d_mask():
    vol = _in_range(_volume(), "float32")
    mask = np.zeros(vol.shape, bool)
    mask[1:9, 3:30, 5:36] = True
    _check_3d(vol, (4, 9, 10), sigma=1.0, mask=mask, low_threshold=0.05, high_threshold=0.2)


def _ct() -> np.ndarray:
    nib = pytest.importorskip("nibabel")
    data = np.asarray(nib.load(CT / "example_ct_sm.nii.gz").dataobj)
    return np.ascontiguousarray(data.transpose(2, 1, 0))  # (x, y, z) → (z, y, x)


def test_3d_ct():
    ct = _ct()
    assert ct.dtype == np.int16
    edges = _check_3d(ct, (7, 40, 33), sigma=1.0, low_threshold=60, high_threshold=200)
    assert edges.sum() > 1000


@pytest.mark.slow
def test_3d_ct_quantiles():
    _check_3d(_ct(), (7, 40, 33), sigma=1.5, use_quantiles=True, low_threshold=0.8,
              high_threshold=0.95)  # fmt: skip


def _helix(width=2, ramp=0.15):
    """A 3-D helix tube, dim (0.1) except its last ``ramp`` fraction, which rises to 1."""
    vol = np.zeros((24, 40, 40))
    t = np.linspace(0, 1, 3000)
    z = (2 + 19 * t).round().astype(int)
    y = (19 + 12 * np.sin(6 * np.pi * t)).round().astype(int)
    x = (19 + 12 * np.cos(6 * np.pi * t)).round().astype(int)
    value = 0.1 + 0.9 * np.clip((t - (1 - ramp)) / ramp, 0, 1)
    for d in np.ndindex(width, width, width):
        idx = (z + d[0], y + d[1], x + d[2])
        vol[idx] = np.maximum(vol[idx], value)
    return vol


def test_3d_hysteresis_crosses_seams():
    vol = _helix()
    chunks = (6, 9, 9)
    edges = _check_3d(vol, chunks, sigma=1.0, low_threshold=0.05, high_threshold=3.0)
    strong = canny_3d(vol, sigma=1.0, low_threshold=3.0, high_threshold=3.0)

    def blocks(m):
        return len({tuple(i // c for i, c in zip(p, chunks)) for p in zip(*np.nonzero(m))})

    assert blocks(edges) >= 5 * blocks(strong)


# --------------------------------------------------------------------------- API


def test_dataarray_in_out_physical_units():
    image = _in_range(_synthetic(), "uint8")
    img = make_image(
        da.from_array(image, chunks=(20, 20)), ("y", "x"), spacing={"y": 2.0, "x": 0.5}
    )
    img.attrs["note"] = "kept"
    with raise_if_dask_computes():
        out = canny(img, sigma=2.0, units="physical", low_threshold=10, high_threshold=30)
    assert isinstance(out, xr.DataArray)
    assert out.dtype == bool
    assert out.dims == img.dims
    xr.testing.assert_identical(out.coords.to_dataset(), img.coords.to_dataset())
    assert out.attrs["note"] == "kept"
    assert "canny" in out.attrs["filters"][-1]
    ref = skf.canny(image, sigma=(1.0, 4.0), low_threshold=10, high_threshold=30)
    np.testing.assert_array_equal(out.values, ref)


_READS: list[tuple[int, ...]] = []


def _counted(block, block_info=None):
    if block_info is not None:
        _READS.append(tuple(block_info[0]["chunk-location"]))
    return block


def test_reads_each_chunk_three_times():
    """Bounded memory: the candidates are recomputed per pass, never held.

    (Chunks wide enough for the halo: Dask 2026.8's ``bind`` does not clone through
    the rechunk that merges narrow chunks, whose input chunks are then shared.)
    """
    image = _in_range(_synthetic(), "float32")
    lazy = da.from_array(image, chunks=(17, 25))
    counted = lazy.map_blocks(_counted, dtype=lazy.dtype, meta=np.empty((0, 0), lazy.dtype))
    _READS.clear()
    got = canny(counted).compute()
    np.testing.assert_array_equal(got, skf.canny(image))
    assert sorted(_READS) == sorted(list(np.ndindex(*lazy.numblocks)) * 3)


def test_graph_has_one_overlap_per_pass():
    lazy = da.from_array(_synthetic(), chunks=(17, 23))
    edges = canny(lazy)
    overlap_layers = [k for k in edges.dask.layers if k.startswith("overlap")]
    assert len(overlap_layers) == 3  # candidates: equivalences, kept ids, result


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(sigma=-1.0), ValueError, "sigma must be ≥ 0"),
        (dict(sigma=(1.0, float("nan"))), ValueError, "sigma must be ≥ 0"),
        (dict(low_threshold=30, high_threshold=10), ValueError, "must be ≤ high_threshold"),
        (dict(low_threshold=60), ValueError, "must be ≤ high_threshold"),
        (dict(use_quantiles=True, low_threshold=1.5), ValueError, r"must be in \[0, 1\]"),
        (dict(use_quantiles=True, high_threshold=-0.1), ValueError, r"must be in \[0, 1\]"),
        (dict(low_threshold=float("inf")), ValueError, "finite number"),
        (dict(mode="edge"), ValueError, "unknown mode 'edge'"),
        (dict(mode=("constant", "wrap")), ValueError, "one mode for all axes"),
        (dict(units="mm"), ValueError, "units must be 'pixel' or 'physical'"),
        (dict(mask=np.ones((3, 3), bool)), ValueError, "mask has shape"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    image = da.from_array(np.zeros((20, 20), np.uint8), chunks=10)
    with pytest.raises(error, match=match):
        canny(image, **kwargs)


@pytest.mark.parametrize(
    ("image", "match"),
    [
        (np.zeros(10), "2-D and 3-D images"),
        (np.zeros((2, 3, 4, 5)), "2-D and 3-D images"),
        (np.zeros((10, 10), np.int64), "int64 images"),
        (np.zeros((10, 10), np.uint64), "uint64 images"),
        (np.zeros((0, 10)), "empty"),
    ],
)
def test_bad_images(image, match):
    with pytest.raises(ValueError, match=match):
        canny(image)


def test_channels_rejected():
    img = make_image(np.zeros((2, 10, 12), np.uint8), ("c", "y", "x"))
    with pytest.raises(ValueError, match=r"select a channel first, e.g. image.isel\(c=0\)"):
        canny(img)


def test_numpy_image_with_dask_mask_rejected():
    image = np.zeros((20, 20), np.uint8)
    mask = da.ones((20, 20), dtype=bool, chunks=10)
    with pytest.raises(TypeError, match=r"pass a NumPy mask, or da.from_array\(image\)"):
        canny(image, mask=mask)


def test_non_numeric_rejected():
    with pytest.raises(TypeError, match="non-numeric"):
        canny(np.zeros((10, 10), "U2"))


def test_rechunk_false_raises():
    image = da.from_array(np.zeros((40, 40), np.uint8), chunks=(3, 20))
    with pytest.raises(ValueError, match="smaller than the halo"):
        canny(image, rechunk=False)
    # the default merges the narrow chunks instead
    assert canny(image).chunks[0] != (3,) * 13 + (1,)


def test_laziness_everywhere():
    image = da.from_array(_in_range(_synthetic(), "uint16"), chunks=(12, 13))
    mask = da.from_array(np.ones(image.shape, bool), chunks=(20, 20))
    with raise_if_dask_computes():
        canny(image, use_quantiles=True, mask=mask, mode="wrap")
        canny(image[None].repeat(4, axis=0).rechunk((2, 12, 13)), sigma=0.5)


def _scipy_kernel_radius(sigma: float) -> int:
    """SciPy's Gaussian kernel radius, read off the response to an impulse."""
    impulse = np.zeros(81)
    impulse[40] = 1
    response = ndi.gaussian_filter1d(impulse, sigma, mode="constant", truncate=4.0)
    return int(np.nonzero(response)[0].max() - 40)


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.4, 2.6])
def test_radius_helper(sigma):
    expected = _scipy_kernel_radius(sigma) + 2  # + Sobel + NMS neighbour
    assert _canny.canny_radius(sigma, 3) == (expected,) * 3
    assert _canny.canny_radius((0.0, sigma), 2) == (2, expected)
