"""The one place that builds image DataArrays and reads their geometry back.

An image in tilevision is an :class:`xarray.DataArray` whose dims are a subset of
``("c", "z", "y", "x")`` in that order, whose spatial coordinates are pixel
centres in physical units, and whose ``attrs`` carry ``spacing``, ``origin`` and
``units`` (one entry per spatial dim) plus provenance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import xarray as xr

__all__ = [
    "CANONICAL_DIMS",
    "SPATIAL_DIMS",
    "default_dims",
    "image_geometry",
    "make_image",
    "validate_dims",
]

CANONICAL_DIMS: tuple[str, ...] = ("c", "z", "y", "x")
SPATIAL_DIMS: tuple[str, ...] = ("z", "y", "x")


def default_dims(ndim: int) -> tuple[str, ...]:
    """Return the dims tilevision assumes for an array of ``ndim`` dimensions.

    Examples
    --------
    >>> default_dims(2), default_dims(3), default_dims(4)
    (('y', 'x'), ('z', 'y', 'x'), ('c', 'z', 'y', 'x'))
    """
    if ndim == 2:
        return ("y", "x")
    if ndim == 3:
        return ("z", "y", "x")
    if ndim == 4:
        return CANONICAL_DIMS
    raise ValueError(
        f"cannot guess the dims of a {ndim}-D array: tilevision images have 2 to 4 dims "
        f"among {CANONICAL_DIMS}. Pass dims=... explicitly (e.g. dims=('c', 'y', 'x'))."
    )


def validate_dims(dims: Sequence[str], ndim: int) -> tuple[str, ...]:
    """Check that ``dims`` is an ordered subset of ``("c", "z", "y", "x")``.

    Examples
    --------
    >>> validate_dims(["c", "y", "x"], 3)
    ('c', 'y', 'x')
    """
    dims = tuple(str(d) for d in dims)
    if len(dims) != ndim:
        raise ValueError(f"dims={dims} names {len(dims)} axes but the array has {ndim}.")
    unknown = [d for d in dims if d not in CANONICAL_DIMS]
    if unknown:
        raise ValueError(
            f"unknown dim name(s) {unknown}: tilevision images use dims among {CANONICAL_DIMS}."
        )
    order = [CANONICAL_DIMS.index(d) for d in dims]
    if order != sorted(order) or len(set(dims)) != len(dims):
        raise ValueError(
            f"dims={dims} are not in the order {CANONICAL_DIMS}; transpose the array first "
            f"(e.g. image.transpose(*{tuple(d for d in CANONICAL_DIMS if d in dims)}))."
        )
    if not any(d in SPATIAL_DIMS for d in dims) or ("y" not in dims or "x" not in dims):
        raise ValueError(f"dims={dims} must include at least 'y' and 'x'.")
    return dims


def _per_dim(value: Any, spatial: tuple[str, ...], default: Any, what: str) -> dict[str, Any]:
    if value is None:
        return dict.fromkeys(spatial, default)
    if isinstance(value, Mapping):
        missing = [d for d in spatial if d not in value]
        if missing:
            raise ValueError(f"{what} gives no value for dim(s) {missing}.")
        return {d: value[d] for d in spatial}
    if isinstance(value, (str, bytes)) or np.ndim(value) == 0:
        return dict.fromkeys(spatial, value)
    value = list(value)
    if len(value) != len(spatial):
        raise ValueError(
            f"{what} has {len(value)} values but the image has {len(spatial)} spatial "
            f"dims {spatial}."
        )
    return dict(zip(spatial, value))


def make_image(
    data: Any,
    dims: Sequence[str],
    *,
    spacing: Mapping[str, float] | Sequence[float] | float | None = None,
    origin: Mapping[str, float] | Sequence[float] | float | None = None,
    units: Mapping[str, str | None] | Sequence[str | None] | str | None = None,
    channel_names: Sequence[str] | None = None,
    name: str | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Wrap an array (NumPy or Dask) as a tilevision image with physical coordinates.

    Parameters
    ----------
    data : array-like
        NumPy or Dask array; it is not copied or computed.
    dims : sequence of str
        Ordered subset of ``("c", "z", "y", "x")``.
    spacing, origin : float, sequence or mapping, optional
        Pixel size and position of the first pixel centre per spatial dim
        (defaults 1 and 0).
    units : str, sequence or mapping, optional
        Physical unit per spatial dim, as a UDUNITS-2 name (``"millimeter"``,
        ``"micrometer"``); ``None`` for pixels.
    channel_names : sequence of str, optional
        Names for the ``c`` coordinate.
    name : str, optional
        Name of the DataArray.
    attrs : mapping, optional
        Extra attributes (provenance).

    Returns
    -------
    xarray.DataArray

    Examples
    --------
    >>> import numpy as np
    >>> img = make_image(np.zeros((4, 5)), ("y", "x"), spacing=(0.5, 0.25), units="micrometer")
    >>> img.x.values
    array([0.  , 0.25, 0.5 , 0.75, 1.  ])
    >>> img.attrs["spacing"]
    {'y': 0.5, 'x': 0.25}
    """
    dims = validate_dims(dims, np.ndim(data))
    spatial = tuple(d for d in dims if d in SPATIAL_DIMS)
    spacing_d = {d: float(v) for d, v in _per_dim(spacing, spatial, 1.0, "spacing").items()}
    for d, s in spacing_d.items():
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"spacing along {d!r} must be a positive number, got {s}.")
    origin_d = {d: float(v) for d, v in _per_dim(origin, spatial, 0.0, "origin").items()}
    units_d = {d: (u or None) for d, u in _per_dim(units, spatial, None, "units").items()}
    shape = dict(zip(dims, np.shape(data)))
    coords: dict[str, Any] = {}
    for d in spatial:
        values = origin_d[d] + spacing_d[d] * np.arange(shape[d], dtype=np.float64)
        coord_attrs = {"units": units_d[d]} if units_d[d] else {}
        coords[d] = xr.Variable(d, values, attrs=coord_attrs)
    if "c" in dims:
        if channel_names is not None:
            if len(channel_names) != shape["c"]:
                raise ValueError(f"{len(channel_names)} channel names for {shape['c']} channels.")
            coords["c"] = [str(n) for n in channel_names]
        else:
            coords["c"] = np.arange(shape["c"])
    all_attrs = dict(attrs or {})
    all_attrs.update(spacing=spacing_d, origin=origin_d, units=units_d)
    return xr.DataArray(data, dims=dims, coords=coords, name=name, attrs=all_attrs)


def image_geometry(
    image: xr.DataArray,
) -> tuple[dict[str, float], dict[str, float], dict[str, str | None]]:
    """Return ``(spacing, origin, units)`` of an image, one entry per spatial dim.

    Reads the ``spacing``/``origin``/``units`` attrs written by :func:`make_image`;
    where they are absent it derives them from evenly spaced coordinates, and
    falls back to unit spacing.

    Examples
    --------
    >>> import numpy as np
    >>> img = make_image(np.zeros((2, 3, 4)), ("z", "y", "x"), spacing=(3, 1, 1))
    >>> image_geometry(img)[0]
    {'z': 3.0, 'y': 1.0, 'x': 1.0}
    """
    spatial = [d for d in image.dims if d in SPATIAL_DIMS]
    attrs = image.attrs
    spacing: dict[str, float] = {}
    origin: dict[str, float] = {}
    units: dict[str, str | None] = {}
    for d in spatial:
        coord = image.coords.get(d)
        values = np.asarray(coord.values, dtype=np.float64) if coord is not None else None
        if isinstance(attrs.get("spacing"), Mapping) and d in attrs["spacing"]:
            spacing[d] = float(attrs["spacing"][d])
        elif values is not None and values.size > 1:
            spacing[d] = float(values[1] - values[0])
        else:
            spacing[d] = 1.0
        if values is not None and values.size > 0:
            origin[d] = float(values[0])
        elif isinstance(attrs.get("origin"), Mapping) and d in attrs["origin"]:
            origin[d] = float(attrs["origin"][d])
        else:
            origin[d] = 0.0
        unit = None
        if isinstance(attrs.get("units"), Mapping):
            unit = attrs["units"].get(d)
        if unit is None and coord is not None:
            unit = coord.attrs.get("units")
        units[d] = unit or None
    return spacing, origin, units
