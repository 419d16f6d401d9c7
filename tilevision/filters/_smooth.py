"""Smoothing filters: Gaussian (more to come: median, uniform, minimum, maximum, percentile)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from .._halo import check_sigma, gaussian_radius, to_pixels
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

__all__ = ["gaussian"]

Units = Literal["pixel", "physical"]


@register_step("gaussian")
def _gaussian_step(
    ctx: StepContext,
    sigma: float | Sequence[float],
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
) -> BoundStep:
    """Gaussian smoothing (scipy.ndimage.gaussian_filter)."""
    sigmas = to_pixels(sigma, ctx.spacing, units, "sigma")
    check_sigma(sigmas)
    check_mode(mode, ctx.ndim)
    if truncate <= 0:
        raise ValueError(f"truncate must be > 0, got {truncate}.")
    dtype = ctx.float_dtype
    ndi = ctx.ndi

    def func(block: Any) -> Any:
        return ndi.gaussian_filter(
            block.astype(dtype, copy=False), sigmas, mode=mode, cval=cval, truncate=truncate
        )

    return BoundStep(
        "gaussian",
        func,
        gaussian_radius(sigmas, truncate, ctx.ndim),
        dtype,
        periodic=periodic_axes(mode, ctx.ndim),
    )


def gaussian(
    image: Any,
    sigma: float | Sequence[float],
    *,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Gaussian smoothing, tile by tile, identical to the whole-array SciPy result.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    sigma : float or sequence of float
        Standard deviation per spatial axis, in pixels, or in the image's physical
        units with ``units="physical"``.
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"}, optional
        How the image is extended beyond its true edge (SciPy's meaning).
        The default follows ``skimage.filters.gaussian``.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    truncate : float, optional
        Kernel radius in standard deviations.
    units : {"pixel", "physical"}, optional
        Unit of ``sigma``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type as ``image``, float32 (float64 for float64 input).

    See Also
    --------
    scipy.ndimage.gaussian_filter, skimage.filters.gaussian

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> y = gaussian(x, sigma=2)
    >>> bool((y.compute() == ndi.gaussian_filter(x.compute(), 2, mode="nearest")).all())
    True
    """
    s = step("gaussian", sigma=sigma, mode=mode, cval=cval, truncate=truncate, units=units)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)
