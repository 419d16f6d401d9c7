"""Block readers: the common interface every source-format reader implements.

A reader opens a file, reads only its header, and then serves rectangular regions
on request (``source[key]``), so that Dask can pull an image in chunks and nothing
ever holds the whole file in memory. Readers are picklable: open handles are
dropped on pickling and reopened lazily where they land.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

import dask.array as da
import numpy as np
import xarray as xr

from .._image import make_image
from .._version import __version__

__all__ = ["BlockSource", "MappedArray", "rescaled_dtype"]

#: largest block (bytes) a reader is asked for when its natural read unit is
#: widened beyond the target chunk (e.g. whole DICOM slices).
MAX_READ_BLOCK_BYTES = 128 * 2**20


#: bytes of a file a reader keeps memory-mapped at once. Pages read through a memory
#: map stay in the process's resident set (RSS) until they are unmapped, so a map kept
#: open for a whole ingest would make RSS grow to the size of the file.
MAX_MAPPED_BYTES = 256 * 2**20


class MappedArray:
    """An array in a file, read by region through a memory map of bounded footprint.

    ``open_map()`` returns a fresh read-only ``np.memmap`` of the array. The map is
    dropped and reopened whenever the bytes read since it was opened would span more
    than ``limit`` bytes, which returns the pages read to the page cache; consecutive
    reads of neighbouring blocks still share the pages they both touch. Indexing
    returns a copy (never a view of the map). Safe to use from several threads.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.npy"
    >>> np.save(path, np.arange(12, dtype="uint8").reshape(3, 4))
    >>> mapped = MappedArray(lambda: np.load(path, mmap_mode="r"), limit=4)
    >>> mapped[0:2, 1:3], mapped[2:3, :]
    (array([[1, 2],
           [5, 6]], dtype=uint8), array([[ 8,  9, 10, 11]], dtype=uint8))
    """

    def __init__(self, open_map: Callable[[], np.ndarray], limit: int = MAX_MAPPED_BYTES) -> None:
        self._open_map = open_map
        self._limit = int(limit)
        self._map: np.ndarray | None = None
        self._span: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def __getitem__(self, key: Any) -> np.ndarray:
        with self._lock:
            if self._map is None:
                self._map, self._span = self._open_map(), None
            view = self._map[key]
            if view.size:
                lo, hi = _byte_range(view, self._map)
                if self._span is not None:
                    lo, hi = min(lo, self._span[0]), max(hi, self._span[1])
                if hi - lo > self._limit and self._span is not None:
                    del view  # other threads' views keep the old map alive until they are done
                    self._map = self._open_map()
                    view = self._map[key]
                    lo, hi = _byte_range(view, self._map)
                self._span = (lo, hi)
        return np.array(view)

    def close(self) -> None:
        """Unmap the file (it is mapped again on the next read)."""
        with self._lock:
            self._map = self._span = None


def _byte_range(view: np.ndarray, base: np.ndarray) -> tuple[int, int]:
    """Offsets in ``base``'s buffer of the first and one past the last byte of ``view``."""
    start = view.__array_interface__["data"][0] - base.__array_interface__["data"][0]
    extent = sum((n - 1) * abs(s) for n, s in zip(view.shape, view.strides))
    return start, start + extent + view.itemsize


class BlockSource:
    """Base class for format readers.

    Subclasses set ``shape``, ``dtype``, ``dims``, ``spacing``, ``origin``, ``units``,
    ``original_dtype`` and ``metadata`` in ``__init__`` (from the header only), and
    implement :meth:`_read` for a tuple of slices in ``dims`` order.
    """

    format: ClassVar[str] = "?"
    #: True for sources that can only be read front to back (compressed streams);
    #: a reader may set it per instance once its header tells.
    sequential: bool = False
    #: True for readers whose ``_read`` may run in several threads at once (each read
    #: opens what it needs); reads of other sources are serialised with a lock.
    thread_safe: ClassVar[bool] = False

    path: Path
    shape: tuple[int, ...]
    dtype: np.dtype
    original_dtype: np.dtype
    dims: tuple[str, ...]
    spacing: dict[str, float]
    origin: dict[str, float]
    units: dict[str, str | None]
    channel_names: list[str] | None = None
    metadata: dict[str, Any]
    #: dims along which the reader decodes whole extents anyway (e.g. a DICOM
    #: slice is decoded whole): ingest widens read blocks along them.
    whole_extent_dims: tuple[str, ...] = ()

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.metadata = {}
        self._lock = threading.RLock()

    # -- pickling: drop open handles -------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        for key in self._handle_attrs():
            state[key] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()

    def _handle_attrs(self) -> tuple[str, ...]:
        """Names of attributes that hold open handles or caches (dropped on pickling)."""
        return ()

    def close(self) -> None:
        """Release open file handles (they are reopened on the next read)."""
        for key in self._handle_attrs():
            handle = getattr(self, key, None)
            if hasattr(handle, "close"):
                handle.close()
            setattr(self, key, None)

    # -- array protocol for dask.array.from_array -------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        key = _normalise_key(key, self.shape)
        lock = contextlib.nullcontext() if self.thread_safe else self._lock
        with lock:
            try:
                block = self._read(key)
            except (ValueError, OSError, EOFError, KeyError) as exc:
                raise type(exc)(
                    f"{self.path}: failed to read region {key} of this {self.format} "
                    f"file ({exc}). The file may be truncated or corrupt; re-export it "
                    "from the original source."
                ) from exc
        block = np.asarray(block)
        expected = tuple(len(range(*k.indices(n))) for k, n in zip(key, self.shape))
        if block.shape != expected:
            raise ValueError(
                f"{self.path}: the {self.format} reader returned a block of shape "
                f"{block.shape} for region {key} (expected {expected}); the file is "
                "truncated or its header is inconsistent."
            )
        return block.astype(self.dtype, copy=False)

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        raise NotImplementedError

    # -- conversion --------------------------------------------------------------------
    def provenance(self) -> dict[str, Any]:
        """Provenance attrs recorded in every image made from this source."""
        return {
            "source": str(self.path),
            "source_format": self.format,
            "original_dtype": str(np.dtype(self.original_dtype)),
            "tilevision_version": __version__,
            "source_metadata": _jsonable(self.metadata),
        }

    def read_chunks(self, chunks: Mapping[str, int]) -> tuple[int, ...]:
        """Chunks in which to read: ``chunks``, widened along ``whole_extent_dims``."""
        out = {d: min(int(chunks.get(d, n)), n) for d, n in zip(self.dims, self.shape)}
        itemsize = np.dtype(self.dtype).itemsize
        for d in self.whole_extent_dims:
            widened = dict(out, **{d: self.shape[self.dims.index(d)]})
            if int(np.prod(list(widened.values()))) * itemsize <= MAX_READ_BLOCK_BYTES:
                out = widened
        return tuple(out[d] for d in self.dims)

    def to_dask(self, chunks: Mapping[str, int]) -> da.Array:
        """A lazy Dask array over this source, read in blocks of about ``chunks``."""
        token = f"{self.format}-{self.path.resolve()}-{self._fingerprint()}"
        return da.from_array(
            self,
            chunks=self.read_chunks(chunks),
            name=f"tilevision-read-{_hash(token)}",
            asarray=False,
            fancy=False,
            lock=False,
            meta=np.empty((0,) * self.ndim, dtype=self.dtype),
        )

    def to_image(self, chunks: Mapping[str, int] | None = None) -> xr.DataArray:
        """The source as a lazy tilevision image (see :func:`tilevision.open`)."""
        if chunks is None:
            chunks = dict(zip(self.dims, self.shape))
        return make_image(
            self.to_dask(chunks),
            self.dims,
            spacing=self.spacing,
            origin=self.origin,
            units=self.units,
            channel_names=self.channel_names,
            name=self.path.name,
            attrs=self.provenance(),
        )

    def _fingerprint(self) -> str:
        try:
            stat = self.path.stat()
        except OSError:
            return "nostat"
        return f"{stat.st_size}-{stat.st_mtime_ns}"


def _hash(text: str) -> str:
    import hashlib

    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _normalise_key(key: Any, shape: tuple[int, ...]) -> tuple[slice, ...]:
    if not isinstance(key, tuple):
        key = (key,)
    if len(key) != len(shape) or not all(isinstance(k, slice) for k in key):
        raise IndexError(f"block readers take one slice per axis, got {key!r}")
    out = []
    for k, n in zip(key, shape):
        start, stop, step = k.indices(n)
        if step != 1:
            raise IndexError("block readers do not support strided reads")
        out.append(slice(start, max(start, stop)))
    return tuple(out)


def _jsonable(value: Any) -> Any:
    """Convert header values into JSON-friendly Python objects."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def rescaled_dtype(
    raw: np.dtype,
    slope: float,
    intercept: float,
    raw_range: tuple[float, float] | None = None,
) -> np.dtype:
    """The dtype that holds ``raw * slope + intercept`` exactly (DICOM/NIfTI rescale).

    Integer inputs with integer slope and intercept stay integer: the smallest
    signed type that holds the rescaled range of ``raw_range`` (default: the whole
    range of ``raw``; pass the range of the stored bits where the header gives
    it). Anything else becomes float32 (float64 inputs stay float64).

    Examples
    --------
    >>> rescaled_dtype(np.dtype("uint16"), 1, -1024)
    dtype('int32')
    >>> rescaled_dtype(np.dtype("int16"), 1, -1024)
    dtype('int32')
    >>> rescaled_dtype(np.dtype("uint16"), 1, -1024, raw_range=(0, 4095))
    dtype('int16')
    >>> rescaled_dtype(np.dtype("uint8"), 1, 0)
    dtype('uint8')
    >>> rescaled_dtype(np.dtype("int16"), 0.5, 0)
    dtype('float32')
    """
    raw = np.dtype(raw)
    if slope == 1 and intercept == 0:
        return raw
    if raw.kind == "f":
        return np.dtype(np.float64) if raw == np.float64 else np.dtype(np.float32)
    if float(slope).is_integer() and float(intercept).is_integer():
        info = np.iinfo(raw)
        rlo, rhi = raw_range if raw_range is not None else (info.min, info.max)
        ends = [rlo * slope + intercept, rhi * slope + intercept]
        lo, hi = min(ends), max(ends)
        for candidate in (np.int16, np.int32, np.int64):
            cinfo = np.iinfo(candidate)
            if cinfo.min <= lo and hi <= cinfo.max:
                return np.dtype(candidate)
    return np.dtype(np.float32)
