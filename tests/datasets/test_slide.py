import pickle
import time

import dask
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial import cKDTree
from skimage import data

from tilevision._image import image_geometry
from tilevision.datasets import _slide
from tilevision.datasets._slide import SLIDE_CLASSES, _cell_tables, texture_slide
from tilevision.testing import raise_if_dask_computes


def mirrored_reference(name, shape):
    """The skimage texture tiled over ``shape`` with mirroring, built with NumPy only."""
    t = getattr(data, name)()
    period = np.block([[t, t[:, ::-1]], [t[::-1, :], t[::-1, ::-1]]])
    reps = (-(-shape[0] // period.shape[0]), -(-shape[1] // period.shape[1]))
    return np.tile(period, reps)[: shape[0], : shape[1]]


def assert_matches_textures(image, regions, y0=0, x0=0):
    """Every pixel equals the mirrored texture of its region's class at its global index."""
    shape = (y0 + image.shape[0], x0 + image.shape[1])
    for k, name in enumerate(SLIDE_CLASSES):
        ref = mirrored_reference(name, shape)[y0:, x0:]
        mask = regions == k
        np.testing.assert_array_equal(image[mask], ref[mask])


def test_full_size_is_lazy_and_instant():
    with raise_if_dask_computes():
        start = time.perf_counter()
        img, reg = texture_slide(labels=True)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    for arr in (img, reg):
        assert arr.shape == (16384, 16384)
        assert arr.dims == ("y", "x")
        assert arr.dtype == np.uint8
        assert arr.chunks == ((1024,) * 16, (1024,) * 16)
        spacing, origin, units = image_geometry(arr)
        assert spacing == {"y": 0.5, "x": 0.5}
        assert origin == {"y": 0.0, "x": 0.0}
        assert units == {"y": "micrometer", "x": "micrometer"}
        assert arr.attrs["classes"] == ["brick", "grass", "gravel"]
    assert float(img.x[2]) == 1.0


def test_one_tile_of_a_huge_slide_is_computed_alone():
    img, reg = texture_slide((100_000, 100_000), labels=True)  # 10 GB, never computed
    part, part_reg = img.data[5500:5756, 9700:9956], reg.data[5500:5756, 9700:9956]
    (optimized,) = dask.optimize(part)
    graph = optimized.__dask_graph__()
    # One generator task (fused with the slicing) and one index range per axis.
    assert sum(str(k[0]).startswith("texture-slide-image") for k in graph) == 1
    assert len(graph) <= 2 + 2
    start = time.perf_counter()
    tile, tile_reg = dask.compute(part, part_reg, scheduler="sync")
    assert time.perf_counter() - start < 5
    assert_matches_textures(tile, tile_reg, 5500, 9700)
    # The same pixels as in a slide of another size and chunking, with the same seed.
    small = texture_slide((6000, 10000), chunks=(700, 3000))[5500:5756, 9700:9956]
    np.testing.assert_array_equal(tile, small.values)


@st.composite
def uneven_chunks(draw, n, max_blocks=5):
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=max_blocks - 1)) if n > 1 else set()
    edges = [0, *sorted(cuts), n]
    return tuple(int(d) for d in np.diff(edges))


@st.composite
def slide_cases(draw):
    shape = (draw(st.integers(1, 160)), draw(st.integers(1, 160)))
    # Small regions take the per-pixel strategy, large ones the per-cell one.
    size = draw(st.one_of(st.integers(16, 48), st.integers(128, 200)))
    return shape, tuple(draw(uneven_chunks(n)) for n in shape), size


@settings(max_examples=15, deadline=None)
@given(slide_cases(), st.integers(0, 2**40))
def test_chunking_does_not_change_pixels(case, seed):
    shape, chunks, region_size = case
    kw = {"shape": shape, "seed": seed, "region_size": region_size, "labels": True}
    img_a, reg_a = texture_slide(chunks=chunks, **kw)
    img_b, reg_b = texture_slide(chunks=-1, **kw)
    np.testing.assert_array_equal(img_a.values, img_b.values)
    np.testing.assert_array_equal(reg_a.values, reg_b.values)


def test_same_seed_same_data_other_seed_other_data():
    kw = {"shape": (300, 400), "region_size": 64, "chunks": 128}
    a, b, c = (texture_slide(seed=s, **kw) for s in (1, 1, 2))
    assert a.data.name == b.data.name != c.data.name
    np.testing.assert_array_equal(a.values, b.values)
    assert np.mean(a.values != c.values) > 0.3


@pytest.fixture(scope="module")
def moderate():
    img, reg = texture_slide((1536, 2048), seed=4, region_size=256, chunks=512, labels=True)
    return img.values, reg.values


def test_pixels_are_the_textures_of_their_regions(moderate):
    image, regions = moderate
    assert set(np.unique(regions)) == {0, 1, 2}
    for k in range(3):
        assert (regions == k).mean() > 0.1
    assert_matches_textures(image, regions)


def test_regions_are_the_voronoi_cells_of_the_seeds(moderate):
    _, regions = moderate
    size, seed = 256, 4
    rows, cols = np.arange(-1, 1536 // size + 1), np.arange(-1, 2048 // size + 1)
    oy, ox, cls = _cell_tables(rows, cols, seed, size)
    sy = (rows[:, None] * size + oy).ravel()
    sx = (cols[None, :] * size + ox).ravel()
    # Seeds stay inside the jitter window of their own cell.
    assert (oy >= 0.18 * size).all()
    assert (oy <= 0.82 * size).all()
    tree = cKDTree(np.column_stack([sy, sx]))
    yy, xx = np.mgrid[0:1536:3, 0:2048:3]
    dist, idx = tree.query(np.column_stack([yy.ravel(), xx.ravel()]), k=2)
    expected = cls.ravel()[idx[:, 0]]
    got = regions[::3, ::3].ravel()
    unambiguous = dist[:, 1] - dist[:, 0] > 1e-3
    assert unambiguous.mean() > 0.99
    np.testing.assert_array_equal(got[unambiguous], expected[unambiguous])
    # About one region per grid cell: mean region diameter is region_size.
    assert len(np.unique(idx[:, 0])) >= 0.9 * (1536 // size) * (2048 // size)


@pytest.mark.parametrize("size", [128, 200, 1000])
def test_both_voronoi_strategies_agree(size, monkeypatch):
    y, x = np.arange(777, 777 + 700), np.arange(1234, 1234 + 900)
    by_cell = _slide._regions(y, x, 5, size)
    monkeypatch.setattr(_slide, "_BY_CELL_MIN_SIZE", 10**9)
    by_pixel = _slide._regions(y, x, 5, size)
    np.testing.assert_array_equal(by_cell, by_pixel)


def test_pickling_for_distributed():
    img = texture_slide((64, 96), region_size=16, chunks=32)
    again = pickle.loads(pickle.dumps(img.data))
    np.testing.assert_array_equal(again.compute(), img.values)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (-1, 64)}, ValueError, "shape entries must be positive"),
        ({"shape": (8, 64, 64)}, ValueError, "shape must have 2 entries"),
        ({"shape": 64}, TypeError, "shape must be a tuple of 2 ints"),
        ({"region_size": 8}, ValueError, "region_size must be an int >= 16"),
        ({"region_size": 100.0}, ValueError, "region_size must be an int >= 16"),
        ({"spacing": 0}, ValueError, "spacing must be a positive pixel size"),
        ({"spacing": "big"}, ValueError, "spacing must be a positive pixel size"),
        ({"seed": -3}, ValueError, "seed must be a non-negative int"),
        ({"chunks": -5}, ValueError, "invalid chunks=-5 .* positive int"),
        ({"chunks": (16, 16, 16)}, ValueError, "3 entries for 2 axes"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    kw = {"shape": (64, 64), **kwargs}
    with pytest.raises(error, match=match):
        texture_slide(**kw)
