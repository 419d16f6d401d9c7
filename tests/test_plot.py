"""tilevision.plot: what is drawn equals the data, in physical units, computed lazily."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import tilevision as tv
from tilevision import plot
from tilevision._image import make_image
from tilevision.testing import raise_if_dask_computes


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class ReadLog:
    """An array-like that records which regions Dask reads from it."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array
        self.shape, self.dtype, self.ndim = array.shape, array.dtype, array.ndim
        self.reads: list[tuple[slice, ...]] = []

    def __getitem__(self, key):
        self.reads.append(key)
        return self.array[key]

    def first_axis_read(self) -> set[int]:
        """Indices along the first axis of every region read."""
        read = set()
        for key in self.reads:
            first = key[0] if isinstance(key, tuple) else key
            if isinstance(first, slice):
                read.update(range(*first.indices(self.shape[0])))
            else:
                read.update(np.arange(self.shape[0])[first].ravel().tolist())
        return read


def _volume(shape=(9, 20, 24), spacing=(3.0, 1.0, 0.5), origin=(-10.0, 5.0, 100.0), chunks=None):
    data = np.random.default_rng(0).normal(size=shape).astype("float32")
    img = make_image(data, ("z", "y", "x"), spacing=spacing, origin=origin, units="millimeter")
    return (img.chunk(dict(zip(img.dims, chunks))) if chunks else img), data


def _edges(image: xr.DataArray, dim: str, start, size) -> np.ndarray:
    """Tile boundaries from the image's pixel coordinates (outer pixel edges)."""
    coord = image.coords[dim].values
    half = image.attrs["spacing"][dim] / 2
    last = start[-1] + size[-1] - 1
    return np.append(coord[start] - half, coord[last] + half)


def _pixel_extent(image: xr.DataArray, dim: str) -> tuple[float, float]:
    coord = image.coords[dim].values
    half = (coord[1] - coord[0]) / 2
    return coord[0] - half, coord[-1] + half


# ---------------------------------------------------------------- thumbnail


def test_thumbnail_2d_draws_the_data_with_physical_extent():
    data = np.arange(30 * 40, dtype="uint16").reshape(30, 40)
    img = make_image(data, ("y", "x"), spacing=(0.25, 0.5), origin=(2, -3), units="micrometer")
    ax = plot.thumbnail(img)
    shown = ax.images[0]
    np.testing.assert_array_equal(shown.get_array(), data)
    # origin upper: (left, right, bottom, top) = x edges, then y's last edge, first edge
    assert shown.get_extent() == pytest.approx(
        [-3.25, -3 + 39 * 0.5 + 0.25, 2 + 29 * 0.25 + 0.125, 1.875]
    )
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (µm)", "y (µm)")


def test_thumbnail_3d_middle_or_chosen_slice_and_title():
    img, data = _volume()
    ax = plot.thumbnail(img)
    np.testing.assert_array_equal(ax.images[0].get_array(), data[4])
    assert ax.get_title() == f"z = {-10 + 4 * 3:g} mm"
    ax = plot.thumbnail(img, z=7)
    np.testing.assert_array_equal(ax.images[0].get_array(), data[7])
    left, right, bottom, top = ax.images[0].get_extent()
    assert (left, right) == pytest.approx(_pixel_extent(img, "x"))
    assert (top, bottom) == pytest.approx(_pixel_extent(img, "y"))


def test_thumbnail_reads_only_the_shown_slice():
    _, data = _volume()
    log = ReadLog(data)
    img = make_image(da.from_array(log, chunks=(1, 10, 12)), ("z", "y", "x"), spacing=(3, 1, 1))
    with raise_if_dask_computes(max_computes=1) as counter:
        ax = plot.thumbnail(img, z=6)
    assert counter.total_computes == 1
    np.testing.assert_array_equal(ax.images[0].get_array(), data[6])
    assert log.reads
    assert log.first_axis_read() == {6}


def test_thumbnail_window_center_width_and_names():
    img, _ = _volume()
    assert plot.thumbnail(img, window=(40, 400)).images[0].get_clim() == (-160, 240)
    assert plot.thumbnail(img, window="lung").images[0].get_clim() == (-1350, 150)
    data = img.isel(z=4).values
    assert plot.thumbnail(img).images[0].get_clim() == (data.min(), data.max())


@pytest.mark.parametrize(
    ("window", "match"),
    [((40, -1), "positive width"), ((1, 2, 3), "center, width"), ("lungs", "named windows")],
)
def test_thumbnail_bad_window(window, match):
    with pytest.raises(ValueError, match=match):
        plot.thumbnail(_volume()[0], window=window)


@pytest.fixture(scope="module")
def pyramid(tmp_path_factory):
    data = np.random.default_rng(1).integers(0, 255, (1100, 1300), dtype="uint8")
    path = tmp_path_factory.mktemp("plot") / "slide.zarr"
    tv.ingest(data, path, chunks=256, spacing=0.5, units="micrometer")
    return path


def test_thumbnail_of_a_path_opens_the_coarsest_level_at_least_512_wide(pyramid):
    levels = [lvl["shape"] for lvl in tv.io.info(pyramid)["levels"]]
    assert levels[1] == {"y": 550, "x": 650}
    assert max(levels[2].values()) < 512
    level1 = tv.open(pyramid, level=1)
    with raise_if_dask_computes(max_computes=1):
        ax = plot.thumbnail(pyramid)
    np.testing.assert_array_equal(ax.images[0].get_array(), level1.values)
    left, right, _bottom, _top = ax.images[0].get_extent()
    assert (left, right) == pytest.approx(_pixel_extent(level1, "x"))
    assert ax.get_xlabel() == "x (µm)"
    # an explicit level, from the path or from the opened image
    level2 = tv.open(pyramid, level=2).values
    np.testing.assert_array_equal(plot.thumbnail(pyramid, level=2).images[0].get_array(), level2)
    full = tv.open(pyramid)
    shown = plot.thumbnail(full, level=2).images[0].get_array()
    np.testing.assert_array_equal(shown, level2)
    shown = plot.thumbnail(full, level="auto").images[0].get_array()
    np.testing.assert_array_equal(shown, level1.values)


def test_thumbnail_small_store_uses_full_resolution(tmp_path):
    data = np.arange(300 * 200, dtype="uint16").reshape(300, 200)
    path = tv.ingest(data, tmp_path / "small.zarr", chunks=128)
    np.testing.assert_array_equal(plot.thumbnail(path).images[0].get_array(), data)


def test_thumbnail_level_needs_a_store():
    img, _ = _volume()
    with pytest.raises(ValueError, match="no 'path' attr"):
        plot.thumbnail(img, level=1)
    with pytest.raises(ValueError, match="plain array has none"):
        plot.thumbnail(np.zeros((4, 4)), level=1)


def test_thumbnail_channels():
    data = np.random.default_rng(2).random((3, 8, 9))
    img = make_image(data, ("c", "y", "x"), channel_names=["r", "g", "b"])
    with pytest.raises(ValueError, match=r"3 channels.*image.isel\(c=0\).*sel\(c='r'\)"):
        plot.thumbnail(img)
    with pytest.raises(ValueError, match="2 channels"):
        plot.thumbnail(np.zeros((2, 3, 8, 9)))  # 4-D: (c, z, y, x)
    np.testing.assert_array_equal(plot.thumbnail(img.sel(c="g")).images[0].get_array(), data[1])
    one = make_image(data[:1], ("c", "y", "x"))
    np.testing.assert_array_equal(plot.thumbnail(one).images[0].get_array(), data[0])


@pytest.mark.parametrize(
    ("z", "match"),
    [(9, r"z=9 is out of range: there are 9 slices, 0 to 8"), (-1, "out of range"),
     (4.0, "must be a slice index")],
)  # fmt: skip
def test_thumbnail_bad_z(z, match):
    with pytest.raises(ValueError, match=match):
        plot.thumbnail(_volume()[0], z=z)


def test_thumbnail_bad_inputs():
    with pytest.raises(ValueError, match="this image is 2-D"):
        plot.thumbnail(np.zeros((4, 5)), z=1)
    with pytest.raises(ValueError, match="dims among"):
        plot.thumbnail(xr.DataArray(np.zeros((4, 5)), dims=("row", "col")))
    with pytest.raises(TypeError, match="cannot plot a list"):
        plot.thumbnail([[1, 2], [3, 4]])


# ---------------------------------------------------------------- heatmap


@pytest.fixture(scope="module")
def slide():
    """A 2-D image with anisotropic spacing and a foreground mask that leaves NaN tiles."""
    rng = np.random.default_rng(3)
    data = rng.random((45, 62))
    data[:15, :20] = 0.0  # background: the first tile is not valid
    img = make_image(data, ("y", "x"), spacing=(0.5, 0.25), origin=(10, -4), units="millimeter")
    tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=(15, 20), mask="> 0.1"))
    return img, tiles.compute()


def test_heatmap_cells_and_edges_match_the_tiles(slide):
    img, tiles = slide
    values = tiles["intensity.mean"]
    ax = plot.heatmap(values, img)
    mesh = ax.collections[0]
    expected = values.values
    assert np.isnan(expected[0, 0])
    shown = mesh.get_array()
    assert shown.mask[0, 0]
    assert shown.mask.sum() == np.isnan(expected).sum()
    np.testing.assert_array_equal(shown.filled(np.nan), expected)
    vertices = mesh.get_coordinates()  # (n_y + 1, n_x + 1, 2)
    x_edges = _edges(img, "x", tiles.tile_x_start.values, tiles.tile_x_size.values)
    y_edges = _edges(img, "y", tiles.tile_y_start.values, tiles.tile_y_size.values)
    np.testing.assert_allclose(vertices[0, :, 0], x_edges)
    np.testing.assert_allclose(vertices[:, 0, 1], y_edges)
    # the outer tile edges are the image's outer pixel edges
    assert (x_edges[0], x_edges[-1]) == pytest.approx(_pixel_extent(img, "x"))
    np.testing.assert_array_equal(ax.images[0].get_array(), img.values)
    assert mesh.get_alpha() == 0.5
    assert mesh.colorbar is not None
    assert mesh.colorbar.ax.get_ylabel() == "intensity.mean"
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("x (mm)", "y (mm)")


def test_heatmap_without_image_is_opaque_with_y_downwards(slide):
    img, tiles = slide
    ax = plot.heatmap(tiles["intensity.max"], label="max", cmap="viridis", vmin=0, vmax=2)
    mesh = ax.collections[0]
    assert not ax.images
    assert mesh.get_alpha() == 1.0
    assert mesh.get_clim() == (0, 2)
    assert mesh.colorbar.ax.get_ylabel() == "max"
    top, bottom = _pixel_extent(img, "y")
    assert ax.get_ylim() == pytest.approx((bottom, top))  # inverted: y grows downwards


def test_heatmap_single_tile_row_assumes_square_pixels():
    img = make_image(np.ones((10, 12)), ("y", "x"), spacing=0.5, units="millimeter")
    tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=(10, 5)))
    mesh = plot.heatmap(tiles["intensity.mean"]).collections[0]
    np.testing.assert_allclose(mesh.get_coordinates()[:, 0, 1], [-0.25, 4.75])
    np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], [-0.25, 2.25, 4.75, 5.75])


def test_heatmap_3d_slab_and_matching_image_slice():
    img, data = _volume(shape=(15, 20, 24))
    tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=(5, 10, 8))).compute()
    values = tiles["intensity.std"]
    for z, slab in ((None, 1), (2, 2)):
        ax = plot.heatmap(values, img, z=z)
        np.testing.assert_array_equal(ax.collections[0].get_array(), values.values[slab])
        # the slab holds slices 5 * slab to 5 * slab + 4; its centre slice is drawn below
        np.testing.assert_array_equal(ax.images[0].get_array(), data[5 * slab + 2])
        assert ax.get_title() == f"z = {-10 + 3 * (5 * slab + 2):g} mm"
    # a slab chosen with isel keeps its position
    ax = plot.heatmap(values.isel(tile_z=0), img)
    np.testing.assert_array_equal(ax.images[0].get_array(), data[2])


def test_heatmap_class_probabilities_select_one_class(slide):
    _, tiles = slide
    p = tiles["intensity.mean"].clip(0, 1)
    proba = xr.concat([1 - p, p], dim="class").assign_coords({"class": [0, 1]})
    proba = proba.transpose(..., "class").rename("tile_probability")
    with pytest.raises(ValueError, match=r"dim\(s\) \['class'\].*values.sel\(\{'class': 0\}\)"):
        plot.heatmap(proba)
    ax = plot.heatmap(proba.sel({"class": 1}))
    np.testing.assert_array_equal(ax.collections[0].get_array().filled(np.nan), p.values)
    assert ax.collections[0].colorbar.ax.get_ylabel() == "tile_probability (class=1)"


def test_heatmap_computes_once():
    img, data = _volume(shape=(15, 20, 24), chunks=(5, 10, 12))
    tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=(5, 10, 8)))
    expected = tiles["intensity.mean"].values
    with raise_if_dask_computes(max_computes=1) as counter:
        ax = plot.heatmap(tiles["intensity.mean"], img)
    assert counter.total_computes == 1
    np.testing.assert_allclose(ax.collections[0].get_array(), expected[1])
    np.testing.assert_array_equal(ax.images[0].get_array(), data[7])


def test_heatmap_over_a_pyramid_thumbnail(pyramid):
    full = tv.open(pyramid)
    tiles = tv.tile_features(full, tv.Recipe(["intensity"], tile=300))
    with raise_if_dask_computes(max_computes=1):
        ax = plot.heatmap(tiles["intensity.mean"], pyramid)
    level1 = tv.open(pyramid, level=1)
    np.testing.assert_array_equal(ax.images[0].get_array(), level1.values)
    vertices = ax.collections[0].get_coordinates()
    x_edges = _edges(full, "x", tiles.tile_x_start.values, tiles.tile_x_size.values)
    np.testing.assert_allclose(vertices[0, :, 0], x_edges)
    # the level-1 thumbnail covers the same physical field as the tiles, to a pixel
    left, right, _, _ = ax.images[0].get_extent()
    assert (left, right) == pytest.approx((x_edges[0], x_edges[-1]), abs=1.0)


def test_heatmap_errors(slide):
    img, tiles = slide
    vol, _ = _volume(shape=(15, 20, 24))
    tiles3 = tv.tile_features(vol, tv.Recipe(["intensity"], tile=(5, 10, 8)))
    with pytest.raises(ValueError, match=r"dims \('tile_y', 'tile_x'\).*got dims \('y', 'x'\)"):
        plot.heatmap(img)
    with pytest.raises(TypeError, match=r"not a Dataset.*feature_maps"):
        plot.heatmap(tiles)
    with pytest.raises(TypeError, match="per-tile DataArray"):
        plot.heatmap(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="z=3 is out of range: there are 3 slices"):
        plot.heatmap(tiles3["intensity.mean"], z=3)
    with pytest.raises(ValueError, match="2-D tile grid"):
        plot.heatmap(tiles["intensity.mean"], z=0)
    with pytest.raises(ValueError, match="the image is 2-D"):
        plot.heatmap(tiles3["intensity.mean"], img)
    with pytest.raises(ValueError, match="the image is 3-D"):
        plot.heatmap(tiles["intensity.mean"], vol)


# ---------------------------------------------------------------- feature maps


def test_feature_maps_panels_titles_colour_bars(slide):
    img, tiles = slide
    names = ["intensity.mean", "intensity.std", "foreground_fraction"]
    with raise_if_dask_computes(max_computes=0):
        fig = plot.feature_maps(tiles, names, image=img, ncols=2)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 4
    assert len(fig.axes) == 4 + 3
    np.testing.assert_array_equal(panels[0].images[0].get_array(), img.values)
    invalid = ~tiles["valid"].values
    assert invalid.any()
    for ax, name in zip(panels[1:], names):
        mesh = ax.collections[0]
        assert ax.get_title() == name
        assert mesh.colorbar.ax.get_ylabel() == name
        shown = mesh.get_array()
        np.testing.assert_array_equal(shown.mask, invalid | np.isnan(tiles[name].values))
        np.testing.assert_array_equal(shown[~shown.mask], tiles[name].values[~shown.mask])
    assert panels[1].get_subplotspec().get_geometry()[:2] == (2, 2)


def test_feature_maps_3d_lazy_tiles_compute_once():
    img, _ = _volume(shape=(15, 20, 24), chunks=(5, 10, 12))
    tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=(5, 10, 8)))
    expected = tiles.compute()
    with raise_if_dask_computes(max_computes=1) as counter:
        fig = plot.feature_maps(tiles, "intensity.mean", z=2)
    assert counter.total_computes == 1
    assert len(fig.axes) == 2
    np.testing.assert_allclose(
        fig.axes[0].collections[0].get_array(), expected["intensity.mean"].values[2]
    )
    assert fig.get_suptitle() == f"tiles through z = {-10 + 3 * 12:g} mm"


def test_feature_maps_errors(slide):
    _, tiles = slide
    with pytest.raises(ValueError, match=r"no feature\(s\) \['texture.glcm'\].*'intensity.mean'"):
        plot.feature_maps(tiles, ["intensity.mean", "texture.glcm"])
    with pytest.raises(ValueError, match="names is empty"):
        plot.feature_maps(tiles, [])
    with pytest.raises(ValueError, match="ncols must be a positive int"):
        plot.feature_maps(tiles, "intensity.mean", ncols=0)
    with pytest.raises(TypeError, match="needs the Dataset"):
        plot.feature_maps(tiles["intensity.mean"], "intensity.mean")


# ---------------------------------------------------------------- orthogonal slices


def test_orthogonal_slices_planes_extents_and_overlay():
    img, data = _volume(chunks=(3, 10, 12))
    labels = np.zeros(data.shape, "uint8")
    labels[2:7, 5:15, 6:20] = 3
    labels[4, 8, 10] = 5
    with raise_if_dask_computes(max_computes=1):
        fig = plot.orthogonal_slices(img, point=(4, 8, 10), overlay=labels, window=(0, 2))
    axial, coronal, sagittal = fig.axes
    cases = [
        (axial, data[4], labels[4], ("x", "y"), "upper"),
        (coronal, data[:, 8], labels[:, 8], ("x", "z"), "lower"),
        (sagittal, data[:, :, 10], labels[:, :, 10], ("y", "z"), "lower"),
    ]
    for ax, plane, overlay, (cols, rows), origin in cases:
        image, over = ax.images
        np.testing.assert_array_equal(image.get_array(), plane)
        assert image.get_clim() == (-1, 1)
        assert image.origin == origin
        left, right, bottom, top = image.get_extent()
        low, high = (top, bottom) if origin == "upper" else (bottom, top)
        assert (left, right) == pytest.approx(_pixel_extent(img, cols))
        assert (low, high) == pytest.approx(_pixel_extent(img, rows))
        assert ax.get_xlabel() == f"{cols} (mm)"
        assert ax.get_ylabel() == f"{rows} (mm)"
        shown = over.get_array()
        np.testing.assert_array_equal(shown.mask, overlay == 0)
        np.testing.assert_array_equal(shown.filled(0), overlay)
        assert over.get_clim() == (3, 5)
        assert over.get_alpha() == 0.4
    assert [ax.get_title() for ax in fig.axes] == [
        "axial, z = 2 mm", "coronal, y = 13 mm", "sagittal, x = 105 mm"
    ]  # fmt: skip


def test_orthogonal_slices_default_centre_and_float_overlay():
    img, data = _volume()
    prob = np.where(data > 0, data, np.nan)
    fig = plot.orthogonal_slices(img, overlay=xr.DataArray(prob, dims=("z", "y", "x")))
    np.testing.assert_array_equal(fig.axes[0].images[0].get_array(), data[4])
    np.testing.assert_array_equal(fig.axes[2].images[0].get_array(), data[:, :, 12])
    shown = fig.axes[1].images[1].get_array()
    np.testing.assert_array_equal(shown.mask, np.isnan(prob[:, 10]))


def test_orthogonal_slices_errors():
    img, data = _volume()
    with pytest.raises(ValueError, match=r"needs a 3-D volume.*thumbnail"):
        plot.orthogonal_slices(img.isel(z=0))
    with pytest.raises(ValueError, match=r"y=20 is out of range: there are 20 slices"):
        plot.orthogonal_slices(img, point=(0, 20, 0))
    with pytest.raises(ValueError, match=r"\(z, y, x\) tuple.*point=\(4, 10, 12\)"):
        plot.orthogonal_slices(img, point=(1, 2))
    with pytest.raises(ValueError, match=r"overlay's shape \(9, 20, 20\) differs"):
        plot.orthogonal_slices(img, overlay=np.zeros((9, 20, 20)))
    with pytest.raises(ValueError, match="overlay has dims"):
        plot.orthogonal_slices(img, overlay=xr.DataArray(data, dims=("a", "b", "c")))


# ---------------------------------------------------------------- real data


def test_real_ct_heatmap_and_slices():
    ct, organs, _ = tv.datasets.load_ct_organs()
    tiles = tv.tile_features(
        ct, tv.Recipe(["intensity"], tile=10, mask="HU > -500", min_foreground=0.5)
    ).compute()
    values = tiles["intensity.mean"]
    ax = plot.heatmap(values, ct, window="soft_tissue", label="mean HU", z=2)
    mesh = ax.collections[0]
    np.testing.assert_array_equal(mesh.get_array().filled(np.nan), values.values[2])
    assert mesh.get_array().mask.any()
    assert not mesh.get_array().mask.all()
    x_edges = _edges(ct, "x", tiles.tile_x_start.values, tiles.tile_x_size.values)
    np.testing.assert_allclose(mesh.get_coordinates()[0, :, 0], x_edges)
    np.testing.assert_array_equal(ax.images[0].get_array(), ct.values[24])  # slab 20-29
    assert ax.images[0].get_clim() == (-160, 240)
    assert (ax.get_xlabel(), mesh.colorbar.ax.get_ylabel()) == ("x (mm)", "mean HU")
    fig = plot.orthogonal_slices(ct, overlay=organs, window="soft_tissue")
    np.testing.assert_array_equal(fig.axes[1].images[0].get_array(), ct.values[:, 50])
    np.testing.assert_array_equal(
        fig.axes[1].images[1].get_array().filled(0), organs.values[:, 50]
    )
