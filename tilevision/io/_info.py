"""``info``: what an OME-Zarr image holds, from its metadata alone."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ._open import open

__all__ = ["format_info", "info"]


def _disk_bytes(path: str) -> int | None:
    if "://" in path and not path.startswith("file://"):
        return None
    root = Path(path.removeprefix("file://"))
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def info(path_or_url: str | os.PathLike[str]) -> dict[str, Any]:
    """Summarise an OME-Zarr image: shape, dtype, chunks, spacing, pyramid, provenance.

    Reads metadata only (no pixels).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tilevision as tv
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> dest = tv.ingest(np.zeros((300, 200), "uint8"), folder / "a.zarr", chunks=128)
    >>> summary = tv.io.info(dest)
    >>> summary["shape"], summary["chunks"]
    ({'y': 300, 'x': 200}, {'y': 128, 'x': 128})
    >>> [tuple(level["shape"].values()) for level in summary["levels"]]
    [(300, 200), (150, 100), (75, 50)]
    """
    where = os.fspath(path_or_url)
    image = open(where)
    levels = []
    for level in range(image.attrs["n_levels"]):
        lvl = image if level == 0 else open(where, level=level)
        levels.append(
            {
                "level": level,
                "shape": dict(zip(lvl.dims, lvl.shape)),
                "spacing": lvl.attrs["spacing"],
            }
        )
    provenance = {
        k: v
        for k, v in image.attrs.items()
        if k not in ("spacing", "origin", "units", "level", "n_levels", "path")
    }
    return {
        "path": where,
        "dims": list(image.dims),
        "shape": dict(zip(image.dims, image.shape)),
        "dtype": str(image.dtype),
        "chunks": dict(zip(image.dims, image.data.chunksize)),
        "n_chunks": int(np.prod(image.data.numblocks)),
        "spacing": image.attrs["spacing"],
        "units": image.attrs["units"],
        "origin": image.attrs["origin"],
        "levels": levels,
        "nbytes": int(image.nbytes),
        "disk_bytes": _disk_bytes(where),
        "provenance": provenance,
    }


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.1f} {unit}" if unit != "B" else f"{int(size)} B"
        size /= 1024
    return f"{size:.1f} TiB"


def format_info(summary: dict[str, Any]) -> str:
    """A short human-readable block for :func:`info`'s result.

    Examples
    --------
    >>> print(format_info({"path": "a.zarr", "dims": ["y", "x"], "shape": {"y": 4, "x": 4},
    ...     "dtype": "uint8", "chunks": {"y": 4, "x": 4}, "n_chunks": 1,
    ...     "spacing": {"y": 1.0, "x": 1.0}, "units": {"y": None, "x": None},
    ...     "origin": {"y": 0.0, "x": 0.0}, "nbytes": 16, "disk_bytes": 300,
    ...     "levels": [{"level": 0, "shape": {"y": 4, "x": 4}, "spacing": {"y": 1.0, "x": 1.0}}],
    ...     "provenance": {"source": "x.npy"}}))
    a.zarr
      shape    y=4 × x=4  uint8  (16 B in memory, 300 B on disk)
      chunks   y=4 × x=4  (1 chunks)
      spacing  y=1 px, x=1 px
      levels   0: 4×4
      source   x.npy
    """

    def dims(d: dict[str, Any]) -> str:
        return " × ".join(f"{k}={v}" for k, v in d.items())

    spacing = ", ".join(
        f"{k}={v:g} {_short_unit(summary['units'].get(k))}" for k, v in summary["spacing"].items()
    )
    levels = ", ".join(
        f"{lvl['level']}: " + "×".join(str(v) for v in lvl["shape"].values())
        for lvl in summary["levels"]
    )
    lines = [
        str(summary["path"]),
        f"  shape    {dims(summary['shape'])}  {summary['dtype']}  "
        f"({_size(summary['nbytes'])} in memory, {_size(summary['disk_bytes'])} on disk)",
        f"  chunks   {dims(summary['chunks'])}  ({summary['n_chunks']} chunks)",
        f"  spacing  {spacing}",
        f"  levels   {levels}",
    ]
    source = summary["provenance"].get("source")
    if source:
        fmt = summary["provenance"].get("source_format")
        lines.append(f"  source   {source}" + (f" ({fmt})" if fmt else ""))
    return "\n".join(lines)


def _short_unit(unit: str | None) -> str:
    return {"millimeter": "mm", "micrometer": "µm", "nanometer": "nm", "centimeter": "cm"}.get(
        unit or "", unit or "px"
    )
