"""A synthetic textured "slide": a Voronoi mosaic of scikit-image textures, made lazily.

The regions are the Voronoi cells of one seed point per cell of a square grid,
jittered inside its cell (a Worley-noise layout). The jitter is kept within
``[0.18, 0.82]`` of a cell, which guarantees that the nearest seed of any pixel lies
in the 3 × 3 grid cells around it, so a block needs only the seeds of the cells it
touches plus one ring: constant work per block, whatever the slide size. Seed
positions and region classes come from a counter-based hash of the grid cell and
the seed, so every pixel is a pure function of ``(y, x, seed, region_size)``: the
result does not depend on the chunking, nor on the size of the slide.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from .._image import make_image
from ._noise import check_chunks, check_seed, check_shape, hash_coords, hash_uniform, seed_key

__all__ = ["SLIDE_CLASSES", "texture_slide"]

#: Texture classes of :func:`texture_slide`, in label order (0, 1, 2).
SLIDE_CLASSES: tuple[str, ...] = ("brick", "grass", "gravel")

_JITTER = 0.18  # >= (sqrt(2) - 1) / (sqrt(2) + 1) keeps the nearest seed within 3 x 3 cells
_TEXTURE_SIZE = 512
_BY_CELL_MIN_SIZE = 128  # below this, a block holds too many cells for a loop over cells


@functools.lru_cache(maxsize=1)
def _textures() -> np.ndarray:
    """The three 512 × 512 uint8 textures stacked as ``(3, 512, 512)`` (loaded once)."""
    from skimage import data

    return np.stack([getattr(data, name)() for name in SLIDE_CLASSES]).astype(np.uint8)


def _mirror(index: np.ndarray) -> np.ndarray:
    """Index into a texture tiled with mirroring (period twice the texture size)."""
    t = np.mod(index, 2 * _TEXTURE_SIZE)
    return np.where(t < _TEXTURE_SIZE, t, 2 * _TEXTURE_SIZE - 1 - t)


def _cell_tables(
    rows: np.ndarray, cols: np.ndarray, seed: int, size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seed offsets inside their cells (pixels, float32) and classes for a grid window."""
    grid = np.ix_(rows, cols)
    span = 1.0 - 2.0 * _JITTER
    oy = ((_JITTER + span * hash_uniform(seed_key(seed, 10), grid)) * size).astype(np.float32)
    ox = ((_JITTER + span * hash_uniform(seed_key(seed, 11), grid)) * size).astype(np.float32)
    cls = (hash_coords(seed_key(seed, 12), grid) % np.uint64(len(SLIDE_CLASSES))).astype(np.uint8)
    return oy, ox, cls


def _segments(cells: np.ndarray) -> list[tuple[int, int, int]]:
    """Runs ``(start, stop, cell)`` of equal values in a sorted 1-D array of cell indices."""
    edges = [0, *(np.flatnonzero(np.diff(cells)) + 1).tolist(), len(cells)]
    return [(a, b, int(cells[a])) for a, b in itertools.pairwise(edges)]


def _regions(y: np.ndarray, x: np.ndarray, seed: int, size: int) -> np.ndarray:
    """Class of the nearest seed point for every pixel of the grid ``y × x``.

    Distances are computed in float32 in cell-local coordinates (small exact numbers),
    with the 3 × 3 candidate seeds in a fixed order and ties kept by the first, so that
    both strategies below give bit-identical results in any block.
    """
    ci, cj = y // size, x // size
    rows = np.arange(ci[0] - 1, ci[-1] + 2)
    cols = np.arange(cj[0] - 1, cj[-1] + 2)
    tables = _cell_tables(rows, cols, seed, size)
    ly = (y - ci * size).astype(np.float32)
    lx = (x - cj * size).astype(np.float32)
    if size >= _BY_CELL_MIN_SIZE:
        return _regions_by_cell(ly, lx, ci - rows[0], cj - cols[0], tables, size)
    return _regions_by_pixel(ly, lx, ci - rows[0], cj - cols[0], tables, size)


def _regions_by_cell(
    ly: np.ndarray,
    lx: np.ndarray,
    ri: np.ndarray,
    rj: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    size: int,
) -> np.ndarray:
    """One small loop per grid cell in the block; distances as outer sums (large regions)."""
    oy, ox, cls = tables
    out = np.empty((len(ly), len(lx)), dtype=np.uint8)
    for ya, yb, r in _segments(ri):
        for xa, xb, c in _segments(rj):
            best = sub = None
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    dy = ly[ya:yb] - (oy[r + di, c + dj] + np.float32(di * size))
                    dx = lx[xa:xb] - (ox[r + di, c + dj] + np.float32(dj * size))
                    d = (dy * dy)[:, None] + (dx * dx)[None, :]
                    if best is None:
                        best, sub = d, np.full(d.shape, cls[r + di, c + dj], dtype=np.uint8)
                    else:
                        sub[d < best] = cls[r + di, c + dj]
                        np.minimum(best, d, out=best)
            out[ya:yb, xa:xb] = sub
    return out


def _regions_by_pixel(
    ly: np.ndarray,
    lx: np.ndarray,
    ri: np.ndarray,
    rj: np.ndarray,
    tables: tuple[np.ndarray, np.ndarray, np.ndarray],
    size: int,
) -> np.ndarray:
    """Gather the 3 × 3 candidate seeds per pixel (many small regions per block)."""
    oy, ox, cls = (t.ravel() for t in tables)
    ncols = tables[0].shape[1]
    best_d = best_f = None
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            flat = (ri[:, None] + di) * ncols + (rj[None, :] + dj)
            dy = ly[:, None] - (oy[flat] + np.float32(di * size))
            dx = lx[None, :] - (ox[flat] + np.float32(dj * size))
            d = dy * dy + dx * dx
            if best_d is None:
                best_d, best_f = d, flat
            else:
                closer = d < best_d
                best_d = np.where(closer, d, best_d)
                best_f = np.where(closer, flat, best_f)
    return cls[best_f]


def _block(y: np.ndarray, x: np.ndarray, *, seed: int, size: int, kind: str) -> np.ndarray:
    """One block from the global pixel indices along each axis (1-D int64 arrays)."""
    classes = _regions(y, x, seed, size)
    if kind == "labels":
        return classes
    flat = (
        classes.astype(np.int64) * (_TEXTURE_SIZE * _TEXTURE_SIZE)
        + (_mirror(y) * _TEXTURE_SIZE)[:, None]
        + _mirror(x)[None, :]
    )
    return _textures().ravel()[flat]


def texture_slide(
    shape: Sequence[int] = (16384, 16384),
    *,
    seed: int = 0,
    region_size: int = 2048,
    chunks: Any = 1024,
    spacing: float = 0.5,
    labels: bool = False,
) -> xr.DataArray | tuple[xr.DataArray, xr.DataArray]:
    """A lazy grey-level "slide" made of textured regions, as large as you like.

    The slide is a mosaic of regions (Voronoi cells of seed points on a jittered grid
    of pitch ``region_size``), each filled with one of scikit-image's 512 × 512
    textures ``brick``, ``grass`` or ``gravel``, chosen per region from the seed. A
    texture is tiled over the whole plane with mirroring (period 1024 pixels, no hard
    seams) and anchored at pixel (0, 0), so pixel ``(y, x)`` of a region of class
    ``k`` is ``texture_k[m(y), m(x)]`` with ``m(i) = i mod 1024`` mirrored into
    ``0 … 511``. Each pixel depends only on its index, ``seed`` and ``region_size``:
    nothing is computed until asked, the result does not depend on ``chunks``, and
    the top-left corner of a large slide equals a small slide with the same seed.

    Parameters
    ----------
    shape : tuple of 2 ints
        ``(y, x)`` size in pixels.
    seed : int
        Non-negative seed; the same seed gives the same slide.
    region_size : int
        Grid pitch of the region seeds in pixels, which is the mean region diameter
        (``>= 16``).
    chunks : int, tuple or "auto"
        Dask chunks (any chunking gives the same pixels).
    spacing : float
        Pixel size in micrometres.
    labels : bool
        Also return the region map.

    Returns
    -------
    image : xarray.DataArray
        Lazy uint8 ``("y", "x")`` image, spacing in micrometres; ``attrs["classes"]``
        names the texture classes.
    region_map : xarray.DataArray
        Only if ``labels``: lazy uint8 class index per pixel (0 brick, 1 grass,
        2 gravel), same geometry.

    Examples
    --------
    >>> img, regions = texture_slide((256, 320), region_size=64, chunks=128, labels=True)
    >>> img.dtype, img.dims, img.chunks
    (dtype('uint8'), ('y', 'x'), ((128, 128), (128, 128, 64)))
    >>> img.attrs["classes"], img.attrs["units"]["x"]
    (['brick', 'grass', 'gravel'], 'micrometer')
    >>> sorted(set(regions.values.ravel().tolist()))
    [0, 1, 2]
    """
    shape2 = check_shape(shape, 2, "(16384, 16384)")
    seed = check_seed(seed)
    if (
        isinstance(region_size, bool)
        or not isinstance(region_size, (int, np.integer))
        or region_size < 16
    ):
        raise ValueError(
            f"region_size must be an int >= 16 (the mean region diameter in pixels), "
            f"got {region_size!r}; pass e.g. region_size=2048."
        )
    try:
        spacing_f = float(spacing)
    except (TypeError, ValueError):
        spacing_f = float("nan")
    if not np.isfinite(spacing_f) or spacing_f <= 0:
        raise ValueError(
            f"spacing must be a positive pixel size in micrometres, got {spacing!r}; "
            f"pass e.g. spacing=0.5."
        )
    out = [_lazy(shape2, seed, int(region_size), chunks, spacing_f, "image")]
    if labels:
        out.append(_lazy(shape2, seed, int(region_size), chunks, spacing_f, "labels"))
    return tuple(out) if labels else out[0]  # type: ignore[return-value]


def _lazy(
    shape: tuple[int, ...], seed: int, size: int, chunks: Any, spacing: float, kind: str
) -> xr.DataArray:
    import dask.array as da
    from dask.base import tokenize

    normal = check_chunks(chunks, shape, np.uint8)
    # Each block is made from the index ranges of its row and column of blocks: a
    # Blockwise layer over two tiny aranges, built in constant time for any size.
    y, x = (da.arange(n, chunks=(c,), dtype=np.int64) for n, c in zip(shape, normal, strict=True))
    data = da.blockwise(
        functools.partial(_block, seed=seed, size=size, kind=kind),
        "yx",
        y,
        "y",
        x,
        "x",
        dtype=np.uint8,
        meta=np.empty((0, 0), dtype=np.uint8),
        name=f"texture-slide-{kind}-{tokenize(shape, seed, size, normal)}",
        align_arrays=False,
    )
    attrs = {
        "source": "tilevision.datasets.texture_slide",
        "seed": seed,
        "region_size": size,
        "classes": list(SLIDE_CLASSES),
    }
    return make_image(
        data,
        ("y", "x"),
        spacing=spacing,
        units="micrometer",
        name="texture_slide" if kind == "image" else "texture_slide_regions",
        attrs=attrs,
    )
