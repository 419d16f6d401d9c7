"""Streaming reads shared by the NRRD and NIfTI readers.

:class:`DecompressedStream` gives random reads from a gzip/zlib or bzip2 stream
decompressed front to back (with gzip checkpoints for reads that go back);
:func:`read_c_region` reads a region of a C-ordered array from any such byte
stream; :func:`to_native` and :func:`axis_origins` turn what was read into native
arrays and per-axis origins.
"""

from __future__ import annotations

import bz2
import os
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["DecompressedStream", "axis_origins", "read_c_region", "to_native"]


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
