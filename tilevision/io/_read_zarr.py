"""Existing Zarr / OME-Zarr stores as ingest sources (rechunked on the way)."""

from __future__ import annotations

import os
import warnings

import xarray as xr

from ._open import MissingMetadataWarning, open

__all__ = ["read_zarr"]


def read_zarr(path: str | os.PathLike[str], *, level: int = 0) -> xr.DataArray:
    """Open a Zarr store lazily for re-ingest; plain arrays get unit spacing.

    The missing-metadata warning is not raised here: ``ingest(..., spacing=...)``
    is exactly how metadata gets added.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MissingMetadataWarning)
        image = open(path, level=level)
    attrs = dict(image.attrs)
    for key in ("path", "level", "n_levels", "ngff_version"):
        attrs.pop(key, None)
    if "source" in attrs:
        attrs["derived_from"] = attrs["source"]
    attrs["source"] = os.fspath(path)
    attrs["source_format"] = "zarr"
    attrs.setdefault("original_dtype", str(image.dtype))
    image = image.copy(deep=False)
    image.attrs = attrs
    return image
