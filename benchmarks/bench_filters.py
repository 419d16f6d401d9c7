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

Each run is a fresh process (see ``_measure.py``) that calls its implementation twice:
the first call pays the imports, the loading of compiled kernels and the first reads of
the store (what a script run once pays), the second shows the steady state (what a
notebook or a service pays for every image after the first). The script prints both
calls' wall time, the CPU time and megapixels per second of the warm call, the peak RSS
of the process, the ratios against dask-image and single-thread SciPy (first calls
against first calls, warm against warm), and checks that every implementation computes
the same feature table.

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
        runs = [
            measure_function(w.first_and_warm, func, str(path), tile, env=env, **kwargs)
            for _ in range(repeat)
        ]
        best = min(runs, key=lambda m: m.result["warm_wall_s"])
        tables[name] = best.result["table"]
        rows.append((name, best))
        r = best.result
        print(f"  {name:<30} first {r['first_wall_s']:7.2f} s, warm {r['warm_wall_s']:7.2f} s",
              flush=True)  # fmt: skip
    reference = tables.get("scipy whole, 1 thread")
    by_name = dict(rows)
    dask_image = by_name.get("dask-image, 2 threads")
    scipy1 = by_name.get("scipy whole, 1 thread")
    unit = "Mpx/s" if kind == "2d" else "Mvox/s"
    print(f"\n{kind.upper()} {'×'.join([str(size)] * (2 if kind == '2d' else 3))} uint16, "
          f"tiles {tile}, best of {repeat}")  # fmt: skip
    header = (
        f"| implementation | first call s | warm call s | warm CPU s | peak RSS MiB | "
        f"warm {unit} | vs dask-image, first | vs dask-image, warm | vs SciPy 1 thread, warm "
        "| same features |"
    )
    print(header)
    print("|" + "---|" * 10)
    all_same = True

    def ratio(ref: object, m: object, key: str) -> str:
        return f"{ref.result[key] / m.result[key]:.2f}×" if ref else "–"

    for name, m in rows:
        r = m.result
        speed = npix / r["warm_wall_s"] / 1e6
        same = "–"
        if reference is not None:
            same = "yes" if np.allclose(tables[name], reference, rtol=1e-4, atol=1e-3) else "NO"
            all_same &= same == "yes"
        print(
            f"| {name} | {r['first_wall_s']:.2f} | {r['warm_wall_s']:.2f} | "
            f"{r['warm_cpu_s']:.2f} | {m.peak_rss / 2**20:.0f} | {speed:.1f} | "
            f"{ratio(dask_image, m, 'first_wall_s')} | {ratio(dask_image, m, 'warm_wall_s')} | "
            f"{ratio(scipy1, m, 'warm_wall_s')} | {same} |"
        )
    tv_run = by_name.get("tilevision fused, 2 threads")
    if tv_run and scipy1:
        efficiency = scipy1.result["warm_wall_s"] / tv_run.result["warm_wall_s"] / 2
        print(f"parallel efficiency of tilevision vs single-thread SciPy (2 cores, warm): "
              f"{efficiency:.0%}")  # fmt: skip
    print()
    return all_same


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4096² and 256³ instead")
    parser.add_argument("--kind", choices=["2d", "3d", "both"], default="both")
    parser.add_argument(
        "--repeat", type=int, default=1, help="processes per implementation (best warm call)"
    )
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
