"""``orthogonal_slices``: axial, coronal and sagittal planes through a point of a volume."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

from ._common import compute, extent_1d, load_image, position_title, slice_index, window_limits
from ._thumbnail import draw_plane

__all__ = ["orthogonal_slices"]

#: (name, dim cut, dims shown as (rows, columns), row origin) of each panel
_PANELS = (
    ("axial", "z", ("y", "x"), "upper"),
    ("coronal", "y", ("z", "x"), "lower"),
    ("sagittal", "x", ("z", "y"), "lower"),
)


def _point(volume: xr.DataArray, point: Sequence[int] | None) -> dict[str, int]:
    dims = ("z", "y", "x")
    if point is None:
        return {d: volume.sizes[d] // 2 for d in dims}
    if isinstance(point, str) or not isinstance(point, Sequence) or len(point) != 3:
        raise ValueError(
            f"point={point!r} must be a (z, y, x) tuple of voxel indices, e.g. "
            f"point={tuple(volume.sizes[d] // 2 for d in dims)} (the centre, the default)."
        )
    return {d: slice_index(volume.sizes[d], p, d) for d, p in zip(dims, point)}


def _overlay(volume: xr.DataArray, overlay: Any) -> xr.DataArray:
    if isinstance(overlay, xr.DataArray):
        if set(overlay.dims) != {"z", "y", "x"}:
            raise ValueError(
                f"the overlay has dims {overlay.dims}; it must be a volume with dims "
                "('z', 'y', 'x') on the image's grid (e.g. a label map)."
            )
        data = overlay.transpose("z", "y", "x").data
    elif isinstance(overlay, (np.ndarray, da.Array)):
        data = overlay
    else:
        raise TypeError(
            f"overlay must be a DataArray or a NumPy/Dask array, got {type(overlay).__name__}."
        )
    if tuple(data.shape) != volume.shape:
        raise ValueError(
            f"the overlay's shape {tuple(data.shape)} differs from the image's {volume.shape}; "
            "it must be on the same voxel grid (if the image is a path, the plot opened a "
            "coarser pyramid level: pass level=0)."
        )
    return xr.DataArray(data, dims=volume.dims, coords=volume.coords)


def _overlay_style(values: list[np.ndarray], cmap: Any) -> tuple[list[Any], dict[str, Any]]:
    """Mask the overlay planes (NaN; and 0 for label maps) and pick one colour range."""
    labels = values[0].dtype.kind in "biu"
    masked = [
        np.ma.masked_where(v == 0, v) if labels else np.ma.masked_invalid(v.astype(np.float64))
        for v in values
    ]
    shown = np.concatenate([m.compressed().astype(np.float64) for m in masked])
    limits = (shown.min(), shown.max()) if shown.size else (None, None)
    style = {
        "cmap": cmap or ("tab20" if labels else "magma"),
        "vmin": limits[0],
        "vmax": limits[1],
        "interpolation": "nearest" if labels else "antialiased",
    }
    return masked, style


def orthogonal_slices(
    image: Any,
    *,
    point: Sequence[int] | None = None,
    cmap: Any = "gray",
    window: str | Sequence[float] | None = None,
    overlay: Any = None,
    overlay_cmap: Any = None,
    overlay_alpha: float = 0.4,
    level: int | str | None = None,
    crosshair: bool = True,
    figsize: tuple[float, float] | None = None,
) -> Figure:
    """Axial, coronal and sagittal slices of a volume through one voxel, in physical units.

    Only the three planes are computed (in one Dask call). Panels keep physical
    proportions, so anisotropic voxels look right; the axial panel has y downwards,
    the coronal and sagittal panels have z upwards.

    Parameters
    ----------
    image : DataArray, array or path
        A 3-D image (dims ``("z", "y", "x")``), as for :func:`thumbnail`.
    point : (int, int, int), optional
        Voxel index ``(z, y, x)`` the planes go through (default: the centre).
    cmap : str or Colormap, optional
        Colour map of the image (default ``"gray"``).
    window : (center, width) or str, optional
        Display window (see :func:`thumbnail`).
    overlay : DataArray or array, optional
        A volume on the same voxel grid drawn on top with ``overlay_alpha``: a label
        map (integer or bool; 0 is transparent, colours from ``"tab20"``) or a float
        map (NaN transparent, ``"magma"``).
    overlay_cmap : str or Colormap, optional
        Colour map of the overlay (default as above).
    overlay_alpha : float, optional
        Opacity of the overlay (default 0.4).
    level : int or "auto", optional
        Pyramid level (see :func:`thumbnail`).
    crosshair : bool, optional
        Mark the point's position in each panel (default True).
    figsize : (float, float), optional
        Figure size in inches.

    Returns
    -------
    matplotlib.figure.Figure
        Three Axes (axial, coronal, sagittal), each holding the image plane's
        ``AxesImage`` and, with ``overlay``, the overlay's above it.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> import tilevision as tv
    >>> ct, organs, names = tv.datasets.load_ct_organs()
    >>> fig = orthogonal_slices(ct, point=(15, 50, 60), window="soft_tissue", overlay=organs)
    >>> [ax.get_title() for ax in fig.axes]
    ['axial, z = 139.3 mm', 'coronal, y = 161.3 mm', 'sagittal, x = 2.04 mm']
    >>> fig.axes[1].images[0].get_array().shape   # (z, x)
    (30, 122)
    >>> plt.close(fig)
    """
    volume = load_image(image, level)
    if "z" not in volume.dims:
        raise ValueError(
            f"orthogonal_slices needs a 3-D volume with dims ('z', 'y', 'x'); this image has "
            f"dims {volume.dims}. Use tilevision.plot.thumbnail for a 2-D image."
        )
    at = _point(volume, point)
    planes = [volume.isel({cut: at[cut]}).transpose(*shown) for _, cut, shown, _ in _PANELS]
    arrays = list(planes)
    if overlay is not None:
        labels = _overlay(volume, overlay)
        arrays += [labels.isel({cut: at[cut]}).transpose(*shown) for _, cut, shown, _ in _PANELS]
    vmin, vmax = window_limits(window)
    computed = compute(*arrays)
    # one physical scale in all panels: widths x, x, y; heights y, z, z
    size = {d: np.subtract(*extent_1d(volume, d)[::-1]) for d in ("z", "y", "x")}
    widths = [size["x"], size["x"], size["y"]]
    if figsize is None:
        inch = 11.0 / sum(widths)
        figsize = (12.0, min(max(size["y"], size["z"]) * inch + 1.2, 12.0))
    fig, axes = plt.subplots(
        1, 3, layout="constrained", figsize=figsize, gridspec_kw={"width_ratios": widths}
    )
    if overlay is not None:
        over, style = _overlay_style(computed[3:], overlay_cmap)
    for i, (ax, (name, cut, (rows, cols), origin)) in enumerate(zip(axes, _PANELS)):
        draw_plane(ax, computed[i], planes[i], cmap=cmap, vmin=vmin, vmax=vmax, origin=origin)
        if overlay is not None:
            draw_plane(ax, over[i], planes[i], origin=origin, alpha=overlay_alpha, **style)
        ax.set_title(f"{name}, {position_title(planes[i], cut)}")
        if crosshair:
            line = {"color": "yellow", "linewidth": 0.7, "alpha": 0.6}
            ax.axvline(float(volume.coords[cols][at[cols]]), **line)
            ax.axhline(float(volume.coords[rows][at[rows]]), **line)
    return fig
