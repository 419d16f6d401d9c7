"""DICOM series: a folder of single-frame slices, read header-first and slice by slice.

Only the headers are read when the source is opened (``stop_before_pixels``); the
pixels of a slice are decoded, and rescaled to the output dtype, when a block
that covers it is requested. Slices are ordered by their position along the
slice normal (never by file name or InstanceNumber), and the series is checked
to be one regular stack before anything is read: a missing slice or uneven
spacing is an error, not a silently distorted volume.

This module holds the block source (pixel format checks, decoding, rescaling)
and the metadata it records; scanning the headers, choosing the series, sorting
the slices and checking their geometry live in :mod:`tilevision.io._dicom_headers`,
whose docstring describes the axis convention.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from ._dicom_headers import (
    DicomHeader,
    has_dicm_marker,
    scan_headers,
    select_series,
    single_image_geometry,
    stack_geometry,
)
from ._source import BlockSource, rescaled_dtype

__all__ = ["DicomSeriesSource", "read_dicom"]

#: relative difference allowed between slice gaps before a series is called uneven
DEFAULT_SPACING_TOLERANCE = 1e-3


def _check_pixel_format(root: Path, headers: list[DicomHeader]) -> np.dtype:
    """The stored (raw) dtype of the series, after checking that it is supported.

    Parameters
    ----------
    root : Path
        The series folder (for error messages).
    headers : list of DicomHeader
        Headers of the slices of one series.

    Returns
    -------
    numpy.dtype
        From BitsAllocated (8, 16, 32) and PixelRepresentation.

    Raises
    ------
    ValueError
        Multi-frame or colour images, mixed or unsupported pixel formats, or a
        transfer syntax pydicom cannot decode.
    ImportError
        The decoder for the transfer syntax needs a package that is not installed.
    """
    first = headers[0]
    multi = [h for h in headers if h.frames > 1]
    if multi:
        h = multi[0]
        raise ValueError(
            f"{root / h.file} is a multi-frame DICOM image ({h.frames} frames in one file); "
            "tilevision does not read multi-frame DICOM yet. Convert it to a single-frame "
            "series (e.g. with dcm4che's emf2sf) or to NIfTI (e.g. with dcm2niix) and "
            "ingest that."
        )
    colour = [h for h in headers if h.samples != 1 or not h.photometric.startswith("MONO")]
    if colour:
        h = colour[0]
        raise ValueError(
            f"{root / h.file} is a colour DICOM image (PhotometricInterpretation "
            f"{h.photometric}, {h.samples} sample(s) per pixel); tilevision reads greyscale "
            "(MONOCHROME1/2) DICOM only for now. Export the image as PNG or TIFF and "
            "ingest that."
        )
    kinds = {(h.bits_allocated, h.pixel_representation) for h in headers}
    if len(kinds) > 1:
        raise ValueError(
            f"the slices in {root} store pixels in different formats (BitsAllocated, "
            f"PixelRepresentation: {sorted(kinds)}); a series must use one. Re-export "
            "the series from the scanner or PACS."
        )
    if first.bits_allocated not in (8, 16, 32):
        raise ValueError(
            f"{root / first.file} has BitsAllocated={first.bits_allocated}; tilevision reads "
            "8-, 16- and 32-bit DICOM pixels. Convert the series (e.g. to NIfTI with "
            "dcm2niix) and ingest that."
        )
    syntax = pydicom.uid.UID(first.transfer_syntax or pydicom.uid.ExplicitVRLittleEndian)
    try:
        decoder = pydicom.pixels.get_decoder(syntax)
    except NotImplementedError as exc:
        raise ValueError(
            f"{root / first.file} uses the transfer syntax {syntax} ({syntax.name}), which "
            "pydicom cannot decode. Decompress the series first (e.g. dcmtk's dcmdjpeg "
            "or gdcmconv --raw) and ingest that."
        ) from exc
    if not decoder.is_available:
        raise ImportError(
            f"{root / first.file} is compressed ({syntax.name}) and no installed package "
            "can decode it. Install one of: " + "; ".join(decoder.missing_dependencies)
        )
    kind = "i" if first.pixel_representation else "u"
    return np.dtype(f"{kind}{first.bits_allocated // 8}")


def _raw_range(h: DicomHeader) -> tuple[int, int]:
    bits = max(1, min(h.bits_stored, h.bits_allocated))
    if h.pixel_representation:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def _output_dtype(raw: np.dtype, headers: list[DicomHeader]) -> np.dtype:
    """The dtype that holds every slice's rescaled values (see ``rescaled_dtype``).

    With one rescale for the whole series this is ``rescaled_dtype`` itself. When
    the slope or intercept changes between slices, integer results take the
    smallest signed type that holds the rescaled ranges of all slices, and
    anything else the float type that holds them all.
    """
    combos = {(h.slope, h.intercept, _raw_range(h)) for h in headers}
    dtypes = [rescaled_dtype(raw, s, i, raw_range=r) for s, i, r in combos]
    if len({d.str for d in dtypes}) == 1 or any(d.kind == "f" for d in dtypes):
        return np.result_type(*dtypes)
    ends = [v * s + i for s, i, r in combos for v in r]
    lo, hi = min(ends), max(ends)
    for candidate in (np.int16, np.int32, np.int64):
        info = np.iinfo(candidate)
        if info.min <= lo and hi <= info.max:
            return np.dtype(candidate)
    return np.dtype(np.float64)


class DicomSeriesSource(BlockSource):
    """One DICOM series (a folder of single-frame greyscale slices) as a block source.

    See :func:`read_dicom`.
    """

    format = "dicom"
    whole_extent_dims = ("y", "x")
    thread_safe = True  # every read opens its own slice files

    def __init__(
        self,
        path: str | Path,
        *,
        series: str | None = None,
        spacing_tolerance: float = DEFAULT_SPACING_TOLERANCE,
    ) -> None:
        super().__init__(path)
        if not self.path.exists():
            raise FileNotFoundError(
                f"no such DICOM folder or file: {self.path}. Check the path and try again."
            )
        root, headers, firsts, skipped = scan_headers(self.path)
        if not headers:
            what = (
                f"{self.path} is not a DICOM image file"
                if self.path.is_file()
                else f"no DICOM image files in the folder {self.path} ({skipped} file(s) "
                "checked, none of them a DICOM image)"
            )
            raise ValueError(
                f"{what}. Point to the folder that holds the series' slice files (files "
                "with a DICOM header, usually named .dcm or without an extension)."
            )
        headers = select_series(root, headers, series)
        raw = _check_pixel_format(root, headers)
        if len(headers) == 1:
            geometry = single_image_geometry(headers[0])
        else:
            headers, geometry = stack_geometry(root, headers, spacing_tolerance)

        self._root = root
        self._files = [h.file for h in headers]
        self._slopes = [h.slope for h in headers]
        self._intercepts = [h.intercept for h in headers]
        self._rows, self._columns = headers[0].rows, headers[0].columns
        self.original_dtype = raw
        self.dtype = _output_dtype(raw, headers)
        self.dims = geometry["dims"]
        self.shape = (
            (len(headers), self._rows, self._columns)
            if self.dims == ("z", "y", "x")
            else (self._rows, self._columns)
        )
        self.spacing = geometry["spacing"]
        self.origin = geometry["origin"]
        units = "millimeter" if headers[0].pixel_spacing else None
        self.units = dict.fromkeys(self.dims, units)
        self.metadata = _metadata(firsts[headers[0].series_uid], headers, geometry, skipped)
        # identifies this series' files (two series in one folder must differ)
        stamps = [headers[0].series_uid]
        for name in self._files:
            st = (root / name).stat()
            stamps.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
        self._fp = hashlib.sha1("\n".join(stamps).encode()).hexdigest()[:16]

    def _fingerprint(self) -> str:
        return self._fp

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        if len(key) == 2:
            return self._read_slice(0, key[0], key[1])
        zs, ys, xs = key
        out = np.empty(
            (zs.stop - zs.start, ys.stop - ys.start, xs.stop - xs.start), dtype=self.dtype
        )
        for i, k in enumerate(range(zs.start, zs.stop)):
            out[i] = self._read_slice(k, ys, xs)
        return out

    def _read_slice(self, k: int, ys: slice, xs: slice) -> np.ndarray:
        path = self._root / self._files[k]
        try:
            raw = _read_pixels(path)
        except (ValueError, OSError, EOFError, KeyError):
            raise
        except Exception as exc:  # decoders raise many types; report them as bad data
            raise ValueError(f"cannot decode the pixels of {path}: {exc}") from exc
        if raw.shape != (self._rows, self._columns):
            raise ValueError(
                f"{path} decoded to shape {raw.shape}, but its header says "
                f"{self._rows}×{self._columns}"
            )
        return self._rescale(raw[ys, xs], k, path)

    def _rescale(self, raw: np.ndarray, k: int, path: Path) -> np.ndarray:
        slope, intercept = self._slopes[k], self._intercepts[k]
        if self.dtype.kind == "f":
            return (raw.astype(np.float64) * slope + intercept).astype(self.dtype)
        if slope == 1 and intercept == 0:
            values = raw
        else:
            values = raw.astype(np.int64) * int(slope) + int(intercept)
        info = np.iinfo(self.dtype)
        if values.size and (values.min() < info.min or values.max() > info.max):
            raise ValueError(
                f"{path} holds pixel values outside the range its header declares "
                f"(BitsStored); after rescaling they do not fit {self.dtype}. The file is "
                "corrupt or its header is wrong"
            )
        return values.astype(self.dtype)


def _read_pixels(path: Path) -> np.ndarray:
    """Stored pixel values of one single-frame DICOM file (no rescale)."""
    if has_dicm_marker(path):
        return pydicom.pixels.pixel_array(path)
    # a bare data set without File Meta Information: its encoding tells the syntax
    ds = pydicom.dcmread(path, force=True)
    if "TransferSyntaxUID" not in ds.file_meta:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            pydicom.uid.ImplicitVRLittleEndian
            if implicit
            else pydicom.uid.ExplicitVRLittleEndian
            if little
            else pydicom.uid.ExplicitVRBigEndian
        )
    return ds.pixel_array


def _text(ds: Dataset | None, keyword: str) -> Any:
    if ds is None or keyword not in ds or ds.get(keyword) in (None, ""):
        return None
    value = ds.get(keyword)
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    if isinstance(value, float):
        return float(value)
    if isinstance(value, int):
        return int(value)
    return str(value)


#: header facts copied into metadata: acquisition facts only, never patient,
#: study, institution, operator or date fields (no PHI leaves the DICOM files)
_SAFE_KEYWORDS = {
    "sop_class_uid": "SOPClassUID",
    "series_number": "SeriesNumber",
    "manufacturer": "Manufacturer",
    "manufacturer_model_name": "ManufacturerModelName",
    "body_part_examined": "BodyPartExamined",
    "image_type": "ImageType",
    "slice_thickness": "SliceThickness",
    "kvp": "KVP",
    "convolution_kernel": "ConvolutionKernel",
    "rescale_type": "RescaleType",
    "patient_position": "PatientPosition",
}


def _metadata(
    ds: Dataset | None, headers: list[DicomHeader], geometry: dict[str, Any], skipped: int
) -> dict[str, Any]:
    first = headers[0]
    meta: dict[str, Any] = {
        "series_instance_uid": first.series_uid,
        "series_description": first.description,
        "modality": first.modality,
    }
    for key, keyword in _SAFE_KEYWORDS.items():
        value = _text(ds, keyword)
        if value is not None:
            meta[key] = value
    slopes = {h.slope for h in headers}
    intercepts = {h.intercept for h in headers}
    meta.update(
        {
            "number_of_slices": len(headers),
            "rows": first.rows,
            "columns": first.columns,
            "photometric_interpretation": first.photometric,
            "bits_allocated": first.bits_allocated,
            "bits_stored": first.bits_stored,
            "pixel_representation": first.pixel_representation,
            "transfer_syntax_uid": first.transfer_syntax,
            "rescale_slope": slopes.pop() if len(slopes) == 1 else [h.slope for h in headers],
            "rescale_intercept": (
                intercepts.pop() if len(intercepts) == 1 else [h.intercept for h in headers]
            ),
            "image_orientation_patient": list(first.orientation) if first.orientation else None,
            "image_position_patient_first": list(first.position) if first.position else None,
            "pixel_spacing": list(first.pixel_spacing) if first.pixel_spacing else None,
            "skipped_files": skipped,
        }
    )
    if geometry.get("normal") is not None:
        meta["slice_normal"] = [float(v) for v in geometry["normal"]]
        meta["gantry_tilt_degrees"] = geometry["tilt_degrees"]
    if geometry.get("affine") is not None:
        key = "affine_zyx_to_lps" if len(geometry["dims"]) == 3 else "affine_yx_to_lps"
        meta[key] = [[float(v) for v in r] for r in geometry["affine"]]
    return meta


def read_dicom(
    path: str | Path,
    *,
    series: str | None = None,
    spacing_tolerance: float = DEFAULT_SPACING_TOLERANCE,
) -> DicomSeriesSource:
    """Open a DICOM series (a folder of slices) as a block source; headers only.

    Every file in the folder and its subfolders is tried; files that are not DICOM
    images (``DICOMDIR``, ``README``, reports) are skipped. The slices of the
    series are ordered by position along the slice normal and checked to form one
    regular stack. Values are rescaled (``stored * RescaleSlope +
    RescaleIntercept``, Hounsfield units for CT) exactly, into the dtype given by
    :func:`tilevision.io._source.rescaled_dtype`.

    Parameters
    ----------
    path : path
        Folder of the series' slice files, or a single DICOM file (read as one
        2-D image with dims ``("y", "x")``).
    series : str, optional
        SeriesInstanceUID of the series to read when the folder holds several.
    spacing_tolerance : float, optional
        Largest relative spread of the gaps between neighbouring slices that is
        still taken as one even spacing (rounding in the headers).

    Returns
    -------
    DicomSeriesSource
        dims ``("z", "y", "x")`` (``("y", "x")`` for one image), spacing and
        origin in millimetres. The origin is the first slice's
        ImagePositionPatient projected on the slice normal (``z``), the column
        direction (``y``) and the row direction (``x``); the full voxel-to-patient
        (LPS) affine is ``metadata["affine_zyx_to_lps"]``. No patient, study or
        institution data is copied into ``metadata``.

    Raises
    ------
    ValueError
        Several series and no ``series``; slices of different orientation, size
        or pixel spacing; duplicate positions; missing slices; uneven spacing;
        multi-frame or colour images; no DICOM image at all.

    Examples
    --------
    A single CT image shipped with pydicom (a folder of slices works the same way,
    with dims ``("z", "y", "x")``):

    >>> import pydicom
    >>> from pydicom.data import get_testdata_file
    >>> path = get_testdata_file("CT_small.dcm")
    >>> source = read_dicom(path)
    >>> source.dims, source.shape, source.dtype
    (('y', 'x'), (128, 128), dtype('int32'))
    >>> source.spacing, source.units
    ({'y': 0.661468, 'x': 0.661468}, {'y': 'millimeter', 'x': 'millimeter'})
    >>> source[:2, :3]  # Hounsfield units: stored value * 1 - 1024
    array([[-849, -844, -858],
           [-838, -841, -867]], dtype=int32)
    >>> stored = pydicom.dcmread(path).pixel_array
    >>> bool((source[:, :] == stored.astype("int32") - 1024).all())
    True
    """
    return DicomSeriesSource(path, series=series, spacing_tolerance=spacing_tolerance)
