"""``heatmap`` and ``feature_maps``: per-tile values drawn as tiles in physical units."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

from ..features._table import tile_feature_names
from ._common import (
    axis_label,
    compute,
    load_image,
    new_axes,
    position_title,
    slice_index,
    window_limits,
)
from ._thumbnail import draw_plane, image_plane

__all__ = ["feature_maps", "heatmap", "tile_edges"]

TILE_DIMS = ("tile_z", "tile_y", "tile_x")


def _tile_values(values: Any) -> xr.DataArray:
    if isinstance(values, xr.Dataset):
        raise TypeError(
            "heatmap draws one per-tile variable, not a Dataset: pass e.g. "
            f"tiles[{(tile_feature_names(values) or ['valid'])[0]!r}], or use "
            "tilevision.plot.feature_maps(tiles, names) for several."
        )
    if not isinstance(values, xr.DataArray):
        raise TypeError(
            f"heatmap needs a per-tile DataArray (from tilevision.tile_features or "
            f"Model.predict_tiles), got a {type(values).__name__}."
        )
    if "tile_y" not in values.dims or "tile_x" not in values.dims:
        raise ValueError(
            f"heatmap needs per-tile values with dims ('tile_y', 'tile_x') or ('tile_z', "
            f"'tile_y', 'tile_x'), as made by tilevision.tile_features (tiles[name]) or "
            f"Model.predict_tiles; got dims {values.dims}. For a whole image use "
            "tilevision.plot.thumbnail."
        )
    extra = [d for d in values.dims if d not in TILE_DIMS]
    if extra:
        dim = extra[0]
        first = values.coords[dim].values[0].item() if dim in values.coords else 0
        how = f"values.sel({{{dim!r}: {first!r}}})" if dim in values.coords else \
            f"values.isel({{{dim!r}: 0}})"  # fmt: skip
        raise ValueError(
            f"the values have dim(s) {extra} besides the tile grid; a heatmap shows one value "
            f"per tile: select one first, e.g. {how}."
        )
    return values


def _tile_slab(values: xr.DataArray, z: int | None) -> xr.DataArray:
    """The lazy ``(tile_y, tile_x)`` grid shown: tile slab ``z`` (default middle) of 3-D values."""
    if "tile_z" in values.dims:
        values = values.isel(tile_z=slice_index(values.sizes["tile_z"], z, "z"))
    elif z is not None:
        raise ValueError(
            f"z={z!r} selects a tile slab of 3-D values, but these values are a 2-D tile "
            f"grid (dims {values.dims}); leave z=None."
        )
    return values.transpose("tile_y", "tile_x")


def _pixel_spacing(grid: xr.DataArray, tdim: str) -> float | None:
    """Pixel size along ``tdim`` from the tile centres and their pixel starts/sizes."""
    names = (f"{tdim}_start", f"{tdim}_size")
    if grid.sizes[tdim] < 2 or any(n not in grid.coords for n in names):
        return None
    centres = np.asarray(grid.coords[tdim].values, dtype=np.float64)
    start, size = (np.asarray(grid.coords[n].values, dtype=np.float64) for n in names)
    pixel = start + (size - 1) / 2
    return float((centres[-1] - centres[0]) / (pixel[-1] - pixel[0]))


def tile_edges(grid: xr.DataArray) -> dict[str, np.ndarray]:
    """Physical positions of the tile boundaries along ``tile_y`` and ``tile_x``.

    Tile ``i`` covers the pixels ``start[i]`` to ``start[i] + size[i] - 1``; its edges
    are those pixels' outer edges, found from the tile centres (coords) and the pixel
    starts and sizes (``<dim>_start``, ``<dim>_size``). A grid one tile wide along an
    axis assumes square pixels; without start/size coords, tiles are taken as uniform.

    Examples
    --------
    >>> import numpy as np, tilevision as tv
    >>> img = np.zeros((10, 12))
    >>> tiles = tv.tile_features(img, tv.Recipe(["intensity"], tile=5))
    >>> tile_edges(tiles["intensity.mean"])["tile_x"]
    array([-0.5,  4.5,  9.5, 11.5])
    """
    spacing = {t: _pixel_spacing(grid, t) for t in ("tile_y", "tile_x")}
    known = [s for s in spacing.values() if s is not None]
    edges = {}
    for tdim, s in spacing.items():
        pixel = s if s is not None else (known[0] if known else 1.0)
        centres = np.asarray(grid.coords[tdim].values, dtype=np.float64)
        if f"{tdim}_start" in grid.coords and f"{tdim}_size" in grid.coords:
            start = np.asarray(grid.coords[f"{tdim}_start"].values, dtype=np.float64)
            size = np.asarray(grid.coords[f"{tdim}_size"].values, dtype=np.float64)
            origin = float(np.mean(centres - pixel * (start + (size - 1) / 2)))
            bounds = np.append(start, start[-1] + size[-1]) - 0.5
            edges[tdim] = origin + pixel * bounds
        elif centres.size > 1:
            mids = (centres[1:] + centres[:-1]) / 2
            edges[tdim] = np.concatenate(
                [[2 * centres[0] - mids[0]], mids, [2 * centres[-1] - mids[-1]]]
            )
        else:
            edges[tdim] = centres[0] + np.array([-0.5, 0.5]) * pixel
    return edges


def _draw_tiles(
    ax: Axes,
    values: np.ndarray,
    grid: xr.DataArray,
    *,
    cmap: Any,
    alpha: float,
    vmin: float | None,
    vmax: float | None,
    label: str | None,
) -> QuadMesh:
    edges = tile_edges(grid)
    shown = np.ma.masked_invalid(np.asarray(values, dtype=np.float64))
    mesh = ax.pcolormesh(
        edges["tile_x"], edges["tile_y"], shown, cmap=cmap, alpha=alpha, vmin=vmin, vmax=vmax,
        shading="flat",
    )  # fmt: skip
    ax.set_xlim(edges["tile_x"][0], edges["tile_x"][-1])
    ax.set_ylim(edges["tile_y"][-1], edges["tile_y"][0])  # y grows downwards, as in the image
    ax.set_aspect("equal")
    for tdim, set_label in (("tile_x", ax.set_xlabel), ("tile_y", ax.set_ylabel)):
        set_label(axis_label(tdim, grid.coords[tdim].attrs.get("units") or None))
    ax.figure.colorbar(mesh, ax=ax, label=label)
    return mesh


def _default_label(values: xr.DataArray) -> str | None:
    label = None if values.name is None else str(values.name)
    scalars = [f"{n}={values.coords[n].item()}" for n in values.coords
               if values.coords[n].ndim == 0 and n not in TILE_DIMS]  # fmt: skip
    if scalars:
        label = f"{label or ''} ({', '.join(scalars)})".strip()
    return label


def _matching_plane(image: xr.DataArray, grid: xr.DataArray) -> xr.DataArray:
    """The image plane through the tile slab ``grid`` (the slice nearest its centre)."""
    slab_z = "tile_z" in grid.coords and grid.coords["tile_z"].ndim == 0
    if "z" in image.dims and not slab_z:
        raise ValueError(
            "the image is 3-D but the values are a 2-D tile grid without a tile_z position; "
            "pass the values with their tile_z dim (and z= to pick the slab), or a 2-D image."
        )
    if "z" not in image.dims:
        if slab_z:
            raise ValueError(
                "the values are tiles of a 3-D volume but the image is 2-D; pass the volume "
                "(or its OME-Zarr path) as image."
            )
        return image_plane(image, None)
    position = float(grid.coords["tile_z"])
    index = int(np.abs(np.asarray(image.coords["z"].values) - position).argmin())
    return image_plane(image, index)


def heatmap(
    values: xr.DataArray,
    image: Any = None,
    *,
    ax: Axes | None = None,
    cmap: Any = "magma",
    alpha: float | None = None,
    vmin: float | None = None,
    vmax: float | None = None,
    label: str | None = None,
    z: int | None = None,
    level: int | str | None = None,
    window: str | Sequence[float] | None = None,
) -> Axes:
    """Draw per-tile values as tiles in physical units, over the image if one is given.

    Parameters
    ----------
    values : xarray.DataArray
        One value per tile, dims ``("tile_y", "tile_x")`` or ``("tile_z", "tile_y",
        "tile_x")`` with tile-centre coords in physical units and ``<dim>_start`` /
        ``<dim>_size`` coords in pixels: ``tiles["texture.glcm.contrast"]`` from
        :func:`tilevision.tile_features`, or ``model.predict_tiles(img).sel({"class":
        1})``. NaN tiles (not valid) are left transparent.
    image : DataArray, array or path, optional
        The image the tiles were computed on (any pyramid level; a path opens the
        thumbnail level, see :func:`thumbnail`), drawn underneath in grey.
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    cmap : str or Colormap, optional
        Colour map of the values (default ``"magma"``).
    alpha : float, optional
        Opacity of the tiles: default 0.5 over an image, 1 without one.
    vmin, vmax : float, optional
        Colour range (default: the shown tiles' range).
    label : str, optional
        Colour bar label (default: the values' name, and any selected coordinate such
        as the class).
    z : int, optional
        For 3-D values, the ``tile_z`` index of the slab shown (default the middle);
        the image slice nearest the slab's centre is drawn under it.
    level : int or "auto", optional
        Pyramid level of ``image`` (see :func:`thumbnail`).
    window : (center, width) or str, optional
        Display window of ``image`` (see :func:`thumbnail`).

    Returns
    -------
    matplotlib.axes.Axes
        Holding a ``QuadMesh`` of the tiles (edges in physical units) with a colour bar,
        above the image's ``AxesImage`` when one is given.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import tilevision as tv
    >>> ct = tv.datasets.load_ct(small=True)
    >>> tiles = tv.tile_features(ct, tv.Recipe(["intensity"], tile=10, mask="HU > -500"))
    >>> ax = heatmap(tiles["intensity.mean"], ct, label="mean HU", window="soft_tissue")
    >>> ax.get_title(), ax.collections[0].get_array().shape
    ('z = 137.8 mm', (11, 13))
    >>> plt.close(ax.figure)
    """
    grid = _tile_slab(_tile_values(values), z)
    arrays = [grid]
    if image is not None:
        arrays.append(_matching_plane(load_image(image, level), grid))
    vmin_image, vmax_image = window_limits(window)
    computed = compute(*arrays)
    ax = new_axes(ax)
    if image is not None:
        draw_plane(ax, computed[1], arrays[1], cmap="gray", vmin=vmin_image, vmax=vmax_image)
    _draw_tiles(
        ax, computed[0], grid, cmap=cmap, vmin=vmin, vmax=vmax,
        alpha=(0.5 if image is not None else 1.0) if alpha is None else alpha,
        label=_default_label(grid) if label is None else label,
    )  # fmt: skip
    if "tile_z" in grid.coords and grid.coords["tile_z"].ndim == 0:
        ax.set_title(position_title(grid, "tile_z").removeprefix("tile_"))
    return ax


def feature_maps(
    tiles: xr.Dataset,
    names: str | Sequence[str],
    *,
    image: Any = None,
    ncols: int = 3,
    z: int | None = None,
    cmap: Any = "magma",
    level: int | str | None = None,
    window: str | Sequence[float] | None = None,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """A figure of per-tile feature maps, one panel each, computed in one pass.

    Parameters
    ----------
    tiles : xarray.Dataset
        From :func:`tilevision.tile_features` (lazy or computed). Tiles that are not
        ``valid`` are left transparent.
    names : str or sequence of str
        Variables of ``tiles`` to show (e.g. ``"intensity.mean"``).
    image : DataArray, array or path, optional
        The image the tiles were computed on; its slice through the shown tiles is the
        first panel.
    ncols : int, optional
        Panels per row (default 3).
    z : int, optional
        For 3-D tiles, the ``tile_z`` index of the slab shown (default the middle).
    cmap : str or Colormap, optional
        Colour map of the feature maps (default ``"magma"``).
    level : int or "auto", optional
        Pyramid level of ``image`` (see :func:`thumbnail`).
    window : (center, width) or str, optional
        Display window of ``image`` (see :func:`thumbnail`).
    figsize : (float, float), optional
        Figure size in inches (default about 4 × 3.5 per panel).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per name, titled with the name and with its own colour bar, after the
        image's panel when ``image`` is given.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import tilevision as tv
    >>> ct = tv.datasets.load_ct(small=True)
    >>> tiles = tv.tile_features(ct, tv.Recipe(["intensity"], tile=10, mask="HU > -500"))
    >>> fig = feature_maps(tiles, ["intensity.mean", "intensity.std"], image=ct)
    >>> [ax.get_title() for ax in fig.axes if ax.get_label() != "<colorbar>"]
    ['z = 136.3 mm', 'intensity.mean', 'intensity.std']
    >>> plt.close(fig)
    """
    if not isinstance(tiles, xr.Dataset):
        raise TypeError(
            f"feature_maps needs the Dataset from tilevision.tile_features, got a "
            f"{type(tiles).__name__}; for one DataArray use tilevision.plot.heatmap."
        )
    names = [names] if isinstance(names, str) else [str(n) for n in names]
    if not names:
        raise ValueError("names is empty: name at least one feature, e.g. ['intensity.mean'].")
    unknown = [n for n in names if n not in tiles.data_vars]
    if unknown:
        raise ValueError(
            f"no feature(s) {unknown} in these tiles; the available features are "
            f"{tile_feature_names(tiles)}."
        )
    if isinstance(ncols, bool) or not isinstance(ncols, int) or ncols < 1:
        raise ValueError(f"ncols must be a positive int, got {ncols!r}.")
    valid = tiles["valid"] if "valid" in tiles.data_vars else None
    grids = []
    for name in names:
        values = _tile_values(tiles[name])
        if valid is not None and name != "valid":
            values = values.where(valid)
        grids.append(_tile_slab(values, z))
    arrays = list(grids)
    if image is not None:
        arrays.insert(0, _matching_plane(load_image(image, level), grids[0]))
    computed = compute(*arrays)
    ncols = min(ncols, len(arrays))
    nrows = math.ceil(len(arrays) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, squeeze=False, layout="constrained",
        figsize=figsize or (4.2 * ncols, 3.6 * nrows),
    )  # fmt: skip
    panels = list(axes.ravel())
    for extra in panels[len(arrays) :]:
        fig.delaxes(extra)
    if image is not None:
        vmin, vmax = window_limits(window)
        draw_plane(panels[0], computed[0], arrays[0], vmin=vmin, vmax=vmax)
        if "z" in arrays[0].coords and arrays[0].coords["z"].ndim == 0:
            panels[0].set_title(position_title(arrays[0], "z"))
    offset = 0 if image is None else 1
    for i, (name, grid) in enumerate(zip(names, grids)):
        ax = panels[offset + i]
        _draw_tiles(
            ax, computed[offset + i], grid, cmap=cmap, alpha=1.0, vmin=None, vmax=None,
            label=name,
        )  # fmt: skip
        ax.set_title(name)
    if "tile_z" in grids[0].coords and grids[0].coords["tile_z"].ndim == 0:
        fig.suptitle("tiles through " + position_title(grids[0], "tile_z").removeprefix("tile_"))
    return fig
