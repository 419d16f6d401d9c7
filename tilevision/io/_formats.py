"""Source formats: detection by name/content and the table of readers."""

from __future__ import annotations

import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import xarray as xr

from ._source import BlockSource

__all__ = ["FORMATS", "detect_format", "read_source", "supported_formats"]


@dataclass(frozen=True)
class FormatSpec:
    """A source format: how to recognise it and which reader opens it."""

    name: str
    description: str
    suffixes: tuple[str, ...]
    reader: str  # "module:function" relative to tilevision.io
    requires: tuple[str, ...] = ()


FORMATS: dict[str, FormatSpec] = {
    spec.name: spec
    for spec in [
        FormatSpec("npy", "NumPy .npy (memory-mapped)", (".npy",), "_read_npy:read_npy"),
        FormatSpec(
            "tiff",
            "TIFF / OME-TIFF / BigTIFF (read tile by tile or strip by strip)",
            (".tif", ".tiff", ".ome.tif", ".ome.tiff", ".btf", ".tf8", ".svs"),
            "_read_tiff:read_tiff",
        ),
        FormatSpec(
            "image",
            "PNG / JPEG (single images; colour becomes a 'c' axis)",
            (".png", ".jpg", ".jpeg"),
            "_read_image:read_image",
        ),
        FormatSpec(
            "dicom",
            "DICOM series (a folder of slices of one series)",
            (".dcm",),
            "_read_dicom:read_dicom",
            ("pydicom",),
        ),
        FormatSpec(
            "nifti",
            "NIfTI-1/2 (.nii, .nii.gz)",
            (".nii", ".nii.gz"),
            "_read_nifti:read_nifti",
            ("nibabel",),
        ),
        FormatSpec(
            "nrrd", "NRRD (.nrrd, .nhdr)", (".nrrd", ".nhdr"), "_read_nrrd:read_nrrd", ("nrrd",)
        ),
        FormatSpec(
            "zarr", "Zarr / OME-Zarr (v2 or v3; rechunked)", (".zarr",), "_read_zarr:read_zarr"
        ),
    ]
}


def supported_formats() -> dict[str, str]:
    """Names and descriptions of the source formats :func:`tilevision.ingest` reads.

    Examples
    --------
    >>> sorted(supported_formats())
    ['dicom', 'image', 'nifti', 'npy', 'nrrd', 'tiff', 'zarr']
    """
    return {name: spec.description for name, spec in FORMATS.items()}


def _supported_list() -> str:
    return "; ".join(f"{spec.name} ({', '.join(spec.suffixes)})" for spec in FORMATS.values())


def _looks_like_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name of the format of ``path``, from its name or (folders) its content.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` listing the
    supported formats for anything else.
    """
    text = os.fspath(path)
    if "://" in text:
        return "zarr"
    p = Path(text)
    if not p.exists():
        raise FileNotFoundError(f"no such file or folder: {p}. Check the path and try again.")
    name = p.name.lower()
    if p.is_dir():
        if any((p / marker).exists() for marker in ("zarr.json", ".zgroup", ".zarray")):
            return "zarr"
        files = [f for f in sorted(p.iterdir()) if f.is_file() and not f.name.startswith(".")]
        if any(f.suffix.lower() == ".dcm" or _looks_like_dicom(f) for f in files[:50]):
            return "dicom"
        # a study folder with one subfolder per series: look one or two levels down
        nested = [f for pattern in ("*/*", "*/*/*") for f in sorted(p.glob(pattern))[:200]]
        nested = [f for f in nested if f.is_file() and not f.name.startswith(".")]
        if any(f.suffix.lower() == ".dcm" or _looks_like_dicom(f) for f in nested[:100]):
            return "dicom"
        if not files and not nested:
            raise ValueError(f"{p} is an empty folder: there is no image in it to read.")
        raise ValueError(
            f"{p} is a folder that is neither a Zarr store nor a DICOM series. "
            f"Supported formats: {_supported_list()}."
        )
    for spec in sorted(FORMATS.values(), key=lambda s: -max(len(x) for x in s.suffixes)):
        if any(name.endswith(suffix) for suffix in spec.suffixes):
            return spec.name
    if _looks_like_dicom(p):
        return "dicom"
    raise ValueError(
        f"unsupported format: {p.name!r} is not a file type tilevision reads. "
        f"Supported formats: {_supported_list()}. Convert the file to one of them, or load "
        "it yourself and pass the array to tilevision.ingest()."
    )


def read_source(
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    chunks: Mapping[str, int] | None = None,
    **options: Any,
) -> xr.DataArray:
    """Open a source file lazily as a tilevision image (DataArray backed by Dask).

    ``chunks`` (per dim) is the block size to read in (readers may widen it along
    axes they decode whole); ``options`` go to the format's reader (e.g.
    ``series=`` for DICOM).
    """
    name = format or detect_format(path)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; supported formats: {_supported_list()}.")
    spec = FORMATS[name]
    for module in spec.requires:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise ImportError(
                f"reading {spec.description} needs the '{module}' package, which is not "
                "installed. Install it with: pip install 'tilevision[formats]'"
            ) from exc
    module_name, func_name = spec.reader.split(":")
    module = importlib.import_module(f"tilevision.io.{module_name}")
    source = getattr(module, func_name)(path, **options)
    if isinstance(source, BlockSource):
        return source.to_image(chunks)
    return source
