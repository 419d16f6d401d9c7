"""Multiscale pyramids: which axes to halve at each level, and the downsampling itself."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

import dask.array as da
import numpy as np

__all__ = ["DownsampleMethod", "downsample", "plan_pyramid"]

DownsampleMethod = Literal["mean", "nearest"]

#: z is halved with y/x only once its spacing is below this multiple of the
#: in-plane spacing of the level being halved ("near-isotropic").
ISOTROPY_RATIO = 2.0


def plan_pyramid(
    shape: Mapping[str, int],
    spacing: Mapping[str, float],
    chunks: Mapping[str, int],
    levels: int | Literal["auto"] = "auto",
) -> list[dict[str, int]]:
    """Per-level downsampling factors (cumulative, per spatial dim) of a pyramid.

    y and x are halved at every level; z is halved too once the voxels are
    near-isotropic (z spacing < 2 × the in-plane spacing of the level). With
    ``levels="auto"`` levels are added until the smallest one fits in a single
    tile (every spatial extent ≤ its chunk size).

    Examples
    --------
    >>> plan_pyramid({"y": 1000, "x": 600}, {"y": 1, "x": 1}, {"y": 256, "x": 256})
    [{'y': 1, 'x': 1}, {'y': 2, 'x': 2}, {'y': 4, 'x': 4}]
    >>> [f["z"] for f in plan_pyramid({"z": 25, "y": 256, "x": 256},
    ...     {"z": 6.5, "y": 0.78, "x": 0.78}, {"z": 8, "y": 32, "x": 32})]
    [1, 1, 1, 1, 2, 4]
    """
    dims = [d for d in ("z", "y", "x") if d in shape]
    if levels != "auto" and (not isinstance(levels, int) or levels < 1):
        raise ValueError(f"levels must be 'auto' or an integer ≥ 1, got {levels!r}.")
    factors = [dict.fromkeys(dims, 1)]

    def extent(f: Mapping[str, int], d: str) -> int:
        return math.ceil(shape[d] / f[d])

    while True:
        current = factors[-1]
        if levels == "auto":
            if all(extent(current, d) <= chunks[d] for d in dims):
                break
        elif len(factors) >= levels:
            break
        nxt = dict(current)
        inplane = [d for d in ("y", "x") if d in dims]
        inplane_spacing = min(spacing[d] * current[d] for d in inplane)
        for d in inplane:
            nxt[d] = current[d] * 2
        if "z" in dims and spacing["z"] * current["z"] < ISOTROPY_RATIO * inplane_spacing:
            nxt["z"] = current["z"] * 2
        halved = [d for d in dims if nxt[d] != current[d] and extent(current, d) > 1]
        if not halved:
            break
        for d in dims:
            if extent(current, d) <= 1:
                nxt[d] = current[d]
        factors.append(nxt)
    return factors


def downsample(
    array: da.Array,
    dims: Sequence[str],
    factor: Mapping[str, int],
    method: DownsampleMethod = "mean",
) -> da.Array:
    """Halve ``array`` along the dims whose ``factor`` is 2 (others: factor 1).

    ``mean`` averages each block (integers are rounded half to even back to
    their dtype);
    ``nearest`` keeps the first pixel of each block (use it for label images).
    Odd extents give ``ceil(n / 2)``; the last block averages the pixels it has.

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.from_array(np.arange(10, dtype="uint8").reshape(2, 5), chunks=2)
    >>> downsample(x, ("y", "x"), {"y": 2, "x": 2}).compute()
    array([[3, 5, 6]], dtype=uint8)
    """
    axes = {i: int(factor.get(d, 1)) for i, d in enumerate(dims)}
    if method not in ("mean", "nearest"):
        raise ValueError(f"unknown downsampling method {method!r}; use 'mean' or 'nearest'.")
    if all(f == 1 for f in axes.values()):
        return array
    # align chunk boundaries on the block size so that every block is whole
    aligned = tuple(
        tuple(_even_chunks(c, axes[i])) if axes[i] > 1 else c for i, c in enumerate(array.chunks)
    )
    array = array.rechunk(aligned)
    out_chunks = tuple(
        tuple(math.ceil(n / axes[i]) for n in c) for i, c in enumerate(array.chunks)
    )
    return array.map_blocks(
        _downsample_block,
        axes=axes,
        method=method,
        chunks=out_chunks,
        dtype=array.dtype,
        meta=np.empty((0,) * array.ndim, dtype=array.dtype),
    )


def _even_chunks(chunks: tuple[int, ...], f: int) -> list[int]:
    total = sum(chunks)
    size = max(f, (max(chunks) // f) * f)
    out = [size] * (total // size)
    if total % size:
        out.append(total % size)
    return out


def _downsample_block(block: np.ndarray, axes: Mapping[int, int], method: str) -> np.ndarray:
    if method == "nearest":
        index = tuple(slice(None, None, axes[i]) for i in range(block.ndim))
        return block[index]
    pad = [(0, (-block.shape[i]) % axes[i]) for i in range(block.ndim)]
    padded = (
        np.pad(block.astype(np.float64), pad, mode="edge")
        if any(p[1] for p in pad)
        else (block.astype(np.float64))
    )
    shape: list[int] = []
    for i in range(block.ndim):
        shape += [padded.shape[i] // axes[i], axes[i]]
    reduced = padded.reshape(shape).mean(axis=tuple(range(1, 2 * block.ndim, 2)))
    if np.issubdtype(block.dtype, np.integer):
        info = np.iinfo(block.dtype)
        reduced = np.clip(np.rint(reduced), info.min, info.max)
    elif block.dtype == np.bool_:
        reduced = reduced >= 0.5
    return reduced.astype(block.dtype)
