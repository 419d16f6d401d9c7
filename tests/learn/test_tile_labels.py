import dask.array as da
import numpy as np
import pytest
import xarray as xr

from tilevision import Recipe, tile_features
from tilevision.learn import tile_labels
from tilevision.testing import raise_if_dask_computes


def hand_labels(labels: np.ndarray, tile: tuple[int, ...], rule: str) -> np.ndarray:
    """Independent reference: loop over tiles with bincount."""
    grid = tuple(-(-s // t) for s, t in zip(labels.shape, tile))
    out = np.zeros(grid, dtype=np.int64)
    for index in np.ndindex(*grid):
        view = labels[tuple(slice(i * t, (i + 1) * t) for i, t in zip(index, tile))].ravel()
        if rule == "any":
            out[index] = int((view != 0).sum() > 0)
        else:
            out[index] = int(np.bincount(view.astype(np.int64)).argmax())
    return out


@pytest.mark.parametrize(
    ("shape", "tile", "chunks"),
    [
        ((37, 50), 8, (10, 13)),
        ((16, 16), 16, -1),
        ((9, 20, 23), 4, (3, 7, 5)),
        ((12, 12, 12), (5, 6, 7), 1),
    ],
)
@pytest.mark.parametrize("rule", ["majority", "any"])
def test_tile_labels_match_hand_reference(shape, tile, chunks, rule):
    rng = np.random.default_rng(len(shape))
    labels = rng.choice([0, 0, 0, 1, 2, 5], size=shape).astype(np.uint8)
    tiles = tile_features(np.zeros(shape), Recipe(["intensity"], tile=tile))
    lazy = da.from_array(labels, chunks=chunks)
    with raise_if_dask_computes():
        result = tile_labels(lazy, tiles, rule)
    assert isinstance(result.data, da.Array)
    tile_shape = tuple(tiles.attrs["tile_shape"])
    np.testing.assert_array_equal(result.values, hand_labels(labels, tile_shape, rule))
    assert result.dims == tiles["valid"].dims
    for dim in result.dims:
        np.testing.assert_array_equal(result[dim].values, tiles[dim].values)


def test_majority_ties_go_to_smallest_label():
    labels = np.zeros((4, 4), dtype=np.int32)
    labels[:, 2:] = 7  # 8 zeros, 8 sevens
    labels[0, 0] = 3
    tiles = tile_features(np.zeros((4, 4)), Recipe(["intensity"], tile=4))
    assert tile_labels(labels, tiles).values.tolist() == [[7]]
    labels[0, 0] = 0
    assert tile_labels(labels, tiles).values.tolist() == [[0]]


def test_boolean_mask_and_dataarray():
    mask = np.zeros((8, 8), dtype=bool)
    mask[1, 6] = True
    tiles = tile_features(np.zeros((8, 8)), Recipe(["intensity"], tile=4))
    image = xr.DataArray(mask, dims=("y", "x"))
    assert tile_labels(image, tiles, "any").values.tolist() == [[0, 1], [0, 0]]
    assert tile_labels(mask, tiles, "majority").values.tolist() == [[0, 0], [0, 0]]


def test_bad_label_images():
    tiles = tile_features(np.zeros((8, 8)), Recipe(["intensity"], tile=4))
    with pytest.raises(ValueError, match=r"shape \(8, 9\).*same shape"):
        tile_labels(np.zeros((8, 9), dtype=np.uint8), tiles)
    with pytest.raises(ValueError, match=r"integer labels.*astype"):
        tile_labels(np.zeros((8, 8)), tiles)
    with pytest.raises(ValueError, match=r"unknown tile rule 'centre'.*majority"):
        tile_labels(np.zeros((8, 8), dtype=np.uint8), tiles, rule="centre")
