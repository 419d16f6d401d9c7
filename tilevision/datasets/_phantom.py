"""A synthetic chest-CT phantom, generated lazily block by block.

Every voxel is a pure function of its global ``(z, y, x)`` index, the phantom's
parameters and the seed, so the result does not depend on the chunking and a
block never needs its neighbours. The anatomy is drawn in coordinates normalised
to the field of view (it scales to any shape); lesion sizes and textures are in
millimetres.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from .._image import make_image
from ._noise import check_chunks, check_seed, check_shape, hash_normal, seed_key

__all__ = ["PHANTOM_LABELS", "ct_phantom"]

#: Names of the label-map values, in order (0 … 4).
PHANTOM_LABELS: tuple[str, ...] = ("air", "body", "lung", "bone", "lesion")

# Tissue codes used inside a block (finer than the labels).
_AIR, _FAT, _SOFT, _LUNG, _BONE, _DISC, _LESION = range(7)
_TISSUE_LABEL = np.array([0, 1, 1, 2, 3, 1, 4], dtype=np.uint8)
_TISSUE_HU = np.array([-1000.0, -100.0, 40.0, -850.0, 700.0, 80.0, 0.0], dtype=np.float32)
_SOFT_HU = 40.0
_INT16 = np.iinfo(np.int16)


@dataclass(frozen=True)
class _Params:
    shape: tuple[int, int, int]
    spacing: tuple[float, float, float]
    seed: int
    noise: float
    waves: tuple[tuple[float, ...], ...]  # texture plane waves: (kz, ky, kx, phase) in rad/mm
    lesions: tuple[tuple[float, ...], ...]  # c(3) r(3) R(9) hu k(3) phase  -> 20 floats


def _normalised(idx: np.ndarray, n: int) -> np.ndarray:
    """Map voxel indices to [-1, 1] across the field of view (voxel centres)."""
    return (idx + 0.5) * (2.0 / n) - 1.0


def _paint(out: np.ndarray, mask: np.ndarray, code: int) -> None:
    out[np.broadcast_to(mask, out.shape)] = code


def _tissue(z: np.ndarray, y: np.ndarray, x: np.ndarray, p: _Params) -> np.ndarray:
    """Tissue code (no lesions) for open-grid float index arrays ``z, y, x``."""
    nz, ny, nx = p.shape
    f32 = np.float32
    w = ((z + 0.5) / nz).astype(f32)
    zmm = (z * p.spacing[0]).astype(f32)
    xn, yn = _normalised(x, nx).astype(f32), _normalised(y, ny).astype(f32)
    shape = np.broadcast_shapes(z.shape, y.shape, x.shape)
    out = np.zeros(shape, dtype=np.uint8)

    # Body: an elliptic cylinder whose width breathes slowly along z; fat in the outer 10 %.
    swell = f32(1.0) + f32(0.03) * np.sin(f32(3.0 * np.pi) * w)
    bx, by = f32(0.92) * swell, f32(0.72) * swell
    rb = np.sqrt((xn / bx) ** 2 + (yn / by) ** 2)
    _paint(out, rb <= 1.0, _FAT)
    _paint(out, rb <= 0.9, _SOFT)

    # Lungs: two ellipses that grow towards the middle of the volume (the heart side is
    # smaller), pushed slightly apart by the mediastinum.
    grow = f32(0.55) + f32(0.45) * np.sin(f32(np.pi) * (f32(0.1) + f32(0.8) * w))
    semi_x = np.where(xn < 0, f32(0.27), f32(0.25)) * grow
    rl = ((np.abs(xn) - f32(0.40)) / semi_x) ** 2 + ((yn + f32(0.02)) / (f32(0.44) * grow)) ** 2
    _paint(out, rl <= 1.0, _LUNG)

    # Ribs: sloping bands in the chest wall; an axial slice cuts them into arcs.
    sin_theta = (yn / by) / np.maximum(rb, f32(1e-9))
    phase = zmm / f32(30.0) + f32(0.8) * sin_theta
    phase -= np.floor(phase)
    gap = ((np.abs(xn) < 0.2) & (yn < 0)) | ((np.abs(xn) < 0.15) & (yn > 0))
    _paint(out, (rb >= 0.80) & (rb <= 0.87) & (phase < 0.25) & ~gap, _BONE)

    # Sternum, vertebral body (discs between vertebrae) and the posterior arch.
    _paint(out, (xn / 0.09) ** 2 + ((yn + 0.60) / 0.035) ** 2 <= 1.0, _BONE)
    vertebra = (xn / 0.11) ** 2 + ((yn - 0.38) / 0.10) ** 2 <= 1.0
    disc = np.mod(zmm, f32(28.0)) < 5.0
    _paint(out, vertebra, _BONE)
    _paint(out, vertebra & disc, _DISC)
    ra = np.sqrt((xn / 1.1) ** 2 + (yn - 0.54) ** 2)
    _paint(out, (ra >= 0.04) & (ra <= 0.075), _BONE)
    return out


def _lesion_masks(
    z: np.ndarray, y: np.ndarray, x: np.ndarray, inside: np.ndarray, p: _Params
) -> list[tuple[int, tuple[slice, ...], np.ndarray, tuple[np.ndarray, ...]]]:
    """``(index, sub-block slices, mask, offsets in mm)`` of the lesions in the block."""
    dz, dy, dx = p.spacing
    zmm, ymm, xmm = z.ravel() * dz, y.ravel() * dy, x.ravel() * dx
    out = []
    for i, les in enumerate(p.lesions):
        c, r, rot = np.array(les[0:3]), np.array(les[3:6]), np.array(les[6:15]).reshape(3, 3)
        reach = float(r.max())
        sl = []
        for coord, ci in zip((zmm, ymm, xmm), c, strict=True):
            lo = np.searchsorted(coord, ci - reach, side="left")
            hi = np.searchsorted(coord, ci + reach, side="right")
            sl.append(slice(int(lo), int(hi)))
        if any(s.stop <= s.start for s in sl):
            continue
        pz = (zmm[sl[0]] - c[0])[:, None, None]
        py = (ymm[sl[1]] - c[1])[None, :, None]
        px = (xmm[sl[2]] - c[2])[None, None, :]
        q = [rot[k, 0] * pz + rot[k, 1] * py + rot[k, 2] * px for k in range(3)]
        rho = (q[0] / r[0]) ** 2 + (q[1] / r[1]) ** 2 + (q[2] / r[2]) ** 2
        mask = (rho <= 1.0) & inside[tuple(sl)]
        if mask.any():
            out.append((i, tuple(sl), mask, (pz, py, px)))
    return out


def _wave(z: np.ndarray, y: np.ndarray, x: np.ndarray, wave: Sequence[float]) -> np.ndarray:
    """``sin(k . p + phase)`` on the open grid, with transcendentals only on the small axes.

    ``sin(a + c) = sin(a) cos(c) + cos(a) sin(c)`` with ``a`` over ``(z, y)`` and ``c``
    over ``x``: three float32 operations per voxel instead of a full-size ``sin``.
    """
    a = wave[0] * z + wave[1] * y + wave[3]
    c = wave[2] * x
    sa, ca = np.sin(a).astype(np.float32), np.cos(a).astype(np.float32)
    sc, cc = np.sin(c).astype(np.float32), np.cos(c).astype(np.float32)
    return sa * cc + ca * sc


def _block(zi: np.ndarray, yi: np.ndarray, xi: np.ndarray, *, p: _Params, kind: str) -> np.ndarray:
    """One block from the global voxel indices along each axis (1-D int64 arrays)."""
    z = zi.astype(np.float64)[:, None, None]
    y = yi.astype(np.float64)[None, :, None]
    x = xi.astype(np.float64)[None, None, :]
    tissue = _tissue(z, y, x, p)
    lesions = _lesion_masks(z, y, x, tissue != _AIR, p)
    if kind == "labels":
        labels = _TISSUE_LABEL[tissue]
        for _, sl, mask, _ in lesions:
            labels[sl][mask] = 4
        return labels

    dz, dy, dx = p.spacing
    zm, ym, xm = z * dz, y * dy, x * dx
    hu = _TISSUE_HU[tissue]
    # Soft tissue and fat: a gentle organ-scale texture (±10 HU).
    soft = (tissue == _SOFT) | (tissue == _FAT) | (tissue == _DISC)
    tex = np.float32(10.0) * _wave(zm, ym, xm, p.waves[0]) * _wave(zm, ym, xm, p.waves[1])
    hu[soft] += tex[soft]
    # Lungs: vessel-like tubes where the zero sets of two smooth fields cross.
    lung = tissue == _LUNG
    if lung.any():
        f1 = _wave(zm, ym, xm, p.waves[2]) + _wave(zm, ym, xm, p.waves[3])
        f2 = _wave(zm, ym, xm, p.waves[4]) + _wave(zm, ym, xm, p.waves[5])
        vessel = np.exp((f1[lung] ** 2 + f2[lung] ** 2) * np.float32(-1 / (2 * 0.12**2)))
        hu[lung] += np.float32(450.0) * vessel
    # Bone: trabecular texture (±60 HU).
    bone = tissue == _BONE
    hu[bone] += np.float32(60.0) * _wave(zm, ym, xm, p.waves[6])[bone]
    # Lesions: their own HU and a finer texture (±15 HU) in lesion coordinates.
    for i, sl, mask, (pz, py, px) in lesions:
        les = p.lesions[i]
        texture = 15.0 * _wave(pz, py, px, les[16:20])
        sub = hu[sl]
        sub[mask] = (les[15] + np.broadcast_to(texture, mask.shape)[mask]).astype(np.float32)
    if p.noise > 0:
        grid = (zi[:, None, None], yi[None, :, None], xi[None, None, :])
        hu += np.float32(p.noise) * hash_normal(seed_key(p.seed, 1), grid)
    return np.clip(np.rint(hu), _INT16.min, _INT16.max).astype(np.int16)


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def _draw_parameters(
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    lesions: int,
    radius: tuple[float, float],
    seed: int,
) -> tuple[tuple[tuple[float, ...], ...], tuple[tuple[float, ...], ...]]:
    """Draw texture waves and lesion parameters (small) from the seed."""
    rng_tex = np.random.default_rng([seed, 1])
    waves = []
    for wavelength in (60, 45, 40, 40, 40, 40, 6):  # mm
        k = rng_tex.normal(size=3)
        k *= 2 * np.pi / wavelength / np.linalg.norm(k)
        waves.append((*map(float, k), float(rng_tex.uniform(0, 2 * np.pi))))

    rng = np.random.default_rng(seed)
    probe = _Params(shape, spacing, seed, 0.0, (), ())
    out = []
    for _ in range(lesions):
        for _attempt in range(1000):
            zi, yi, xi = (rng.uniform(0.1, 0.9) * n - 0.5 for n in shape)
            xn, yn = _normalised(xi, shape[2]), _normalised(yi, shape[1])
            if (xn / 0.92) ** 2 + (yn / 0.72) ** 2 > 0.75**2:
                continue
            code = _tissue(np.array([zi]), np.array([yi]), np.array([xi]), probe)[0]
            if code in (_SOFT, _LUNG):
                break
        r0 = rng.uniform(*radius)
        radii = r0 * np.array([1.0, *rng.uniform(0.7, 1.0, 2)])
        rot = _random_rotation(rng)
        hu = _SOFT_HU + rng.uniform(30.0, 80.0)
        k = rng.normal(size=3)
        k *= 2 * np.pi / (0.6 * r0) / np.linalg.norm(k)
        centre = (zi * spacing[0], yi * spacing[1], xi * spacing[2])
        out.append((*centre, *radii, *rot.ravel(), hu, *k, rng.uniform(0, 2 * np.pi)))
    return tuple(waves), tuple(tuple(float(v) for v in les) for les in out)


def _positive_pair(value: Any, name: str, example: str) -> tuple[float, ...]:
    try:
        vals = tuple(float(v) for v in value)
    except TypeError:
        vals = ()
    if len(vals) != 2 or not all(np.isfinite(v) and v > 0 for v in vals) or vals[0] > vals[1]:
        raise ValueError(
            f"{name} must be (low, high) with 0 < low <= high in millimetres, got {value!r}; "
            f"pass e.g. {name}={example}."
        )
    return vals


def ct_phantom(
    shape: Sequence[int] = (256, 512, 512),
    *,
    lesions: int = 8,
    lesion_radius: tuple[float, float] = (4.0, 12.0),
    spacing: Sequence[float] = (1.0, 0.7, 0.7),
    seed: int = 0,
    chunks: Any = 128,
    noise: float = 20.0,
    labels: bool = False,
) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
    """A lazy synthetic chest CT in Hounsfield units, larger than memory if you like.

    Air (-1000 HU) surrounds an elliptic body (soft tissue about +40 HU under a fat
    layer of about -100 HU) with two lungs (about -850 HU, with vessel-like tubes), a
    spine (vertebrae about +700 HU separated by discs), ribs and a sternum, and
    ``lesions`` soft-tissue lesions (ellipsoids 30 to 80 HU brighter than soft tissue,
    with their own texture) in the body or the lungs, plus Gaussian noise. Every voxel
    is a pure function of its index and the seed: nothing is computed until asked,
    the result does not depend on ``chunks``, and any block can be computed alone.

    Parameters
    ----------
    shape : tuple of 3 ints
        ``(z, y, x)`` size in voxels; the anatomy scales with the field of view.
    lesions : int
        Number of lesions (``>= 0``).
    lesion_radius : (float, float)
        Range of the longest semi-axis of a lesion, in millimetres; the other two
        are 0.7 to 1 times it.
    spacing : tuple of 3 floats
        Voxel size ``(z, y, x)`` in millimetres.
    seed : int
        Non-negative seed; the same seed gives the same phantom.
    chunks : int, tuple or "auto"
        Dask chunks (any chunking gives the same voxels).
    noise : float
        Standard deviation of the Gaussian noise in HU (``>= 0``).
    labels : bool
        Also return the label map.

    Returns
    -------
    image : xarray.DataArray
        Lazy int16 ``("z", "y", "x")`` image in HU with spacing in millimetres. Its
        attrs record the ``seed`` and the ``lesions`` (centre and semi-axes in
        millimetres, rotation matrix whose rows are the semi-axis directions, HU).
    label_map : xarray.DataArray
        Only if ``labels``: lazy uint8 map with the same geometry, 0 air, 1 body
        (soft tissue, fat, discs), 2 lung, 3 bone, 4 lesion (names in
        ``attrs["label_names"]``).

    Examples
    --------
    >>> img, lab = ct_phantom((16, 48, 64), lesions=2, seed=1, chunks=8, labels=True)
    >>> img.dtype, img.dims, img.chunks[0]
    (dtype('int16'), ('z', 'y', 'x'), (8, 8))
    >>> v, lab = img.values, lab.values
    >>> [int(np.median(v[lab == k])) for k in range(5)]  # air, body, lung, bone, lesion
    [-1000, 27, -848, 701, 93]
    >>> len(img.attrs["lesions"]), img.attrs["units"]["x"]
    (2, 'millimeter')
    """
    shape3 = check_shape(shape, 3, "(256, 512, 512)")
    seed = check_seed(seed)
    if isinstance(lesions, bool) or not isinstance(lesions, (int, np.integer)) or lesions < 0:
        raise ValueError(f"lesions must be an int >= 0 (e.g. lesions=8), got {lesions!r}.")
    radius = _positive_pair(lesion_radius, "lesion_radius", "(4.0, 12.0)")
    try:
        spacing3 = tuple(float(s) for s in spacing)
    except TypeError:
        spacing3 = ()
    if len(spacing3) != 3 or not all(np.isfinite(s) and s > 0 for s in spacing3):
        raise ValueError(
            f"spacing must be 3 positive voxel sizes (z, y, x) in millimetres, got "
            f"{spacing!r}; pass e.g. spacing=(1.0, 0.7, 0.7)."
        )
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a standard deviation >= 0 in HU, got {noise!r}.")
    waves, lesion_params = _draw_parameters(shape3, spacing3, int(lesions), radius, seed)
    params = _Params(shape3, spacing3, seed, float(noise), waves, lesion_params)
    out = [_lazy(params, "image", chunks)]
    if labels:
        out.append(_lazy(params, "labels", chunks))
    return tuple(out) if labels else out[0]  # type: ignore[return-value]


def _lazy(p: _Params, kind: str, chunks: Any) -> xr.DataArray:
    import dask.array as da
    from dask.base import tokenize

    dtype = np.int16 if kind == "image" else np.uint8
    normal = check_chunks(chunks, p.shape, dtype)
    name = f"ct-phantom-{kind}-{tokenize(p, normal)}"
    # Each block is made from the index ranges of its blocks along z, y and x: a
    # Blockwise layer over three tiny aranges, built in constant time for any size.
    z, y, x = (
        da.arange(n, chunks=(c,), dtype=np.int64) for n, c in zip(p.shape, normal, strict=True)
    )
    data = da.blockwise(
        functools.partial(_block, p=p, kind=kind),
        "zyx",
        z,
        "z",
        y,
        "y",
        x,
        "x",
        dtype=dtype,
        meta=np.empty((0, 0, 0), dtype=dtype),
        name=name,
        align_arrays=False,
    )
    attrs: dict[str, Any] = {
        "source": "tilevision.datasets.ct_phantom",
        "seed": p.seed,
        "noise_hu": p.noise,
        "lesions": [
            {
                "center_mm": list(les[0:3]),
                "radii_mm": list(les[3:6]),
                "rotation": [list(les[6:9]), list(les[9:12]), list(les[12:15])],
                "hu": les[15],
            }
            for les in p.lesions
        ],
    }
    if kind == "labels":
        attrs["label_names"] = list(PHANTOM_LABELS)
    return make_image(
        data,
        ("z", "y", "x"),
        spacing=p.spacing,
        units="millimeter",
        name="ct_phantom" if kind == "image" else "ct_phantom_labels",
        attrs=attrs,
    )
