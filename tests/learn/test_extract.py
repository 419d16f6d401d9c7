import dask.array as da
import numpy as np
import pytest

from tilevision import Recipe, datasets, describe, tile_features
from tilevision.features._table import tile_feature_names
from tilevision.learn import _extract, descriptor_table, tile_rows
from tilevision.learn._extract import resolve_recipe
from tilevision.testing import raise_if_dask_computes

RECIPE = Recipe(["intensity", "histogram"], tile=8)


def images_2d(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((16 + 3 * i, 20)) * (i + 1) for i in range(n)]


def one_by_one(images, recipe):
    """Reference: every image described on its own."""
    return np.stack([describe(tile_features(im, recipe)).values for im in images])


@pytest.mark.parametrize("small_limit", [_extract.SMALL_IMAGE_BYTES, 0])
def test_descriptor_table_equals_one_by_one(monkeypatch, small_limit):
    monkeypatch.setattr(_extract, "SMALL_IMAGE_BYTES", small_limit)  # 0: graph path
    images = images_2d()
    lazy = [da.from_array(im, chunks=7) for im in images]
    table = descriptor_table(lazy, RECIPE, 2)
    # the reference sums whole images, the table sums 7-pixel chunks: equal to rounding
    np.testing.assert_allclose(table.X, one_by_one(images, RECIPE), rtol=1e-12, atol=1e-12)
    assert table.names == list(describe(tile_features(images[0], RECIPE)).feature.values)
    assert table.image_index.tolist() == [0, 1, 2, 3]


def test_descriptor_table_accepts_paths_and_precomputed_features():
    path = datasets.data_path("mr-lesions/breast1_image.nrrd")
    recipe = Recipe(["intensity"], tile=32)
    image = datasets.load_mr_lesion("breast1")[0]
    tiles = tile_features(image, recipe)
    table = descriptor_table([path, tiles, describe(tiles)], recipe, 3)
    reference = describe(tiles).values
    for row in table.X:
        np.testing.assert_array_equal(row, reference)


def test_descriptor_table_refuses_other_recipe():
    tiles = tile_features(images_2d(1)[0], Recipe(["intensity"], tile=4))
    with pytest.raises(ValueError, match=r"computed with recipe .* compute them again"):
        descriptor_table([tiles], RECIPE, 2)


@pytest.mark.parametrize("small_limit", [_extract.SMALL_IMAGE_BYTES, 0])
def test_tile_rows_are_the_valid_tiles(monkeypatch, small_limit):
    monkeypatch.setattr(_extract, "SMALL_IMAGE_BYTES", small_limit)
    images = images_2d(3)
    images[1][:8, :8] = 0  # one background tile under the mask rule
    recipe = Recipe(["intensity"], tile=8, mask="> 0")
    labels = [(im > 1).astype(np.uint8) for im in images]
    table = tile_rows(images, recipe, label_images=labels, rule="any")
    rows, index, ys = [], [], []
    for i, (im, lab) in enumerate(zip(images, labels)):
        tiles = tile_features(im, recipe).compute()
        names = tile_feature_names(tiles)
        valid = tiles["valid"].values.ravel()
        stacked = np.stack([tiles[n].values.ravel() for n in names], axis=1)
        rows.append(stacked[valid])
        index += [i] * int(valid.sum())
        grid = tiles["valid"].shape
        any_label = [
            int(lab[a * 8 : (a + 1) * 8, b * 8 : (b + 1) * 8].any()) for a, b in np.ndindex(grid)
        ]
        ys += list(np.asarray(any_label)[valid])
    np.testing.assert_array_equal(table.X, np.concatenate(rows))
    assert table.image_index.tolist() == index
    assert table.y.tolist() == ys
    assert table.names == names
    assert len(table.X) < sum(len(r) for r in rows) + 1


def test_tile_rows_from_precomputed_dataset():
    tiles = tile_features(images_2d(1)[0], RECIPE)
    table = tile_rows([tiles], RECIPE)
    assert table.X.shape == (int(tiles["valid"].sum()), len(tile_feature_names(tiles)))


def test_building_is_lazy_until_the_one_compute(monkeypatch):
    monkeypatch.setattr(_extract, "SMALL_IMAGE_BYTES", 0)
    images = [da.from_array(im, chunks=8) for im in images_2d(3)]
    with raise_if_dask_computes(max_computes=1) as counter:
        descriptor_table(images, RECIPE, 2)
    assert counter.total_computes == 1  # all images in one computation


def test_resolve_recipe_checks_dimensionality():
    assert resolve_recipe(None, [np.zeros((4, 4, 4))]) == (Recipe.default(3), 3)
    with pytest.raises(ValueError, match=r"mix \[2, 3\]-D"):
        resolve_recipe(None, [np.zeros((4, 4)), np.zeros((4, 4, 4))])
    with pytest.raises(ValueError, match="2-D or 3-D"):
        resolve_recipe(None, [np.zeros(4)])


def test_with_a_distributed_client():
    from distributed import Client, LocalCluster

    images = images_2d(3)
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        table = descriptor_table(images, RECIPE, 2, client=client)
        rows = tile_rows(images, RECIPE, client=client)
    np.testing.assert_allclose(table.X, one_by_one(images, RECIPE), rtol=1e-12)
    np.testing.assert_array_equal(rows.X, tile_rows(images, RECIPE).X)
