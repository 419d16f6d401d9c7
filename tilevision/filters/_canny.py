"""Canny edge detection in 2-D and 3-D with hysteresis resolved across tiles.

The plan, for a Dask image (every step lazy, memory per task bounded):

1. **Thresholds.** Absolute thresholds are known up front. With
   ``use_quantiles=True`` they are the exact quantiles of the whole image's
   gradient magnitude, found lazily by :func:`~tilevision.filters.global_percentiles`
   over a tiled magnitude map; the pass that needs them runs on a clone of the
   image graph started after them (no chunk is held in memory in between).
2. **Candidates** (one ``map_overlap``, halo :func:`canny_radius`): smooth →
   Sobel gradients → non-maximum suppression → a uint8 map, 0 = none,
   1 = weak (≥ low), 2 = strong (≥ high).
3. **Hysteresis across tiles.** Connected components of weak ∪ strong with full
   connectivity, by the engine of :func:`~tilevision.filters.label`
   (``LabelPlan``: tree-merged equivalences, then a relabelling pass).
   The candidates are stacked as two slabs, ``[candidate, strong]``, and labelled
   together with connectivity ``ndim + 1``: a strong pixel of the second slab
   touches only its own candidate twin and that twin's neighbours, so the slabs do
   not change the components, and the second slab carries each strong pixel's
   component id. The ids under strong pixels are gathered per chunk and merged by
   a tree of unions; the labels are then computed again (a clone started after
   that set is ready) and kept with a per-chunk ``np.isin``.

Clones leave the quantile thresholds shared (``bind(..., omit=...)``), so the
global reduction runs once. The non-maximum suppression kernels are in
``_canny_nms``, the hysteresis in ``_canny_hysteresis``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.graph_manipulation import bind

from .._dtype import check_numeric
from .._halo import CANNY_TRUNCATE, canny_radius, prepare_chunks, to_pixels
from ._canny_hysteresis import hysteresis_tiled, hysteresis_whole
from ._canny_nms import suppress_non_maxima
from ._chain import unwrap, wrap_like
from ._intensity import global_percentiles
from ._smooth import Units
from ._steps import Mode, check_mode

__all__ = ["canny"]

# --------------------------------------------------------------------------- conversion


def _float_type(dtype: np.dtype) -> np.dtype:
    """scikit-image's working float type: float32 for float16/32, float64 otherwise."""
    return np.dtype(np.float32 if dtype in (np.float16, np.float32) else np.float64)


def _dtype_max(dtype: np.dtype) -> Any:
    """The upper end of ``skimage.util.dtype_limits`` (1 for floats), or a clear error."""
    from skimage.util import dtype_limits

    if dtype.kind in "iu" and dtype.itemsize == 8:
        raise ValueError(
            f"canny does not support {dtype} images (as scikit-image): their range cannot "
            "be rescaled to [0, 1] exactly; cast to int32/uint32 if the values fit, or to "
            "float64."
        )
    try:
        return dtype_limits(np.empty(0, dtype), clip_negative=False)[1]
    except KeyError:
        raise ValueError(
            f"canny does not support {dtype} images; cast to float64 first."
        ) from None


def _to_float(block: np.ndarray, float_type: np.dtype) -> np.ndarray:
    """``skimage._shared.utils.convert_to_float(block, preserve_range=False)``."""
    from skimage.util import img_as_float

    if block.dtype == np.float16:
        return block.astype(np.float32)
    return img_as_float(block).astype(float_type, copy=False)


# --------------------------------------------------------------------------- per tile


def _smooth(
    block: np.ndarray,
    mask: np.ndarray | None,
    sigma: tuple[float, ...],
    mode: str,
    cval: float,
    float_type: np.dtype,
) -> np.ndarray:
    """Masked Gaussian smoothing, as ``skimage.feature._canny._preprocess`` does it."""
    import scipy.ndimage as ndi

    bleedover = mode == "constant" or mask is not None
    if mask is None:
        masked = block
        weights = np.ones(block.shape, dtype=float_type) if bleedover else None
    else:
        masked = np.zeros_like(block)
        masked[mask] = block[mask]
        weights = mask.astype(float_type)
    kwargs = dict(mode=mode, cval=cval, truncate=CANNY_TRUNCATE)
    smoothed = ndi.gaussian_filter(_to_float(masked, float_type), sigma, **kwargs)
    if weights is not None:
        bleed = ndi.gaussian_filter(weights, sigma, **kwargs) + np.finfo(float_type).eps
        smoothed /= bleed
    return smoothed


def _gradients(smoothed: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Sobel derivative along each axis (``ndi.sobel``, mode reflect) and their norm."""
    import scipy.ndimage as ndi

    grads = [ndi.sobel(smoothed, axis=k) for k in range(smoothed.ndim)]
    magnitude = grads[0] * grads[0]
    for g in grads[1:]:
        magnitude += g * g
    np.sqrt(magnitude, out=magnitude)
    return grads, magnitude


def _classify(suppressed: np.ndarray, high: Any) -> np.ndarray:
    """0 none, 1 weak, 2 strong (scikit-image: ``low_mask``, ``high_mask``)."""
    low_mask = suppressed > 0
    high_mask = low_mask & (suppressed >= high)
    return low_mask.astype(np.uint8) + high_mask


def _edge_crop(
    shape: tuple[int, ...],
    depth: Sequence[int],
    periodic: Sequence[bool],
    block_info: dict[Any, Any] | None,
) -> tuple[tuple[int, int], ...]:
    """Widths of a block's periodic halo beyond the true image edge, per axis."""
    if block_info is None or not any(periodic):
        return tuple((0, 0) for _ in shape)
    info = block_info[0]
    return tuple(
        (d if p and loc == 0 else 0, d if p and loc == n - 1 else 0)
        for d, p, loc, n in zip(depth, periodic, info["chunk-location"], info["num-chunks"])
    )


def _canny_block(
    block: np.ndarray,
    mask: np.ndarray | None,
    low: Any,
    high: Any,
    *,
    what: str,
    sigma: tuple[float, ...],
    mode: str,
    cval: float,
    float_type: np.dtype,
    depth: Sequence[int] = (),
    periodic: Sequence[bool] = (),
    block_info: dict[Any, Any] | None = None,
) -> np.ndarray:
    """Candidate map (``what="candidates"``) or gradient magnitude of one block.

    With mode "wrap" the block carries a periodic halo beyond the true image edge:
    it is smoothed with it, then cropped to the image before the Sobel (mode
    reflect) and NMS, which see the true edge as scikit-image does; the result is
    padded back with zeros (the halo is trimmed afterwards).
    """
    if mask is not None:
        mask = mask.astype(bool, copy=False)
    smoothed = _smooth(block, mask, sigma, mode, cval, float_type)
    crop = _edge_crop(block.shape, depth, periodic, block_info)
    inner = tuple(slice(lo, n - hi) for (lo, hi), n in zip(crop, block.shape))
    smoothed = smoothed[inner]
    grads, magnitude = _gradients(smoothed)
    if what == "magnitude":
        result = magnitude
    else:
        inner_mask = None if mask is None else mask[inner]
        suppressed = suppress_non_maxima(grads, magnitude, inner_mask, low)
        result = _classify(suppressed, high)
    if any(lo or hi for lo, hi in crop):
        result = np.pad(result, crop)
    return result


# --------------------------------------------------------------------------- public


def _check_thresholds(low: Any, high: Any, use_quantiles: bool, dtype_max: Any) -> tuple[Any, Any]:
    """scikit-image's threshold rules: defaults 0.1/0.2 (of the rescaled range, or as
    quantiles), given values divided by the dtype's maximum unless quantiles."""
    values = []
    for name, value, default in (("low", low, 0.1), ("high", high, 0.2)):
        if value is None:
            values.append(default)
            continue
        if not np.isscalar(value) or not np.isfinite(value):
            raise ValueError(f"{name}_threshold must be a finite number or None, got {value!r}.")
        if use_quantiles:
            if not 0.0 <= value <= 1.0:
                raise ValueError(
                    f"with use_quantiles=True, {name}_threshold is a quantile of the gradient "
                    f"magnitude and must be in [0, 1], got {value!r}; e.g. 0.9 for the 90th "
                    "percentile."
                )
            values.append(value)
        else:
            values.append(value / dtype_max)
    if values[1] < values[0]:
        raise ValueError(
            f"low_threshold ({low!r}) must be ≤ high_threshold ({high!r}) (defaults 0.1 and "
            "0.2 of the dtype range); swap them or lower low_threshold."
        )
    return values[0], values[1]


def _check_sigma(sigma: tuple[float, ...]) -> None:
    if any(not np.isfinite(s) or s < 0 for s in sigma):
        raise ValueError(
            f"sigma must be ≥ 0 on every axis, got {sigma}; use a width in pixels such as "
            "1.0 (0 skips the smoothing), or units='physical' for millimetres/micrometres."
        )


def _as_mask(mask: Any, image_array: Any, spatial: tuple[str, ...]) -> Any:
    if isinstance(mask, xr.DataArray):
        mask = mask.data
    elif not isinstance(mask, (np.ndarray, da.Array)):
        mask = np.asarray(mask)
    check_numeric(mask.dtype, "mask")
    if mask.shape != image_array.shape:
        raise ValueError(
            f"the mask has shape {mask.shape} but the image has shape {image_array.shape} "
            f"(dims {spatial}); give a mask of the image's shape."
        )
    if isinstance(image_array, np.ndarray):
        if isinstance(mask, da.Array):
            raise TypeError(
                "the image is a NumPy array but the mask is a Dask array; pass a NumPy mask, "
                "or da.from_array(image) for a lazy result."
            )
        return mask.astype(bool, copy=False)
    mask = mask if isinstance(mask, da.Array) else da.from_array(mask, chunks=image_array.chunks)
    return mask.astype(bool).rechunk(image_array.chunks)


def canny(
    image: Any,
    sigma: float | Sequence[float] = 1.0,
    low_threshold: float | None = None,
    high_threshold: float | None = None,
    *,
    mask: Any = None,
    use_quantiles: bool = False,
    mode: Mode = "constant",
    cval: float = 0.0,
    units: Units = "pixel",
    rechunk: bool = True,
) -> Any:
    """Canny edges of a 2-D or 3-D image, tile by tile, with hysteresis across tiles.

    In 2-D the result is identical, pixel for pixel, to
    ``skimage.feature.canny(image, sigma, low_threshold, high_threshold, mask,
    use_quantiles, mode=mode, cval=cval)`` on the whole image, for any chunking.
    The steps: masked Gaussian smoothing (``mode``/``cval`` at the image edge,
    renormalised by the smoothed mask where scikit-image does), Sobel gradients
    (``scipy.ndimage.sobel``), non-maximum suppression with bilinear interpolation
    along the gradient, and hysteresis: candidate pixels (NMS survivors ≥ low) are
    kept where their 8-connected component holds a pixel ≥ high. Pixels on the
    image border (or next to a masked-out pixel) are never edges.

    3-D is the natural extension: 3-D Gaussian, Sobel along z, y and x, and
    nearest-direction NMS: the step towards the neighbour along the gradient
    ``g`` has component ``sign(g_k)`` where ``|g_k| >= tan(22.5°) * max_j |g_j|``
    and 0 elsewhere (one of the 26 neighbours); a pixel survives where its
    magnitude is ≥ that of the neighbour one step forward and one step back.
    Hysteresis uses 26-connectivity.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D single-channel image (no ``c`` dim; select a channel first).
    sigma : float or sequence of float, optional
        Gaussian standard deviation per spatial axis (0 skips smoothing on that
        axis), in pixels, or in the image's physical units with ``units="physical"``.
    low_threshold, high_threshold : float, optional
        Hysteresis thresholds on the gradient magnitude, in the image's own
        intensity units (as scikit-image: divided by the dtype's maximum, e.g.
        255 for uint8, 1 for floats). Defaults: 0.1 and 0.2 of the dtype range.
    mask : array of bool, optional
        Where to detect edges (same shape as the image; NumPy, Dask or DataArray).
        Smoothing ignores the pixels outside it.
    use_quantiles : bool, optional
        Treat the thresholds as quantiles in [0, 1] of the whole image's gradient
        magnitude (default 0.1 and 0.2); computed exactly and lazily over all tiles.
    mode : {"constant", "nearest", "reflect", "mirror", "wrap"}, optional
        Boundary mode of the Gaussian at the true image edge (scikit-image's default
        ``"constant"``).
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    units : {"pixel", "physical"}, optional
        Unit of ``sigma``.
    rechunk : bool, optional
        Merge chunks smaller than the halo (:func:`canny_radius`) instead of raising.

    Returns
    -------
    Same type as ``image``, bool
        The edge map; lazy for Dask and DataArray input (a DataArray keeps its
        coords and attrs).

    Notes
    -----
    Unlike the other filters (see the dtype policy), canny converts the image as
    scikit-image does (``img_as_float``: integers to float64 rescaled to [0, 1] or
    [-1, 1], float16 to float32) so that thresholds mean the same as in
    ``skimage.feature.canny`` for every dtype. 64-bit integer images are refused,
    as in scikit-image.

    The candidate map is one ``map_overlap`` with a halo of :func:`canny_radius`.
    The hysteresis labels the candidates across tiles
    (:func:`~tilevision.filters.label`) and keeps the components that hold a strong
    pixel; the candidates are computed three times (twice for the labels, once
    more for the result) so that no pass holds the whole image in memory.
    ``use_quantiles`` adds the passes of
    :func:`~tilevision.filters.global_percentiles` over the gradient magnitude.

    See Also
    --------
    skimage.feature.canny, sobel, label

    Examples
    --------
    >>> import dask.array as da, skimage.data, skimage.feature
    >>> image = skimage.data.camera()[:128, :160]
    >>> edges = canny(da.from_array(image, chunks=(50, 45)), sigma=2)
    >>> edges.dtype
    dtype('bool')
    >>> bool((edges.compute() == skimage.feature.canny(image, sigma=2)).all())
    True
    """
    if isinstance(image, xr.DataArray) and "c" in image.dims:
        raise ValueError(
            f"canny works on a single-channel image, but this one has a 'c' dim of size "
            f"{image.sizes['c']}; select a channel first, e.g. image.isel(c=0)."
        )
    array, spatial, spacing, _ = unwrap(image)
    dtype = check_numeric(array.dtype)
    ndim = array.ndim
    if ndim not in (2, 3):
        raise ValueError(
            f"canny works on 2-D and 3-D images, got {ndim} spatial axes (shape "
            f"{array.shape}); select a plane or volume first."
        )
    if 0 in array.shape:
        raise ValueError(f"the image is empty (shape {array.shape}); there is nothing to filter.")
    sigmas = to_pixels(sigma, spacing, units, "sigma")
    _check_sigma(sigmas)
    if not isinstance(mode, str):
        raise ValueError(
            f"canny takes one mode for all axes (as scikit-image), got {mode!r}; pass a "
            "single mode such as 'constant'."
        )
    check_mode(mode, ndim)
    low, high = _check_thresholds(
        low_threshold, high_threshold, bool(use_quantiles), _dtype_max(dtype)
    )
    mask_array = None if mask is None else _as_mask(mask, array, spatial)
    spec = dict(sigma=sigmas, mode=mode, cval=float(cval), float_type=_float_type(dtype))
    history = (
        f"canny(sigma={sigma!r}, low_threshold={low_threshold!r}, "
        f"high_threshold={high_threshold!r}, mask={'given' if mask is not None else None}, "
        f"use_quantiles={use_quantiles!r}, mode={mode!r}, cval={cval!r}, units={units!r})"
    )

    if isinstance(array, np.ndarray):
        if use_quantiles:
            magnitude = _canny_block(array, mask_array, None, None, what="magnitude", **spec)
            low, high = np.percentile(magnitude, [100.0 * low, 100.0 * high])
        cand = _canny_block(array, mask_array, low, high, what="candidates", **spec)
        return wrap_like(image, hysteresis_whole(cand), history)

    depth = canny_radius(sigmas, ndim)
    periodic = [mode == "wrap"] * ndim
    array, eff = prepare_chunks(array, depth, rechunk=rechunk, axis_names=spatial)
    if mask_array is not None:
        mask_array = mask_array.rechunk(array.chunks)
    boundary = {i: "periodic" if p else "none" for i, p in enumerate(periodic)}
    spec.update(depth=eff, periodic=periodic)

    def per_block(source: da.Array, msk: Any, lo: Any, hi: Any, what: str) -> da.Array:
        ov = da.overlap.overlap(source, depth=dict(enumerate(eff)), boundary=boundary)
        ov_mask = None
        if msk is not None:
            ov_mask = da.overlap.overlap(msk, depth=dict(enumerate(eff)), boundary=boundary)
        out_dtype = spec["float_type"] if what == "magnitude" else np.dtype(np.uint8)
        token = tokenize(ov.name, None if ov_mask is None else ov_mask.name, lo, hi, what,
                         repr(sorted(spec.items())))  # fmt: skip
        out = da.map_blocks(
            _canny_block,
            ov,
            ov_mask,
            lo,
            hi,
            what=what,
            **spec,
            dtype=out_dtype,
            meta=np.empty((0,) * ndim, out_dtype),
            name=f"tilevision-canny-{what}-{token}",
        )
        return da.overlap.trim_internal(out, dict(enumerate(eff)), boundary=boundary)

    source, src_mask, omit = array, mask_array, []
    if use_quantiles:
        magnitude = per_block(array, mask_array, None, None, "magnitude")
        thresholds = global_percentiles(magnitude, [100.0 * low, 100.0 * high])
        low, high = thresholds[0], thresholds[1]
        omit = [thresholds]
        # candidates from a clone of the image read after the thresholds are known
        if mask_array is None:
            source = bind(array, [thresholds])
        else:
            source, src_mask = bind((array, mask_array), [thresholds])
    candidates = per_block(source, src_mask, low, high, "candidates")
    return wrap_like(image, hysteresis_tiled(candidates, omit), history)
