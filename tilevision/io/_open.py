"""``open``: an OME-Zarr (or plain Zarr array) as a lazy, labelled DataArray."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dask.array as da
import xarray as xr
import zarr
import zarr.errors

from .._image import default_dims, make_image
from ._atomic import PARTIAL_MARKER
from ._ngff import MetadataError, normalise_unit, parse_multiscales
from ._remote import check_remote_store

__all__ = ["MissingMetadataWarning", "open"]


class MissingMetadataWarning(UserWarning):
    """A Zarr array was opened without OME-NGFF metadata (unit spacing assumed)."""


def _open_node(path_or_url: str | os.PathLike[str], storage_options: Mapping[str, Any] | None):
    text = os.fspath(path_or_url)
    remote = "://" in text and not text.startswith("file://")
    zarr_format = None
    if not remote:
        path = Path(text.removeprefix("file://")).expanduser()
        if PARTIAL_MARKER in path.name:
            raise ValueError(
                f"{path} is an unfinished output left by an interrupted write; delete it "
                "and run the step again."
            )
        if not path.exists():
            raise FileNotFoundError(
                f"no such Zarr store: {path}. Create one with tilevision.ingest(source, "
                f"{str(path)!r}) (CLI: tilevision ingest SOURCE {path})."
            )
        text = str(path)
    else:  # remote: clear errors for a wrong URL, endpoint or credentials (_remote.py)
        zarr_format = check_remote_store(text, storage_options)
    try:
        return zarr.open(
            store=text,
            mode="r",
            zarr_format=zarr_format,
            storage_options=dict(storage_options) if remote and storage_options else None,
        )
    except (FileNotFoundError, zarr.errors.NodeTypeValidationError, KeyError, ValueError) as exc:
        raise ValueError(
            f"{text} is not a readable Zarr store ({exc}). If it is an image file, convert "
            "it first with tilevision.ingest()."
        ) from exc


def open(
    path_or_url: str | os.PathLike[str],
    *,
    level: int = 0,
    chunks: int | tuple[int, ...] | Mapping[str, int] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.DataArray:
    """Open an OME-Zarr image lazily as a labelled DataArray in physical units.

    Nothing is read but metadata: the pixels stay on disk as a Dask array whose
    chunks are the store's tiles.

    Parameters
    ----------
    path_or_url : path or URL
        An OME-Zarr group written by :func:`tilevision.ingest` (or any NGFF 0.4/0.5
        image), or a plain Zarr array; any fsspec URL zarr can open
        (``s3://…``, ``memory://…``).
    level : int, optional
        Pyramid level; 0 is full resolution.
    chunks : int, tuple or dict, optional
        Rechunk on read (default: the stored chunks).
    storage_options : dict, optional
        Passed to fsspec for URLs (credentials, endpoint).

    Returns
    -------
    xarray.DataArray
        Dims a subset of ``("c", "z", "y", "x")``, coordinates in physical units,
        and attrs ``spacing``, ``origin``, ``units``, ``level``, ``n_levels``,
        ``path`` plus provenance (``source``, ``source_format``,
        ``original_dtype``, ``tilevision_version``).

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tilevision as tv
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "vol.zarr"
    >>> _ = tv.ingest(np.zeros((40, 64, 64), "int16"), dest, chunks=32, spacing=(3, 1, 1),
    ...               units="millimeter")
    >>> vol = tv.open(dest)
    >>> vol.dims, vol.chunks, vol.z.values[:3]
    (('z', 'y', 'x'), ((32, 8), (32, 32), (32, 32)), array([0., 3., 6.]))
    >>> tv.open(dest, level=1).attrs["spacing"]
    {'z': 3.0, 'y': 2.0, 'x': 2.0}
    """
    where = os.fspath(path_or_url)
    node = _open_node(path_or_url, storage_options)
    if isinstance(node, zarr.Array):
        return _open_plain_array(node, where, chunks)
    try:
        multiscale = parse_multiscales(node.attrs.asdict(), where)
    except MetadataError:
        raise
    if multiscale is None:
        arrays = sorted(name for name, _ in node.arrays())
        hint = (
            f" It holds the arrays {arrays}: open one of them directly, e.g. "
            f"tilevision.open({where + '/' + arrays[0]!r}), or re-ingest the store."
            if arrays
            else " It holds no arrays."
        )
        raise ValueError(
            f"{where} is a Zarr group without OME-NGFF 'multiscales' metadata, so it is not "
            f"an image tilevision can open.{hint}"
        )
    n_levels = len(multiscale.paths)
    if not isinstance(level, int) or not 0 <= level < n_levels:
        raise ValueError(
            f"level={level!r} is out of range: {where} has {n_levels} pyramid level(s), "
            f"0 to {n_levels - 1}."
        )
    try:
        array = node[multiscale.paths[level]]
    except KeyError as exc:
        raise ValueError(
            f"{where}: the metadata lists level path {multiscale.paths[level]!r} but no such "
            "array exists; the store is incomplete. Re-create it with tilevision.ingest()."
        ) from exc
    if not isinstance(array, zarr.Array) or array.ndim != len(multiscale.dims):
        raise ValueError(
            f"{where}: level {level} should be a {len(multiscale.dims)}-D array for axes "
            f"{multiscale.dims}; the store does not match its metadata."
        )
    dims = multiscale.dims
    scale = dict(zip(dims, multiscale.scales[level]))
    translation = dict(zip(dims, multiscale.translations[level]))
    spatial = [d for d in dims if d != "c"]
    extra = dict(node.attrs.get("tilevision", {}) or {})
    channel_names = extra.pop("channel_names", None)
    attrs = dict(extra)
    attrs.update(path=where, level=level, n_levels=n_levels, ngff_version=multiscale.version)
    data = da.from_zarr(array, chunks=_chunks_arg(chunks, dims))
    return make_image(
        data,
        dims,
        spacing={d: scale[d] for d in spatial},
        origin={d: translation[d] for d in spatial},
        units={d: normalise_unit(multiscale.units.get(d)) for d in spatial},
        channel_names=channel_names,
        name=multiscale.name or Path(where).stem,
        attrs=attrs,
    )


def _chunks_arg(chunks: Any, dims: tuple[str, ...]) -> Any:
    if chunks is None:
        return None
    if isinstance(chunks, Mapping):
        unknown = set(chunks) - set(dims)
        if unknown:
            raise ValueError(f"chunks names dims {sorted(unknown)} the image lacks {dims}.")
        return tuple(chunks.get(d, -1) for d in dims)
    return chunks


def _open_plain_array(array: zarr.Array, where: str, chunks: Any) -> xr.DataArray:
    names = getattr(array.metadata, "dimension_names", None)
    if names and all(n in ("c", "z", "y", "x") for n in names) and len(names) == array.ndim:
        dims = tuple(names)
    else:
        dims = default_dims(array.ndim)
    warnings.warn(
        f"{where} is a plain Zarr array without OME-NGFF metadata: opened with dims {dims} "
        "and unit spacing. To record its physical spacing, ingest it: "
        f"tilevision.ingest({where!r}, 'image.zarr', spacing=(...), units='millimeter').",
        MissingMetadataWarning,
        stacklevel=3,
    )
    data = da.from_zarr(array, chunks=_chunks_arg(chunks, dims))
    return make_image(
        data,
        dims,
        name=Path(where).stem,
        attrs={"path": where, "level": 0, "n_levels": 1, "source_format": "zarr"},
    )
