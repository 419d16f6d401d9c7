"""Larger-than-memory benchmark: ``analyze`` of a generated CT bigger than RAM, on processes.

A synthetic CT (``tilevision.datasets.ct_phantom``, int16 Hounsfield units, default
32 GiB: 4096×2048×2048, more than most machines' RAM) is generated chunk by chunk and
streamed into OME-Zarr with ``tilevision.ingest`` (128³ chunks, a pyramid; timed on its
own, and re-used from ``--workdir`` when it is already there). Then, in a FRESH child
process (``_measure.py``), ``tilevision.analyze(store, recipe=..., client=..., output=...)``
runs the light recipe of ``bench_features.py`` (intensity, histogram, gradient, GLCM;
``--recipe first-order``: intensity and histogram only;
mask ``HU > -500``; 128³ tiles) on a ``LocalCluster`` of 2 worker PROCESSES with one
thread each and a memory limit (default 2 GiB each).

The script prints the wall time and throughput of ``analyze`` (Mvox/s and MiB/s of
uncompressed input), the peak RSS of every process of the tree — the client process
(which also holds the scheduler and the nannies) and each worker — and their sum,
next to the machine's RAM. PASS when the sum of the per-process peaks stays under the
bound (default 6 GiB) whatever the input size, no worker was restarted, and a few
tiles' intensity features equal those recomputed with NumPy from the store.

Run::

    python benchmarks/bench_analyze_large.py                  # 32 GiB: an hour or more
    python benchmarks/bench_analyze_large.py --size-gib 4 --workdir /data/tv-bench
    python benchmarks/bench_analyze_large.py --quick          # 64 MiB: seconds
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
if (Path(__file__).resolve().parents[1] / "tilevision").is_dir():  # a source checkout
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import _measure

GIB = 2**30
MIB = 2**20
CHUNK = 128
SPOT_CHECKS = 4
SEED = 0
#: sampling period of the process tree (s): each process's own peak is the kernel's
#: high-water mark anyway; a short period would steal CPU from the workers
INTERVAL = 0.25


def phantom_shape(size_gib: float) -> tuple[int, int, int]:
    """``(z, y, x)`` of about ``size_gib`` GiB of int16: a square plane (512², 1024² or
    2048² as the size grows) and as many slices as it takes, a multiple of 128."""
    side = 2048 if size_gib >= 2 else 1024 if size_gib >= 0.25 else 512
    slabs = max(1, math.ceil(size_gib * GIB / (2 * side * side * CHUNK)))
    return (slabs * CHUNK, side, side)


def make_input(path: str, shape: tuple[int, int, int], chunks: int) -> None:
    """Generate the phantom chunk by chunk and stream it into OME-Zarr (threads)."""
    import dask

    import tilevision as tv

    image = tv.datasets.ct_phantom(shape, chunks=chunks, seed=SEED)
    with dask.config.set(scheduler="threads"):
        tv.ingest(image, path, chunks=chunks, overwrite=True)


def existing_input(path: Path, shape: tuple[int, int, int]) -> bool:
    """Whether ``path`` holds a finished store of ``shape`` (ingest renames it into
    place only when complete)."""
    if not path.exists():
        return False
    import tilevision as tv

    try:
        image = tv.open(path)
    except Exception:  # anything unreadable is written again
        return False
    return tuple(image.shape) == shape and image.dtype == np.int16


def _worker_stats(dask_worker: Any) -> dict[str, Any]:
    """Runs on each worker: its pid, CPU time and bytes spilled to disk."""
    cpu = psutil.Process().cpu_times()
    metrics = getattr(dask_worker.data, "cumulative_metrics", {})
    return {
        "pid": os.getpid(),
        "cpu_s": cpu.user + cpu.system,
        "spilled": int(metrics.get(("disk-write", "bytes"), 0)),
    }


def run(
    path: str, output: str, n_workers: int, worker_memory: int, tile: int, recipe: str = "light"
) -> dict[str, Any]:
    """The measured work (runs in the child process): a cluster, ``analyze``, a summary."""
    from bench_features import recipe_for

    import tilevision as tv

    recipe = recipe_for(recipe, tile)
    with tv.cluster.session(
        n_workers=n_workers,
        threads_per_worker=1,
        processes=True,
        memory_limit=worker_memory,
    ) as client:
        client.wait_for_workers(n_workers)
        before = client.run(os.getpid)
        start = time.perf_counter()
        result = tv.analyze(
            path,
            recipe=recipe,
            client=client,
            output=output,
            verbose=True,
            progress=sys.stdout.isatty(),
        )
        wall = time.perf_counter() - start
        workers = client.run(_worker_stats)
        logs = client.get_worker_logs()
    warnings = [
        line
        for lines in logs.values()
        for level, line in lines
        if level in ("WARNING", "ERROR", "CRITICAL")
    ]
    valid = result["valid"].values
    rng = np.random.default_rng(SEED)
    picked = rng.permutation(np.argwhere(valid))[:SPOT_CHECKS]
    spots = []
    for index in picked:
        at = dict(zip(("tile_z", "tile_y", "tile_x"), (int(i) for i in index)))
        tile_ds = result.isel(at)
        spots.append(
            {
                "start": [int(tile_ds[f"tile_{d}_start"]) for d in "zyx"],
                "size": [int(tile_ds[f"tile_{d}_size"]) for d in "zyx"],
                "mean": float(tile_ds["intensity.mean"]),
                "foreground_fraction": float(tile_ds["foreground_fraction"]),
            }
        )
    return {
        "analyze_s": wall,
        "worker_pids": sorted(before.values()),
        "workers": sorted(workers.values(), key=lambda w: w["pid"]),
        "warnings": warnings,
        "n_tiles": int(valid.size),
        "n_valid": int(valid.sum()),
        "n_features": int(result["descriptor"].size),
        "mean_hu": float(result["descriptor"].sel(feature="intensity.mean")),
        "spots": spots,
        "outputs": sorted(p.name for p in Path(output).iterdir()),
    }


def spot_check(path: Path, spots: list[dict[str, Any]]) -> tuple[int, int]:
    """Recompute the foreground fraction and mean HU of the picked tiles with NumPy
    from the store's level 0; (equal, checked)."""
    import zarr

    level0 = zarr.open_array(str(path / "0"), mode="r")
    equal = 0
    for spot in spots:
        region = tuple(slice(s, s + n) for s, n in zip(spot["start"], spot["size"]))
        voxels = np.asarray(level0[region]).astype(np.float64)
        foreground = voxels > -500
        fraction = foreground.mean()
        mean = voxels[foreground].mean() if foreground.any() else np.nan
        equal += bool(
            np.isclose(fraction, spot["foreground_fraction"], rtol=1e-9, atol=1e-12)
            and np.isclose(mean, spot["mean"], rtol=1e-9)
        )
    return equal, len(spots)


def role(proc: _measure.ProcessPeak, root: int, workers: list[int]) -> str:
    if proc.pid == root:
        return "client + scheduler + nannies"
    if proc.pid in workers:
        return f"worker {workers.index(proc.pid) + 1}"
    if "spawn_main" in proc.cmdline:
        return "worker (RESTARTED)"
    if "resource_tracker" in proc.cmdline:
        return "multiprocessing resource tracker"
    return proc.cmdline[:40] or "(unknown)"


def disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-gib",
        type=float,
        default=None,
        help="input size in GiB, uncompressed int16 (default 32; --quick: 1/16)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a 64 MiB input (128×512×512) unless --size-gib"
    )
    parser.add_argument("--workers", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument(
        "--worker-memory-gib",
        type=float,
        default=2.0,
        help="memory limit of each worker (default 2 GiB)",
    )
    parser.add_argument(
        "--bound-gib",
        type=float,
        default=6.0,
        help="FAIL when the per-process peaks add up to more (default 6 GiB)",
    )
    parser.add_argument("--tile", type=int, default=128, help="tile edge (default 128)")
    parser.add_argument(
        "--recipe",
        choices=["light", "first-order"],
        default="light",
        help="light: intensity, histogram, gradient, GLCM (default); first-order: intensity "
        "and histogram only (about 3× faster)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="keep the input here, and re-use it when already there (default: a temp dir, "
        "deleted at the end)",
    )
    args = parser.parse_args(argv)
    size = args.size_gib if args.size_gib is not None else 1 / 16 if args.quick else 32.0
    if size <= 0:
        parser.error(f"--size-gib must be positive, not {size:g}.")
    shape = phantom_shape(size)
    nvox = math.prod(shape)
    nbytes = 2 * nvox
    ram = psutil.virtual_memory().total
    bound = args.bound_gib * GIB
    worker_memory = int(args.worker_memory_gib * GIB)
    print(
        f"ct_phantom {'×'.join(map(str, shape))} int16: {nbytes / GIB:.2f} GiB = "
        f"{nbytes / ram:.2f} × this machine's RAM ({ram / GIB:.1f} GiB); "
        f"{args.workers} worker processes × 1 thread, {args.worker_memory_gib:g} GiB each",
        flush=True,
    )
    import bench_analyze_large  # the child imports the work by module name, not __main__

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="tv-bench-large-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    store = workdir / f"ct_phantom-{'x'.join(map(str, shape))}-c{CHUNK}.zarr"
    try:
        if existing_input(store, shape):
            ingest = None
            print(f"re-using the input {store}", flush=True)
        else:
            print(f"writing the input {store} …", flush=True)
            ingest = _measure.measure_function(
                bench_analyze_large.make_input, str(store), shape, CHUNK, interval=INTERVAL
            )
        on_disk = disk_usage(store)
        output = Path(tempfile.mkdtemp(prefix="analysis-", dir=workdir)) / "out"
        try:
            print("analysing …", flush=True)
            m = _measure.measure_function(
                bench_analyze_large.run,
                str(store),
                str(output),
                args.workers,
                worker_memory,
                args.tile,
                args.recipe,
                interval=INTERVAL,
            )
        finally:
            shutil.rmtree(output.parent, ignore_errors=True)
        r = m.result
        equal, checked = spot_check(store, r["spots"])
    finally:
        if own_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    wall = r["analyze_s"]
    print()
    print(
        f"larger-than-memory analyze — {os.cpu_count()} CPUs, RAM {ram / GIB:.1f} GiB, "
        f"input {nbytes / GIB:.2f} GiB ({nbytes / ram:.2f} × RAM; {on_disk / GIB:.2f} GiB "
        f"on disk), {args.workers} worker processes, {args.recipe} recipe, {args.tile}³ tiles"
    )
    print("| step | wall s | Mvox/s | MiB/s | peak RSS MiB (sum over processes) |")
    print("|---|---|---|---|---|")
    if ingest is not None:
        print(
            f"| ingest (threads, one process) | {ingest.wall_s:.1f} | "
            f"{nvox / ingest.wall_s / 1e6:.1f} | {nbytes / MIB / ingest.wall_s:.1f} | "
            f"{ingest.peak_rss_mib:.0f} |"
        )
    else:
        print("| ingest | re-used | | | |")
    procs = m.processes
    total = sum(p.peak_rss for p in procs)
    print(
        f"| analyze (cluster) | {wall:.1f} | {nvox / wall / 1e6:.1f} | "
        f"{nbytes / MIB / wall:.1f} | {total / MIB:.0f} |"
    )
    print()
    root = procs[0].pid if procs else -1
    spilled = {w["pid"]: w for w in r["workers"]}
    print("| process | pid | peak RSS MiB | CPU s | spilled MiB |")
    print("|---|---|---|---|---|")
    for p in procs:
        w = spilled.get(p.pid)
        cpu = f"{w['cpu_s']:.0f}" if w else (f"{m.cpu_s:.0f}" if p.pid == root else "")
        spill = f"{w['spilled'] / MIB:.0f}" if w else ""
        print(
            f"| {role(p, root, r['worker_pids'])} | {p.pid} | {p.peak_rss_mib:.0f} | {cpu} | "
            f"{spill} |"
        )
    tree = m.details["child_sampled_tree_rss"]
    print(f"| **sum of the peaks** | | **{total / MIB:.0f}** | | |")
    print(f"| (largest sampled total at one time) | | {tree / MIB:.0f} | | |")
    print(f"| machine RAM | | {ram / MIB:.0f} | | |")
    print(
        f"\ntiles: {r['n_tiles']} ({r['n_valid']} valid), descriptor length {r['n_features']}, "
        f"mean foreground HU {r['mean_hu']:.1f}; outputs {', '.join(r['outputs'])}; "
        f"spot check {equal}/{checked} tiles equal to NumPy"
    )
    for line in r["warnings"]:
        print(f"worker log: {line}")
    restarted = [p.pid for p in procs if role(p, root, r["worker_pids"]).endswith("(RESTARTED)")]
    failures = []
    if total > bound:
        failures.append(f"the peaks add up to {total / MIB:.0f} MiB > {bound / MIB:.0f} MiB")
    if restarted:
        failures.append(f"worker processes were restarted (pids {restarted})")
    if equal != checked or checked == 0:
        failures.append(f"spot check {equal}/{checked}")
    if failures:
        print(f"FAIL: {'; '.join(failures)}")
        return 1
    print(
        f"PASS: the peaks add up to {total / MIB:.0f} MiB (bound {bound / MIB:.0f} MiB) for "
        f"{nbytes / GIB:.2f} GiB of input ({nbytes / ram:.2f} × RAM)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
