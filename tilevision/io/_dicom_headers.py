"""DICOM headers: scan a folder, choose a series, sort its slices, check its geometry.

Everything here works on the headers alone (``stop_before_pixels``); the pixels
are decoded by :class:`tilevision.io._read_dicom.DicomSeriesSource`.

Geometry. ``dims`` are ``("z", "y", "x")``: ``x`` runs along a row (the first
ImageOrientationPatient cosine), ``y`` down a column (the second), ``z`` along
their cross product, the slice normal. Spacing is PixelSpacing (row spacing →
``y``, column spacing → ``x``) and the distance between slice positions along
the normal (not SliceThickness), in millimetres. The origin is the centre of the
first voxel, ImagePositionPatient of the first slice, projected on these three
axes (for axial slices with the identity orientation: its z, y, x patient
coordinates). The full mapping to patient (LPS) coordinates is kept in
``metadata["affine_zyx_to_lps"]``.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pydicom.errors
from pydicom.dataset import Dataset

__all__ = [
    "ORIENTATION_ATOL",
    "DicomHeader",
    "has_dicm_marker",
    "scan_headers",
    "select_series",
    "single_image_geometry",
    "stack_geometry",
]

#: absolute tolerance on direction cosines when comparing orientations
ORIENTATION_ATOL = 1e-4
#: how many items an error message lists before eliding the rest
_SHOW = 8


@dataclass(frozen=True)
class DicomHeader:
    """The facts of one image file that the reader needs (no patient data).

    Fields are the DICOM attributes of the same name (``""``, 1 or 0 when absent);
    ``position``, ``orientation`` and ``pixel_spacing`` are None when absent or
    malformed.
    """

    file: str  # relative to the series folder
    series_uid: str
    description: str
    modality: str
    rows: int
    columns: int
    samples: int
    frames: int
    photometric: str
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    position: tuple[float, ...] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, ...] | None
    slope: float
    intercept: float
    transfer_syntax: str


def _floats(ds: Dataset, keyword: str, n: int) -> tuple[float, ...] | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    values = [value] if n == 1 and not isinstance(value, (list, tuple)) else list(value)
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _header(ds: Dataset, file: str) -> DicomHeader | None:
    """Header facts of an image file, or None for a DICOM file that is not an image."""
    if "SeriesInstanceUID" not in ds or "Rows" not in ds or "Columns" not in ds:
        return None  # DICOMDIR, structured report, RT structure set, presentation state…
    slope = _floats(ds, "RescaleSlope", 1)
    intercept = _floats(ds, "RescaleIntercept", 1)
    meta = getattr(ds, "file_meta", None)
    return DicomHeader(
        file=file,
        series_uid=str(ds.SeriesInstanceUID),
        description=str(ds.get("SeriesDescription", "") or ""),
        modality=str(ds.get("Modality", "") or ""),
        rows=int(ds.Rows),
        columns=int(ds.Columns),
        samples=int(ds.get("SamplesPerPixel", 1) or 1),
        frames=int(ds.get("NumberOfFrames", 1) or 1),
        photometric=str(ds.get("PhotometricInterpretation", "") or ""),
        bits_allocated=int(ds.get("BitsAllocated", 16) or 16),
        bits_stored=int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16),
        pixel_representation=int(ds.get("PixelRepresentation", 0) or 0),
        position=_floats(ds, "ImagePositionPatient", 3),
        orientation=_floats(ds, "ImageOrientationPatient", 6),
        pixel_spacing=_floats(ds, "PixelSpacing", 2) or _floats(ds, "ImagerPixelSpacing", 2),
        slope=slope[0] if slope else 1.0,
        intercept=intercept[0] if intercept else 0.0,
        transfer_syntax=str(getattr(meta, "TransferSyntaxUID", "") or ""),
    )


def has_dicm_marker(path: Path) -> bool:
    """Whether ``path`` has the ``DICM`` marker after the 128-byte preamble.

    Parameters
    ----------
    path : Path
        File to check; one that cannot be opened gives False.

    Returns
    -------
    bool
        True for a DICOM Part 10 file.
    """
    try:
        with open(path, "rb") as fh:
            fh.seek(128)
            return fh.read(4) == b"DICM"
    except OSError:
        return False


def _starts_like_bare_dicom(path: Path) -> bool:
    """Whether a file without the DICM preamble starts with a group 0008 element.

    Old (ACR-NEMA style) files have no preamble or File Meta Information; they
    start straight with the little-endian tags of group 0008.
    """
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"\x08\x00"
    except OSError:
        return False


def _read_header(f: Path) -> Dataset:
    try:
        return pydicom.dcmread(f, stop_before_pixels=True)
    except pydicom.errors.InvalidDicomError:
        if not _starts_like_bare_dicom(f):
            raise
        return pydicom.dcmread(f, stop_before_pixels=True, force=True)


def _candidate_files(root: Path) -> list[Path]:
    """Files under ``root`` (recursively), skipping hidden entries and Zarr stores."""
    out = []
    for folder, subdirs, files in os.walk(root):
        subdirs[:] = sorted(
            d for d in subdirs if not d.startswith(".") and not d.lower().endswith(".zarr")
        )
        out.extend(Path(folder) / f for f in sorted(files) if not f.startswith("."))
    return out


def scan_headers(path: Path) -> tuple[Path, list[DicomHeader], dict[str, Dataset], int]:
    """Read the headers of every DICOM image file at ``path`` (a folder or one file).

    A folder is searched recursively, skipping hidden entries and Zarr stores;
    files that are not DICOM images (README, DICOMDIR, reports) are skipped.

    Parameters
    ----------
    path : Path
        Folder of slice files, or a single DICOM file.

    Returns
    -------
    root : Path
        The series folder (``path``, or the parent of a single file).
    headers : list of DicomHeader
        One per DICOM image file, in sorted file order.
    firsts : dict of str to Dataset
        The first header dataset of each series, by SeriesInstanceUID.
    skipped : int
        How many files were skipped.

    Raises
    ------
    ValueError
        A file has the DICOM marker but its header cannot be read.

    Examples
    --------
    >>> from pathlib import Path
    >>> from pydicom.data import get_testdata_file
    >>> path = Path(get_testdata_file("CT_small.dcm"))
    >>> root, headers, firsts, skipped = scan_headers(path)
    >>> root == path.parent, skipped, [(h.file, h.rows, h.intercept) for h in headers]
    (True, 0, [('CT_small.dcm', 128, -1024.0)])
    """
    root, files = (path.parent, [path]) if path.is_file() else (path, _candidate_files(path))
    headers: list[DicomHeader] = []
    firsts: dict[str, Dataset] = {}
    skipped = 0
    for f in files:
        try:
            ds = _read_header(f)
        except pydicom.errors.InvalidDicomError:
            skipped += 1  # README, thumbnails, anything not DICOM: skipped quietly
            continue
        except Exception as exc:
            if not has_dicm_marker(f):
                skipped += 1
                continue
            raise ValueError(
                f"{f} looks like a DICOM file but its header cannot be read ({exc}). "
                "The file is truncated or corrupt: remove it from the folder or replace "
                "it with a good copy."
            ) from exc
        header = _header(ds, f.relative_to(root).as_posix())
        if header is None:
            skipped += 1
            continue
        headers.append(header)
        firsts.setdefault(header.series_uid, ds)
    return root, headers, firsts, skipped


def _describe_series(root: Path, uid: str, members: list[DicomHeader]) -> str:
    desc = members[0].description or "no description"
    modality = members[0].modality or "?"
    folders = {Path(h.file).parent.as_posix() for h in members}
    where = ""
    if len(folders) == 1 and (sub := folders.pop()) != ".":
        where = f", in subfolder {str(root / sub)!r}"
    return f'  {uid}: "{desc}" ({modality}, {len(members)} slice(s){where})'


def select_series(root: Path, headers: list[DicomHeader], series: str | None) -> list[DicomHeader]:
    """The headers of the one series to read, in their original order.

    Parameters
    ----------
    root : Path
        The series folder (for error messages).
    headers : list of DicomHeader
        Headers of every image file found, possibly of several series.
    series : str or None
        SeriesInstanceUID to keep; None when the folder must hold one series.

    Returns
    -------
    list of DicomHeader

    Raises
    ------
    ValueError
        ``series`` is not found, or is None and there are several series.
    """
    groups: dict[str, list[DicomHeader]] = {}
    for h in headers:
        groups.setdefault(h.series_uid, []).append(h)
    listing = "\n".join(_describe_series(root, uid, m) for uid, m in groups.items())
    if series is not None:
        if str(series) not in groups:
            raise ValueError(
                f"{root} holds no DICOM series with SeriesInstanceUID {series!r}. The "
                f"series found there are:\n{listing}\nPass one of these UIDs as series=."
            )
        return groups[str(series)]
    if len(groups) > 1:
        raise ValueError(
            f"{root} holds {len(groups)} DICOM series:\n{listing}\nChoose one: pass "
            'series="<SeriesInstanceUID>" (CLI: --series UID), or point to a folder '
            "that holds only that series (its subfolder, if it has one)."
        )
    return next(iter(groups.values()))


def _fmt(values: Any) -> str:
    values = list(values)
    text = ", ".join(f"{v:g}" for v in values[:_SHOW])
    return text + (f", … ({len(values)} in all)" if len(values) > _SHOW else "")


def _unit(v: tuple[float, ...]) -> np.ndarray:
    a = np.asarray(v, dtype=float)
    norm = np.linalg.norm(a)
    return a / norm if norm > 0 else a


def single_image_geometry(h: DicomHeader) -> dict[str, Any]:
    """The geometry of one image read as a 2-D ``("y", "x")`` array.

    Parameters
    ----------
    h : DicomHeader
        Header of the image.

    Returns
    -------
    dict
        ``dims``; ``spacing`` and ``origin`` per dim (1 and 0 when unknown);
        ``affine``, 4×3 from ``(j, i, 1)`` to patient LPS, or None; ``normal`` None.
    """
    dy, dx = h.pixel_spacing or (1.0, 1.0)
    if h.orientation and h.position:
        row, col = _unit(h.orientation[:3]), _unit(h.orientation[3:])
        pos = np.asarray(h.position)
        origin = {"y": float(col @ pos), "x": float(row @ pos)}
        affine = np.zeros((4, 3))
        affine[:3, 0], affine[:3, 1], affine[:3, 2] = col * dy, row * dx, pos
        affine[3, 2] = 1.0  # (j, i, 1) → (x, y, z, 1) in patient LPS millimetres
    else:
        origin, affine = {"y": 0.0, "x": 0.0}, None
    return {
        "dims": ("y", "x"),
        "spacing": {"y": float(dy), "x": float(dx)},
        "origin": origin,
        "affine": affine,
        "normal": None,
    }


def stack_geometry(
    root: Path, headers: list[DicomHeader], tolerance: float
) -> tuple[list[DicomHeader], dict[str, Any]]:
    """Sort the slices along their normal and check that they form a regular stack.

    Parameters
    ----------
    root : Path
        The series folder (for error messages).
    headers : list of DicomHeader
        Headers of the slices of one series (at least two).
    tolerance : float
        Largest relative spread of the gaps between neighbouring slices that is
        still taken as one even spacing.

    Returns
    -------
    headers : list of DicomHeader
        The slices sorted by position along the slice normal.
    geometry : dict
        ``dims``; ``spacing`` and ``origin`` per dim; ``affine``, 4×4 from
        ``(k, j, i, 1)`` to patient LPS; unit slice ``normal``; ``tilt_degrees``.

    Raises
    ------
    ValueError
        Slices without position/orientation; mixed orientations, sizes or pixel
        spacings; duplicate positions; missing slices; uneven spacing.
    """
    lacking = [h.file for h in headers if h.position is None or h.orientation is None]
    if lacking:
        raise ValueError(
            f"{len(lacking)} of the {len(headers)} slices in {root} lack "
            f"ImagePositionPatient/ImageOrientationPatient (e.g. {lacking[0]}), so their "
            "order and spacing are unknown. These are not slices of one volume (e.g. "
            "X-ray or screenshot images): ingest each file on its own."
        )
    if not all(
        np.allclose(h.orientation, headers[0].orientation, atol=ORIENTATION_ATOL) for h in headers
    ):
        orientations = Counter(tuple(round(v, 4) for v in h.orientation or ()) for h in headers)
        found = "; ".join(f"{list(o)} ({n} slices)" for o, n in orientations.most_common())
        raise ValueError(
            f"the slices in {root} have different orientations (ImageOrientationPatient: "
            f"{found}); a volume is one stack of parallel slices. Move the odd slices "
            "(often localizer/scout images) out of the folder, or put each stack in its "
            "own folder."
        )
    sizes = Counter((h.rows, h.columns) for h in headers)
    if len(sizes) > 1:
        found = "; ".join(f"{r}×{c} ({n} slices)" for (r, c), n in sizes.most_common())
        raise ValueError(
            f"the slices in {root} differ in size (Rows×Columns: {found}); a volume needs "
            "slices of one size. Move the odd slices out of the folder."
        )
    spacings = Counter(h.pixel_spacing for h in headers)
    if len(spacings) > 1 and not all(
        h.pixel_spacing is not None
        and headers[0].pixel_spacing is not None
        and np.allclose(h.pixel_spacing, headers[0].pixel_spacing, rtol=1e-4)
        for h in headers
    ):
        found = "; ".join(f"{s} ({n} slices)" for s, n in spacings.most_common())
        raise ValueError(
            f"the slices in {root} have different PixelSpacing ({found}); a volume needs "
            "one pixel size. Move the odd slices out of the folder."
        )

    row, col = _unit(headers[0].orientation[:3]), _unit(headers[0].orientation[3:])
    normal = np.cross(row, col)
    if np.linalg.norm(normal) < 0.5:
        raise ValueError(
            f"the ImageOrientationPatient of the slices in {root} "
            f"({list(headers[0].orientation)}) does not give two independent directions; "
            "the header is invalid. Re-export the series."
        )
    normal = normal / np.linalg.norm(normal)
    positions = np.array([h.position for h in headers], dtype=float)
    along = positions @ normal
    order = np.argsort(along, kind="stable")
    headers = [headers[i] for i in order]
    positions, along = positions[order], along[order]
    gaps = np.diff(along)
    typical = float(np.median(gaps))

    dup = np.flatnonzero(gaps <= max(1e-6, 0.01 * typical))
    if dup.size:
        pairs = "; ".join(
            f"{headers[i].file} and {headers[i + 1].file} at {along[i]:g} mm" for i in dup[:_SHOW]
        )
        raise ValueError(
            f"{dup.size} pair(s) of slices in {root} lie at the same position along the "
            f"slice normal ({pairs}). The folder holds duplicate copies of files, or "
            "several acquisitions, echoes or time points of one series: remove the "
            "duplicates, or move each acquisition to its own folder."
        )
    ratio = gaps / typical
    multiple = np.rint(ratio)
    holes = np.flatnonzero((multiple >= 2) & (np.abs(ratio - multiple) < 0.1))
    if holes.size:
        missing = [along[i] + j * typical for i in holes for j in range(1, int(multiple[i]))]
        between = "; ".join(f"{headers[i].file} – {headers[i + 1].file}" for i in holes[:_SHOW])
        raise ValueError(
            f"{len(missing)} slice(s) missing from the series in {root}: the slices are "
            f"{typical:g} mm apart, but there is none at {_fmt(missing)} mm along the "
            f"slice normal (gaps between {between}). Copy the missing slice files into the "
            "folder (re-export the complete series from the scanner or PACS)."
        )
    spread = (gaps.max() - gaps.min()) / typical
    if spread > tolerance:
        found = Counter(np.round(gaps, 4).tolist())
        listing = ", ".join(f"{g:g} mm ×{n}" for g, n in sorted(found.items()))
        raise ValueError(
            f"inconsistent slice spacing in the series in {root}: the gaps between "
            f"neighbouring slices are {listing} (spread {spread:.2g} of the median "
            f"{typical:g} mm; tolerance {tolerance:g}). tilevision needs evenly spaced "
            "slices. If the differences are rounding in the headers, pass a larger "
            f"spacing_tolerance= (e.g. spacing_tolerance={max(spread * 1.1, 1e-3):.2g}); "
            "otherwise resample the series to a regular grid and ingest that."
        )

    n = len(headers)
    dz = float((along[-1] - along[0]) / (n - 1))
    dy, dx = headers[0].pixel_spacing or (1.0, 1.0)
    step = (positions[-1] - positions[0]) / (n - 1)
    affine = np.zeros((4, 4))
    affine[:3, 0], affine[:3, 1], affine[:3, 2], affine[:3, 3] = (
        step,
        col * dy,
        row * dx,
        positions[0],
    )
    affine[3, 3] = 1.0
    cosine = float(np.clip(step @ normal / np.linalg.norm(step), -1.0, 1.0))
    return headers, {
        "dims": ("z", "y", "x"),
        "spacing": {"z": dz, "y": float(dy), "x": float(dx)},
        "origin": {
            "z": float(along[0]),
            "y": float(col @ positions[0]),
            "x": float(row @ positions[0]),
        },
        "affine": affine,
        "normal": normal,
        "tilt_degrees": float(np.degrees(np.arccos(cosine))),
    }
