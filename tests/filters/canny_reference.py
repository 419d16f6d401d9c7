"""A whole-array reference of tilevision's 3-D Canny (no tiling), for the tests.

Written for reading, not speed, and independently of ``tilevision.filters._canny``:
scikit-image's own smoothing and threshold rules, SciPy's Sobel, and the
nearest-direction non-maximum suppression spelled out one neighbour direction at a
time. The definition (from the ``canny`` docstring):

1. Smooth as ``skimage.feature.canny`` does: the image converted by
   ``img_as_float``, Gaussian with ``mode``/``cval`` (truncate 4), divided by the
   smoothed mask (+ eps) when ``mode="constant"`` or a mask is given.
2. Gradients ``g_k = scipy.ndimage.sobel(smoothed, axis=k)``, magnitude
   ``sqrt(g_0² + g_1² + g_2²)``.
3. Non-maximum suppression: the step ``d`` towards the neighbour along the
   gradient has ``d_k = sign(g_k)`` where ``|g_k| >= tan(22.5°) · max_j |g_j|``,
   else 0. A pixel survives where its magnitude is ≥ the magnitude at ``p + d`` and
   at ``p - d``, it is not on the image border (nor next to a masked-out pixel),
   and its magnitude is ≥ the low threshold (rounded to float32; 0 means 1e-14)
   and > 0.
4. Hysteresis: survivors are kept where their 26-connected component holds one
   with magnitude ≥ the high threshold.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.ndimage as ndi
import skimage.filters
from skimage.util import dtype_limits


def _thresholds(image, low, high, use_quantiles):
    dtype_max = dtype_limits(image, clip_negative=False)[1]
    low = 0.1 if low is None else (low if use_quantiles else low / dtype_max)
    high = 0.2 if high is None else (high if use_quantiles else high / dtype_max)
    return low, high


def _smooth(image, mask, sigma, mode, cval):
    float_type = np.float32 if image.dtype in (np.float16, np.float32) else np.float64
    kwargs = dict(sigma=sigma, mode=mode, cval=cval, preserve_range=False, truncate=4.0)
    if mask is None:
        smoothed = skimage.filters.gaussian(image, **kwargs)
        weights = np.ones(image.shape, float_type) if mode == "constant" else None
    else:
        smoothed = skimage.filters.gaussian(np.where(mask, image, image.dtype.type(0)), **kwargs)
        weights = mask.astype(float_type)
    if weights is not None:
        smoothed = smoothed / (
            skimage.filters.gaussian(weights, **kwargs) + np.finfo(float_type).eps
        )
    return smoothed


def _inside(mask, shape):
    """Pixels not on the border and with no masked-out neighbour."""
    if mask is None:
        return np.pad(np.ones(tuple(n - 2 for n in shape), bool), 1)
    return ndi.binary_erosion(mask, np.ones((3,) * len(shape), bool), border_value=0)


def _at_offset(values, offset):
    """``values[p + offset]`` for every pixel p (edge-padded; border pixels never count)."""
    padded = np.pad(values, 1, mode="edge")
    return padded[tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, values.shape))]


def canny_3d(
    image,
    sigma=1.0,
    low_threshold=None,
    high_threshold=None,
    *,
    mask=None,
    use_quantiles=False,
    mode="constant",
    cval=0.0,
):
    """The 3-D Canny edge map of ``image`` (bool), as defined above."""
    image = np.asarray(image)
    assert image.ndim == 3
    low, high = _thresholds(image, low_threshold, high_threshold, use_quantiles)
    smoothed = _smooth(image, mask, sigma, mode, cval)
    g = [ndi.sobel(smoothed, axis=k) for k in range(3)]
    magnitude = np.sqrt(g[0] ** 2 + g[1] ** 2 + g[2] ** 2)
    if use_quantiles:
        low, high = np.percentile(magnitude, [100.0 * low, 100.0 * high])

    largest = np.maximum(np.maximum(np.abs(g[0]), np.abs(g[1])), np.abs(g[2]))
    direction = np.stack(
        [np.where(np.abs(gk) >= math.tan(math.pi / 8) * largest, np.sign(gk), 0) for gk in g]
    )
    local_max = np.zeros(image.shape, bool)
    for offset in itertools.product((-1, 0, 1), repeat=3):
        if offset == (0, 0, 0):
            continue
        here = np.all(direction == np.reshape(offset, (3, 1, 1, 1)), axis=0)
        forward = _at_offset(magnitude, offset)
        backward = _at_offset(magnitude, tuple(-o for o in offset))
        local_max |= here & (forward <= magnitude) & (backward <= magnitude)

    low_floor = np.float32(low) if np.float32(low) != 0 else np.float32(1e-14)
    weak = _inside(mask, image.shape) & local_max & (magnitude >= low_floor) & (magnitude > 0)
    strong = weak & (magnitude >= high)

    labels, _ = ndi.label(weak, np.ones((3, 3, 3), bool))
    return np.isin(labels, np.unique(labels[strong])) & weak
