"""Rank filters: median, minimum, maximum, percentile, and the uniform (mean) filter.

Each is a registered local step (usable in :func:`tilevision.filters.chain`) and a
thin public function. The window is a box of ``size`` pixels per axis or a boolean
``footprint``; its halo comes from ``tilevision._halo`` (``size_radius`` /
``footprint_radius``), so tiles give the whole-array SciPy result at every pixel.
A window larger than the image is fine: along such an axis the image is merged
into one chunk and SciPy extends it by ``mode`` exactly as for the whole array.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._halo import as_per_axis, footprint_radius, size_radius, to_pixels
from ._chain import chain
from ._steps import (
    BoundStep,
    Mode,
    StepContext,
    check_mode,
    periodic_axes,
    register_step,
    step,
)

__all__ = ["maximum", "median", "minimum", "percentile", "uniform"]

Units = Literal["pixel", "physical"]
Size = int | float | Sequence[int | float]

#: SciPy's default window when neither ``size`` nor ``footprint`` is given (as
#: ``skimage.filters.median``: 3 pixels along every axis)
DEFAULT_SIZE = 3


def odd_pixels(length: float) -> int:
    """The odd number of pixels nearest to ``length`` pixels (at least 1).

    A length of exactly an even number of pixels rounds up (4.0 → 5), so the
    window is always centred on its pixel.

    Examples
    --------
    >>> [odd_pixels(v) for v in (0.4, 1.0, 2.0, 2.9, 3.2, 4.0, 7.1)]
    [1, 1, 3, 3, 3, 5, 7]
    """
    return 2 * math.floor(length / 2) + 1


def _check_size(size: Size, ctx: StepContext, units: Units) -> tuple[int, ...]:
    """Validate ``size`` (pixels, or physical lengths) and return pixels per axis."""
    values = as_per_axis(size, ctx.ndim, "size")
    if any(not np.isfinite(v) or v <= 0 for v in values):
        raise ValueError(
            f"size must be > 0 along every axis, got {size!r}; give the window width in "
            "pixels (e.g. size=3), or in millimetres/micrometres with units='physical'."
        )
    if units == "physical":
        return tuple(odd_pixels(v) for v in to_pixels(values, ctx.spacing, units, "size"))
    if units != "pixel":
        raise ValueError(f"units must be 'pixel' or 'physical', got {units!r}.")
    if any(not float(v).is_integer() for v in values):
        raise ValueError(
            f"size must be a whole number of pixels, got {size!r}; round it, or pass "
            "units='physical' to give it in the image's physical units."
        )
    return tuple(int(v) for v in values)


def _check_footprint(footprint: Any, ndim: int) -> np.ndarray:
    """Validate a footprint: ``ndim`` axes of True/False (or 0/1), at least one True."""
    fp = np.asarray(footprint)
    if fp.dtype != bool:
        if fp.dtype.kind not in "biuf" or not np.isin(fp, (0, 1)).all():
            raise ValueError(
                "footprint must be boolean (True/False or 0/1 values), got values of dtype "
                f"{fp.dtype}; build it with e.g. skimage.morphology.disk(2) or "
                "numpy.ones((3, 3), bool)."
            )
        fp = fp.astype(bool)
    if fp.ndim != ndim:
        raise ValueError(
            f"footprint has {fp.ndim} axes but the image has {ndim} spatial axes; give a "
            f"{ndim}-D footprint (e.g. skimage.morphology.{'ball' if ndim == 3 else 'disk'}(1))."
        )
    if not fp.any():
        raise ValueError("footprint has no True element; it must select at least one pixel.")
    return fp


def _window(
    ctx: StepContext, size: Size | None, footprint: Any, units: Units
) -> tuple[tuple[int, ...] | None, np.ndarray | None, tuple[int, ...]]:
    """Resolve (size, footprint) into SciPy arguments and the halo radius."""
    if footprint is not None:
        if size is not None:
            raise ValueError(
                "give either size or footprint, not both (a footprint sets the window)."
            )
        if units != "pixel":
            raise ValueError(
                "units='physical' applies to size; a footprint is given in pixels. Pass "
                "size= in physical units instead, or drop units."
            )
        fp = _check_footprint(footprint, ctx.ndim)
        return None, fp, footprint_radius(fp)
    sizes = _check_size(DEFAULT_SIZE if size is None else size, ctx, units)
    return sizes, None, size_radius(sizes, ctx.ndim)


def _rank_step(
    name: str,
    ctx: StepContext,
    size: Size | None,
    footprint: Any,
    mode: Mode | Sequence[Mode],
    cval: float,
    units: Units,
    run: Any,
) -> BoundStep:
    """A BoundStep that casts to the working dtype and runs ``run(block, size, fp)``."""
    sizes, fp, radius = _window(ctx, size, footprint, units)
    check_mode(mode, ctx.ndim)
    dtype = ctx.float_dtype

    def func(block: Any) -> Any:
        return run(block.astype(dtype, copy=False), sizes, fp, mode, cval)

    return BoundStep(name, func, radius, dtype, periodic=periodic_axes(mode, ctx.ndim))


@register_step("median")
def _median_step(
    ctx: StepContext,
    size: Size | None = None,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
) -> BoundStep:
    """Median over a box or footprint (scipy.ndimage.median_filter)."""
    ndi = ctx.ndi

    def run(block: Any, sizes: Any, fp: Any, mode: Any, cval: float) -> Any:
        return ndi.median_filter(block, size=sizes, footprint=fp, mode=mode, cval=cval)

    return _rank_step("median", ctx, size, footprint, mode, cval, units, run)


@register_step("minimum")
def _minimum_step(
    ctx: StepContext,
    size: Size | None = None,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
) -> BoundStep:
    """Minimum over a box or footprint (scipy.ndimage.minimum_filter)."""
    ndi = ctx.ndi

    def run(block: Any, sizes: Any, fp: Any, mode: Any, cval: float) -> Any:
        return ndi.minimum_filter(block, size=sizes, footprint=fp, mode=mode, cval=cval)

    return _rank_step("minimum", ctx, size, footprint, mode, cval, units, run)


@register_step("maximum")
def _maximum_step(
    ctx: StepContext,
    size: Size | None = None,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
) -> BoundStep:
    """Maximum over a box or footprint (scipy.ndimage.maximum_filter)."""
    ndi = ctx.ndi

    def run(block: Any, sizes: Any, fp: Any, mode: Any, cval: float) -> Any:
        return ndi.maximum_filter(block, size=sizes, footprint=fp, mode=mode, cval=cval)

    return _rank_step("maximum", ctx, size, footprint, mode, cval, units, run)


@register_step("percentile")
def _percentile_step(
    ctx: StepContext,
    percentile: float,
    size: Size | None = None,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
) -> BoundStep:
    """Percentile over a box or footprint (scipy.ndimage.percentile_filter)."""
    try:
        pct = float(percentile)
    except (TypeError, ValueError):
        pct = math.nan
    if not 0 <= pct <= 100:
        raise ValueError(
            f"percentile must be a number in [0, 100], got {percentile!r} (50 is the median)."
        )
    ndi = ctx.ndi

    def run(block: Any, sizes: Any, fp: Any, mode: Any, cval: float) -> Any:
        return ndi.percentile_filter(block, pct, size=sizes, footprint=fp, mode=mode, cval=cval)

    return _rank_step("percentile", ctx, size, footprint, mode, cval, units, run)


@register_step("uniform")
def _uniform_step(
    ctx: StepContext,
    size: Size = DEFAULT_SIZE,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
) -> BoundStep:
    """Mean over a box (scipy.ndimage.uniform_filter)."""
    ndi = ctx.ndi

    def run(block: Any, sizes: Any, fp: Any, mode: Any, cval: float) -> Any:
        return ndi.uniform_filter(block, size=sizes, mode=mode, cval=cval)

    return _rank_step("uniform", ctx, size, None, mode, cval, units, run)


def _window_params(size: Any, footprint: Any) -> dict[str, Any]:
    """Step parameters for the window given (a footprint as nested lists of bools).

    Lists are serialisable, and tokenised in full (NumPy's repr elides big arrays).
    """
    params: dict[str, Any] = {}
    if size is not None:
        params["size"] = size
    if footprint is not None:
        params["footprint"] = _footprint_param(footprint)
    return params


def _footprint_param(footprint: Any) -> Any:
    """A footprint as nested lists of bools when it is one (else as given, to be refused)."""
    fp = np.asarray(footprint)
    return (
        fp.astype(bool).tolist() if fp.dtype.kind in "biuf" and np.isin(fp, (0, 1)).all() else fp
    )


def median(
    image: Any,
    size: Size | None = None,
    *,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Median filter, tile by tile, identical to the whole-array SciPy result.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    size : int or sequence of int, optional
        Window width per spatial axis in pixels (default 3), or in the image's
        physical units with ``units="physical"``. Even widths are allowed and
        placed as SciPy places them (origin 0: the window reaches ``size // 2``
        pixels towards lower indices).
    footprint : array of bool, optional
        Window shape instead of ``size``, one axis per spatial axis (0/1 values
        are accepted, e.g. ``skimage.morphology.disk(2)``).
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning; one per
        axis allowed). The default "nearest" follows ``skimage.filters.median``.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``size``. Physical sizes (e.g. millimetres) are divided by the
        spacing and rounded to the nearest odd number of pixels per axis (at
        least 1; an exact even count rounds up), so the window stays centred.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input (a DataArray's ``c`` dim is used itself).
    rechunk : bool, optional
        Merge chunks narrower than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input. Rank
        filters select input values, so integers up to 2**24 in magnitude
        (uint8, uint16, int16) come out exactly.

    See Also
    --------
    scipy.ndimage.median_filter, skimage.filters.median

    Examples
    --------
    >>> import dask.array as da, numpy as np, scipy.ndimage as ndi
    >>> x = da.random.default_rng(0).integers(0, 255, (40, 50), chunks=(13, 17), dtype="uint8")
    >>> y = median(x, size=3)
    >>> ref = ndi.median_filter(x.compute().astype("float32"), size=3, mode="nearest")
    >>> y.dtype, bool((y.compute() == ref).all())
    (dtype('float32'), True)
    """
    s = step(
        "median",
        **_window_params(size, footprint),
        mode=mode,
        cval=cval,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def minimum(
    image: Any,
    size: Size | None = None,
    *,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Minimum filter (grey erosion with a flat window), tile-exact vs SciPy.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    size : int or sequence of int, optional
        Window width per spatial axis in pixels (default 3), or in the image's
        physical units with ``units="physical"``. Even widths are allowed and
        placed as SciPy places them (origin 0: the window reaches ``size // 2``
        pixels towards lower indices).
    footprint : array of bool, optional
        Window shape instead of ``size``, one axis per spatial axis (0/1 values
        are accepted, e.g. ``skimage.morphology.disk(2)``).
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning; one per
        axis allowed). The default "nearest" follows ``skimage.filters.median``.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``size``. Physical sizes (e.g. millimetres) are divided by the
        spacing and rounded to the nearest odd number of pixels per axis (at
        least 1; an exact even count rounds up), so the window stays centred.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input (a DataArray's ``c`` dim is used itself).
    rechunk : bool, optional
        Merge chunks narrower than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input. Rank
        filters select input values, so integers up to 2**24 in magnitude
        (uint8, uint16, int16) come out exactly.

    See Also
    --------
    scipy.ndimage.minimum_filter, maximum

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(0).random((30, 40), chunks=(8, 9)).astype("float32")
    >>> y = minimum(x, size=(5, 4))
    >>> bool((y.compute() == ndi.minimum_filter(x.compute(), (5, 4), mode="nearest")).all())
    True
    """
    s = step(
        "minimum",
        **_window_params(size, footprint),
        mode=mode,
        cval=cval,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def maximum(
    image: Any,
    size: Size | None = None,
    *,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Maximum filter (grey dilation with a flat window), tile-exact vs SciPy.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    size : int or sequence of int, optional
        Window width per spatial axis in pixels (default 3), or in the image's
        physical units with ``units="physical"``. Even widths are allowed and
        placed as SciPy places them (origin 0: the window reaches ``size // 2``
        pixels towards lower indices).
    footprint : array of bool, optional
        Window shape instead of ``size``, one axis per spatial axis (0/1 values
        are accepted, e.g. ``skimage.morphology.disk(2)``).
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning; one per
        axis allowed). The default "nearest" follows ``skimage.filters.median``.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``size``. Physical sizes (e.g. millimetres) are divided by the
        spacing and rounded to the nearest odd number of pixels per axis (at
        least 1; an exact even count rounds up), so the window stays centred.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input (a DataArray's ``c`` dim is used itself).
    rechunk : bool, optional
        Merge chunks narrower than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input. Rank
        filters select input values, so integers up to 2**24 in magnitude
        (uint8, uint16, int16) come out exactly.

    See Also
    --------
    scipy.ndimage.maximum_filter, minimum

    Examples
    --------
    >>> import dask.array as da, numpy as np, scipy.ndimage as ndi
    >>> x = da.random.default_rng(0).random((30, 40), chunks=(8, 9))
    >>> cross = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    >>> y = maximum(x, footprint=cross)
    >>> ref = ndi.maximum_filter(x.compute(), footprint=cross.astype(bool), mode="nearest")
    >>> bool((y.compute() == ref).all())
    True
    """
    s = step(
        "maximum",
        **_window_params(size, footprint),
        mode=mode,
        cval=cval,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def percentile(
    image: Any,
    percentile: float,
    size: Size | None = None,
    *,
    footprint: Any = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Local percentile filter, tile-exact vs ``scipy.ndimage.percentile_filter``.

    The value of rank ``int(n * percentile / 100)`` (``n - 1`` for 100) among the
    ``n`` pixels of the window, as SciPy defines it: no interpolation.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    percentile : float
        In [0, 100]; 0 is the minimum, 50 the median, 100 the maximum.
    size : int or sequence of int, optional
        Window width per spatial axis in pixels (default 3), or in the image's
        physical units with ``units="physical"``. Even widths are allowed and
        placed as SciPy places them (origin 0: the window reaches ``size // 2``
        pixels towards lower indices).
    footprint : array of bool, optional
        Window shape instead of ``size``, one axis per spatial axis (0/1 values
        are accepted, e.g. ``skimage.morphology.disk(2)``).
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning; one per
        axis allowed). The default "nearest" follows ``skimage.filters.median``.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``size``. Physical sizes (e.g. millimetres) are divided by the
        spacing and rounded to the nearest odd number of pixels per axis (at
        least 1; an exact even count rounds up), so the window stays centred.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input (a DataArray's ``c`` dim is used itself).
    rechunk : bool, optional
        Merge chunks narrower than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input. Rank
        filters select input values, so integers up to 2**24 in magnitude
        (uint8, uint16, int16) come out exactly.

    See Also
    --------
    scipy.ndimage.percentile_filter, median, tilevision.filters.global_percentiles

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(0).random((30, 40), chunks=(8, 9)).astype("float32")
    >>> y = percentile(x, 90, size=5)
    >>> ref = ndi.percentile_filter(x.compute(), 90, size=5, mode="nearest")
    >>> bool((y.compute() == ref).all())
    True
    """
    s = step(
        "percentile",
        percentile=percentile,
        **_window_params(size, footprint),
        mode=mode,
        cval=cval,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def uniform(
    image: Any,
    size: Size = DEFAULT_SIZE,
    *,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Mean over a box of ``size`` pixels (``scipy.ndimage.uniform_filter``), tiled.

    SciPy computes each line's means with a running sum in float64 that starts at
    the line's (extended) beginning, so a tile's running sum starts elsewhere than
    the whole array's: the results agree to float64 rounding (about 1e-15
    relative; float32 results are in practice bit-identical), not always bit for
    bit. Use :func:`median` or the other rank filters for bit-exact tiling.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    size : int or sequence of int, optional
        Box width per spatial axis in pixels (default 3), or in the image's
        physical units with ``units="physical"`` (rounded to the nearest odd
        number of pixels per axis, at least 1; an exact even count rounds up).
        Even widths in pixels are placed as SciPy places them (origin 0).
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning). The
        default "nearest" matches the rank filters of this module (SciPy's own
        default is "reflect").
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``size``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks narrower than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input.

    See Also
    --------
    scipy.ndimage.uniform_filter

    Examples
    --------
    >>> import dask.array as da, numpy as np, scipy.ndimage as ndi
    >>> x = da.random.default_rng(0).random((30, 40), chunks=(8, 9))
    >>> y = uniform(x, size=5)
    >>> ref = ndi.uniform_filter(x.compute(), 5, mode="nearest")
    >>> bool(np.allclose(y.compute(), ref, rtol=1e-12, atol=0))
    True
    """
    s = step("uniform", size=size, mode=mode, cval=cval, units=units)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)
