"""Tile-feature benchmark: a recipe on a generated CT volume larger than it should hold.

A synthetic CT (``tilevision.datasets.ct_phantom``, int16 Hounsfield units, default
1024×1024×2048 = 4 GiB) is written to OME-Zarr (128³ chunks; not measured), then
``tile_features`` and ``describe`` run on it in a FRESH child process
(``_measure.py``) on the threaded scheduler; the script prints wall time, CPU time,
peak RSS, throughput and the number of tiles. PASS when the peak RSS stays under
2 GiB.

Recipes: ``light`` (default) — intensity, histogram, gradient (no Canny), GLCM
texture on a fixed HU range, mask ``HU > -500``, 128³ tiles; ``default`` —
``Recipe.default(3)`` with the same mask (much slower: LBP, LoG, wavelets, Canny).

Run::

    python benchmarks/bench_features.py
    python benchmarks/bench_features.py --shape 256 256 512 --recipe default
    python benchmarks/bench_features.py --quick    # 128×128×256: seconds
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
if (Path(__file__).resolve().parents[1] / "tilevision").is_dir():  # a source checkout
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import _measure

GIB = 2**30


def recipe_for(name: str, tile: int) -> Any:
    from tilevision import Recipe

    if name == "default":
        base = Recipe.default(3)
        return Recipe(base.features, tile=tile, mask="HU > -500", min_foreground=0.05)
    features = {
        "intensity": {"hu": True},
        "histogram": {"bins": 32, "range": [-1000, 1000]},
        "gradient": {"canny": False},
        "texture": {"parts": ["glcm"], "levels": 32, "range": [-1000, 1000]},
    }
    if name == "first-order":  # intensity and histogram only: about a third of "light"
        features = {k: features[k] for k in ("intensity", "histogram")}
    return Recipe(features, tile=tile, mask="HU > -500", min_foreground=0.05)


def make_input(path: str, shape: tuple[int, ...], chunks: int) -> None:
    """Write the phantom as a one-level OME-Zarr (default scheduler)."""
    import dask

    import tilevision as tv

    image = tv.datasets.ct_phantom(shape, chunks=chunks, seed=0)
    with dask.config.set(scheduler="threads"):
        tv.ingest(image, path, chunks=chunks, levels=1, overwrite=True)


def run(path: str, recipe_name: str, tile: int) -> dict[str, Any]:
    """The measured work (runs in the child process)."""
    import dask

    import tilevision as tv

    image = tv.open(path)
    recipe = recipe_for(recipe_name, tile)
    tiles = tv.tile_features(image, recipe)
    descriptor = tv.describe(tiles)
    with dask.config.set(scheduler="threads"):
        tiles, descriptor = dask.compute(tiles, descriptor)
    return {
        "n_tiles": int(tiles["valid"].size),
        "n_valid": int(tiles["valid"].sum()),
        "n_features": int(descriptor.size),
        "mean_hu": float(descriptor.sel(feature="intensity.mean")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--shape", type=int, nargs=3, default=None, help="z y x (default 1024 1024 2048)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a 128×128×256 volume unless --shape: seconds"
    )
    parser.add_argument("--recipe", choices=["light", "default"], default="light")
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--chunks", type=int, default=128)
    parser.add_argument("--workdir", default=None, help="keep the input here")
    args = parser.parse_args()
    shape = tuple(args.shape or ((128, 128, 256) if args.quick else (1024, 1024, 2048)))
    nbytes = 2 * shape[0] * shape[1] * shape[2]
    print(f"ct_phantom {shape} int16 ({nbytes / GIB:.2f} GiB), recipe {args.recipe!r}, "
          f"tiles {args.tile}³ …", flush=True)  # fmt: skip
    import bench_features  # the child imports the work by module name, not from __main__

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tv-bench-features-"))
    path = str(workdir / "phantom.zarr")
    try:
        if not Path(path).exists():
            print("writing the input …", flush=True)
            bench_features.make_input(path, shape, args.chunks)
        m = _measure.measure_function(bench_features.run, path, args.recipe, args.tile)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    r = m.result
    nvox = nbytes // 2
    print("| volume GiB | tiles (valid) | descriptor length | wall s | CPU s | peak RSS MiB | "
          "Mvox/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    speed = nvox / m.wall_s / 1e6
    print(f"| {nbytes / GIB:.2f} | {r['n_tiles']} ({r['n_valid']}) | {r['n_features']} | "
          f"{m.wall_s:.1f} | {m.cpu_s:.1f} | {m.peak_rss_mib:.0f} | {speed:.1f} |")  # fmt: skip
    verdict = "PASS" if m.peak_rss < 2 * GIB else "FAIL"
    print(f"{verdict}: peak RSS {m.peak_rss_mib:.0f} MiB (limit 2048 MiB); "
          f"mean foreground HU {r['mean_hu']:.1f}")  # fmt: skip
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
