"""What the plots share: turning the input into an image, picking planes, windows, units."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.axes import Axes

from .._image import SPATIAL_DIMS, default_dims, image_geometry, make_image
from ..io import open as open_image
from ..io._info import _short_unit

__all__ = [
    "THUMBNAIL_SIZE",
    "WINDOWS",
    "axis_label",
    "compute",
    "extent_1d",
    "load_image",
    "new_axes",
    "position_title",
    "slice_index",
    "window_limits",
]

#: the automatic pyramid level is the coarsest whose longer in-plane side has this many pixels
THUMBNAIL_SIZE = 512

#: named CT display windows, ``(center, width)`` in Hounsfield units
WINDOWS: dict[str, tuple[float, float]] = {
    "soft_tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}


def _auto_level(path: str) -> int:
    """The coarsest pyramid level of ``path`` whose longer y/x side is ≥ THUMBNAIL_SIZE."""
    full = open_image(path)
    for level in range(int(full.attrs.get("n_levels", 1)) - 1, 0, -1):
        lvl = open_image(path, level=level)
        if max(lvl.sizes["y"], lvl.sizes["x"]) >= THUMBNAIL_SIZE:
            return level
    return 0


def _open_level(path: str, level: int | str) -> xr.DataArray:
    if level == "auto":
        return open_image(path, level=_auto_level(path))
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, np.integer)):
        raise ValueError(f"level must be a pyramid level (int) or 'auto', got {level!r}.")
    return open_image(path, level=int(level))


def load_image(image: Any, level: int | str | None = None) -> xr.DataArray:
    """Return ``image`` as a single-channel tilevision DataArray (lazy where it was lazy).

    ``image`` is a DataArray, a NumPy/Dask array (dims guessed), or the path of an
    OME-Zarr store (opened at ``level``; ``None`` or ``"auto"`` picks the coarsest
    level whose longer in-plane side has at least :data:`THUMBNAIL_SIZE` pixels).
    A DataArray opened from a store is re-opened at ``level`` when one is given.

    Examples
    --------
    >>> import numpy as np
    >>> load_image(np.zeros((3, 4, 5))).dims
    ('z', 'y', 'x')
    """
    if isinstance(image, (str, os.PathLike)):
        return _single_channel(_open_level(os.fspath(image), "auto" if level is None else level))
    if isinstance(image, xr.DataArray):
        if level is not None:
            path = image.attrs.get("path")
            if not path:
                raise ValueError(
                    f"level={level!r} selects a pyramid level of an OME-Zarr store, but this "
                    "DataArray has no 'path' attr (it was not opened with tilevision.open). "
                    "Pass the store's path instead, or leave level=None to plot the array "
                    "as it is."
                )
            image = _open_level(str(path), level)
        return _single_channel(_check_dims(image))
    if isinstance(image, (np.ndarray, da.Array)):
        if level is not None:
            raise ValueError(
                f"level={level!r} selects a pyramid level of an OME-Zarr store; a plain "
                "array has none. Leave level=None, or pass the store's path."
            )
        return _single_channel(make_image(image, default_dims(image.ndim)))
    raise TypeError(
        f"cannot plot a {type(image).__name__}: pass an image DataArray (tilevision.open), "
        "a NumPy/Dask array, or the path of an OME-Zarr store."
    )


def _check_dims(image: xr.DataArray) -> xr.DataArray:
    allowed = ("c", *SPATIAL_DIMS)
    if "y" not in image.dims or "x" not in image.dims or any(d not in allowed for d in image.dims):
        raise ValueError(
            f"cannot plot an image with dims {image.dims}: tilevision images have dims among "
            f"{allowed} including 'y' and 'x' (as made by tilevision.open); rename or select "
            "the others first, e.g. image.isel(t=0)."
        )
    return image


def _single_channel(image: xr.DataArray) -> xr.DataArray:
    if "c" not in image.dims:
        return image
    if image.sizes["c"] == 1:
        return image.isel(c=0, drop=True)
    names = [str(v) for v in image.coords["c"].values] if "c" in image.coords else []
    example = f"image.sel(c={names[0]!r})" if names else "image.sel(c=...)"
    raise ValueError(
        f"the image has {image.sizes['c']} channels (dim 'c'{', ' + str(names) if names else ''})"
        f"; a plot shows one: select it first, e.g. image.isel(c=0) or {example}."
    )


def slice_index(size: int, index: Any, what: str) -> int:
    """Check a slice index (``None`` → the middle) and return it as an int.

    Examples
    --------
    >>> slice_index(30, None, "z"), slice_index(30, 4, "z")
    (15, 4)
    """
    if index is None:
        return size // 2
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise ValueError(
            f"{what}={index!r} must be a slice index (an int from 0 to {size - 1}); to pick a "
            f"slice by its physical position, find its index first, e.g. "
            f"int(abs(image.{what} - position).argmin())."
        )
    if not 0 <= index < size:
        raise ValueError(
            f"{what}={index} is out of range: there are {size} slices, 0 to {size - 1}."
        )
    return int(index)


def window_limits(
    window: str | Sequence[float] | None,
) -> tuple[float | None, float | None]:
    """``(vmin, vmax)`` of a display window given as ``(center, width)`` or a name.

    Examples
    --------
    >>> window_limits((40, 400)), window_limits("lung"), window_limits(None)
    ((-160.0, 240.0), (-1350.0, 150.0), (None, None))
    """
    if window is None:
        return None, None
    if isinstance(window, str):
        if window not in WINDOWS:
            raise ValueError(
                f"unknown window {window!r}; the named windows are {sorted(WINDOWS)}, or pass "
                "(center, width), e.g. window=(40, 400)."
            )
        window = WINDOWS[window]
    values = np.asarray(window, dtype=np.float64)
    if values.shape != (2,) or not np.all(np.isfinite(values)) or values[1] <= 0:
        raise ValueError(
            f"window={window!r} must be (center, width) with a positive width, e.g. "
            "window=(40, 400) for soft tissue in Hounsfield units (shows 40 ± 200)."
        )
    center, width = float(values[0]), float(values[1])
    return center - width / 2, center + width / 2


def extent_1d(image: xr.DataArray, dim: str) -> tuple[float, float]:
    """Physical positions of the outer pixel edges of ``image`` along ``dim``.

    Examples
    --------
    >>> img = make_image(np.zeros((2, 4)), ("y", "x"), spacing=0.5, origin=(0, 10))
    >>> extent_1d(img, "x")
    (9.75, 11.75)
    """
    spacing, origin, _ = image_geometry(image)
    values = np.asarray(image.coords[dim].values, dtype=np.float64) if dim in image.coords \
        else origin[dim] + spacing[dim] * np.arange(image.sizes[dim])  # fmt: skip
    half = spacing[dim] / 2
    return float(values[0] - half), float(values[-1] + half)


def axis_label(dim: str, unit: str | None) -> str:
    """``"x (mm)"`` for a dim and its UDUNITS unit; ``"x (px)"`` without one.

    Examples
    --------
    >>> axis_label("x", "millimeter"), axis_label("tile_y", "micrometer"), axis_label("z", None)
    ('x (mm)', 'y (µm)', 'z (px)')
    """
    return f"{dim.removeprefix('tile_')} ({_short_unit(unit)})"


def compute(*arrays: xr.DataArray) -> list[np.ndarray]:
    """The values of several (lazy) DataArrays, computed together in one Dask call.

    Examples
    --------
    >>> import dask.array as da
    >>> a, b = compute(xr.DataArray(da.ones(3, chunks=2)), xr.DataArray(np.zeros(2)))
    >>> a, b
    (array([1., 1., 1.]), array([0., 0.]))
    """
    values = dask.compute(*(a.data for a in arrays))
    return [np.asarray(v) for v in values]


def new_axes(ax: Axes | None) -> Axes:
    """``ax``, or the Axes of a new pyplot Figure (shown inline in notebooks)."""
    if ax is not None:
        return ax
    _, ax = plt.subplots(layout="constrained")
    return ax


def position_title(plane: xr.DataArray, dim: str) -> str:
    """``"z = 139.3 mm"``: where a plane cut from a volume lies along ``dim``.

    Examples
    --------
    >>> img = make_image(np.zeros((3, 2, 2)), ("z", "y", "x"), spacing=2.5, units="millimeter")
    >>> position_title(img.isel(z=1), "z")
    'z = 2.5 mm'
    """
    units = plane.attrs.get("units")
    unit = plane.coords[dim].attrs.get("units")
    if not unit and isinstance(units, dict):
        unit = units.get(dim)
    return f"{dim} = {round(float(plane.coords[dim]), 2):g} {_short_unit(unit)}"
