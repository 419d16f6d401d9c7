"""Rank filters: median, minimum, maximum, percentile, and the uniform (mean) filter.

Each is a registered local step (usable in :func:`tilevision.filters.chain`) and a
thin public function. The window is a box of ``size`` pixels per axis or a boolean
``footprint``; its halo comes from ``tilevision._halo`` (``size_radius`` /
``footprint_radius``), so tiles give the whole-array SciPy result at every pixel.
A window larger than the image is fine: along such an axis the image is merged
into one chunk and SciPy extends it by ``mode`` exactly as for the whole array.
The window is validated and resolved in ``_rank_window``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ._chain import chain
from ._rank_window import DEFAULT_SIZE, Size, Units, rank_step, window_params
from ._steps import BoundStep, Mode, StepContext, register_step, step

__all__ = ["maximum", "median", "minimum", "percentile", "uniform"]


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

    return rank_step("median", ctx, size, footprint, mode, cval, units, run)


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

    return rank_step("minimum", ctx, size, footprint, mode, cval, units, run)


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

    return rank_step("maximum", ctx, size, footprint, mode, cval, units, run)


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

    return rank_step("percentile", ctx, size, footprint, mode, cval, units, run)


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

    return rank_step("uniform", ctx, size, None, mode, cval, units, run)


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
        **window_params(size, footprint),
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
        **window_params(size, footprint),
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
        **window_params(size, footprint),
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
        **window_params(size, footprint),
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
