"""Tile labels from a label image: the majority label, or any positive voxel, per tile."""

from __future__ import annotations

from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from ..features._engine import TILE_DIMS

__all__ = ["TILE_RULES", "tile_labels"]

#: how a tile's label is read from a label image
TILE_RULES = ("majority", "any")

#: label-image chunks hold about this many voxels (whole tiles each)
_BLOCK_VOXELS = 2**24


def _tile_label(values: np.ndarray, rule: str) -> int:
    if rule == "any":
        return int(np.any(values != 0))
    ids, counts = np.unique(values, return_counts=True)
    return int(ids[np.argmax(counts)])  # ties: the smallest label


def _block_labels(block: np.ndarray, tile: tuple[int, ...], rule: str) -> np.ndarray:
    grid = tuple(-(-s // t) for s, t in zip(block.shape, tile))
    out = np.empty(grid, dtype=np.int64)
    for index in np.ndindex(*grid):
        view = block[tuple(slice(i * t, (i + 1) * t) for i, t in zip(index, tile))]
        out[index] = _tile_label(view, rule)
    return out


def _check_label_image(data: Any, image_shape: tuple[int, ...]) -> None:
    if tuple(data.shape) != image_shape:
        raise ValueError(
            f"the label image has shape {tuple(data.shape)} but the image has shape "
            f"{image_shape}; give a label image (mask) of the same shape as its image."
        )
    kind = np.dtype(data.dtype).kind
    if kind not in "biu":
        raise ValueError(
            f"a label image must hold integer labels (or booleans), got dtype {data.dtype}; "
            "convert it, e.g. mask.astype('uint8')."
        )


def tile_labels(
    label_image: Any, tiles: xr.Dataset, rule: Literal["majority", "any"] = "majority"
) -> xr.DataArray:
    """One label per tile of ``tiles``, read from a label image of the same shape (lazy).

    Parameters
    ----------
    label_image : array-like or xarray.DataArray
        Integer labels (an organ map, a lesion mask) on the image's pixel grid.
    tiles : xarray.Dataset
        Tile features of the image (:func:`tilevision.tile_features`): gives the grid.
    rule : {"majority", "any"}, optional
        ``"majority"``: the most frequent label in the tile (background 0 counts; ties
        go to the smallest label). ``"any"``: 1 when any pixel of the tile is non-zero
        (lesion present), else 0.

    Returns
    -------
    xarray.DataArray
        int64 over the tile dims, with the tiles' coords.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, tile_features
    >>> labels = np.zeros((32, 32), dtype=np.uint8)
    >>> labels[:16, :16], labels[20, 20] = 3, 1
    >>> tiles = tile_features(np.ones((32, 32)), Recipe(["intensity"], tile=16))
    >>> tile_labels(labels, tiles).values.tolist()
    [[3, 0], [0, 0]]
    >>> tile_labels(labels, tiles, rule="any").values.tolist()
    [[1, 0], [0, 1]]
    """
    if rule not in TILE_RULES:
        raise ValueError(f"unknown tile rule {rule!r}; choose one of {list(TILE_RULES)}.")
    data = label_image.data if isinstance(label_image, xr.DataArray) else label_image
    if isinstance(label_image, xr.DataArray) and "c" in label_image.dims:
        data = label_image.isel(c=0).data
    if not isinstance(data, da.Array):
        data = np.asarray(data)
    image_shape = tuple(int(s) for s in tiles.attrs["image_shape"])
    _check_label_image(data, image_shape)
    tile = tuple(int(t) for t in tiles.attrs["tile_shape"])
    tdims = tuple(d for d in TILE_DIMS if d in tiles.dims)
    data = data.astype(np.int64) if data.dtype == bool else data
    per_axis = max(1, round((_BLOCK_VOXELS / np.prod(tile)) ** (1 / len(tile))))
    blocks = tuple(min(s, t * per_axis) for s, t in zip(image_shape, tile))
    array = da.asarray(data).rechunk(blocks)
    grid_chunks = tuple(tuple(-(-b // t) for b in c) for c, t in zip(array.chunks, tile))
    labels = array.map_blocks(
        _block_labels, tile=tile, rule=rule, chunks=grid_chunks, dtype=np.int64
    )
    coords = {name: c for name, c in tiles.coords.items() if set(c.dims) <= set(tdims)}
    return xr.DataArray(labels, dims=tdims, coords=coords, name="tile_label")
