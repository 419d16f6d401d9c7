"""NIfTI-1/2 files (``.nii``, ``.nii.gz``), read block by block.

nibabel parses the header (shape, dtype, zooms, affine, scaling, units); the
voxels are then read lazily, never the whole volume at once:

- uncompressed files are memory-mapped at ``vox_offset`` (as nibabel's own
  array proxy does);
- gzip/bzip2 files are decompressed front to back by a
  :class:`~tilevision.io._stream.DecompressedStream` that continues where the
  last read stopped and restarts from a saved checkpoint when a read goes back.
  (Slicing nibabel's ``img.dataobj`` slab by slab re-decompresses the file from
  its start on every read unless ``indexed_gzip`` is installed, which is
  quadratic in the number of slabs.)

NIfTI stores voxel ``data[i, j, k]`` with ``i`` fastest, i.e. a C-ordered
``(k, j, i)`` array: ``data[i, j, k]`` becomes ``image[k, j, i]`` with dims
``("z", "y", "x")`` and spacing = zooms reversed. Nothing is reoriented; the full
affine, the qform/sform codes and the axis codes are kept in ``metadata``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._source import BlockSource, MappedArray, rescaled_dtype
from ._stream import DecompressedStream, axis_origins, read_c_region, to_native

__all__ = ["NiftiSource", "read_nifti"]

#: NIfTI spatial unit names (nibabel's ``get_xyzt_units``) → NGFF unit names.
#: "unknown" (code 0) is read as millimetres: NIfTI's qform/sform world space is
#: millimetres by convention, which nibabel, ITK and FSL all assume.
_UNITS: dict[str, str | None] = {
    "unknown": "millimeter",
    "meter": "meter",
    "mm": "millimeter",
    "micron": "micrometer",
}
_COMPRESSED = {".gz": "gzip", ".bz2": "bzip2"}


def _volume_shape(path: Path, shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` without trailing length-1 dims past the third; 2-D or 3-D only."""
    shape = tuple(int(n) for n in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    if len(shape) not in (2, 3):
        fix = (
            "Extract one volume first, e.g. with nibabel: "
            "img = nibabel.load(path); nibabel.save(img.slicer[..., t], 'volume_t.nii.gz')"
            if len(shape) > 3
            else "Save it as a 2-D or 3-D image"
        )
        raise ValueError(
            f"{path} holds a {len(shape)}-D NIfTI image of shape {shape}: tilevision "
            f"reads one 2-D or 3-D volume. {fix}."
        )
    return shape


class NiftiSource(BlockSource):
    """A NIfTI-1/2 image read block by block (memory-mapped or streamed)."""

    format = "nifti"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        import nibabel as nib

        try:
            img = nib.load(self.path)
        except (nib.filebasedimages.ImageFileError, OSError, ValueError, EOFError) as exc:
            raise ValueError(
                f"{self.path}: not a readable NIfTI file ({exc}). Check that it is a "
                "complete .nii or .nii.gz file, or re-export it (e.g. with nibabel or dcm2niix)."
            ) from exc
        header = img.header
        if not hasattr(header, "get_xyzt_units"):
            raise ValueError(
                f"{self.path}: nibabel reads it as {type(img).__name__}, not a NIfTI image. "
                "Convert it to NIfTI first (nibabel.save(nibabel.Nifti1Image(...), 'x.nii.gz'))."
            )
        disk = np.dtype(header.get_data_dtype())
        if disk.fields is not None or not (np.issubdtype(disk, np.number) or disk == np.bool_):
            raise ValueError(
                f"{self.path}: the NIfTI data type {disk} (e.g. RGB24) is not supported. "
                "Split the colour fields into a numeric array first."
            )
        shape = _volume_shape(self.path, img.shape)
        ndim = len(shape)
        self._disk_dtype = disk
        self._file_shape = tuple(reversed(shape))  # C order (k, j, i)
        self.dims = ("z", "y", "x")[3 - ndim :]
        self.shape = self._file_shape

        # data location and compression
        proxy = img.dataobj
        data_path = Path(getattr(proxy, "file_like", self.path))
        self._data_path = data_path
        self._offset = int(getattr(proxy, "offset", header.get_data_offset()))
        suffix = data_path.suffix.lower()
        self._codec = _COMPRESSED.get(suffix)
        if self._codec is None and suffix in nib.openers.ImageOpener.compress_ext_map:
            raise ValueError(
                f"{self.path}: {suffix}-compressed NIfTI cannot be streamed by tilevision "
                f"(it streams {', '.join(sorted(_COMPRESSED))}). Save it as .nii or .nii.gz."
            )
        if self._codec is not None:
            self.sequential = True  # type: ignore[misc]
            self.whole_extent_dims = self.dims[1:]
        else:
            needed = self._offset + int(np.prod(shape, dtype=np.int64)) * disk.itemsize
            if data_path.stat().st_size < needed:
                raise ValueError(
                    f"{self.path}: the header describes {needed} bytes of data but the file "
                    f"has {data_path.stat().st_size}; it is truncated. Re-export it."
                )

        # scaling: raw * slope + inter, in the dtype of the one rescale rule
        # (nibabel moves scl_slope/scl_inter from the header onto the array proxy on load)
        slope, inter = getattr(proxy, "slope", None), getattr(proxy, "inter", None)
        self._slope = 1.0 if slope is None or not np.isfinite(slope) else float(slope)
        self._inter = 0.0 if inter is None or not np.isfinite(inter) else float(inter)
        scaled = not (self._slope == 1 and self._inter == 0)
        self.original_dtype = disk.newbyteorder("=")
        self.dtype = rescaled_dtype(self.original_dtype, self._slope, self._inter)

        # geometry
        zooms = [float(z) for z in header.get_zooms()[:ndim]]
        bad = [i for i, z in enumerate(zooms) if not np.isfinite(z) or z <= 0]
        for i in bad:
            zooms[i] = 1.0
        space_unit = header.get_xyzt_units()[0]
        unit = _UNITS.get(space_unit)
        affine = np.asarray(img.affine, dtype=np.float64)
        origins = axis_origins(affine[:3, :ndim].T, affine[:3, 3])
        spatial = self.dims
        self.spacing = dict(zip(spatial, reversed(zooms), strict=True))
        self.origin = dict(zip(spatial, reversed(origins), strict=True))
        self.units = dict.fromkeys(spatial, unit)
        self.metadata = {
            "nifti_version": 2 if type(header).__name__.startswith("Nifti2") else 1,
            "shape": [int(n) for n in img.shape],
            "affine": affine.tolist(),
            "qform_code": int(header["qform_code"]),
            "sform_code": int(header["sform_code"]),
            "axcodes": [str(c) for c in nib.aff2axcodes(affine)],
            "xyzt_units": list(header.get_xyzt_units()),
            "spatial_unit_assumed": space_unit == "unknown",
            "zooms": [float(z) if np.isfinite(z) else None for z in header.get_zooms()],
            "invalid_zooms_set_to_1": [self.dims[ndim - 1 - i] for i in bad],
            "scl_slope": self._slope if scaled else None,
            "scl_inter": self._inter if scaled else None,
            "vox_offset": self._offset,
            "compression": self._codec,
            "description": header["descrip"].item().decode("latin-1", "replace").strip("\0 "),
            "intent": str(header.get_intent()[0]),
        }
        self._mmap: MappedArray | None = None
        self._stream: DecompressedStream | None = None

    def _handle_attrs(self) -> tuple[str, ...]:
        return ("_mmap", "_stream")

    def _read_raw(self, key: tuple[slice, ...]) -> np.ndarray:
        if self._codec is None:
            if self._mmap is None:
                path, dtype = self._data_path, self._disk_dtype
                offset, shape = self._offset, self._file_shape
                self._mmap = MappedArray(
                    lambda: np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
                )
            return to_native(self._mmap[key])
        if self._stream is None:
            self._stream = DecompressedStream(self._data_path, 0, self._codec)
        return read_c_region(
            self._stream.read_at, self._offset, self._file_shape, self._disk_dtype, key
        )

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        raw = self._read_raw(key).astype(self.original_dtype, copy=False)
        if self._slope == 1 and self._inter == 0:
            return raw
        if self.dtype.kind in "iu":  # integer raw, integer slope and intercept
            exact = raw.astype(np.int64) * int(self._slope) + int(self._inter)
            return exact.astype(self.dtype)
        return (raw.astype(np.float64) * self._slope + self._inter).astype(self.dtype)


def read_nifti(path: str | Path) -> NiftiSource:
    """Open a NIfTI-1/2 file (``.nii``, ``.nii.gz``) as a block source.

    Only the header is read now. Voxel ``data[i, j, k]`` becomes
    ``image[k, j, i]`` (dims ``("z", "y", "x")``; ``("y", "x")`` for 2-D files);
    spacing is the header zooms reversed, origin the affine translation of the
    first voxel per axis, units from ``xyzt_units`` (millimetres when unknown).
    Data scaled by ``scl_slope``/``scl_inter`` come out as ``raw * slope + inter``
    in the dtype of :func:`~tilevision.io._source.rescaled_dtype`; unscaled data
    keep their on-disk dtype. A 4-D/5-D file is accepted when its extra dims have
    length 1.

    Parameters
    ----------
    path : str or path
        The ``.nii`` or ``.nii.gz`` file.

    Returns
    -------
    NiftiSource
        Header facts (affine, qform/sform codes, axis codes, units, scaling) in
        ``metadata``.

    Examples
    --------
    >>> import pathlib, tilevision
    >>> data = pathlib.Path(tilevision.__file__).parent / "datasets" / "data"
    >>> src = read_nifti(data / "ct-organs" / "example_ct_sm.nii.gz")
    >>> src.dims, src.shape, src.dtype, src.spacing
    (('z', 'y', 'x'), (30, 101, 122), dtype('int16'), {'z': 3.0, 'y': 3.0, 'x': 3.0})
    >>> src.metadata["axcodes"]
    ['R', 'A', 'S']
    >>> src[0:1, 0:2, 0:3].shape
    (1, 2, 3)
    """
    return NiftiSource(path)
