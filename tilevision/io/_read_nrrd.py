"""NRRD files (``.nrrd`` with attached data, ``.nhdr`` with a detached data file).

Only the header is parsed when the file is opened (with :func:`nrrd.read_header`);
the data are then streamed, never loaded whole:

- ``raw`` data are memory-mapped at the data offset;
- ``gzip``/``bzip2`` data are decompressed by a forward-reading stream
  (:class:`DecompressedStream`): reading z-slabs in increasing order continues the
  stream, a request before the current position restarts it (gzip from the
  nearest saved checkpoint, bzip2 from the start). Such sources are
  ``sequential`` and decode whole ``y``/``x`` extents;
- ``ascii``/``text`` data are read whole on the first request: text encodings
  are only used for tiny files.

NRRD stores the first axis fastest, so sizes ``[x, y, z]`` are a C-ordered
``(z, y, x)`` array: no reordering is needed, and nothing is reoriented.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ._ngff import normalise_unit
from ._source import BlockSource, MappedArray
from ._stream import DecompressedStream, axis_origins, read_c_region, to_native

__all__ = ["NrrdSource", "read_nrrd"]

_GZIP = ("gzip", "gz")
_BZIP2 = ("bzip2", "bz2")
_TEXT = ("ascii", "text", "txt")
_RAW = ("raw",)
#: kinds of axes that are sampled in space (the rest are channel-like)
_SPATIAL_KINDS = {"domain", "space", "none", "???"}
_CHANNEL_NAMES = {
    "RGB-color": ["R", "G", "B"],
    "RGBA-color": ["R", "G", "B", "A"],
    "HSV-color": ["H", "S", "V"],
    "XYZ-color": ["X", "Y", "Z"],
}


def _nrrd_error(path: Path, problem: str, fix: str) -> ValueError:
    return ValueError(f"{path}: {problem}. {fix}")


def _type_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for code, spellings in {
        "i1": "signed char, int8, int8_t",
        "u1": "uchar, unsigned char, uint8, uint8_t",
        "i2": "short, short int, signed short, signed short int, int16, int16_t",
        "u2": "ushort, unsigned short, unsigned short int, uint16, uint16_t",
        "i4": "int, signed int, int32, int32_t",
        "u4": "uint, unsigned int, uint32, uint32_t",
        "i8": "longlong, long long, long long int, signed long long, "
        "signed long long int, int64, int64_t",
        "u8": "ulonglong, unsigned long long, unsigned long long int, uint64, uint64_t",
        "f4": "float",
        "f8": "double",
    }.items():
        names.update(dict.fromkeys(spellings.split(", "), code))
    return names


#: NRRD 'type' spellings → NumPy type codes (NRRD file format specification)
_TYPES = _type_names()


def _disk_dtype(path: Path, header: dict[str, Any], encoding: str) -> np.dtype:
    """The on-disk dtype, with the byte order of the 'endian' field."""
    name = str(header.get("type", "")).strip()
    if name not in _TYPES:
        raise _nrrd_error(
            path,
            f"the NRRD type {name!r} is not supported",
            f"Re-save the data with one of the types {sorted(set(_TYPES))}",
        )
    dtype = np.dtype(_TYPES[name])
    if dtype.itemsize == 1 or encoding in _TEXT:
        return dtype
    endian = header.get("endian")
    if endian not in ("little", "big"):
        raise _nrrd_error(
            path,
            f"the header's 'endian' field is {endian!r}",
            "Add 'endian: little' or 'endian: big' to the header",
        )
    return dtype.newbyteorder("<" if endian == "little" else ">")


class NrrdSource(BlockSource):
    """An NRRD file (attached or detached data) read block by block."""

    format = "nrrd"

    def __init__(self, path: str | Path) -> None:
        super().__init__(path)
        import nrrd

        try:
            with open(self.path, "rb") as fh:
                header = nrrd.read_header(fh)
                header_end = fh.tell()
        except (nrrd.NRRDError, ValueError, UnicodeDecodeError, StopIteration) as exc:
            raise _nrrd_error(
                self.path,
                f"not a readable NRRD header ({exc})",
                "Check that the file is an NRRD file (it starts with 'NRRD000x') and re-save "
                "it, e.g. with pynrrd or 3D Slicer",
            ) from exc
        self._init_layout(header, header_end)
        self._init_geometry(header)
        self._stream: DecompressedStream | None = None
        self._mmap: MappedArray | None = None
        self._text: np.ndarray | None = None

    # -- header ---------------------------------------------------------------------
    def _init_layout(self, header: dict[str, Any], header_end: int) -> None:
        if "sizes" not in header:
            raise _nrrd_error(
                self.path, "the header has no 'sizes' field", "Add 'sizes: <x> <y> [<z>]'"
            )
        sizes = [int(n) for n in np.ravel(header["sizes"])]
        ndim = int(header.get("dimension", len(sizes)))
        if ndim != len(sizes):
            raise _nrrd_error(
                self.path,
                f"'dimension: {ndim}' does not match the {len(sizes)} sizes {sizes}",
                "Fix the 'dimension' or 'sizes' field of the header",
            )
        encoding = str(header.get("encoding", "raw")).lower()
        if encoding not in _RAW + _GZIP + _BZIP2 + _TEXT:
            raise _nrrd_error(
                self.path,
                f"the NRRD encoding {encoding!r} is not supported (tilevision reads raw, "
                "gzip, bzip2 and ascii)",
                "Re-save the file with one of those encodings, e.g. "
                "nrrd.write(out, data, header, compression_level=1) for gzip",
            )
        disk = _disk_dtype(self.path, header, encoding)
        kinds = list(header.get("kinds") or [None] * ndim)
        directions = header.get("space directions")
        channel_axes = [
            i
            for i, k in enumerate(kinds)
            if (k is not None and k not in _SPATIAL_KINDS)
            # without kinds, an axis whose space direction is 'none' is not spatial
            or (
                k is None
                and directions is not None
                and len(directions) == ndim
                and not np.all(np.isfinite(directions[i]))
            )
        ]
        n_spatial = ndim - len(channel_axes)
        if "time" in kinds or len(channel_axes) > 1 or not 2 <= n_spatial <= 3:
            raise _nrrd_error(
                self.path,
                f"a {ndim}-D NRRD with sizes {sizes} and kinds {kinds} is not a 2-D or 3-D "
                "image with at most one channel axis",
                "tilevision reads one 2-D or 3-D image (colour or vector components on one "
                "axis). Extract one volume first, e.g. data, header = nrrd.read(path); "
                "nrrd.write('volume.nrrd', data[..., t])",
            )
        # names of the NRRD axes (fastest first); the C-ordered file array reverses them
        names: list[str] = []
        spatial_names = iter(("x", "y", "z"))
        for i in range(ndim):
            names.append("c" if i in channel_axes else next(spatial_names))
        self._axis_names = names
        self._file_dims = tuple(reversed(names))
        self._file_shape = tuple(reversed(sizes))
        self.dims = tuple(d for d in ("c", "z", "y", "x") if d in names)
        self.shape = tuple(sizes[names.index(d)] for d in self.dims)
        self._perm = tuple(self._file_dims.index(d) for d in self.dims)
        self._disk_dtype = np.dtype(disk)
        self.original_dtype = self._disk_dtype.newbyteorder("=")
        self.dtype = self.original_dtype
        if channel_axes:
            self.channel_names = _CHANNEL_NAMES.get(str(kinds[channel_axes[0]]))
            if self.channel_names and len(self.channel_names) != sizes[channel_axes[0]]:
                self.channel_names = None
        self._encoding = (
            "raw" if encoding in _RAW else "gzip" if encoding in _GZIP
            else "bzip2" if encoding in _BZIP2 else "text"
        )  # fmt: skip
        if self._encoding in ("gzip", "bzip2"):
            self.sequential = True  # type: ignore[misc]
            self.whole_extent_dims = tuple(d for d in self.dims if d in ("y", "x"))
            if len(self.dims) - ("c" in self.dims) == 2:
                self.whole_extent_dims = ("x",)
        self._locate_data(header, header_end)
        self.metadata.update(
            encoding=self._encoding,
            endian=header.get("endian"),
            kinds=kinds,
            sizes=sizes,
            data_file=str(self._data_path.name),
            detached=self._data_path != self.path,
        )

    def _locate_data(self, header: dict[str, Any], header_end: int) -> None:
        data_file = header.get("data file", header.get("datafile"))
        if data_file is not None:
            text = str(data_file).strip()
            if text.upper().startswith("LIST") or (" " in text and "%" in text):
                raise _nrrd_error(
                    self.path,
                    f"the data are split over several files ('data file: {text}')",
                    "tilevision reads one data file per NRRD; join them first, e.g. with "
                    "'unu join' from teem",
                )
            data_path = Path(text)
            if not data_path.is_absolute():
                data_path = self.path.parent / data_path
            start = 0
        else:
            data_path, start = self.path, header_end
        if not data_path.is_file():
            raise FileNotFoundError(
                f"{self.path}: its data file {data_path} does not exist. Keep the .nhdr "
                "header beside its data file (or fix its 'data file' field)."
            )
        line_skip = int(header.get("line skip", header.get("lineskip", 0)))
        byte_skip = int(header.get("byte skip", header.get("byteskip", 0)))
        if line_skip < 0 or byte_skip < -1:
            raise _nrrd_error(
                self.path,
                f"invalid line skip {line_skip} / byte skip {byte_skip}",
                "line skip must be ≥ 0 and byte skip ≥ -1; fix the header",
            )
        if line_skip:
            with open(data_path, "rb") as fh:
                fh.seek(start)
                for _ in range(line_skip):
                    fh.readline()
                start = fh.tell()
        nbytes = int(np.prod(self._file_shape, dtype=np.int64)) * self._disk_dtype.itemsize
        self._data_path = data_path
        self._data_offset = 0  # offset within the (decompressed) stream
        if self._encoding == "raw":
            size = data_path.stat().st_size
            start = size - nbytes if byte_skip == -1 else start + byte_skip
            if start < 0 or start + nbytes > size:
                raise _nrrd_error(
                    self.path,
                    f"the raw data need {nbytes} bytes from offset {start} but "
                    f"{data_path.name} has {size} bytes (truncated, or sizes/type wrong)",
                    "Re-export the file from the original source",
                )
        elif self._encoding in ("gzip", "bzip2"):
            if byte_skip == -1:
                raise _nrrd_error(
                    self.path,
                    "'byte skip: -1' with compressed data cannot be streamed",
                    "Decompress the file first (e.g. nrrd.write(out, *nrrd.read(path)))",
                )
            self._data_offset = byte_skip
        self._start = start

    def _init_geometry(self, header: dict[str, Any]) -> None:
        spatial_axes = [i for i, n in enumerate(self._axis_names) if n != "c"]
        names = [self._axis_names[i] for i in spatial_axes]
        ndim = len(self._axis_names)
        directions = header.get("space directions")
        spacings = header.get("spacings")
        space_units = header.get("space units")
        axis_units = header.get("units")
        has_space = "space" in header or "space dimension" in header
        spacing: dict[str, float] = {}
        units: dict[str, str | None] = {}
        dir_rows = []
        for name, i in zip(names, spatial_axes, strict=True):
            vec = None
            if directions is not None and len(directions) == ndim:
                vec = np.asarray(directions[i], dtype=np.float64)
                if not np.all(np.isfinite(vec)):
                    vec = None
            dir_rows.append(vec if vec is not None else np.full(3, np.nan))
            step = float(np.linalg.norm(vec)) if vec is not None else np.nan
            if not np.isfinite(step) and spacings is not None and len(spacings) == ndim:
                step = abs(float(spacings[i]))
            spacing[name] = step if np.isfinite(step) and step > 0 else 1.0
            unit = None
            if space_units is not None and vec is not None:
                world = int(np.argmax(np.abs(vec)))
                unit = space_units[world] if world < len(space_units) else space_units[0]
                unit = normalise_unit(unit)
            elif has_space:
                unit = "millimeter"
            elif axis_units is not None and len(axis_units) == ndim:
                unit = normalise_unit(axis_units[i])
            units[name] = unit
        origin_vec = header.get("space origin")
        origin: dict[str, float] = dict.fromkeys(names, 0.0)
        if origin_vec is not None and np.all(np.isfinite(origin_vec)):
            values = axis_origins(np.array(dir_rows), np.asarray(origin_vec))
            origin = dict(zip(names, values, strict=True))
        order = [d for d in ("z", "y", "x") if d in names]
        self.spacing = {d: spacing[d] for d in order}
        self.units = {d: units[d] for d in order}
        self.origin = {d: origin[d] for d in order}
        self.metadata.update(
            space=header.get("space"),
            space_directions=_clean(directions),
            space_origin=_clean(origin_vec),
            space_units=_clean(space_units),
            spacings=_clean(spacings),
            measurement_frame=_clean(header.get("measurement frame")),
        )

    # -- data -----------------------------------------------------------------------
    def _handle_attrs(self) -> tuple[str, ...]:
        return ("_stream", "_mmap", "_text")

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        file_key: list[slice] = [slice(None)] * len(self._file_dims)
        for d, k in zip(self.dims, key, strict=True):
            file_key[self._file_dims.index(d)] = k
        if self._encoding == "raw":
            if self._mmap is None:
                path, dtype = self._data_path, self._disk_dtype
                offset, shape = self._start, self._file_shape
                self._mmap = MappedArray(
                    lambda: np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
                )
            region = to_native(self._mmap[tuple(file_key)])
        elif self._encoding == "text":
            region = self._read_text()[tuple(file_key)]
        else:
            if self._stream is None:
                self._stream = DecompressedStream(self._data_path, self._start, self._encoding)
            region = read_c_region(
                self._stream.read_at, self._data_offset, self._file_shape,
                self._disk_dtype, file_key,
            )  # fmt: skip
        return region.transpose(self._perm).astype(self.dtype, copy=False)

    def _read_text(self) -> np.ndarray:
        """The whole data of an ascii-encoded file (such files are tiny)."""
        if self._text is None:
            with open(self._data_path, "rb") as fh:
                fh.seek(self._start)
                tokens = fh.read().decode("ascii", "replace").split()
            count = int(np.prod(self._file_shape, dtype=np.int64))
            if len(tokens) < count:
                raise ValueError(f"the ascii data hold {len(tokens)} values, not {count}")
            try:
                values = np.array(tokens[:count], dtype=self.dtype)  # native order
            except ValueError:
                values = np.array(tokens[:count], dtype=np.float64).astype(self.dtype)
            self._text = values.reshape(self._file_shape)
        return self._text


def _clean(value: Any) -> Any:
    """Header values as JSON-friendly lists, with NaN (NRRD 'none') as None."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def read_nrrd(path: str | Path) -> NrrdSource:
    """Open an NRRD file (``.nrrd`` or ``.nhdr`` + data file) as a block source.

    The header is read now; the data are streamed block by block later
    (memory-mapped when raw, decompressed front to back when gzip/bzip2).
    Spacing comes from the ``space directions`` (vector norms) or ``spacings``,
    origin from ``space origin``, units from ``space units`` (millimetres when a
    ``space`` is given without units). A non-spatial axis (``kinds`` such as
    ``RGB-color`` or ``vector``) becomes the ``c`` axis.

    Parameters
    ----------
    path : str or path
        The ``.nrrd`` or ``.nhdr`` file.

    Returns
    -------
    NrrdSource
        Dims ``("z", "y", "x")`` (sizes ``[x, y, z]`` in the header), ``("y", "x")``,
        or with a leading ``"c"``; header facts in ``metadata``.

    Examples
    --------
    >>> import pathlib, tilevision
    >>> data = pathlib.Path(tilevision.__file__).parent / "datasets" / "data"
    >>> src = read_nrrd(data / "mr-lesions" / "breast1_image.nrrd")
    >>> src.dims, src.shape, src.dtype
    (('z', 'y', 'x'), (21, 120, 45), dtype('int16'))
    >>> src.spacing, src.units["x"]
    ({'z': 2.1, 'y': 0.664062, 'x': 0.664062}, 'millimeter')
    >>> src[0:2, 0:3, 0:4].shape
    (2, 3, 4)
    """
    return NrrdSource(path)
