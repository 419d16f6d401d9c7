"""Ingest benchmark: a large generated file → OME-Zarr, with wall time and peak RSS.

Generates, without ever holding it in memory,

* ``npy``: a 3-D uint16 volume (z, 1024, 1024) — the CT use case — written slab by slab
  into a ``.npy`` file, and
* ``tiff``: a 2-D uint16 plane as a tiled (512²), uncompressed BigTIFF, written tile by
  tile from a generator,

both of ``--size-gib`` GiB (smooth structure plus noise). Each file is then ingested with
``tilevision.ingest(src, dest)`` and default settings (threaded Dask scheduler) in a
FRESH child process, which is measured for wall time, CPU time and peak RSS (see
``_measure.py``). A few random level-0 chunks of the result are compared with the
source (the ``.npy`` memory map; for TIFF, the generator that wrote it). The page cache
is emptied of the source before each run (``posix_fadvise``), so it is read from disk.

Peak RSS must stay under 1 GiB whatever the input size; run two sizes to see that it
does not grow::

    python benchmarks/bench_ingest.py --size-gib 0.5 4
    python benchmarks/bench_ingest.py --format npy --size-gib 1 --chunks 256 --keep
    python benchmarks/bench_ingest.py --format tiff --tiff-layout contiguous
    python benchmarks/bench_ingest.py --quick    # 1/16 GiB each: seconds

Generated files are deleted at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
if (Path(__file__).resolve().parents[1] / "tilevision").is_dir():  # a source checkout
    sys.path.insert(1, str(Path(__file__).resolve().parents[1]))

import _measure

GIB = 2**30
MIB = 2**20
RSS_BOUND = 1 * GIB
NPY_PLANE = (1024, 1024)  # y, x of the 3-D volume
SLAB_BYTES = 64 * MIB  # generation granularity
TIFF_TILE = 512
SPOT_CHECKS = 8
SEED = 20260801


# -- data generation (never the whole image in memory) -----------------------------------


def _pattern(z: np.ndarray, y: np.ndarray, x: np.ndarray, seed: tuple[int, ...]) -> np.ndarray:
    """Smooth structure + noise at the broadcast coordinates ``z, y, x`` (uint16)."""
    smooth = (
        2000.0
        + 700.0 * np.sin(z / 37.0) * np.cos(y / 53.0)
        + 500.0 * np.cos(x / 41.0 + z / 113.0)
        + 300.0 * np.sin((y + x) / 97.0)
    ).astype(np.float32)
    rng = np.random.default_rng((SEED, *seed))
    noise = rng.integers(0, 64, size=smooth.shape, dtype=np.uint16)
    return smooth.astype(np.uint16) + noise


def npy_shape(size_gib: float) -> tuple[int, int, int]:
    ny, nx = NPY_PLANE
    return (max(1, math.ceil(size_gib * GIB / (2 * ny * nx))), ny, nx)


def tiff_shape(size_gib: float) -> tuple[int, int]:
    side = math.ceil(math.sqrt(size_gib * GIB / 2))
    return (side, side)


def write_npy(path: Path, shape: tuple[int, int, int]) -> None:
    """A uint16 volume written slab by slab through the ``.npy`` header's offset."""
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint16, shape=shape)
    offset = mm.offset
    del mm  # header written; the data are written with plain file writes (no mmap RSS)
    nz, ny, nx = shape
    per_slab = max(1, SLAB_BYTES // (2 * ny * nx))
    y = np.arange(ny, dtype=np.float32)[None, :, None]
    x = np.arange(nx, dtype=np.float32)[None, None, :]
    with open(path, "r+b") as f:
        f.seek(offset)
        for z0 in range(0, nz, per_slab):
            z1 = min(nz, z0 + per_slab)
            z = np.arange(z0, z1, dtype=np.float32)[:, None, None]
            f.write(_pattern(z, y, x, (z0,)).tobytes())
        f.flush()
        os.fsync(f.fileno())


def _plane_tile(ty: int, tx: int) -> np.ndarray:
    """The full (padded) tile ``(ty, tx)`` of the 2-D plane."""
    y = np.arange(ty * TIFF_TILE, (ty + 1) * TIFF_TILE, dtype=np.float32)[:, None]
    x = np.arange(tx * TIFF_TILE, (tx + 1) * TIFF_TILE, dtype=np.float32)[None, :]
    return _pattern(np.float32(0), y, x, (ty, tx))


def plane_region(y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    """The 2-D plane's pixels ``[y0:y1, x0:x1]``, regenerated (the TIFF's ground truth)."""
    out = np.empty((y1 - y0, x1 - x0), dtype=np.uint16)
    t = TIFF_TILE
    for ty in range(y0 // t, (y1 - 1) // t + 1):
        for tx in range(x0 // t, (x1 - 1) // t + 1):
            tile = _plane_tile(ty, tx)
            ys, ye = max(y0, ty * t), min(y1, (ty + 1) * t)
            xs, xe = max(x0, tx * t), min(x1, (tx + 1) * t)
            out[ys - y0 : ye - y0, xs - x0 : xe - x0] = tile[
                ys - ty * t : ye - ty * t, xs - tx * t : xe - tx * t
            ]
    return out


def write_tiff(path: Path, shape: tuple[int, int], layout: str = "tiled") -> None:
    """An uncompressed 2-D BigTIFF written from a generator, never whole in memory.

    ``layout="tiled"``: 512² tiles; ``"contiguous"``: plain rows (what
    ``tifffile.imwrite`` writes by default; tilevision memory-maps those). Same pixels.
    """
    import tifffile

    ny, nx = shape
    nty, ntx = math.ceil(ny / TIFF_TILE), math.ceil(nx / TIFF_TILE)

    def tiles() -> Iterator[np.ndarray]:
        for ty in range(nty):
            for tx in range(ntx):
                yield _plane_tile(ty, tx)

    def rows() -> Iterator[np.ndarray]:
        for ty in range(nty):
            band = plane_region(ty * TIFF_TILE, min(ny, (ty + 1) * TIFF_TILE), 0, nx)
            yield from band

    tiled = layout == "tiled"
    with tifffile.TiffWriter(path, bigtiff=True) as tif:
        tif.write(
            tiles() if tiled else rows(),
            shape=shape,
            dtype=np.uint16,
            tile=(TIFF_TILE, TIFF_TILE) if tiled else None,
            photometric="minisblack",
            compression=None,
            metadata=None,
        )
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def evict_from_page_cache(path: Path) -> bool:
    """Ask the kernel to drop ``path`` from the page cache (so ingest reads the disk)."""
    if not hasattr(os, "posix_fadvise"):
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    return True


# -- checks ------------------------------------------------------------------------------


def disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def spot_check(fmt: str, src: Path, dest: Path, rng: np.random.Generator) -> tuple[int, int]:
    """Compare ``SPOT_CHECKS`` random level-0 chunks with the source; (equal, checked)."""
    import zarr

    level0 = zarr.open_array(str(dest / "0"), mode="r")
    shape, chunks = level0.shape, level0.chunks
    reference = np.load(src, mmap_mode="r") if fmt == "npy" else None
    equal = 0
    for _ in range(SPOT_CHECKS):
        index = [int(rng.integers(0, math.ceil(n / c))) for n, c in zip(shape, chunks)]
        region = tuple(slice(i * c, min(n, (i + 1) * c)) for i, c, n in zip(index, chunks, shape))
        got = level0[region]
        if reference is not None:
            expected = np.asarray(reference[region])
        else:
            expected = plane_region(
                region[0].start, region[0].stop, region[1].start, region[1].stop
            )
        equal += bool(got.dtype == expected.dtype and np.array_equal(got, expected))
    del reference
    return equal, SPOT_CHECKS


# -- the benchmark -----------------------------------------------------------------------


@dataclass
class Row:
    fmt: str
    shape: tuple[int, ...]
    dtype: str
    gib_in: float
    gib_out: float
    levels: int
    gen_s: float
    wall_s: float
    cpu_s: float
    mb_s: float
    baseline_mib: float
    peak_mib: float
    anon_mib: float
    file_mib: float
    check: str

    @property
    def verdict(self) -> str:
        return "PASS" if self.peak_mib * MIB < RSS_BOUND else "FAIL"


def tiff_available() -> bool:
    return importlib.util.find_spec("tilevision.io._read_tiff") is not None


def run_one(
    fmt: str,
    size_gib: float,
    workdir: Path,
    chunks: int | None,
    keep: bool,
    ingest: Callable[..., Any] | None = None,
    tiff_layout: str = "tiled",
) -> Row:
    """Generate one input, ingest it in a fresh process (``ingest``, default
    ``tilevision.ingest``; it must be importable by name), check and measure it."""
    import zarr

    import tilevision

    ingest = tilevision.ingest if ingest is None else ingest

    tag = f"{fmt}-{size_gib:g}gib"
    src = workdir / (f"{tag}.npy" if fmt == "npy" else f"{tag}.tif")
    dest = workdir / f"{tag}.zarr"
    for stale in (src, dest):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    shape: tuple[int, ...]
    fmt_label = fmt
    t0 = time.perf_counter()
    if fmt == "npy":
        shape = npy_shape(size_gib)
        write_npy(src, shape)  # type: ignore[arg-type]
    else:
        shape = tiff_shape(size_gib)
        write_tiff(src, shape, tiff_layout)  # type: ignore[arg-type]
        fmt_label = "tiff" if tiff_layout == "tiled" else "tiff-c"
    gen_s = time.perf_counter() - t0
    evict_from_page_cache(src)
    print(f"[{tag}] generated {src.name} {shape} uint16 in {gen_s:.1f} s; ingesting…", flush=True)
    try:
        kwargs = {} if chunks is None else {"chunks": chunks}
        m = _measure.measure_function(ingest, str(src), str(dest), **kwargs)
        group = zarr.open_group(str(dest), mode="r")
        levels = len(group.attrs["ome"]["multiscales"][0]["datasets"])
        equal, checked = spot_check(fmt, src, dest, np.random.default_rng(SEED))
        nbytes = int(np.prod(shape)) * 2
        row = Row(
            fmt=fmt_label,
            shape=shape,
            dtype="uint16",
            gib_in=nbytes / GIB,
            gib_out=disk_usage(dest) / GIB,
            levels=levels,
            gen_s=gen_s,
            wall_s=m.wall_s,
            cpu_s=m.cpu_s,
            mb_s=nbytes / 1e6 / m.wall_s,
            baseline_mib=m.baseline_rss_mib or float("nan"),
            peak_mib=m.peak_rss_mib,
            anon_mib=m.details.get("sampled_rss_anon", 0) / MIB,
            file_mib=m.details.get("sampled_rss_file", 0) / MIB,
            check=f"{equal}/{checked} equal",
        )
        print(
            f"[{tag}] done: wall {m.wall_s:.1f} s, peak RSS {m.peak_rss_mib:.0f} MiB "
            f"({m.samples} samples)",
            flush=True,
        )
        return row
    finally:
        if not keep:
            src.unlink(missing_ok=True)
            shutil.rmtree(dest, ignore_errors=True)


def print_table(rows: list[Row]) -> None:
    head = (
        f"{'format':<6} {'shape':<20} {'dtype':<6} {'GiB in':>7} {'GiB out':>7} {'lvls':>4} "
        f"{'wall s':>7} {'CPU s':>7} {'MB/s':>6} {'base MiB':>8} {'peak RSS MiB':>12} "
        f"{'anon':>5} {'file':>5} {'<1 GiB':>6}  spot check"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r.fmt:<6} {'x'.join(map(str, r.shape)):<20} {r.dtype:<6} {r.gib_in:>7.2f} "
            f"{r.gib_out:>7.2f} {r.levels:>4} {r.wall_s:>7.1f} {r.cpu_s:>7.1f} {r.mb_s:>6.0f} "
            f"{r.baseline_mib:>8.0f} {r.peak_mib:>12.0f} {r.anon_mib:>5.0f} {r.file_mib:>5.0f} "
            f"{r.verdict:>6}  {r.check}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-gib",
        type=float,
        nargs="+",
        default=None,
        help="input size(s) in GiB (default 4); e.g. --size-gib 0.5 4",
    )
    parser.add_argument(
        "--quick", action="store_true", help="inputs of 1/16 GiB unless --size-gib: seconds"
    )
    parser.add_argument(
        "--format",
        choices=("npy", "tiff", "both"),
        default=None,
        help="which input to generate (default both when the TIFF reader is available, else npy)",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="where to write the inputs and outputs (default a temp dir)",
    )
    parser.add_argument(
        "--chunks",
        type=int,
        default=None,
        help="tile edge passed to ingest (default: ingest's 'auto')",
    )
    parser.add_argument(
        "--tiff-layout",
        choices=("tiled", "contiguous"),
        default="tiled",
        help="TIFF layout: 512² tiles (default), or contiguous rows (tifffile.imwrite's "
        "default, which tilevision reads through a memory map)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated files")
    args = parser.parse_args(argv)
    sizes = args.size_gib or ([1 / 16] if args.quick else [4.0])

    have_tiff = tiff_available()
    fmt = args.format or ("both" if have_tiff else "npy")
    if fmt in ("tiff", "both") and not have_tiff:
        if args.format == "tiff":
            parser.error("the TIFF reader (tilevision/io/_read_tiff.py) is not available yet.")
        print("note: the TIFF reader is not available; benchmarking npy only.")
        fmt = "npy"
    formats = ["npy", "tiff"] if fmt == "both" else [fmt]

    own_workdir = args.workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="tv-bench-ingest-")) if own_workdir else args.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    try:
        for size in sizes:
            for f in formats:
                rows.append(
                    run_one(f, size, workdir, args.chunks, args.keep, tiff_layout=args.tiff_layout)
                )
    finally:
        if own_workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        if rows:
            print()
            print(
                f"ingest benchmark — {os.cpu_count()} CPUs, default (threaded) scheduler, "
                f"chunks={args.chunks or 'auto'}, source evicted from the page cache"
            )
            print_table(rows)
            print(
                "base: RSS after imports; anon / file: sampled peaks of RssAnon (the process's "
                "own memory) and RssFile (mapped files: libraries and sources read through "
                "a memory map), MiB."
            )
            if args.keep:
                print(f"files kept in {workdir}")
    failed = [r for r in rows if r.verdict == "FAIL" or not r.check.startswith(str(SPOT_CHECKS))]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
