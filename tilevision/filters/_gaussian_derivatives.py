"""Gaussian derivatives: gradient magnitude, Laplacian of Gaussian, difference of Gaussians.

Every filter here repeats, block by block, the exact sequence of float operations
of its whole-array scikit-image/SciPy reference, so tiled results are identical to
it at every pixel (seams and true image borders included).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .._halo import check_sigma, dog_radius, gaussian_radius, to_pixels
from ._chain import chain
from ._smooth import Units
from ._steps import BoundStep, Mode, StepContext, check_mode, periodic_axes, register_step, step

__all__ = ["difference_of_gaussians", "gaussian_gradient_magnitude", "gaussian_laplace"]


# --------------------------------------------------------------------------- helpers


def _check_truncate(truncate: float) -> None:
    if not truncate > 0:
        raise ValueError(f"truncate must be > 0, got {truncate}; use e.g. truncate=4.0.")


def _gaussian_sigmas(
    ctx: StepContext, sigma: Any, units: Units, name: str = "sigma"
) -> tuple[float, ...]:
    sigmas = to_pixels(sigma, ctx.spacing, units, name)
    check_sigma(sigmas)
    return sigmas


# --------------------------------------------------------------------------- steps


def _gaussian_derivative_step(
    name: str,
    scipy_func: str,
    ctx: StepContext,
    sigma: Any,
    mode: Any,
    cval: float,
    truncate: float,
    units: Units,
) -> BoundStep:
    sigmas = _gaussian_sigmas(ctx, sigma, units)
    check_mode(mode, ctx.ndim)
    _check_truncate(truncate)
    dtype = ctx.float_dtype
    op = getattr(ctx.ndi, scipy_func)

    def func(block: Any) -> Any:
        return op(block.astype(dtype, copy=False), sigmas, mode=mode, cval=cval, truncate=truncate)

    radius = gaussian_radius(sigmas, truncate, ctx.ndim)
    return BoundStep(name, func, radius, dtype, periodic=periodic_axes(mode, ctx.ndim))


@register_step("gaussian_gradient_magnitude")
def _ggm_step(
    ctx: StepContext,
    sigma: float | Sequence[float],
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
) -> BoundStep:
    """Gradient magnitude with Gaussian derivatives (scipy.ndimage.gaussian_gradient_magnitude)."""
    return _gaussian_derivative_step(
        "gaussian_gradient_magnitude",
        "gaussian_gradient_magnitude",
        ctx,
        sigma,
        mode,
        cval,
        truncate,
        units,
    )


@register_step("gaussian_laplace")
def _log_step(
    ctx: StepContext,
    sigma: float | Sequence[float],
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
) -> BoundStep:
    """Laplacian of Gaussian (scipy.ndimage.gaussian_laplace)."""
    return _gaussian_derivative_step(
        "gaussian_laplace", "gaussian_laplace", ctx, sigma, mode, cval, truncate, units
    )


@register_step("difference_of_gaussians")
def _dog_step(
    ctx: StepContext,
    low_sigma: float | Sequence[float],
    high_sigma: float | Sequence[float] | None = None,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
) -> BoundStep:
    """Band-pass Gaussian(low_sigma) - Gaussian(high_sigma) (skimage difference_of_gaussians)."""
    low = _gaussian_sigmas(ctx, low_sigma, units, "low_sigma")
    if high_sigma is None:
        high = tuple(s * 1.6 for s in low)
    else:
        high = _gaussian_sigmas(ctx, high_sigma, units, "high_sigma")
    if any(h < lo for h, lo in zip(high, low)):
        raise ValueError(
            f"high_sigma {high} must be ≥ low_sigma {low} on every axis (in pixels); swap "
            "them, or leave high_sigma=None for 1.6 × low_sigma."
        )
    check_mode(mode, ctx.ndim)
    _check_truncate(truncate)
    dtype, ndi = ctx.float_dtype, ctx.ndi

    def func(block: Any) -> Any:
        image = block.astype(dtype, copy=False)
        im1 = ndi.gaussian_filter(image, low, mode=mode, cval=cval, truncate=truncate)
        im2 = ndi.gaussian_filter(image, high, mode=mode, cval=cval, truncate=truncate)
        return im1 - im2

    return BoundStep(
        "difference_of_gaussians",
        func,
        dog_radius(low, high, truncate, ctx.ndim),
        dtype,
        periodic=periodic_axes(mode, ctx.ndim),
    )


# --------------------------------------------------------------------------- public


def gaussian_gradient_magnitude(
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
    """Gradient magnitude with Gaussian derivatives, identical to SciPy's, tile by tile.

    ``sqrt(sum_i (image * dG/dx_i) ** 2)`` as ``scipy.ndimage.gaussian_gradient_magnitude``
    computes it. The halo is the Gaussian kernel radius ``int(truncate * sigma + 0.5)``.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    sigma : float or sequence of float
        Gaussian standard deviation per spatial axis, in pixels, or in the image's
        physical units with ``units="physical"``.
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"} or sequence, optional
        Boundary mode at the true image edge. The default ``"nearest"`` is that of
        :func:`tilevision.filters.gaussian` and scikit-image's Gaussian filters;
        SciPy's own default is ``"reflect"``.
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
    scipy.ndimage.gaussian_gradient_magnitude, sobel

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> y = gaussian_gradient_magnitude(x, 1.5)
    >>> ref = ndi.gaussian_gradient_magnitude(x.compute(), 1.5, mode="nearest")
    >>> bool((y.compute() == ref).all())
    True
    """
    s = step(
        "gaussian_gradient_magnitude",
        sigma=sigma,
        mode=mode,
        cval=cval,
        truncate=truncate,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def gaussian_laplace(
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
    """Laplacian of Gaussian (LoG), identical to ``scipy.ndimage.gaussian_laplace``.

    Not scale-normalised: multiply by ``sigma ** 2`` for blob detection across
    scales. The halo is the Gaussian kernel radius ``int(truncate * sigma + 0.5)``.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    sigma : float or sequence of float
        Gaussian standard deviation per spatial axis, in pixels, or in the image's
        physical units with ``units="physical"``.
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"} or sequence, optional
        Boundary mode at the true image edge. The default ``"nearest"`` is that of
        :func:`tilevision.filters.gaussian`; SciPy's own default is ``"reflect"``.
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
    scipy.ndimage.gaussian_laplace, difference_of_gaussians, laplace

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> y = gaussian_laplace(x, 2.0)
    >>> bool((y.compute() == ndi.gaussian_laplace(x.compute(), 2.0, mode="nearest")).all())
    True
    """
    s = step("gaussian_laplace", sigma=sigma, mode=mode, cval=cval, truncate=truncate, units=units)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def difference_of_gaussians(
    image: Any,
    low_sigma: float | Sequence[float],
    high_sigma: float | Sequence[float] | None = None,
    *,
    mode: Mode | Sequence[Mode] = "nearest",
    cval: float = 0.0,
    truncate: float = 4.0,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Difference of Gaussians band-pass, identical to ``skimage.filters.difference_of_gaussians``.

    ``gaussian(image, low_sigma) - gaussian(image, high_sigma)`` in one pass over the
    tiles; the halo is the larger of the two Gaussian radii.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    low_sigma : float or sequence of float
        Standard deviation of the narrower Gaussian, per spatial axis.
    high_sigma : float or sequence of float, optional
        Standard deviation of the wider Gaussian (≥ ``low_sigma`` on every axis);
        default ``1.6 * low_sigma`` (after conversion to pixels), as in scikit-image.
    mode : {"nearest", "reflect", "mirror", "constant", "wrap"} or sequence, optional
        Boundary mode at the true image edge (scikit-image's default ``"nearest"``).
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    truncate : float, optional
        Kernel radius in standard deviations.
    units : {"pixel", "physical"}, optional
        Unit of both sigmas.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type as ``image``, float32 (float64 for float64 input). Integer images
    are not rescaled to [0, 1] first, unlike scikit-image.

    See Also
    --------
    skimage.filters.difference_of_gaussians, gaussian_laplace

    Examples
    --------
    >>> import dask.array as da, skimage.filters
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> y = difference_of_gaussians(x, 1.0, 3.0)
    >>> ref = skimage.filters.difference_of_gaussians(x.compute(), 1.0, 3.0)
    >>> bool((y.compute() == ref).all())
    True
    """
    s = step(
        "difference_of_gaussians",
        low_sigma=low_sigma,
        high_sigma=high_sigma,
        mode=mode,
        cval=cval,
        truncate=truncate,
        units=units,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)
