"""Hessian eigenvalues of the Gaussian-smoothed image, tile by tile (vesselness inputs).

Each block repeats the exact float operations of ``skimage.feature.hessian_matrix``
and ``hessian_matrix_eigvals``, so tiled results are identical to the whole-array
ones at every pixel; the halo comes from :func:`tilevision._halo.hessian_radius`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import combinations_with_replacement
from typing import Any

import numpy as np
import xarray as xr

from .._halo import check_sigma, hessian_radius, to_pixels
from ._chain import image_context, map_overlap_new_axis, unwrap
from ._smooth import Units
from ._steps import Mode, check_mode, periodic_axes

__all__ = ["hessian_eigenvalues"]


def _symmetric_eigvals(elems: list[Any]) -> Any:
    """Eigenvalues, largest first, from upper-diagonal entries (skimage's own formulas)."""
    if len(elems) == 3:  # 2-D: explicit formulas
        m00, m01, m11 = elems
        eigs = np.empty_like(m00, shape=(2, *m00.shape))
        eigs[:] = (m00 + m11) / 2
        hsqrtdet = np.sqrt(m01**2 + ((m00 - m11) / 2) ** 2)
        eigs[0] += hsqrtdet
        eigs[1] -= hsqrtdet
        return eigs
    ndim = elems[0].ndim
    matrices = np.zeros_like(elems[0], shape=(*elems[0].shape, ndim, ndim))
    for idx, (row, col) in enumerate(combinations_with_replacement(range(ndim), 2)):
        matrices[..., row, col] = elems[idx]
        matrices[..., col, row] = elems[idx]
    eigs = np.linalg.eigvalsh(matrices)[..., ::-1]
    return np.ascontiguousarray(np.moveaxis(eigs, -1, 0))


def _hessian_elems(
    image: Any,
    ndi: Any,
    sigmas: tuple[float, ...],
    mode: Any,
    cval: float,
    gaussian_derivatives: bool,
    inner: tuple[slice, ...] | None = None,
) -> list[Any]:
    """``skimage.feature.hessian_matrix(image, sigma, order="rc", ...)``, step for step.

    ``inner`` crops the smoothed image before the finite differences (see
    :func:`_hessian_block_func`).
    """
    ndim = image.ndim
    pairs = list(combinations_with_replacement(range(ndim), 2))
    if not gaussian_derivatives:
        smoothed = ndi.gaussian_filter(image, sigmas, mode=mode, cval=cval, truncate=4.0)
        if inner is not None:
            smoothed = smoothed[inner]
        gradients = np.gradient(smoothed)
        return [np.gradient(gradients[a0], axis=a1) for a0, a1 in pairs]
    truncate, scaled = _derivative_kernel(sigmas)
    orders = [[0] * d + [1] + [0] * (ndim - d - 1) for d in range(ndim)]

    def g(x: Any, order: list[int]) -> Any:
        return ndi.gaussian_filter(x, scaled, order=order, mode=mode, cval=cval, truncate=truncate)

    gradients = [g(image, orders[d]) for d in range(ndim)]
    return [g(gradients[a0], orders[a1]) for a0, a1 in pairs]


def _derivative_kernel(sigmas: tuple[float, ...]) -> tuple[float, tuple[float, ...]]:
    """skimage's truncate and sigma for two passes of first Gaussian derivatives.

    :func:`tilevision._halo.hessian_radius` derives the halo from the same rule.
    """
    truncate = 8 if all(s > 1 for s in sigmas) else 100
    sq1_2 = 1 / math.sqrt(2)
    return truncate, tuple(sq1_2 * s for s in sigmas)


def _hessian_block_func(
    dtype: np.dtype,
    ndi: Any,
    sigmas: tuple[float, ...],
    mode: Any,
    cval: float,
    gaussian_derivatives: bool,
    channel_axis: int | None,
) -> Callable[..., Any]:
    """``func(block, crop=None) -> eigenvalues`` (leading eigen axis; channels follow it).

    ``crop`` gives, per block axis, how many halo pixels beyond the TRUE image edge
    to drop before the finite differences (and to pad back after, for the trim):
    with ``mode="wrap"`` the halo there is periodic, right for the Gaussian but not
    for ``np.gradient``, which must take one-sided differences at the image edge.
    """

    def one(plane: Any, crop: list[tuple[int, int]] | None) -> Any:
        image = plane.astype(dtype, copy=False)
        inner = None
        if crop is not None:
            inner = tuple(slice(lo, n - hi) for (lo, hi), n in zip(crop, image.shape))
        eigs = _symmetric_eigvals(
            _hessian_elems(image, ndi, sigmas, mode, cval, gaussian_derivatives, inner)
        )
        if crop is not None:
            eigs = np.pad(eigs, [(0, 0), *crop])
        return eigs

    def func(block: Any, crop: Sequence[tuple[int, int]] | None = None) -> Any:
        if crop is not None and not any(lo or hi for lo, hi in crop):
            crop = None
        if channel_axis is None:
            return one(block, None if crop is None else list(crop))
        spatial_crop = None
        if crop is not None:
            spatial_crop = [c for i, c in enumerate(crop) if i != channel_axis]
        n = block.shape[channel_axis]
        planes = [one(np.take(block, i, axis=channel_axis), spatial_crop) for i in range(n)]
        return np.stack(planes, axis=channel_axis + 1)

    return func


def hessian_eigenvalues(
    image: Any,
    sigma: float | Sequence[float] = 1.0,
    *,
    mode: Mode | Sequence[Mode] = "constant",
    cval: float = 0.0,
    use_gaussian_derivatives: bool = False,
    units: Units = "pixel",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Eigenvalues of the Hessian of the Gaussian-smoothed image, per pixel, largest first.

    Identical, tile by tile, to ``skimage.feature.hessian_matrix_eigvals(
    skimage.feature.hessian_matrix(image, sigma, mode=mode, cval=cval, order="rc",
    use_gaussian_derivatives=...))``. These are the inputs of vesselness and
    ridge filters (Frangi, Sato, Meijering): tubes are bright where two eigenvalues
    are strongly negative and one is near zero.

    With ``use_gaussian_derivatives=False`` (scikit-image's current default) the
    image is smoothed with a Gaussian (truncate 4) and differentiated twice with
    ``np.gradient``: central differences inside, one-sided differences at the true
    image edge. The halo is the Gaussian radius + 2, so inside every tile the
    differences are central, and at the true edge the tile's edge is the image's, so
    the one-sided differences are the same as on the whole image. With ``True``,
    two passes of first Gaussian derivatives (sigma / √2, truncate 8, or 100 when
    any sigma ≤ 1, as in scikit-image); the halo is twice that radius, which is
    large for small sigma (chunks are merged to fit it).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is processed channel by channel).
    sigma : float or sequence of float, optional
        Gaussian standard deviation per spatial axis, in pixels, or in the image's
        physical units with ``units="physical"``.
    mode : {"constant", "nearest", "reflect", "mirror", "wrap"} or sequence, optional
        Boundary mode of the Gaussian at the true image edge (scikit-image's
        default ``"constant"``).
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    use_gaussian_derivatives : bool, optional
        Gaussian-derivative kernels instead of finite differences of the smoothed
        image. The default ``False`` is scikit-image's current behaviour
        (scikit-image warns that its default will change to ``True``).
    units : {"pixel", "physical"}, optional
        Unit of ``sigma``. The derivatives are per pixel either way.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type as ``image``, float32 (float64 for float64 input), with a new
    leading axis of size ndim (dim ``"eigen"`` for a DataArray): index 0 is the
    largest eigenvalue. Integer images are not rescaled to [0, 1] first, unlike
    scikit-image.

    See Also
    --------
    skimage.feature.hessian_matrix, skimage.feature.hessian_matrix_eigvals,
    skimage.filters.frangi

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage.feature import hessian_matrix, hessian_matrix_eigvals
    >>> x = da.random.default_rng(1).random((50, 60), chunks=(13, 17)).astype("float32")
    >>> eig = hessian_eigenvalues(x, 2.0)
    >>> eig.shape
    (2, 50, 60)
    >>> h = hessian_matrix(x.compute(), 2.0, order="rc", use_gaussian_derivatives=False)
    >>> bool((eig.compute() == hessian_matrix_eigvals(h)).all())
    True
    """
    array, spatial, spacing, cax = unwrap(image, channel_axis)
    ctx = image_context(array, spatial, spacing)
    ndim = ctx.ndim
    if ndim < 2:
        raise ValueError(
            f"hessian_eigenvalues needs a 2-D or 3-D image, got {ndim} spatial axis; for 1-D "
            "data the single eigenvalue is gaussian_laplace(image, sigma)."
        )
    sigmas = to_pixels(sigma, ctx.spacing, units, "sigma")
    check_sigma(sigmas)
    check_mode(mode, ndim)
    sizes = [n for i, n in enumerate(array.shape) if i != cax]
    if not use_gaussian_derivatives and min(sizes) < 2:
        raise ValueError(
            f"finite differences need ≥ 2 pixels along every axis, but the image has shape "
            f"{tuple(sizes)}; drop the single-pixel axis or use use_gaussian_derivatives=True."
        )
    dtype = ctx.float_dtype
    derivs = bool(use_gaussian_derivatives)
    func = _hessian_block_func(dtype, ctx.ndi, sigmas, mode, cval, derivs, cax)
    periodic = periodic_axes(mode, ndim)
    result = map_overlap_new_axis(
        array,
        func,
        hessian_radius(sigmas, derivs, ndim),
        size=ndim,
        dtype=dtype,
        spatial=spatial,
        channel_axis=cax,
        periodic=periodic,
        rechunk=rechunk,
        name="hessian_eigenvalues",
        token=(sigmas, mode, cval, derivs),
        edge_crop=not derivs and any(periodic),
    )
    if not isinstance(image, xr.DataArray):
        return result
    attrs = dict(image.attrs)
    history = (
        f"hessian_eigenvalues(sigma={sigma!r}, mode={mode!r}, cval={cval!r}, "
        f"use_gaussian_derivatives={use_gaussian_derivatives!r}, units={units!r})"
    )
    attrs["filters"] = [*list(attrs.get("filters", [])), history]
    return xr.DataArray(
        result, dims=("eigen", *image.dims), coords=image.coords, name=image.name, attrs=attrs
    )
