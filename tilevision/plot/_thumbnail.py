"""``thumbnail``: a 2-D view of an image (a pyramid level, a slice) in physical units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr
from matplotlib.axes import Axes
from matplotlib.image import AxesImage

from .._image import image_geometry
from ._common import (
    axis_label,
    compute,
    extent_1d,
    load_image,
    new_axes,
    position_title,
    slice_index,
    window_limits,
)

__all__ = ["draw_plane", "image_plane", "thumbnail"]


def image_plane(image: xr.DataArray, z: int | None) -> xr.DataArray:
    """The lazy ``(y, x)`` plane a thumbnail shows: slice ``z`` (default the middle)."""
    if "z" not in image.dims:
        if z is not None:
            raise ValueError(
                f"z={z!r} selects a slice of a 3-D image, but this image is 2-D "
                f"(dims {image.dims}); leave z=None."
            )
        return image
    return image.isel(z=slice_index(image.sizes["z"], z, "z"))


def draw_plane(
    ax: Axes,
    values: np.ndarray,
    plane: xr.DataArray,
    *,
    cmap: Any = "gray",
    vmin: float | None = None,
    vmax: float | None = None,
    origin: Literal["upper", "lower"] = "upper",
    **kwargs: Any,
) -> AxesImage:
    """Draw ``values`` (the computed ``plane``, dims (row, column)) with physical extents.

    ``origin="upper"`` puts the first row at the top (images); ``"lower"`` at the bottom
    (a volume's z axis pointing up). Axis labels name the dims and their units.
    """
    rows, cols = plane.dims
    left, right = extent_1d(plane, cols)
    low, high = extent_1d(plane, rows)
    extent = (left, right, high, low) if origin == "upper" else (left, right, low, high)
    shown = ax.imshow(
        values, cmap=cmap, vmin=vmin, vmax=vmax, origin=origin, extent=extent, **kwargs
    )
    units = image_geometry(plane)[2]
    ax.set_xlabel(axis_label(cols, units[cols]))
    ax.set_ylabel(axis_label(rows, units[rows]))
    return shown


def thumbnail(
    image: Any,
    *,
    level: int | str | None = None,
    ax: Axes | None = None,
    z: int | None = None,
    cmap: Any = "gray",
    window: str | Sequence[float] | None = None,
) -> Axes:
    """Show a 2-D view of an image, in physical units, computing only that view.

    A 3-D volume shows one axial slice (the middle one unless ``z`` is given); a
    pyramid shows a coarse level, so a whole slide costs a few reads.

    Parameters
    ----------
    image : DataArray, array or path
        An image from :func:`tilevision.open` (dims ``("z", "y", "x")`` or
        ``("y", "x")``; a ``"c"`` dim must be selected first unless it has one
        channel), a NumPy/Dask array, or the path of an OME-Zarr store.
    level : int or "auto", optional
        Pyramid level to show. For a path the default (``None`` or ``"auto"``) is the
        coarsest level whose longer in-plane side has at least 512 pixels. For a
        DataArray the default shows it as given; a level re-opens it from the store
        it was opened from (its ``path`` attr).
    ax : matplotlib.axes.Axes, optional
        Where to draw (default: a new figure).
    z : int, optional
        Index of the slice of a 3-D image (at the shown level), from 0 to
        ``image.sizes["z"] - 1``; default the middle slice. To pick a slice by
        position use ``int(abs(image.z - position).argmin())``.
    cmap : str or Colormap, optional
        Colour map (default ``"gray"``).
    window : (center, width) or str, optional
        Display window, e.g. ``(40, 400)`` for soft tissue in Hounsfield units
        (shows values from -160 to 240), or one of the names in
        :data:`tilevision.plot.WINDOWS` (``"soft_tissue"``, ``"lung"``, ``"bone"``,
        ``"brain"``). Default: the slice's minimum to maximum.

    Returns
    -------
    matplotlib.axes.Axes
        Holding one ``AxesImage`` whose extent is the pixels' outer edges in physical
        units; axis labels name the units (``"x (mm)"``).

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import tilevision as tv
    >>> ct = tv.datasets.load_ct(small=True)
    >>> ax = thumbnail(ct, window="soft_tissue")
    >>> ax.get_xlabel(), ax.get_title(), ax.images[0].get_array().shape
    ('x (mm)', 'z = 139.3 mm', (101, 122))
    >>> plt.close(ax.figure)
    """
    img = load_image(image, level)
    plane = image_plane(img, z)
    vmin, vmax = window_limits(window)
    (values,) = compute(plane)
    ax = new_axes(ax)
    draw_plane(ax, values, plane, cmap=cmap, vmin=vmin, vmax=vmax)
    if "z" in img.dims:
        ax.set_title(position_title(plane, "z"))
    return ax
