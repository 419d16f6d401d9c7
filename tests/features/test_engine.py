"""tile_features: the tile grid, per-tile values, halos, masks, laziness and errors."""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st

import tests.features.toy_families  # noqa: F401  (registers toy_* families)
import tilevision.features._engine as engine
from tilevision import Recipe, describe, tile_features
from tilevision._graph import reread_after
from tilevision._image import make_image
from tilevision.features import FeatureFamily, Statistic, register
from tilevision.features._engine import plan_tiles
from tilevision.filters import step
from tilevision.testing import raise_if_dask_computes

from ..test_graph import LiveChunks


def _tiles_of(shape: tuple[int, ...], tile: tuple[int, ...]):
    """(index, slices) of every tile in C order."""
    ranges = [range(0, n, t) for n, t in zip(shape, tile)]
    for starts in itertools.product(*ranges):
        index = tuple(s // t for s, t in zip(starts, tile))
        yield index, tuple(slice(s, min(s + t, n)) for s, t, n in zip(starts, tile, shape))


def _image(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(100, 20, shape).round(1)


@pytest.mark.parametrize(
    ("shape", "tile", "chunks"),
    [((40, 50), (16, 20), (7, 50)), ((41, 37), (10, 12), -1), ((9, 20, 22), (4, 8, 10), 5)],
)
def test_each_tile_is_measured_on_its_own_pixels(shape, tile, chunks) -> None:
    image = _image(shape)
    recipe = Recipe(["toy_moments", "toy_peak"], tile=tile)
    tiles = tile_features(da.from_array(image, chunks=chunks), recipe).compute()
    dims = ("tile_z", "tile_y", "tile_x")[-len(shape) :]
    assert tuple(tiles.sizes[d] for d in dims) == tuple(-(-n // t) for n, t in zip(shape, tile))
    for index, where in _tiles_of(shape, tile):
        part = image[where]
        at = dict(zip(dims, index))
        assert tiles["toy_moments.count"][at] == part.size
        np.testing.assert_allclose(tiles["toy_moments.mean"][at], part.mean(), rtol=1e-12)
        np.testing.assert_allclose(tiles["toy_moments.var"][at], part.var(), rtol=1e-9)
        assert tiles["toy_peak.max"][at] == part.max()
        assert tiles["toy_peak.argmax"][at] == np.argmax(part)
        after = where[0].stop
        expected = image[(slice(after, after + 1), *where[1:])].sum()
        np.testing.assert_allclose(tiles["toy_moments.neighbour_sum"][at], expected, rtol=1e-12)


def test_coords_are_tile_centres_in_physical_units() -> None:
    image = make_image(_image((30, 45)), ("y", "x"), spacing=(0.5, 2.0), origin=(10.0, -4.0))
    tiles = tile_features(image, Recipe(["toy_peak"], tile=(10, 20)))
    np.testing.assert_allclose(tiles.tile_y, 10.0 + 0.5 * np.array([4.5, 14.5, 24.5]))
    np.testing.assert_allclose(tiles.tile_x, -4.0 + 2.0 * np.array([9.5, 29.5, 42.0]))
    assert tiles.tile_x_start.values.tolist() == [0, 20, 40]
    assert tiles.tile_x_size.values.tolist() == [20, 20, 5]
    assert tiles.attrs["tile_shape"] == [10, 20]
    assert tiles.attrs["recipe_hash"] == Recipe(["toy_peak"], tile=(10, 20)).hash


def test_physical_tile_size() -> None:
    image = make_image(_image((8, 40, 40)), ("z", "y", "x"), spacing=(2.5, 0.5, 0.5))
    tiles = tile_features(image, Recipe(["toy_peak"], tile=10, tile_units="physical"))
    assert tiles.attrs["tile_shape"] == [4, 20, 20]
    assert dict(tiles.sizes) == {"tile_z": 2, "tile_y": 2, "tile_x": 2}


def test_preprocessing_runs_before_the_features() -> None:
    image = _image((40, 44))
    recipe = Recipe(["toy_peak"], preprocess=[step("gaussian", sigma=2.0)], tile=(13, 11))
    tiles = tile_features(da.from_array(image, chunks=9), recipe).compute()
    smoothed = ndi.gaussian_filter(image.astype(np.float64), 2.0, mode="nearest")
    for index, where in _tiles_of(image.shape, (13, 11)):
        assert tiles["toy_peak.max"][index].item() == smoothed[where].max()


def test_mask_rule_and_min_foreground() -> None:
    image = np.zeros((40, 40))
    image[:20, :20] = 1.0  # one quarter fully on
    image[20:, 20:30] = 1.0  # half of the lower-right tile on
    recipe = Recipe(["toy_moments", "toy_peak"], tile=20, mask="> 0.5", min_foreground=0.6)
    tiles = tile_features(image, recipe).compute()
    np.testing.assert_array_equal(tiles.foreground_fraction, [[1.0, 0.0], [0.0, 0.5]])
    np.testing.assert_array_equal(tiles.valid, [[True, False], [False, False]])
    assert tiles["toy_moments.count"][0, 0] == 400
    assert np.isnan(tiles["toy_peak.max"][1, 1])
    assert tiles["_stat.toy_moments.n"][1, 1] == 0  # skipped tiles merge as nothing
    assert tiles["_stat.toy_moments.lo"][1, 1] == np.inf


def test_explicit_mask_is_combined_with_the_rule() -> None:
    image = _image((30, 30))
    organ = np.zeros((30, 30), bool)
    organ[5:25, 5:25] = True
    tiles = tile_features(image, Recipe(["toy_moments"], tile=15, mask="> 100"), mask=organ)
    d = describe(tiles).compute()
    selected = image[organ & (image > 100)]
    assert d.sel(feature="toy_moments.count") == selected.size
    np.testing.assert_allclose(d.sel(feature="toy_moments.mean"), selected.mean(), rtol=1e-12)
    with pytest.raises(ValueError, match=r"mask has shape .* same pyramid level"):
        tile_features(image, Recipe(["toy_moments"], tile=15), mask=organ[:10])


def test_lazy_until_computed() -> None:
    image = da.from_array(_image((30, 40)), chunks=7)
    recipe = Recipe(["toy_moments", "toy_peak"], tile=12, mask="otsu", min_foreground=0.1)
    with raise_if_dask_computes():
        tiles = tile_features(image, recipe)
        descriptor = describe(tiles)
    assert np.isfinite(descriptor.compute().values).all()


def test_thin_last_tile_keeps_its_place_in_the_grid() -> None:
    image = _image((21, 30))
    recipe = Recipe([{"family": "toy_moments", "halo": 3}], tile=10)  # last tile: 1 pixel
    tiles = tile_features(image, recipe).compute()
    assert tiles.tile_y_size.values.tolist() == [10, 10, 1]
    assert tiles["toy_moments.count"].values[:, 0].tolist() == [100, 100, 10]
    np.testing.assert_allclose(tiles["toy_moments.mean"][2, 2], image[20:, 20:].mean())


def test_many_tiles_per_task() -> None:
    image = _image((64, 80))
    recipe = Recipe([{"family": "toy_moments", "halo": 2}, "toy_peak"], tile=8)
    coarse_image = da.from_array(image, chunks=(64, 40))
    plan = plan_tiles(coarse_image, recipe)
    assert plan.vector.numblocks[:2] == (1, 2)  # 8×5 tiles per task
    coarse = tile_features(coarse_image, recipe)
    assert coarse["toy_peak.max"].data.numblocks == (1, 1)  # the Dataset: in blocks of tasks
    fine = tile_features(da.from_array(image, chunks=8), recipe).compute()
    coarse = coarse.compute()
    for name in fine.data_vars:
        np.testing.assert_array_equal(coarse[name].values, fine[name].values, err_msg=name)


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"single-channel.*isel"):
        tile_features(make_image(np.zeros((3, 8, 8)), ("c", "y", "x")), Recipe(["toy_peak"]))
    with pytest.raises(ValueError, match="2-D or 3-D"):
        tile_features(np.zeros((2, 2, 2, 2)), Recipe(["toy_peak"]))
    with pytest.raises(ValueError, match="works on 2-D images, not 3-D"):
        tile_features(np.zeros((4, 4, 4)), Recipe(["toy_2d_only"]))
    with pytest.raises(ValueError, match=r"tile .* 3 sizes for a 2-D image"):
        tile_features(np.zeros((4, 4)), Recipe(["toy_peak"], tile=(2, 2, 2)))


def test_a_family_that_breaks_its_contract_is_named() -> None:
    @register("toy_liar", replace=True)
    class Liar(FeatureFamily):
        additive = True

        def features(self, ctx):
            return ["x"]

        def statistics(self, ctx):
            return {"h": Statistic((3,), "sum", ("bin",))}

        def measure(self, tile):
            return {"h": np.zeros(4)}

        def finalize(self, stats, ctx):
            return {"x": 0.0}

    with pytest.raises(ValueError, match="'toy_liar' measured 'h' with shape"):
        tile_features(np.zeros((8, 8)), Recipe(["toy_liar"], tile=4)).compute()


def test_feature_maps_plot(tmp_path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    tiles = tile_features(_image((40, 60)), Recipe(["toy_peak"], tile=10)).compute()
    artist = tiles["toy_peak.max"].plot()
    assert artist.axes.get_xlabel().startswith("tile_x")


@settings(max_examples=12, deadline=None)
@given(
    shape=st.lists(st.integers(4, 20), min_size=2, max_size=3).map(tuple),
    data=st.data(),
)
def test_property_tiles_and_descriptor_match_numpy(shape, data) -> None:
    tile = tuple(data.draw(st.integers(2, n)) for n in shape)
    chunks = tuple(data.draw(st.integers(1, n)) for n in shape)
    image = _image(shape, data.draw(st.integers(0, 100)))
    recipe = Recipe(["toy_moments", "toy_peak"], tile=tile)
    tiles = tile_features(da.from_array(image, chunks=chunks), recipe)
    sizes = tiles.attrs["tile_shape"]
    d = describe(tiles).compute()
    np.testing.assert_allclose(d.sel(feature="toy_moments.mean"), image.mean(), rtol=1e-12)
    np.testing.assert_allclose(d.sel(feature="toy_moments.var"), image.var(), rtol=1e-8)
    assert d.sel(feature="toy_moments.max") == image.max()
    counts = np.histogram(image, 4, range=(image.min(), image.max()))[0]
    got = [d.sel(feature=f"toy_moments.bin_{i}").item() for i in range(4)]
    np.testing.assert_array_equal(got, counts)
    computed = tiles.compute()
    starts = [computed[f"{t}_start"].values for t in ("tile_z", "tile_y", "tile_x")[-len(shape) :]]
    ends = [s + computed[f"{t}_size"].values for s, t in
            zip(starts, ("tile_z", "tile_y", "tile_x")[-len(shape) :])]  # fmt: skip
    assert all(e[-1] == n for e, n in zip(ends, shape))
    assert list(sizes) == list(tile)
    for index in itertools.product(*[range(len(s)) for s in starts]):
        where = tuple(slice(s[i], e[i]) for s, e, i in zip(starts, ends, index))
        assert computed["toy_peak.max"][index].item() == image[where].max()


# ------------------------------------------- the halo exchange: same values, bounded memory


def _dask_exchange(func, arrays, depth, *, chunks, dtype, meta, name, args=(), kwargs=None,
                   after=(), sweep=False):  # fmt: skip
    """The engine's exchange as it was: Dask's ``overlap`` on inputs re-read after the
    global values (every chunk shared by its neighbours' tasks)."""
    after = [a for a in after if dask.is_dask_collection(a)]
    overlapped = [
        da.overlap.overlap(
            reread_after(a, *after) if after else a,
            depth=dict(enumerate(depth)),
            boundary="none",
        )
        for a in arrays
    ]
    ndim = arrays[0].ndim
    return da.map_blocks(
        func, *overlapped, *args, chunks=chunks, dtype=dtype, meta=meta, name=f"{name}-dask",
        new_axis=list(range(ndim, len(chunks))), **(kwargs or {}),
    )  # fmt: skip


_KINDS = {
    "intensity": {"hu": True},  # global centre and grids
    "histogram": {"bins": 16},  # global range
    "gradient": {"canny": True},  # global Otsu threshold; Canny edges: a prepared map
    "texture": {"parts": ["glcm", "lbp"], "levels": 8},  # global range, a halo
    "objects": {},  # cross-tile labels: a map that cannot be read again block by block
}


@pytest.mark.parametrize(
    ("shape", "chunks", "tile", "mask", "families"),
    [
        ((12, 30, 33), (6, 10, 11), (6, 10, 11), "> 95", ["gradient", "intensity", "texture"]),
        ((60, 70), (25, 30), (20, 16), "otsu", ["histogram", "objects", "texture"]),
        ((30, 64), 16, 8, None, ["intensity", "histogram"]),
    ],
)
def test_results_equal_dasks_exchange(shape, chunks, tile, mask, families, monkeypatch) -> None:
    """Bit for bit the tiles of the former exchange (Dask's overlap of shared chunks)."""
    image = da.from_array(_image(shape, seed=3), chunks=chunks)
    recipe = Recipe({f: _KINDS[f] for f in families}, tile=tile, mask=mask, min_foreground=0.1)
    with raise_if_dask_computes():
        ours = tile_features(image, recipe)
    monkeypatch.setattr(engine, "map_overlap_read", _dask_exchange)
    theirs = tile_features(image, recipe)
    halo = {"gradient", "texture"} & set(families)  # families that read around their tiles
    exchange = any(k[0].startswith("overlap-tilevision") for k in ours.to_array().data.dask)
    assert exchange == bool(halo)
    xr.testing.assert_identical(ours.compute(), theirs.compute())


def test_tile_pass_holds_few_chunks(monkeypatch) -> None:
    """Computing tiles holds a few source chunks at a time, not a share of the image."""
    # the gradient's global pass is a filter chain: bounded as for a large image
    monkeypatch.setenv("TILEVISION_BOUNDED_EXCHANGE_BYTES", "0")
    counter = LiveChunks((32, 64, 64), 16)  # 32 chunks
    recipe = Recipe({"gradient": {"canny": False}, "intensity": {}}, tile=16, mask="> 40")
    got = describe(tile_features(counter.array, recipe)).compute(
        scheduler="threads", num_workers=2
    )
    assert counter.peak <= 4  # about one per thread: read, cut, measured, dropped
    # the former exchange, on the same image: many chunks held (the test can fail)
    counter.reset()
    monkeypatch.setattr(engine, "map_overlap_read", _dask_exchange)
    expected = describe(tile_features(counter.array, recipe)).compute(
        scheduler="threads", num_workers=2
    )
    assert counter.peak > 12
    xr.testing.assert_identical(got, expected)
