"""The ``tilevision`` command line: a thin layer over the library.

Errors print on one line without a traceback (``--debug`` shows it); exit codes:
0 success, 1 error, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._version import __version__

__all__ = ["main"]


def _parse_chunks(text: str) -> Any:
    if text == "auto":
        return "auto"
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _parse_levels(text: str) -> Any:
    return "auto" if text == "auto" else int(text)


def _parse_floats(text: str) -> Any:
    parts = [float(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _progress(enabled: bool) -> Any:
    """A progress bar for local-scheduler computations (a no-op context otherwise)."""
    import contextlib

    if not enabled:
        return contextlib.nullcontext()
    try:
        from distributed import get_client

        get_client()
        return contextlib.nullcontext()  # the dashboard shows progress on a cluster
    except ValueError:
        from dask.diagnostics import ProgressBar

        return ProgressBar(minimum=1.0, dt=0.5)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .io import format_info, info, ingest

    options = {}
    if args.series:
        options["series"] = args.series
    start = time.perf_counter()
    with _progress(not args.quiet):
        dest = ingest(
            args.source,
            args.dest,
            chunks=args.chunks,
            levels=args.levels,
            compressor=args.compressor,
            overwrite=args.overwrite,
            downsample_method=args.downsample,
            format=args.format,
            spacing=args.spacing,
            units=args.units,
            **options,
        )
    elapsed = time.perf_counter() - start
    summary = info(dest)
    if args.json:
        print(json.dumps(dict(summary, seconds=round(elapsed, 3)), default=str))
    else:
        print(format_info(summary))
        print(f"  written in {elapsed:.1f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .io import format_info, info

    summary = info(args.path)
    print(json.dumps(summary, default=str, indent=1) if args.json else format_info(summary))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(output=Path(args.output), use_cluster=not args.no_cluster, quick=args.quick)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tilevision`` command."""
    parser = argparse.ArgumentParser(
        prog="tilevision",
        description="Tile-by-tile analysis of images too large for memory, on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"tilevision {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="ingest sample data (real CT, synthetic phantom and slide) and summarise it",
        description="Generate and load sample images, ingest them to OME-Zarr on a local "
        "Dask cluster, open them lazily and print a summary.",
    )
    demo.add_argument("--output", default="tilevision-demo", help="folder for the outputs")
    demo.add_argument(
        "--no-cluster",
        action="store_true",
        help="use Dask's threaded scheduler instead of starting a local distributed cluster",
    )
    demo.add_argument("--quick", action="store_true", help="smaller synthetic images")
    demo.set_defaults(func=_cmd_demo)

    ing = sub.add_parser(
        "ingest",
        help="convert an image (TIFF, PNG/JPEG, DICOM, NIfTI, NRRD, NumPy, Zarr) to OME-Zarr",
        description="Stream an image into a chunked, compressed OME-Zarr store "
        "(Zarr v3, NGFF 0.5) with a multiscale pyramid.",
    )
    ing.add_argument("source", help="file, DICOM folder or Zarr store to read")
    ing.add_argument("dest", help="the .zarr folder to write")
    ing.add_argument(
        "--chunks", type=_parse_chunks, default="auto", help="tile size: auto, N or Z,Y,X"
    )
    ing.add_argument(
        "--levels", type=_parse_levels, default="auto", help="pyramid levels: auto or N"
    )
    ing.add_argument(
        "--compressor",
        default="zstd",
        choices=["zstd", "blosc-zstd", "blosc-lz4", "gzip", "none"],
    )
    ing.add_argument("--downsample", default="mean", choices=["mean", "nearest"])
    ing.add_argument("--format", default=None, help="force the source format")
    ing.add_argument(
        "--spacing", type=_parse_floats, default=None, help="override spacing: S or Z,Y,X"
    )
    ing.add_argument("--units", default=None, help="override units (e.g. millimeter)")
    ing.add_argument("--series", default=None, help="DICOM SeriesInstanceUID to read")
    ing.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    ing.add_argument("--json", action="store_true", help="print the summary as JSON")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    ing.set_defaults(func=_cmd_ingest)

    inf = sub.add_parser(
        "info",
        help="shape, chunks, spacing, pyramid levels and provenance of an OME-Zarr image",
    )
    inf.add_argument("path", help="the .zarr store (path or URL)")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(func=_cmd_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = str(exc).strip().replace("\n", " ") or type(exc).__name__
        print(f"tilevision {args.command}: error: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
