"""``ingest``: any supported source → chunked, compressed OME-Zarr (v3, NGFF 0.5)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import dask
import dask.array as da
import numpy as np
import xarray as xr
import zarr
from zarr.codecs import BloscCodec, GzipCodec, ZstdCodec

from .._image import SPATIAL_DIMS, default_dims, image_geometry, make_image, validate_dims
from .._version import __version__
from ._atomic import atomic_directory, check_destination
from ._formats import read_source
from ._ngff import build_multiscales, normalise_unit
from ._pyramid import DownsampleMethod, downsample, plan_pyramid

__all__ = ["DEFAULT_CHUNKS", "ingest", "resolve_chunks"]

Compressor = Literal["zstd", "blosc-zstd", "blosc-lz4", "gzip", "none"]

#: default tile edge per dimensionality (PERFORMANCE.md: 1024² tiles in 2-D, 128³ in 3-D)
DEFAULT_CHUNKS = {2: 1024, 3: 128}


def resolve_chunks(
    chunks: int | Sequence[int] | Mapping[str, int] | Literal["auto"],
    dims: Sequence[str],
    shape: Sequence[int],
) -> dict[str, int]:
    """Chunk size per dim, clamped to the image (channels are never split).

    Examples
    --------
    >>> resolve_chunks("auto", ("z", "y", "x"), (30, 500, 500))
    {'z': 30, 'y': 128, 'x': 128}
    >>> resolve_chunks(256, ("c", "y", "x"), (3, 100, 4000))
    {'c': 3, 'y': 100, 'x': 256}
    """
    spatial = [d for d in dims if d in SPATIAL_DIMS]
    sizes = dict(zip(dims, (int(n) for n in shape)))
    if isinstance(chunks, str):
        if chunks != "auto":
            raise ValueError(f"chunks must be 'auto', an int, a tuple or a dict; got {chunks!r}.")
        edge = DEFAULT_CHUNKS[3 if len(spatial) == 3 else 2]
        wanted = dict.fromkeys(spatial, edge)
    elif isinstance(chunks, Mapping):
        unknown = set(chunks) - set(dims)
        if unknown:
            raise ValueError(f"chunks names dims {sorted(unknown)} that the image lacks {dims}.")
        wanted = {d: int(chunks.get(d, sizes[d])) for d in spatial}
    elif isinstance(chunks, (int, np.integer)):
        wanted = dict.fromkeys(spatial, int(chunks))
    else:
        values = [int(c) for c in chunks]
        if len(values) == len(dims):
            wanted = {d: v for d, v in zip(dims, values) if d in spatial}
        elif len(values) == len(spatial):
            wanted = dict(zip(spatial, values))
        else:
            raise ValueError(
                f"chunks={tuple(values)} has {len(values)} entries; the image has dims {dims}."
            )
    for d, c in wanted.items():
        if c < 1:
            raise ValueError(f"chunk size along {d!r} must be ≥ 1, got {c}.")
    out = {d: sizes[d] for d in dims}
    out.update({d: min(wanted[d], sizes[d]) for d in spatial})
    return out


def _codec(compressor: Compressor | Any) -> list[Any]:
    if not isinstance(compressor, str):
        return [compressor]
    table = {
        "zstd": lambda: [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
        "blosc-zstd": lambda: [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")],
        "blosc-lz4": lambda: [BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")],
        "gzip": lambda: [GzipCodec(level=5)],
        "plain-zstd": lambda: [ZstdCodec(level=3)],
        "none": lambda: [],
    }
    if compressor not in table:
        raise ValueError(f"unknown compressor {compressor!r}; choose one of {sorted(table)}.")
    return table[compressor]()


def _as_image(
    source: Any,
    *,
    dims: Sequence[str] | None,
    spacing: Any,
    units: Any,
    origin: Any,
    format: str | None,
    options: Mapping[str, Any],
    read_chunks: Any,
) -> xr.DataArray:
    """Any accepted ``source`` as a lazy tilevision image."""
    if isinstance(source, xr.DataArray):
        image = source
        if not all(d in ("c", "z", "y", "x") for d in image.dims):
            raise ValueError(
                f"the DataArray has dims {image.dims}; tilevision images use dims among "
                "('c', 'z', 'y', 'x'). Rename them first, e.g. image.rename(row='y', col='x')."
            )
        validate_dims(image.dims, image.ndim)
        data = image.data
        if not isinstance(data, da.Array):
            data = da.from_array(data, chunks="auto")
        sp, org, un = image_geometry(image)
        attrs = {k: v for k, v in image.attrs.items() if k not in ("spacing", "origin", "units")}
        attrs.setdefault("source", "<xarray.DataArray>")
        attrs.setdefault("source_format", "array")
        attrs.setdefault("original_dtype", str(image.dtype))
        channel_names = [str(v) for v in image.coords["c"].values] if "c" in image.coords else None
        return make_image(
            data,
            image.dims,
            spacing=spacing if spacing is not None else sp,
            origin=origin if origin is not None else org,
            units=units if units is not None else un,
            channel_names=channel_names,
            name=image.name,
            attrs=attrs,
        )
    if isinstance(source, (np.ndarray, da.Array)):
        if source.dtype.hasobject:
            raise TypeError(
                "the array has the non-numeric dtype object; tilevision stores numeric "
                "images only. Convert it first, e.g. array.astype('float32')."
            )
        data = source if isinstance(source, da.Array) else da.from_array(source, chunks="auto")
        the_dims = validate_dims(dims, data.ndim) if dims else default_dims(data.ndim)
        return make_image(
            data,
            the_dims,
            spacing=spacing,
            origin=origin,
            units=units,
            name="array",
            attrs={
                "source": f"<{type(source).__module__}.{type(source).__name__}>",
                "source_format": "array",
                "original_dtype": str(data.dtype),
                "tilevision_version": __version__,
            },
        )
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f"cannot ingest a {type(source).__name__}: pass a path, a URL, a NumPy or Dask "
            "array, or an xarray.DataArray."
        )
    image = read_source(source, format=format, chunks=read_chunks, **options)
    if dims is not None:
        raise ValueError("dims= applies to arrays; a file's dims come from its header.")
    if spacing is not None or units is not None or origin is not None:
        sp, org, un = image_geometry(image)
        image = make_image(
            image.data,
            image.dims,
            spacing=spacing if spacing is not None else sp,
            origin=origin if origin is not None else org,
            units=units if units is not None else un,
            channel_names=list(image.c.values) if "c" in image.coords else None,
            name=image.name,
            attrs={
                k: v for k, v in image.attrs.items() if k not in ("spacing", "origin", "units")
            },
        )
    return image


def _validate_image(image: xr.DataArray, where: str) -> None:
    if not (np.issubdtype(image.dtype, np.number) or image.dtype == np.bool_):
        raise TypeError(
            f"{where}: the image has the non-numeric dtype {image.dtype}; tilevision stores "
            "numeric images only. Convert it first, e.g. array.astype('float32')."
        )
    if np.issubdtype(image.dtype, np.complexfloating):
        raise TypeError(
            f"{where}: complex images are not supported; store the magnitude "
            "(np.abs(array)) or the real and imaginary parts as two channels."
        )
    if 0 in image.shape:
        raise ValueError(
            f"{where}: the image is empty (shape {dict(zip(image.dims, image.shape))}); "
            "there is nothing to ingest."
        )


def ingest(
    source: str | os.PathLike[str] | np.ndarray | da.Array | xr.DataArray,
    dest: str | os.PathLike[str],
    *,
    chunks: int | Sequence[int] | Mapping[str, int] | Literal["auto"] = "auto",
    levels: int | Literal["auto"] = "auto",
    compressor: Compressor | Any = "zstd",
    overwrite: bool = False,
    downsample_method: DownsampleMethod = "mean",
    format: str | None = None,
    dims: Sequence[str] | None = None,
    spacing: float | Sequence[float] | Mapping[str, float] | None = None,
    units: str | Sequence[str] | Mapping[str, str] | None = None,
    origin: float | Sequence[float] | Mapping[str, float] | None = None,
    **options: Any,
) -> Path:
    """Convert an image into a chunked, compressed OME-Zarr store (Zarr v3, NGFF 0.5).

    The source is streamed block by block: memory stays bounded by a few chunks
    whatever the image size. The store is written under a temporary name and
    renamed to ``dest`` only when complete, so an interrupted ingest leaves nothing
    that :func:`tilevision.open` accepts.

    Parameters
    ----------
    source : path, URL or array
        A file or folder in a supported format (see
        :func:`tilevision.io.supported_formats`): ``.npy``, TIFF/OME-TIFF/BigTIFF,
        PNG/JPEG, a DICOM series folder, NIfTI, NRRD, or a Zarr/OME-Zarr store;
        or a NumPy/Dask array or a DataArray (already in memory or lazy).
    dest : path
        Local path of the ``.zarr`` folder to create.
    chunks : "auto", int, tuple or dict, optional
        Tile size per spatial dim; ``"auto"`` is 1024² in 2-D and 128³ in 3-D.
        Chunks larger than the image are clamped to it.
    levels : "auto" or int, optional
        Pyramid levels; ``"auto"`` halves until the smallest level fits in one tile.
    compressor : str or zarr codec, optional
        ``"zstd"`` (Blosc-Zstd, default), ``"blosc-lz4"``, ``"gzip"``, ``"none"``,
        or any Zarr v3 bytes-to-bytes codec.
    overwrite : bool, optional
        Replace ``dest`` if it exists (only once the new store is complete).
    downsample_method : {"mean", "nearest"}, optional
        How pyramid levels are made; use ``"nearest"`` for label images.
    format : str, optional
        Force a source format instead of detecting it.
    dims, spacing, units, origin : optional
        Geometry for sources without it (arrays, ``.npy``, PNG); given for a file,
        ``spacing``/``units``/``origin`` override its header.
    **options
        Passed to the format's reader (e.g. ``series="1.2.3..."`` for DICOM).

    Returns
    -------
    pathlib.Path
        ``dest``.

    See Also
    --------
    tilevision.open : open the result lazily as a DataArray.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib, tilevision as tv
    >>> dest = pathlib.Path(tempfile.mkdtemp()) / "ramp.zarr"
    >>> tv.ingest(np.arange(600 * 500, dtype="uint16").reshape(600, 500), dest,
    ...           chunks=256, spacing=0.5, units="micrometer")  # doctest: +ELLIPSIS
    PosixPath('.../ramp.zarr')
    >>> img = tv.open(dest)
    >>> img.shape, img.attrs["n_levels"], img.attrs["spacing"]
    ((600, 500), 3, {'y': 0.5, 'x': 0.5})
    """
    dest_path = check_destination(dest, overwrite)
    where = os.fspath(source) if isinstance(source, (str, os.PathLike)) else "ingest"
    # geometry first (header only), then the chunking the reader should use
    probe = _as_image(
        source, dims=dims, spacing=spacing, units=units, origin=origin,
        format=format, options=options, read_chunks=None,
    )  # fmt: skip
    _validate_image(probe, where)
    target = resolve_chunks(chunks, probe.dims, probe.shape)
    image = probe
    if isinstance(source, (str, os.PathLike)):
        image = _as_image(
            source, dims=dims, spacing=spacing, units=units, origin=origin,
            format=format, options=options, read_chunks=target,
        )  # fmt: skip
    spacing_d, origin_d, units_d = image_geometry(image)
    units_d = {d: normalise_unit(u) for d, u in units_d.items()}
    dims_t = tuple(str(d) for d in image.dims)
    shape = dict(zip(dims_t, image.shape))
    factors = plan_pyramid(
        {d: n for d, n in shape.items() if d != "c"},
        spacing_d,
        {d: c for d, c in target.items() if d != "c"},
        levels,
    )
    codecs = _codec(compressor)
    provenance = {
        k: v
        for k, v in image.attrs.items()
        if k not in ("spacing", "origin", "units") and _is_json(v)
    }
    provenance["tilevision_version"] = __version__
    if "c" in image.coords:
        provenance["channel_names"] = [str(v) for v in image.coords["c"].values]
    chunk_tuple = tuple(target[d] for d in dims_t)

    with atomic_directory(dest_path, overwrite=overwrite) as tmp:
        group = zarr.open_group(str(tmp), mode="w", zarr_format=3)
        previous: da.Array = image.data
        previous_factor = dict.fromkeys(spacing_d, 1)
        for level, factor in enumerate(factors):
            step = {d: factor[d] // previous_factor[d] for d in factor}
            data = downsample(previous, dims_t, step, downsample_method) if level else previous
            data = data.rechunk(tuple(min(c, n) for c, n in zip(chunk_tuple, data.shape)))
            array = group.create_array(
                str(level),
                shape=data.shape,
                dtype=data.dtype,
                chunks=tuple(min(c, n) for c, n in zip(chunk_tuple, data.shape)),
                compressors=codecs,
                dimension_names=dims_t,
                fill_value=0,
            )
            with dask.config.set({"array.slicing.split_large_chunks": False}):
                da.store(data, array, lock=False, compute=True)
            previous = da.from_zarr(array)
            previous_factor = factor
        ome = build_multiscales(
            dims=dims_t,
            units=units_d,
            spacing=spacing_d,
            origin=origin_d,
            factors=[dict(f, c=1) for f in factors],
            name=str(image.name or dest_path.stem),
            method=downsample_method,
        )
        # metadata last: a store without it is never mistaken for a finished image
        group.attrs.update({"ome": ome, "tilevision": provenance})
    return dest_path


def _is_json(value: Any) -> bool:
    import json

    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
