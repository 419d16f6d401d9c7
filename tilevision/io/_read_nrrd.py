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

import bz2
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ._ngff import normalise_unit
from ._source import BlockSource

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

#: compressed bytes read from the file per step
_READ_SIZE = 256 * 2**10
#: most decompressed bytes produced per step
_STEP_OUTPUT = 2**20
#: decompressed bytes between two gzip checkpoints
_CHECKPOINT_EVERY = 16 * 2**20


class DecompressedStream:
    """Random reads from a gzip/zlib or bzip2 stream, decompressed front to back.

    The stream starts at byte ``start`` of ``path``. Reads at increasing offsets
    continue the decompression; a read before the current position restarts it —
    for gzip/zlib from the nearest checkpoint (a copy of the decompressor saved
    every 16 MiB of output), for bzip2 from the start. Concatenated gzip members
    are read as one stream. Not thread-safe: the owning source serialises reads.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "x.gz"
    >>> _ = path.write_bytes(gzip.compress(bytes(range(200))))
    >>> stream = DecompressedStream(path, 0, "gzip")
    >>> stream.read_at(10, 3), stream.read_at(2, 2)
    (b'\\n\\x0b\\x0c', b'\\x02\\x03')
    >>> stream.close()
    """

    def __init__(self, path: str | os.PathLike[str], start: int, codec: str) -> None:
        if codec not in ("gzip", "bzip2"):
            raise ValueError(f"unknown codec {codec!r}; expected 'gzip' or 'bzip2'.")
        self.path = Path(path)
        self.start = int(start)
        self.codec = codec
        #: reads that went backwards, and those that restarted from the very start
        self.restarts = 0
        self.rewinds = 0
        self._fh: BinaryIO | None = None
        self._checkpoints: list[tuple[int, int, Any]] = []
        self._reset()

    def _new_decompressor(self) -> Any:
        if self.codec == "gzip":
            return zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header
        return bz2.BZ2Decompressor()

    def _reset(self) -> None:
        """Position at the start of the stream."""
        if self._fh is not None:
            self._fh.seek(self.start)
        self._dec = self._new_decompressor()
        self._buf = b""
        self._buf_start = 0
        self._at_end = False

    def _restart(self, offset: int) -> None:
        """Resume from the latest checkpoint at or before ``offset``."""
        self.restarts += 1
        best = None
        for checkpoint in self._checkpoints:
            if checkpoint[0] <= offset:
                best = checkpoint
        if best is None:
            self.rewinds += 1
            self._reset()
            return
        produced, file_pos, dec = best
        assert self._fh is not None
        self._fh.seek(file_pos)
        self._dec = dec.copy()
        self._buf = b""
        self._buf_start = produced
        self._at_end = False

    def _is_member_start(self, data: bytes) -> bool:
        return data[:2] == b"\x1f\x8b" if self.codec == "gzip" else data[:3] == b"BZh"

    def _step(self) -> bytes:
        """Decompress the next piece of output (``b""`` at the end of the stream)."""
        assert self._fh is not None
        dec = self._dec
        if dec.eof:  # end of one member: another may follow (concatenated gzip/bzip2)
            rest = dec.unused_data or self._fh.read(_READ_SIZE)
            if not rest or not self._is_member_start(rest):
                self._at_end = True  # trailing bytes after the last member are ignored
                return b""
            self._dec = self._new_decompressor()
            return self._dec.decompress(rest, _STEP_OUTPUT)
        if self.codec == "gzip" and dec.unconsumed_tail:
            return dec.decompress(dec.unconsumed_tail, _STEP_OUTPUT)
        if self.codec == "bzip2" and not dec.needs_input:
            return dec.decompress(b"", _STEP_OUTPUT)
        data = self._fh.read(_READ_SIZE)
        if not data:
            tail = dec.flush() if self.codec == "gzip" else b""
            if tail:
                return tail
            raise EOFError(
                f"the {self.codec} data in {self.path} end before the end of the stream "
                "(the file is truncated)"
            )
        return dec.decompress(data, _STEP_OUTPUT)

    def _checkpoint(self) -> None:
        if self.codec != "gzip" or self._dec.eof:
            return
        produced = self._buf_start + len(self._buf)
        last = self._checkpoints[-1][0] if self._checkpoints else 0
        if produced - last >= _CHECKPOINT_EVERY:
            assert self._fh is not None
            self._checkpoints.append((produced, self._fh.tell(), self._dec.copy()))

    def read_at(self, offset: int, size: int) -> bytes:
        """Return ``size`` decompressed bytes starting at ``offset``."""
        if self._fh is None:
            self._fh = open(self.path, "rb")  # noqa: SIM115 - closed in close()
            self._reset()
        if offset < self._buf_start:
            self._restart(offset)
        out = bytearray(size)
        filled = 0
        while filled < size:
            end = self._buf_start + len(self._buf)
            here = offset + filled
            if here < end:
                lo = here - self._buf_start
                take = min(size - filled, len(self._buf) - lo)
                out[filled : filled + take] = self._buf[lo : lo + take]
                filled += take
                continue
            if self._at_end:
                raise EOFError(
                    f"the decompressed data in {self.path} have {end} bytes; "
                    f"{offset + size} were expected (the file is truncated)"
                )
            try:
                chunk = self._step()
            except (zlib.error, OSError) as exc:
                raise ValueError(
                    f"the {self.codec} data in {self.path} are corrupt near decompressed "
                    f"byte {end} ({exc})"
                ) from exc
            self._buf_start, self._buf = end, chunk
            self._checkpoint()
        return bytes(out)

    def close(self) -> None:
        """Close the file (the stream reopens on the next read, from the start)."""
        if self._fh is not None:
            self._fh.close()
        self._fh = None
        self._checkpoints = []
        self._reset()

    def __del__(self) -> None:
        fh = getattr(self, "_fh", None)
        if fh is not None:
            fh.close()


def read_c_region(
    read_at: Callable[[int, int], bytes],
    offset: int,
    shape: Sequence[int],
    dtype: np.dtype,
    key: Sequence[slice],
) -> np.ndarray:
    """Read ``array[key]`` of a C-ordered array stored at byte ``offset`` of a stream.

    Reads whole rows of the first axis when the other axes are taken whole (one
    contiguous read); otherwise plane by plane along the first axis, each plane
    read from the first to the last row asked for, so that memory stays bounded
    by one plane.

    Examples
    --------
    >>> data = np.arange(24, dtype="<u2").reshape(2, 3, 4)
    >>> raw = b"head" + data.tobytes()
    >>> read = lambda start, size: raw[start : start + size]
    >>> region = read_c_region(read, 4, (2, 3, 4), np.dtype("<u2"),
    ...                        (slice(1, 2), slice(1, 3), slice(2, 4)))
    >>> bool((region == data[1:2, 1:3, 2:4]).all())
    True
    """
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    counts = tuple(k.stop - k.start for k in key)
    out = np.empty(counts, dtype=dtype.newbyteorder("="))
    if out.size == 0:
        return out
    itemsize = dtype.itemsize
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize  # bytes per index of axis 0
    rest_whole = all(k.start == 0 and k.stop == n for k, n in zip(key[1:], shape[1:], strict=True))
    if rest_whole or len(shape) <= 2:
        buf = read_at(offset + key[0].start * row, counts[0] * row)
        block = np.frombuffer(buf, dtype=dtype).reshape((counts[0], *shape[1:]))
        out[...] = block[(slice(None), *key[1:])]
        return out
    sub = int(np.prod(shape[2:], dtype=np.int64)) * itemsize  # bytes per index of axis 1
    for n, i in enumerate(range(key[0].start, key[0].stop)):
        buf = read_at(offset + i * row + key[1].start * sub, counts[1] * sub)
        plane = np.frombuffer(buf, dtype=dtype).reshape((counts[1], *shape[2:]))
        out[n] = plane[(slice(None), *key[2:])]
    return out


def to_native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order, labelled with the plain dtype (``int16``, not ``<i2``).

    Examples
    --------
    >>> to_native(np.array([1, 256], dtype=">u2"))
    array([  1, 256], dtype=uint16)
    """
    native = array.dtype.newbyteorder("=")
    if array.dtype.isnative:
        return array.view(native)
    return array.astype(native)


def axis_origins(directions: np.ndarray, translation: np.ndarray) -> list[float]:
    """Position of the first voxel centre along each voxel axis.

    ``directions[i]`` is the world-space step of voxel axis ``i``; the origin of
    axis ``i`` is the ``translation`` component of the world axis it runs along
    most (its largest absolute direction component). Where two axes would share
    a world axis (strongly oblique grids), axes take world axes in order.

    Examples
    --------
    >>> axis_origins(np.array([[0, 2.0, 0], [1.0, 0, 0]]), np.array([5.0, 7.0, 9.0]))
    [7.0, 5.0]
    """
    directions = np.asarray(directions, dtype=np.float64)
    translation = np.asarray(translation, dtype=np.float64)
    world = []
    for i, vec in enumerate(directions):
        if vec.size and np.all(np.isfinite(vec)) and np.any(vec):
            world.append(int(np.argmax(np.abs(vec))))
        else:
            world.append(i)
    if len(set(world)) != len(world):
        world = list(range(len(directions)))
    return [float(translation[w]) if w < translation.size else 0.0 for w in world]


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
        self._mmap: np.ndarray | None = None
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
                self._mmap = np.memmap(
                    self._data_path, dtype=self._disk_dtype, mode="r",
                    offset=self._start, shape=self._file_shape,
                )  # fmt: skip
            region = to_native(np.array(self._mmap[tuple(file_key)]))
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
