"""Write real DICOM files (and CT series) with pydicom, for the DICOM reader tests.

The files carry complete image headers (File Meta Information with an explicit
VR little endian transfer syntax, SOP class, UIDs, plane geometry, pixel module,
rescale) and are written with ``dcmwrite(..., enforce_file_format=True)``: they
are what a PACS export looks like, not mocks.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    CTImageStorage,
    ExplicitVRLittleEndian,
    SecondaryCaptureImageStorage,
    generate_uid,
)
from pydicom.valuerep import format_number_as_ds

__all__ = [
    "IDENTITY",
    "PHI_VALUES",
    "lps_orientation_from_ras_affine",
    "rewrite_without_file_meta",
    "write_ct_series",
    "write_dicom_image",
]

#: axial slices, rows along +x (patient left), columns along +y (posterior)
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0))
#: identifying values written into every test file; they must never reach metadata
PHI_VALUES = ("Doe^Jane", "TV-PATIENT-0042", "19700101", "Test Hospital")


def _ds(values: Sequence[float]) -> list[str]:
    """Decimal strings (≤ 16 characters) for a DS attribute."""
    return [format_number_as_ds(float(v)) for v in values]


def write_dicom_image(
    path: str | Path,
    pixels: np.ndarray,
    *,
    series_uid: str,
    study_uid: str,
    frame_of_reference_uid: str | None = None,
    position: Sequence[float] | None = (0.0, 0.0, 0.0),
    orientation: Sequence[Sequence[float]] | None = IDENTITY,
    pixel_spacing: Sequence[float] | None = (1.0, 1.0),
    slice_thickness: float | None = 1.0,
    slope: float | None = 1.0,
    intercept: float | None = 0.0,
    bits_stored: int | None = None,
    instance_number: int = 1,
    description: str = "tilevision test series",
    modality: str = "CT",
    number_of_frames: int | None = None,
    colour: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write one DICOM image file with pydicom and return its path.

    ``pixels`` is (rows, columns) of stored values (uint8/uint16/int16); a
    (frames, rows, columns) array with ``number_of_frames`` makes a multi-frame
    file and a (rows, columns, 3) uint8 array with ``colour=True`` an RGB one.
    ``orientation`` is (row direction cosines, column direction cosines), as in
    ImageOrientationPatient; ``pixel_spacing`` is (row spacing, column spacing).
    """
    path = Path(path)
    pixels = np.ascontiguousarray(pixels)
    sop_class = SecondaryCaptureImageStorage if colour else CTImageStorage
    sop_uid = generate_uid()

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.FrameOfReferenceUID = frame_of_reference_uid or generate_uid()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.InstitutionName = PHI_VALUES
    ds.PatientSex = "F"
    ds.StudyDate = ds.SeriesDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "A0001"
    ds.Modality = modality
    ds.SeriesDescription = description
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.Manufacturer = "tilevision test writer"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    if position is not None:
        ds.ImagePositionPatient = _ds(position)
    if orientation is not None:
        ds.ImageOrientationPatient = _ds([*orientation[0], *orientation[1]])
    if pixel_spacing is not None:
        ds.PixelSpacing = _ds(pixel_spacing)
    if slice_thickness is not None:
        ds.SliceThickness = format_number_as_ds(float(slice_thickness))
    if slope is not None:
        ds.RescaleSlope = format_number_as_ds(float(slope))
    if intercept is not None:
        ds.RescaleIntercept = format_number_as_ds(float(intercept))
        ds.RescaleType = "HU"

    if colour:
        rows, columns = pixels.shape[:2]
        ds.SamplesPerPixel = 3
        ds.PhotometricInterpretation = "RGB"
        ds.PlanarConfiguration = 0
    else:
        rows, columns = pixels.shape[-2:]
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
    if number_of_frames is not None:
        ds.NumberOfFrames = number_of_frames
    ds.Rows, ds.Columns = int(rows), int(columns)
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits_stored or bits
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    ds.PixelData = pixels.tobytes()
    for keyword, value in (extra or {}).items():
        setattr(ds, keyword, value)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def lps_orientation_from_ras_affine(
    affine: np.ndarray,
) -> tuple[tuple[tuple[float, ...], tuple[float, ...]], tuple[float, float, float]]:
    """DICOM (row, column) cosines and first-voxel position (LPS) of a NIfTI affine.

    NIfTI voxel (i, j, k) is image[k, j, i]: i runs along a DICOM row (columns
    index), j down the columns (rows index); RAS becomes LPS by negating x and y.
    """
    flip = np.diag([-1.0, -1.0, 1.0])
    lin = flip @ np.asarray(affine, dtype=float)[:3, :3]
    row = lin[:, 0] / np.linalg.norm(lin[:, 0])
    col = lin[:, 1] / np.linalg.norm(lin[:, 1])
    origin = flip @ np.asarray(affine, dtype=float)[:3, 3]
    return (tuple(row), tuple(col)), tuple(float(v) for v in origin)


def write_ct_series(
    folder: str | Path,
    stored: np.ndarray,
    *,
    spacing: Sequence[float] = (1.0, 1.0, 1.0),
    origin: Sequence[float] = (0.0, 0.0, 0.0),
    orientation: Sequence[Sequence[float]] = IDENTITY,
    slope: float | Sequence[float] = 1.0,
    intercept: float | Sequence[float] = -1024.0,
    bits_stored: int | None = None,
    positions: Sequence[Sequence[float]] | None = None,
    series_uid: str | None = None,
    study_uid: str | None = None,
    description: str = "tilevision test CT",
    seed: int = 0,
    reverse_instance_numbers: bool = False,
) -> list[Path]:
    """Write a (z, y, x) volume of stored values as a DICOM CT series in ``folder``.

    Slice ``k`` lies at ``origin + k * spacing[0] * normal`` (LPS, millimetres),
    with ``normal`` the cross product of the row and column cosines, and has
    PixelSpacing ``spacing[1:]`` (row spacing, column spacing). Files are written
    in a shuffled order under random, non-sequential names (some with a ``.dcm``
    suffix, some without). ``slope`` and ``intercept`` may be given per slice;
    ``positions`` overrides the computed ImagePositionPatient per slice.

    Returns the file paths in slice order (index ``k`` is slice ``k``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stored = np.asarray(stored)
    n = stored.shape[0]
    rng = np.random.default_rng(seed)
    series_uid = series_uid or generate_uid()
    study_uid = study_uid or generate_uid()
    frame_uid = generate_uid()
    row, col = (np.asarray(v, dtype=float) for v in orientation)
    normal = np.cross(row, col)
    slopes = np.broadcast_to(np.asarray(slope, dtype=float), (n,))
    intercepts = np.broadcast_to(np.asarray(intercept, dtype=float), (n,))
    names = [f"{rng.integers(16**8):08x}" + (".dcm" if i % 2 else "") for i in range(n)]
    paths = [folder / name for name in names]
    for k in rng.permutation(n):
        pos = (
            positions[k]
            if positions is not None
            else np.asarray(origin, dtype=float) + k * spacing[0] * normal
        )
        write_dicom_image(
            paths[k],
            stored[k],
            series_uid=series_uid,
            study_uid=study_uid,
            frame_of_reference_uid=frame_uid,
            position=pos,
            orientation=orientation,
            pixel_spacing=spacing[1:],
            slice_thickness=spacing[0],
            slope=slopes[k],
            intercept=intercepts[k],
            bits_stored=bits_stored,
            instance_number=(n - k) if reverse_instance_numbers else k + 1,
            description=description,
        )
    return paths


def rewrite_without_file_meta(path: str | Path) -> Path:
    """Rewrite a DICOM file as a bare implicit-VR data set (no preamble, no File Meta).

    This is how old (ACR-NEMA style) exports look: the file starts straight with
    the group 0008 elements.
    """
    path = Path(path)
    ds = pydicom.dcmread(path)
    del ds.file_meta
    ds.preamble = None
    pydicom.dcmwrite(path, ds, implicit_vr=True, little_endian=True)
    return path
