"""Non-maximum suppression for Canny: scikit-image's bilinear NMS in 2-D, nearest-direction in 3-D.

Both work on one block (the tile with its halo) and keep only pixels whose whole
3×3(×3) neighbourhood lies inside the block (and the mask), as scikit-image does
at the image border.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["NMS_CONE", "suppress_non_maxima"]


#: a 3-D gradient component counts towards the NMS step where |g_k| ≥ this × max|g|
#: (tan 22.5°: the same cones as the usual 8-direction quantisation in 2-D)
NMS_CONE = math.tan(math.pi / 8)


def _eroded(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """Pixels whose whole 3×3(×3) neighbourhood is inside the image (and the mask)."""
    import scipy.ndimage as ndi

    if mask is not None:
        structure = ndi.generate_binary_structure(len(shape), len(shape))
        return ndi.binary_erosion(mask, structure, border_value=0)
    eroded = np.zeros(shape, dtype=bool)
    eroded[tuple(slice(1, -1) for _ in shape)] = True
    return eroded


def _low_floor(low: Any) -> np.float32:
    """The low threshold as scikit-image's NMS sees it (a C float; 0 → 1e-14)."""
    value = np.float32(low)
    return np.float32(1e-14) if value == 0 else value


def _nms_2d(
    gi: np.ndarray, gj: np.ndarray, mag: np.ndarray, eroded: np.ndarray, low: Any
) -> np.ndarray:
    """``skimage.feature._canny_cy._nonmaximum_suppression_bilinear``, vectorised.

    The magnitude is compared with its bilinear interpolation between the two
    pixels on each side along the gradient, in the same float operations as the
    Cython code (``w`` and ``neighbour2 * w`` in the image's float type, the rest
    in double).
    """
    out = np.zeros_like(mag)
    x, y = np.nonzero(eroded & (mag >= _low_floor(low)))
    a, b = gi[x, y], gj[x, y]
    same = ((a >= 0) & (b >= 0)) | ((a <= 0) & (b <= 0))  # gradients of one sign
    other = ~same & (((a <= 0) & (b >= 0)) | ((a >= 0) & (b <= 0)))
    valid = same | other  # False only for NaN gradients
    x, y, a, b, same = x[valid], y[valid], a[valid], b[valid], same[valid]
    m = mag[x, y]
    abs_a, abs_b = np.abs(a), np.abs(b)
    along_i = np.where(same, abs_a > abs_b, abs_a >= abs_b)  # nearest neighbour along axis 0
    with np.errstate(divide="ignore", invalid="ignore"):
        w = np.where(along_i, abs_b / abs_a, abs_a / abs_b)
    s = np.where(same, 1, -1)  # the diagonal neighbour is (s, 1) / (-s, -1)
    di = np.where(along_i, s, 0)
    dj = np.where(along_i, 0, 1)
    w64, m64 = w.astype(np.float64), m.astype(np.float64)

    def not_above(sign: int) -> np.ndarray:
        near = mag[x + sign * di, y + sign * dj].astype(np.float64)
        diag = (mag[x + sign * s, y + sign] * w).astype(np.float64)
        return diag + near * (1.0 - w64) <= m64

    keep = not_above(1)
    keep &= not_above(-1)
    out[x[keep], y[keep]] = m[keep]
    return out


def _nms_nd(grads: list[np.ndarray], mag: np.ndarray, eroded: np.ndarray, low: Any) -> np.ndarray:
    """Nearest-direction non-maximum suppression (any ndim; used for 3-D).

    The step towards the neighbour along the gradient has component
    ``sign(g_k)`` where ``|g_k| >= NMS_CONE * max_j |g_j|`` (in the image's float
    type) and 0 elsewhere: one of the 26 neighbours in 3-D. A pixel is kept where
    its magnitude is ≥ the magnitude one step forward and one step back.
    """
    out = np.zeros_like(mag)
    idx = np.nonzero(eroded & (mag >= _low_floor(low)))
    g = [gk[idx] for gk in grads]
    largest = np.abs(g[0])
    for gk in g[1:]:
        largest = np.maximum(largest, np.abs(gk))
    cone = NMS_CONE * largest
    step = [np.where(np.abs(gk) >= cone, np.sign(gk), 0).astype(np.intp) for gk in g]
    m = mag[idx]
    forward = mag[tuple(i + d for i, d in zip(idx, step))]
    back = mag[tuple(i - d for i, d in zip(idx, step))]
    keep = (forward <= m) & (back <= m)
    out[tuple(i[keep] for i in idx)] = m[keep]
    return out


def suppress_non_maxima(
    grads: list[np.ndarray], magnitude: np.ndarray, mask: np.ndarray | None, low: Any
) -> np.ndarray:
    """The gradient magnitude where it is a local maximum along the gradient, else 0.

    Only pixels ≥ ``low`` whose 3×3(×3) neighbourhood lies inside the block (and
    ``mask``) are candidates: :func:`_nms_2d` for 2-D blocks, :func:`_nms_nd` otherwise.
    """
    eroded = _eroded(mask, magnitude.shape)
    if magnitude.ndim == 2:
        return _nms_2d(grads[0], grads[1], magnitude, eroded, low)
    return _nms_nd(grads, magnitude, eroded, low)
