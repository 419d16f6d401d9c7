"""Edges: Sobel/Scharr/Prewitt edge magnitudes and derivatives, and the discrete Laplacian.

Every filter here repeats, block by block, the exact sequence of float operations
of its whole-array scikit-image/SciPy reference, so tiled results are identical to
it at every pixel (seams and true image borders included). The Gaussian
derivatives (gradient magnitude, LoG, DoG) are in ``_gaussian_derivatives``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._halo import footprint_radius, size_radius
from ._chain import chain
from ._steps import BoundStep, Mode, StepContext, check_mode, periodic_axes, register_step, step

__all__ = ["laplace", "prewitt", "scharr", "sobel"]


Axis = int | str | Sequence[int | str] | None

# skimage.filters.edges weights, copied so that kernels match it bit for bit
_EDGE_WEIGHTS = np.array([1, 0, -1])
_SMOOTH_WEIGHTS = {
    "sobel": np.array([1, 2, 1]) / 4,
    "scharr": np.array([3, 10, 3]) / 16,
    "prewitt": np.full((3,), 1 / 3),
}


# --------------------------------------------------------------------------- helpers


def _edge_axes(axis: Axis, ctx: StepContext) -> tuple[int, ...]:
    """Resolve ``axis`` (None, index, dim name or a sequence of them) to spatial indices."""
    ndim, names = ctx.ndim, ctx.axis_names
    if axis is None:
        return tuple(range(ndim))
    items = [axis] if isinstance(axis, (int, str, np.integer)) else list(axis)
    out: list[int] = []
    for a in items:
        if isinstance(a, str) and a in names:
            out.append(names.index(a))
        elif isinstance(a, (int, np.integer)) and not isinstance(a, bool) and -ndim <= a < ndim:
            out.append(int(a) % ndim)
        else:
            raise ValueError(
                f"axis {a!r} is not a spatial axis of this {ndim}-D image (dims {names}); "
                f"use an index in {-ndim}..{ndim - 1}, a dim name, or axis=None for the "
                "gradient magnitude."
            )
    if not out or len(set(out)) != len(out):
        raise ValueError(f"axis must name distinct spatial axes, got {axis!r}.")
    return tuple(out)


def _edge_kernel(smooth: np.ndarray, ndim: int, edge_dim: int) -> np.ndarray:
    """skimage's n-D kernel: edge weights along ``edge_dim``, smoothing along the rest."""
    shape = [1] * ndim
    shape[edge_dim] = -1
    kernel = np.reshape(_EDGE_WEIGHTS, shape)
    for smooth_dim in list(set(range(ndim)) - {edge_dim}):
        shape = [1] * ndim
        shape[smooth_dim] = -1
        kernel = kernel * np.reshape(smooth, shape)
    return kernel


# --------------------------------------------------------------------------- steps


def _edge_step(name: str, ctx: StepContext, axis: Axis, mode: Mode, cval: float) -> BoundStep:
    if not isinstance(mode, str):
        raise ValueError(
            f"{name} takes one mode for all axes (as skimage.filters.{name}), got {mode!r}; "
            "pass a single mode such as 'reflect'."
        )
    check_mode(mode, ctx.ndim)
    axes = _edge_axes(axis, ctx)
    magnitude = len(axes) > 1
    smooth = _SMOOTH_WEIGHTS[name]
    edge = _EDGE_WEIGHTS[::-1]  # convolution → correlation
    dtype, ndi, ndim = ctx.float_dtype, ctx.ndi, ctx.ndim

    def order(edge_dim: int) -> list[int]:
        # the separable form of skimage's n-D kernel: 3 taps per axis instead of
        # 3**ndim; smoothing first, so that mode="constant" pads exactly like the
        # n-D convolution (the smoothing weights sum to 1)
        return [d for d in range(ndim) if d != edge_dim] + [edge_dim]

    def passes(current: Any, dims: list[int], edge_dim: int, out: Any, scratch: Any) -> Any:
        # passes alternate between two buffers so that the last one lands in ``out``
        buffers = [out, scratch] if len(dims) % 2 else [scratch, out]
        for i, d in enumerate(dims):
            weights = edge if d == edge_dim else smooth
            target = buffers[i % 2]
            ndi.correlate1d(current, weights, axis=d, output=target, mode=mode, cval=cval)
            current = target
        return out

    def derivative(image: Any, edge_dim: int, out: Any, scratch: Any) -> Any:
        return passes(image, order(edge_dim), edge_dim, out, scratch)

    def func(block: Any) -> Any:
        image = np.ascontiguousarray(block, dtype=dtype)  # once, not in every pass
        output = np.empty_like(image)
        scratch = np.empty_like(image)
        if not magnitude:
            return derivative(image, axes[0], output, scratch)
        # derivatives whose first pass is the same (in 3-D: smoothing along z for the y
        # and x derivatives) share it; the same operations on the same values, so the
        # result does not change by a bit
        first = [order(d)[0] for d in axes]
        shared = {a: None for a in first if first.count(a) > 1}
        for a in shared:
            shared[a] = np.empty_like(image)
            ndi.correlate1d(image, smooth, axis=a, output=shared[a], mode=mode, cval=cval)

        def gradient(d: int, out: Any) -> Any:
            dims = order(d)
            if dims[0] in shared:
                return passes(shared[dims[0]], dims[1:], d, out, scratch)
            return passes(image, dims, d, out, scratch)

        # sum of squares in skimage's order (0 + g0**2 + g1**2 + ...), then the root
        gradient(axes[0], output)
        output *= output
        square = np.empty_like(image)
        for d in axes[1:]:
            gradient(d, square)
            square *= square
            output += square
        np.sqrt(output, out=output)
        output /= np.sqrt(ndim, dtype=output.dtype)
        return output

    radius = footprint_radius(_edge_kernel(smooth, ndim, axes[0]))  # 3 taps: 1 pixel
    return BoundStep(name, func, radius, dtype, periodic=periodic_axes(mode, ndim))


@register_step("sobel")
def _sobel_step(
    ctx: StepContext, axis: Axis = None, mode: Mode = "reflect", cval: float = 0.0
) -> BoundStep:
    """Sobel edge magnitude or signed derivative along one axis (skimage.filters.sobel)."""
    return _edge_step("sobel", ctx, axis, mode, cval)


@register_step("scharr")
def _scharr_step(
    ctx: StepContext, axis: Axis = None, mode: Mode = "reflect", cval: float = 0.0
) -> BoundStep:
    """Scharr edge magnitude or signed derivative along one axis (skimage.filters.scharr)."""
    return _edge_step("scharr", ctx, axis, mode, cval)


@register_step("prewitt")
def _prewitt_step(
    ctx: StepContext, axis: Axis = None, mode: Mode = "reflect", cval: float = 0.0
) -> BoundStep:
    """Prewitt edge magnitude or signed derivative along one axis (skimage.filters.prewitt)."""
    return _edge_step("prewitt", ctx, axis, mode, cval)


@register_step("laplace")
def _laplace_step(
    ctx: StepContext, mode: Mode | Sequence[Mode] = "reflect", cval: float = 0.0
) -> BoundStep:
    """Discrete Laplacian, [1, -2, 1] per axis (scipy.ndimage.laplace)."""
    check_mode(mode, ctx.ndim)
    dtype, ndi = ctx.float_dtype, ctx.ndi

    def func(block: Any) -> Any:
        return ndi.laplace(block.astype(dtype, copy=False), mode=mode, cval=cval)

    radius = size_radius(3, ctx.ndim)  # [1, -2, 1] along each axis
    return BoundStep("laplace", func, radius, dtype, periodic=periodic_axes(mode, ctx.ndim))


# --------------------------------------------------------------------------- public: edges

_EDGE_DOC = """{title}, tile by tile, equal to ``skimage.filters.{name}`` to rounding.

    The tiled result is identical to the same filter on the whole array, at every
    pixel. It is computed separably (3 taps per axis instead of scikit-image's
    ``3**ndim``-tap kernel), so it agrees with scikit-image to float rounding
    (about 1e-7 relative in float32), not bit for bit.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
        A NumPy/Dask array with a colour axis is a 3-D volume unless
        ``channel_axis`` names that axis.
    axis : int, str or sequence, optional
        ``None`` (default): the edge magnitude
        ``sqrt(sum_i {name}(image, axis=i) ** 2 / ndim)``. An int (spatial axis
        index, negative allowed) or a dim name (``"x"``): the signed derivative
        along that axis. A sequence: the magnitude over those axes (still divided
        by ``ndim``, as scikit-image does).
    mode : {{"reflect", "nearest", "mirror", "constant", "wrap"}}, optional
        Boundary mode at the true image edge (one for all axes, as in
        ``scipy.ndimage.convolve``).
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo (1 pixel) instead of raising.

    Returns
    -------
    Same type as ``image``, float32 (float64 for float64 input).

    Notes
    -----
    Unlike scikit-image, integer images are not rescaled to [0, 1] first (the
    result matches ``skimage.filters.{name}(image.astype(np.float32))``), and a
    negative ``axis`` means the same axis as its positive twin (scikit-image
    0.26 mixes in extra smoothing for negative axes).

    See Also
    --------
    skimage.filters.{name}, gaussian_gradient_magnitude

    Examples
    --------
    >>> import dask.array as da, skimage.filters
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> y = {name}(x)
    >>> import numpy as np
    >>> bool(np.allclose(y.compute(), skimage.filters.{name}(x.compute()), rtol=1e-5, atol=1e-6))
    True
    >>> dy = {name}(x, axis=0)   # signed derivative along y
    """


def sobel(
    image: Any,
    *,
    axis: Axis = None,
    mode: Mode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    s = step("sobel", axis=axis, mode=mode, cval=cval)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def scharr(
    image: Any,
    *,
    axis: Axis = None,
    mode: Mode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    s = step("scharr", axis=axis, mode=mode, cval=cval)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


def prewitt(
    image: Any,
    *,
    axis: Axis = None,
    mode: Mode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    s = step("prewitt", axis=axis, mode=mode, cval=cval)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)


sobel.__doc__ = _EDGE_DOC.format(name="sobel", title="Sobel edge magnitude or derivative")
scharr.__doc__ = _EDGE_DOC.format(name="scharr", title="Scharr edge magnitude or derivative")
prewitt.__doc__ = _EDGE_DOC.format(name="prewitt", title="Prewitt edge magnitude or derivative")


def laplace(
    image: Any,
    *,
    mode: Mode | Sequence[Mode] = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Discrete Laplacian, tile by tile, identical to ``scipy.ndimage.laplace``.

    The sum over axes of the second difference ``[1, -2, 1]``. This is SciPy's
    operator: ``skimage.filters.laplace(image, ksize=3)`` convolves with the same
    stencil of the opposite sign (and agrees with ``-laplace(image)`` only to
    rounding, as it sums in another order).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is filtered channel by channel).
    mode : {"reflect", "nearest", "mirror", "constant", "wrap"} or sequence, optional
        Boundary mode at the true image edge (SciPy's default), or one per axis.
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo (1 pixel) instead of raising.

    Returns
    -------
    Same type as ``image``, float32 (float64 for float64 input).

    See Also
    --------
    scipy.ndimage.laplace, gaussian_laplace

    Examples
    --------
    >>> import dask.array as da, scipy.ndimage as ndi
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> bool((laplace(x).compute() == ndi.laplace(x.compute())).all())
    True
    """
    s = step("laplace", mode=mode, cval=cval)
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)
