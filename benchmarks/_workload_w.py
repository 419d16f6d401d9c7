"""Reference workload W (PERFORMANCE.md), implemented four ways.

uint16 image in Zarr → float32 → Gaussian (σ=2, truncate 4, mode "nearest") → Sobel
magnitude (scikit-image's normalisation, mode "reflect") → per-tile mean and std of the
image, mean gradient magnitude and edge density (fraction of pixels whose magnitude
exceeds a fixed threshold). Every implementation returns the same (n_tiles, 4) table.

The functions run inside :func:`_measure.measure_function` children, one per process.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np

SIGMA = 2.0
TRUNCATE = 4.0
EDGE_THRESHOLD = 200.0  # gradient magnitude units of the uint16 input
HALO = int(TRUNCATE * SIGMA + 0.5) + 1  # gaussian radius + Sobel's 1


def _tile_stats(image: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    """The four per-tile features of one tile (float64)."""
    image = image.astype(np.float64)
    return np.array(
        [
            image.mean(),
            image.std(),
            magnitude.mean(dtype=np.float64),
            (magnitude > EDGE_THRESHOLD).mean(),
        ]
    )


def _tiles_of(shape: tuple[int, ...], tile: int) -> list[tuple[slice, ...]]:
    """Tiles in the order of Dask's blocks (C order)."""
    starts = itertools.product(*[range(0, n, tile) for n in shape])
    return [tuple(slice(s, min(s + tile, n)) for s, n in zip(combo, shape)) for combo in starts]


def _stats_table(image: np.ndarray, magnitude: np.ndarray, tile: int) -> np.ndarray:
    return np.stack([_tile_stats(image[t], magnitude[t]) for t in _tiles_of(image.shape, tile)])


def _skimage_sobel(smoothed: np.ndarray) -> np.ndarray:
    import skimage.filters

    return skimage.filters.sobel(smoothed, mode="reflect")


def _smooth_and_edges(block: np.ndarray) -> np.ndarray:
    import scipy.ndimage as ndi

    smoothed = ndi.gaussian_filter(
        block.astype(np.float32), SIGMA, mode="nearest", truncate=TRUNCATE
    )
    return _skimage_sobel(smoothed)


def run_scipy_whole(path: str, tile: int) -> dict[str, Any]:
    """SciPy/scikit-image on the whole array in memory, one thread."""
    import zarr

    t0 = time.perf_counter()
    image = zarr.open_array(Path(path) / "0", mode="r")[...]
    t_read = time.perf_counter() - t0
    magnitude = _smooth_and_edges(image)
    return {"table": _stats_table(image, magnitude, tile), "read_s": t_read}


def run_scipy_tiles(path: str, tile: int) -> dict[str, Any]:
    """SciPy tile by tile with a halo, one thread (the single-thread floor)."""
    import zarr

    array = zarr.open_array(Path(path) / "0", mode="r")
    shape = array.shape
    rows = []
    for t in _tiles_of(shape, tile):
        outer = tuple(
            slice(max(s.start - HALO, 0), min(s.stop + HALO, n)) for s, n in zip(t, shape)
        )
        block = array[outer]
        magnitude = _smooth_and_edges(block)
        inner = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(t, outer))
        rows.append(_tile_stats(block[inner], magnitude[inner]))
    return {"table": np.stack(rows)}


def _per_block_stats(image: Any, magnitude: Any, ndim: int) -> Any:
    import dask.array as da

    def stats(img: np.ndarray, mag: np.ndarray) -> np.ndarray:
        return _tile_stats(img, mag).reshape((1,) * ndim + (4,))

    return da.map_blocks(
        stats,
        image,
        magnitude,
        new_axis=[ndim],
        chunks=(*((1,) * len(c) for c in image.chunks), (4,)),
        dtype=np.float64,
        meta=np.empty((0,) * (ndim + 1), np.float64),
    )


def run_dask_image(path: str, tile: int, workers: int = 2) -> dict[str, Any]:
    """dask-image filters (one overlap per filter), threaded scheduler."""
    import dask
    import dask.array as da
    import dask_image.ndfilters as dif

    image = da.from_zarr(str(Path(path) / "0"))
    smoothed = dif.gaussian_filter(
        image.astype(np.float32), SIGMA, mode="nearest", truncate=TRUNCATE
    )
    squares = [dif.sobel(smoothed, axis=i, mode="reflect") ** 2 for i in range(image.ndim)]
    # scipy's unnormalised Sobel → scikit-image's normalisation (kernel sum 4^(ndim-1))
    norm = np.float32(4 ** (image.ndim - 1) * np.sqrt(image.ndim))
    magnitude = da.sqrt(sum(squares[1:], squares[0])) / norm
    table = _per_block_stats(image, magnitude, image.ndim)
    with dask.config.set(scheduler="threads", num_workers=workers):
        result = table.compute()
    return {"table": result.reshape(-1, 4)}


def run_apply_parallel(path: str, tile: int, workers: int = 2) -> dict[str, Any]:
    """skimage.util.apply_parallel on the in-memory array (it computes with Dask threads)."""
    import dask
    import skimage.util
    import zarr

    image = zarr.open_array(Path(path) / "0", mode="r")[...]
    with dask.config.set(scheduler="threads", num_workers=workers):
        magnitude = skimage.util.apply_parallel(
            _smooth_and_edges, image, chunks=tile, depth=HALO, mode="none", dtype=np.float32
        )
    return {"table": _stats_table(image, magnitude, tile)}


def run_tilevision(path: str, tile: int, workers: int = 2) -> dict[str, Any]:
    """tilevision: one fused map_overlap (gaussian → sobel) + per-tile features."""
    import dask

    import tilevision as tv
    from tilevision.filters import chain, step

    image = tv.open(path)
    magnitude = chain(
        image,
        [
            step("gaussian", sigma=SIGMA, mode="nearest", truncate=TRUNCATE),
            step("sobel", mode="reflect"),
        ],
    )
    table = _per_block_stats(image.data, magnitude.data, image.ndim)
    with dask.config.set(scheduler="threads", num_workers=workers):
        result = table.compute()
    return {"table": result.reshape(-1, 4)}


def first_and_warm(func: Any, path: str, tile: int, **kwargs: Any) -> dict[str, Any]:
    """``func`` twice in this process: the first call pays the imports, the loading of
    compiled kernels and the first reads; the second shows the steady state. Returns
    the second call's result with both calls' wall and CPU times."""
    times = []
    for _ in range(2):
        wall, cpu = time.perf_counter(), time.process_time()
        result = func(path, tile, **kwargs)
        times.append((time.perf_counter() - wall, time.process_time() - cpu))
    result["first_wall_s"], result["first_cpu_s"] = times[0]
    result["warm_wall_s"], result["warm_cpu_s"] = times[1]
    return result


def make_input(path: str, kind: str, size: int, tile: int) -> None:
    """Write the uint16 benchmark image as OME-Zarr (texture slide in 2-D, CT phantom in 3-D)."""
    import dask

    import tilevision as tv

    if kind == "2d":
        slide = tv.datasets.texture_slide((size, size), seed=0, chunks=tile)
        image = (slide.astype(np.uint16) * 200).astype(np.uint16)
    else:
        ct = tv.datasets.ct_phantom((size,) * 3, seed=0, chunks=tile)
        image = (ct + 1024).clip(0, 65535).astype(np.uint16)
    image.attrs = {}
    with dask.config.set(scheduler="threads"):
        tv.ingest(image, path, chunks=tile, levels=1, overwrite=True)


#: environment for the single-thread references (no BLAS/OpenMP threads)
SINGLE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
