"""NumPy ``.npy`` files, memory-mapped: blocks are read straight from disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._image import default_dims, validate_dims
from ._source import BlockSource, MappedArray

__all__ = ["NpySource", "read_npy"]


class NpySource(BlockSource):
    """A ``.npy`` file opened with ``mmap_mode="r"``."""

    format = "npy"

    def __init__(self, path: str | Path, *, dims: Any = None) -> None:
        super().__init__(path)
        try:
            array = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise ValueError(
                f"{self.path}: not a readable .npy array ({exc}); object arrays and "
                "pickles are not accepted. Save it with np.save(path, numeric_array)."
            ) from exc
        self.shape = tuple(int(n) for n in array.shape)
        self.dtype = self.original_dtype = array.dtype
        self.dims = validate_dims(dims, len(self.shape)) if dims else default_dims(len(self.shape))
        spatial = [d for d in self.dims if d != "c"]
        self.spacing = dict.fromkeys(spatial, 1.0)
        self.origin = dict.fromkeys(spatial, 0.0)
        self.units = dict.fromkeys(spatial)
        self.metadata = {"fortran_order": bool(array.flags.f_contiguous and array.ndim > 1)}
        del array  # mapped again on the first read, with a bounded footprint
        self._mmap: MappedArray | None = None

    def _handle_attrs(self) -> tuple[str, ...]:
        return ("_mmap",)

    def close(self) -> None:
        self._mmap = None

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        if self._mmap is None:
            path = self.path
            self._mmap = MappedArray(lambda: np.load(path, mmap_mode="r", allow_pickle=False))
        return self._mmap[key]


def read_npy(path: str | Path, *, dims: Any = None) -> NpySource:
    """Open a ``.npy`` file as a block source (memory-mapped, never loaded whole)."""
    return NpySource(path, dims=dims)
