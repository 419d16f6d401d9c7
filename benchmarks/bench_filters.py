"""Benchmark the reference workload W (PERFORMANCE.md) on a 2-D slide and a 3-D volume.

uint16 image in Zarr → float32 → gaussian(σ=2) → Sobel magnitude → per-tile mean, std,
mean gradient and edge density, run by:

* SciPy on the whole in-memory array, one thread (Zarr read included);
* SciPy tile by tile with a halo, one thread (the single-thread floor);
* dask-image, threaded scheduler with 2 workers;
* ``skimage.util.apply_parallel``, 2 threads;
* tilevision's fused chain (one ``map_overlap``), threaded scheduler with 2 workers;
* the same chain with ``TILEVISION_KERNELS=scipy`` (SciPy's 1-D filters instead of the
  compiled line kernels, which give the same values bit for bit).

Each run is a fresh process (see ``_measure.py``). The script prints wall time, CPU time,
peak RSS, megapixels per second and the ratios against dask-image and single-thread
SciPy, and checks that every implementation computes the same feature table.

Run: ``python benchmarks/bench_filters.py`` (full: 16384² and 512³, several minutes) or
``python benchmarks/bench_filters.py --quick`` (4096² and 256³).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _workload_w as w
from _measure import measure_function

IMPLEMENTATIONS = {
    # name: (function, its keyword arguments, environment overrides for its process)
    "scipy whole, 1 thread": (w.run_scipy_whole, {}, w.SINGLE_THREAD),
    "scipy tiles, 1 thread": (w.run_scipy_tiles, {}, w.SINGLE_THREAD),
    "dask-image, 2 threads": (w.run_dask_image, {"workers": 2}, {}),
    "apply_parallel, 2 threads": (w.run_apply_parallel, {"workers": 2}, {}),
    "tilevision fused, 2 threads": (w.run_tilevision, {"workers": 2}, {}),
    # the same chain on SciPy's own 1-D filters: what the compiled kernels add
    "tilevision, SciPy kernels": (
        w.run_tilevision,
        {"workers": 2},
        {"TILEVISION_KERNELS": "scipy"},
    ),
}


def run(kind: str, size: int, tile: int, workdir: Path, repeat: int, only: list[str]) -> bool:
    """Run and print one table; False when an implementation computed other features."""
    path = workdir / f"w-{kind}-{size}.zarr"
    if not path.exists():
        print(f"writing the {kind} input ({size} per side, tiles {tile}) …", flush=True)
        w.make_input(str(path), kind, size, tile)
    npix = size ** (2 if kind == "2d" else 3)
    rows = []
    tables = {}
    for name, (func, kwargs, overrides) in IMPLEMENTATIONS.items():
        if only and not any(o in name for o in only):
            continue
        env = {**os.environ, **overrides} if overrides else None
        runs = [measure_function(func, str(path), tile, env=env, **kwargs) for _ in range(repeat)]
        best = min(runs, key=lambda m: m.wall_s)
        tables[name] = best.result["table"]
        rows.append((name, best))
        print(f"  {name:<30} {best.wall_s:7.2f} s", flush=True)
    reference = tables.get("scipy whole, 1 thread")
    by_name = dict(rows)
    dask_image = by_name.get("dask-image, 2 threads")
    scipy1 = by_name.get("scipy whole, 1 thread")
    unit = "Mpx/s" if kind == "2d" else "Mvox/s"
    print(f"\n{kind.upper()} {'×'.join([str(size)] * (2 if kind == '2d' else 3))} uint16, "
          f"tiles {tile}, best of {repeat}")  # fmt: skip
    header = (
        f"| implementation | wall s | CPU s | peak RSS MiB | {unit} | vs dask-image | "
        "vs SciPy 1 thread | same features |"
    )
    print(header)
    print("|" + "---|" * 8)
    all_same = True
    for name, m in rows:
        speed = npix / m.wall_s / 1e6
        vs_di = f"{dask_image.wall_s / m.wall_s:.2f}×" if dask_image else "–"
        vs_sp = f"{scipy1.wall_s / m.wall_s:.2f}×" if scipy1 else "–"
        same = "–"
        if reference is not None:
            same = "yes" if np.allclose(tables[name], reference, rtol=1e-4, atol=1e-3) else "NO"
            all_same &= same == "yes"
        print(
            f"| {name} | {m.wall_s:.2f} | {m.cpu_s:.2f} | {m.peak_rss / 2**20:.0f} | "
            f"{speed:.1f} | {vs_di} | {vs_sp} | {same} |"
        )
    tv_run = by_name.get("tilevision fused, 2 threads")
    if tv_run and scipy1:
        efficiency = scipy1.wall_s / tv_run.wall_s / 2
        print(f"parallel efficiency of tilevision vs single-thread SciPy (2 cores): "
              f"{efficiency:.0%}")  # fmt: skip
    print()
    return all_same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4096² and 256³ instead")
    parser.add_argument("--kind", choices=["2d", "3d", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1, help="runs per implementation")
    parser.add_argument("--workdir", default=None, help="where to keep the inputs")
    parser.add_argument("--only", nargs="*", default=[], help="implementations to run")
    parser.add_argument("--keep", action="store_true", help="keep the generated inputs")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tv-bench-w-"))
    workdir.mkdir(parents=True, exist_ok=True)
    ok = True
    try:
        if args.kind in ("2d", "both"):
            ok &= run("2d", 4096 if args.quick else 16384, 1024, workdir, args.repeat, args.only)
        if args.kind in ("3d", "both"):
            ok &= run("3d", 256 if args.quick else 512, 128, workdir, args.repeat, args.only)
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
