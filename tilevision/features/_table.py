"""Tile features as a table: one row per tile, one column per per-tile feature."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ._engine import TILE_DIMS

__all__ = ["tile_feature_names", "tile_table"]


def tile_feature_names(tiles: xr.Dataset) -> list[str]:
    """Per-tile feature variables of ``tiles`` (not statistics, not bookkeeping), in order.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, tile_features
    >>> tiles = tile_features(np.zeros((32, 32)), Recipe(["intensity"], tile=16))
    >>> tile_feature_names(tiles)[:3]
    ['intensity.count', 'intensity.mean', 'intensity.std']
    """
    return [
        str(n)
        for n, v in tiles.data_vars.items()
        if "." in str(n) and not str(n).startswith("_stat.") and v.dtype.kind == "f"
        and set(v.dims) <= set(TILE_DIMS)
    ]  # fmt: skip


def tile_table(tiles: xr.Dataset, names: Sequence[str]) -> tuple[Any, Any]:
    """``(n_tiles, n_features)`` table of ``names`` and the ``(n_tiles,)`` valid flags.

    Tiles are in C order of the tile grid (``tile_z``, ``tile_y``, ``tile_x``); lazy
    (Dask) when ``tiles`` is.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, tile_features
    >>> tiles = tile_features(np.ones((32, 48)), Recipe(["intensity"], tile=16))
    >>> table, valid = tile_table(tiles, ["intensity.mean"])
    >>> table.shape, bool(valid.all().compute())
    ((6, 1), True)
    """
    tdims = tuple(d for d in TILE_DIMS if d in tiles.dims)
    columns = [tiles[n].transpose(*tdims).data.reshape(-1) for n in names]
    table = da.stack(columns, axis=1) if isinstance(columns[0], da.Array) else np.stack(columns, 1)
    valid = tiles["valid"].transpose(*tdims).data.reshape(-1)
    return table, valid
