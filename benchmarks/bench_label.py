"""Labelling benchmark: connected components of a large 3-D blob mask stored in Zarr.

1. A blob mask of ``--size``³ voxels (default 816³: its int32 labels take 2.0 GiB) is
   built lazily — a Dask random field smoothed by ``tilevision.filters.gaussian`` and
   thresholded at its ``--fraction`` quantile (estimated on a small cube) — and written
   to a temporary Zarr store with the default scheduler (not measured).
2. In a FRESH child process (``_measure.py``), ``tilevision.filters.label`` labels the
   mask read from Zarr, with the default threaded scheduler, and streams the labels to
   another Zarr store; the child reports wall time, CPU time and peak RSS.
   PASS when the peak RSS stays below half the size of the int32 label volume.
3. ``scipy.ndimage.label`` and tilevision label a ``--small``³ corner of the same mask,
   each in its own child process: times, peak RSS, object counts and a check that the
   two labellings are the same partition (a one-to-one map of ids).

Run::

    python benchmarks/bench_label.py
    python benchmarks/bench_label.py --size 512 --chunks 128 --small 192
    python benchmarks/bench_label.py --quick    # 192³: seconds; the memory bound not checked
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
if (Path(__file__).resolve().parents[1] / "tilevision").is_dir():  # a source checkout
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import _measure

GIB = 2**30
MIB = 2**20
SEED = 20261123
SIGMA = 2.5


def _field(size: int, chunks: int):  # -> dask array
    import dask.array as da

    from tilevision.filters import gaussian

    noise = da.random.default_rng(SEED).standard_normal(
        (size, size, size), chunks=chunks, dtype=np.float32
    )
    return gaussian(noise, SIGMA)


def _threshold(fraction: float) -> float:
    """The (1 - fraction) quantile of the smoothed field, from a 96³ sample."""
    import scipy.ndimage as ndi

    sample = np.random.default_rng(SEED + 1).standard_normal((96, 96, 96), dtype=np.float32)
    smooth = ndi.gaussian_filter(sample, SIGMA, mode="nearest")[16:-16, 16:-16, 16:-16]
    return float(np.quantile(smooth, 1 - fraction))


def write_mask(path: Path, size: int, chunks: int, fraction: float) -> float:
    import dask.array as da

    mask = _field(size, chunks) > _threshold(fraction)
    t0 = time.perf_counter()
    da.to_zarr(mask, str(path), overwrite=True)
    return time.perf_counter() - t0


def label_zarr(mask_path: str, out_path: str) -> dict[str, int]:
    """Measured in a child: label the Zarr mask, stream the labels to Zarr."""
    import dask
    import dask.array as da

    from tilevision.filters import label

    mask = da.from_zarr(mask_path)
    labels, n = label(mask)
    store = da.to_zarr(labels, out_path, overwrite=True, compute=False)
    _, count = dask.compute(store, n)
    return {"n": int(count), "itemsize": labels.dtype.itemsize}


def label_small_scipy(mask_path: str, small: int, out_path: str) -> int:
    """Measured in a child: scipy.ndimage.label on a corner of the mask (in memory)."""
    import scipy.ndimage as ndi
    import zarr

    mask = zarr.open_array(mask_path, mode="r")[:small, :small, :small]
    labels, n = ndi.label(mask, np.ones((3, 3, 3), bool))
    np.save(out_path, labels)
    return int(n)


def label_small_tiled(mask_path: str, small: int, chunks: int, out_path: str) -> int:
    """Measured in a child: tilevision label on the same corner (Dask chunks)."""
    import dask
    import dask.array as da

    from tilevision.filters import label

    mask = da.from_zarr(mask_path)[:small, :small, :small].rechunk(chunks)
    labels, n = label(mask)
    got, count = dask.compute(labels, n)
    np.save(out_path, got)
    return int(count)


def same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    if not np.array_equal(a == 0, b == 0):
        return False
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return pairs.shape[1] == np.unique(a).size == np.unique(b).size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=None, help="edge of the cube (default 816)")
    parser.add_argument("--chunks", type=int, default=None, help="chunk edge (default 136)")
    parser.add_argument(
        "--fraction", type=float, default=0.2, help="foreground fraction of the mask"
    )
    parser.add_argument(
        "--small", type=int, default=None, help="edge of the SciPy comparison (default 256)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="defaults 192, 64 and 96 instead; the memory bound, meant for volumes of GiBs, "
        "is shown but not checked",
    )
    parser.add_argument("--keep", action="store_true", help="keep the Zarr stores")
    args = parser.parse_args(argv)
    quick = {"size": 192, "chunks": 64, "small": 96} if args.quick else {}
    for key, full in {"size": 816, "chunks": 136, "small": 256}.items():
        if getattr(args, key) is None:
            setattr(args, key, quick.get(key, full))

    workdir = Path(tempfile.mkdtemp(prefix="tv-bench-label-"))
    try:
        mask_path = workdir / "mask.zarr"
        size, chunks = args.size, args.chunks
        print(f"writing a {size}³ blob mask (chunks {chunks}³) to Zarr…", flush=True)
        gen_s = write_mask(mask_path, size, chunks, args.fraction)
        print(f"  written in {gen_s:.1f} s", flush=True)

        m = _measure.measure_function(label_zarr, str(mask_path), str(workdir / "labels.zarr"))
        volume = size**3 * m.result["itemsize"]
        bound = volume // 2
        big_ok = m.peak_rss < bound
        big_verdict, big_note = ("PASS" if big_ok else "FAIL"), ""
        if args.quick:  # the bound is meant for large volumes: under --quick, shown only
            big_verdict, big_note, big_ok = "–", "; not checked with --quick", True

        small = min(args.small, size)
        ref_out, our_out = workdir / "scipy.npy", workdir / "ours.npy"
        ms = _measure.measure_function(label_small_scipy, str(mask_path), small, str(ref_out))
        mt = _measure.measure_function(
            label_small_tiled, str(mask_path), small, chunks // 2, str(our_out)
        )
        agree = ms.result == mt.result and same_partition(np.load(our_out), np.load(ref_out))

        print()
        head = (
            f"{'run':<34} {'voxels':>12} {'labels':>10} {'wall s':>8} {'CPU s':>8} "
            f"{'peak RSS MiB':>13}  verdict"
        )
        print(head)
        print("-" * len(head))
        print(
            f"{'tilevision label, Zarr → Zarr':<34} {size**3:>12,} {m.result['n']:>10,} "
            f"{m.wall_s:>8.1f} {m.cpu_s:>8.1f} {m.peak_rss_mib:>13.0f}  "
            f"{big_verdict} (bound {bound / MIB:.0f} MiB = half the "
            f"{volume / GIB:.2f} GiB label volume{big_note})"
        )
        print(
            f"{'scipy.ndimage.label, in memory':<34} {small**3:>12,} {ms.result:>10,} "
            f"{ms.wall_s:>8.1f} {ms.cpu_s:>8.1f} {ms.peak_rss_mib:>13.0f}"
        )
        print(
            f"{'tilevision label, same corner':<34} {small**3:>12,} {mt.result:>10,} "
            f"{mt.wall_s:>8.1f} {mt.cpu_s:>8.1f} {mt.peak_rss_mib:>13.0f}  "
            f"{'PASS' if agree else 'FAIL'} (same partition as SciPy, chunks {chunks // 2}³)"
        )
        ok = big_ok and agree
        print(f"\noverall: {'PASS' if ok else 'FAIL'}")
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    # run as the importable module ``bench_label`` so the child processes can unpickle
    # the measured functions
    import bench_label

    sys.exit(bench_label.main())
