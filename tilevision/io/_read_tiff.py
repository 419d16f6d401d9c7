"""TIFF, OME-TIFF, ImageJ TIFF and BigTIFF, read tile by tile or strip by strip.

Regions are read through :meth:`tifffile.TiffPageSeries.aszarr`, so only the
tiles or strips that overlap a requested block are decoded; uncompressed
contiguous image data is memory-mapped instead. The whole file is never decoded
at once. Physical pixel sizes come from OME-XML, ImageJ metadata, the Aperio
``MPP`` field or the resolution tags, in that order of preference.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import tifffile
import zarr

from .._image import validate_dims
from ._ngff import normalise_unit
from ._source import BlockSource, MappedArray

__all__ = ["TiffSource", "read_tiff"]

#: tifffile axis codes → tilevision dims (S: samples, Q: unknown, I: page sequence)
AXIS_DIMS = {"S": "c", "C": "c", "Z": "z", "Q": "z", "I": "z", "Y": "y", "X": "x"}

#: OME ``UnitsLength`` symbols (case matters: "Mm" is megametre) → NGFF unit names
OME_UNITS = {
    "Ym": "yottameter", "Zm": "zettameter", "Em": "exameter", "Pm": "petameter",
    "Tm": "terameter", "Gm": "gigameter", "Mm": "megameter", "km": "kilometer",
    "hm": "hectometer", "m": "meter", "dm": "decimeter", "cm": "centimeter",
    "mm": "millimeter", "µm": "micrometer", "μm": "micrometer", "nm": "nanometer",
    "pm": "picometer", "fm": "femtometer", "am": "attometer", "zm": "zeptometer",
    "ym": "yoctometer", "Å": "angstrom", "in": "inch", "ft": "foot", "yd": "yard",
    "mi": "mile", "pc": "parsec",
}  # fmt: skip

#: micrometres per TIFF ResolutionUnit (2: inch, 3: centimetre)
RESOLUTION_UNIT_UM = {2: 25400.0, 3: 10000.0}

_FIX_CORRUPT = (
    "The file is truncated or corrupt (an interrupted copy or export?); re-export it "
    "from the original software, or copy it again."
)


def _corrupt(path: Path, what: str) -> ValueError:
    return ValueError(f"{path}: cannot read this TIFF file: {what}. {_FIX_CORRUPT}")


class TiffSource(BlockSource):
    """One image series (and pyramid level) of a TIFF file, read by region.

    Parameters
    ----------
    path : str or Path
        The TIFF file.
    series : int, optional
        Index of the image series (``tifffile.TiffFile.series``).
    level : int, optional
        Pyramid level of the series (0 is full resolution).
    """

    format = "tiff"

    def __init__(self, path: str | os.PathLike[str], *, series: int = 0, level: int = 0) -> None:
        super().__init__(path)
        self._series = int(series)
        self._level = int(level)
        self._tif: tifffile.TiffFile | None = None
        self._store: Any = None
        self._array: Any = None
        self._mmap: MappedArray | None = None
        with _tifffile_errors() as errors:
            try:
                tif = tifffile.TiffFile(self.path)
            except FileNotFoundError:
                raise
            except (ValueError, OSError, EOFError, IndexError, KeyError) as exc:
                raise _corrupt(self.path, f"its header could not be parsed ({exc})") from exc
            try:
                tif.series  # noqa: B018 - parse the page structure now, logging any damage
                if errors:  # a broken page chain: tifffile would silently drop pages
                    raise _corrupt(
                        self.path, f"its pages are incomplete (tifffile: {'; '.join(errors)})"
                    )
                self._init_from_header(tif)
            except (tifffile.TiffFileError, EOFError, IndexError, KeyError) as exc:
                raise _corrupt(self.path, f"its header is inconsistent ({exc})") from exc
            finally:
                tif.close()

    # -- header ---------------------------------------------------------------------
    def _init_from_header(self, tif: tifffile.TiffFile) -> None:
        n_series = len(tif.series)
        if n_series == 0:
            raise ValueError(f"{self.path}: the TIFF file holds no image data.")
        if not 0 <= self._series < n_series:
            listing = "; ".join(
                f"{i}: axes {s.axes} shape {tuple(s.shape)}" for i, s in enumerate(tif.series)
            )
            raise ValueError(
                f"{self.path}: series={self._series} does not exist; the file has "
                f"{n_series} image series ({listing}). Pass series=<index> to choose one."
            )
        series = tif.series[self._series]
        n_levels = len(series.levels)
        if not 0 <= self._level < n_levels:
            raise ValueError(
                f"{self.path}: level={self._level} does not exist; series {self._series} has "
                f"{n_levels} pyramid level(s) (0 to {n_levels - 1}). Pass level=<index>."
            )
        base = series.levels[0]
        lvl = series.levels[self._level]
        keyframe = lvl.keyframe
        axes = str(lvl.axes)
        shape = tuple(int(n) for n in lvl.shape)
        self._axis_dims = _map_axes(axes, shape, self.path, self._series)
        kept = [d for d in self._axis_dims if d is not None]
        self.dims = validate_dims(sorted(kept, key="czyx".index), len(kept))
        self._file_shape = shape
        sizes = {d: n for d, n in zip(self._axis_dims, shape, strict=True) if d is not None}
        self.shape = tuple(sizes[d] for d in self.dims)
        self.dtype = self.original_dtype = np.dtype(lvl.dtype)

        # geometry of level 0, then scaled to this level
        spatial = [d for d in self.dims if d != "c"]
        pixels = _ome_pixels(tif, self._series) if tif.is_ome else None
        spacing, units, how = _spacing_and_units(tif, series, spatial, pixels)
        base_dims = _map_axes(str(base.axes), base.shape, self.path, self._series)
        base_sizes = {d: int(n) for d, n in zip(base_dims, base.shape, strict=True)}
        self.spacing, self.origin = {}, {}
        for d in spatial:
            factor = _level_factor(base_sizes.get(d, sizes[d]), sizes[d])
            self.spacing[d] = spacing[d] * factor
            self.origin[d] = (factor - 1) * spacing[d] / 2
        self.units = units
        self.channel_names = _channel_names(series, axes, shape, self._axis_dims, pixels)

        # how regions are read: memory-mapped when the data is stored plainly
        file_size = self.path.stat().st_size
        itemsize = self.dtype.itemsize
        self._memmap_offset: int | None = None
        self._byteorder = tif.byteorder
        offset = lvl.dataoffset
        if (
            offset is not None
            and keyframe.is_memmappable
            and keyframe.bitspersample == 8 * itemsize
            and getattr(series, "transform", None) is None
        ):
            if offset + int(np.prod(shape)) * itemsize > file_size:
                raise _corrupt(
                    self.path,
                    f"its image data should end at byte {offset + int(np.prod(shape)) * itemsize}"
                    f" but the file has only {file_size} bytes",
                )
            self._memmap_offset = int(offset)
            mode = "memmap"
            chunks = shape
        else:
            _check_segments(lvl, file_size, self.path)
            mode = "tiles" if keyframe.is_tiled else "strips"
            chunks = _zarr_chunks(series, self._level)
        chunk_of = {d: c for d, c in zip(self._axis_dims, chunks, strict=True) if d is not None}
        self.whole_extent_dims = (
            ()
            if mode == "memmap"
            else tuple(d for d in ("y", "x") if sizes[d] > 1 and chunk_of.get(d, 1) >= sizes[d])
        )
        self.metadata = {
            "series": self._series,
            "n_series": n_series,
            "series_name": series.name,
            "series_kind": series.kind,
            "level": self._level,
            "n_levels": n_levels,
            "axes": axes,
            "file_shape": list(shape),
            "photometric": _enum_name(keyframe.photometric),
            "compression": _enum_name(keyframe.compression),
            "planarconfig": _enum_name(keyframe.planarconfig),
            "tiled": bool(keyframe.is_tiled),
            "file_chunks": [int(c) for c in chunks],
            "read_mode": mode,
            "bigtiff": bool(tif.is_bigtiff),
            "byteorder": tif.byteorder,
            "ome": bool(tif.is_ome),
            "imagej": bool(tif.is_imagej),
            "spacing_from": how,
        }

    # -- reading --------------------------------------------------------------------
    def _handle_attrs(self) -> tuple[str, ...]:
        return ("_array", "_store", "_tif", "_mmap")

    def close(self) -> None:
        """Close the file (it is reopened on the next read)."""
        store, tif = self._store, self._tif
        self._array = self._store = self._tif = self._mmap = None
        if store is not None:
            store.close()
        if tif is not None:
            tif.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # interpreter shutdown
            self.close()

    def _reader(self) -> Any:
        """The memory map or the Zarr view of the level, opened on first use."""
        if self._memmap_offset is not None:
            if self._mmap is None:
                dtype = np.dtype(self._byteorder + self.dtype.char)
                path, offset, shape = self.path, self._memmap_offset, self._file_shape
                self._mmap = MappedArray(
                    lambda: np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape)
                )
            return self._mmap
        if self._array is None:
            tif = tifffile.TiffFile(self.path)
            try:
                store = tif.series[self._series].aszarr(level=self._level)
                array = zarr.open(store, mode="r", zarr_format=2)
            except Exception:
                tif.close()
                raise
            self._tif, self._store, self._array = tif, store, array
            if tuple(array.shape) != self._file_shape:
                self.close()
                raise ValueError(
                    f"{self.path}: the file changed on disk since it was opened (shape "
                    f"{tuple(array.shape)}, expected {self._file_shape}); open it again."
                )
        return self._array

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        reader = self._reader()
        where = dict(zip(self.dims, key, strict=True))
        file_key = tuple(0 if d is None else where[d] for d in self._axis_dims)
        try:
            block = np.array(reader[file_key])  # a copy, never a view of the memory map
        except (ValueError, OSError, EOFError, KeyError):
            raise
        except Exception as exc:  # decoder errors (imagecodecs raise RuntimeError subclasses)
            raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        kept = [d for d in self._axis_dims if d is not None]
        return np.transpose(block, [kept.index(d) for d in self.dims])


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect the errors tifffile logs (in this thread) about a damaged file.

    tifffile reports a broken chain of pages, or pages that do not match the
    stored shape, in its log and goes on with the pages it found; tilevision
    refuses such files rather than ingest part of an image.
    """
    errors: list[str] = []
    thread = threading.get_ident()

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.thread == thread:
                errors.append(record.getMessage())

    handler = Collect(level=logging.ERROR)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield errors
    finally:
        logger.removeHandler(handler)


def _enum_name(value: Any) -> Any:
    return getattr(value, "name", value)


def _zarr_chunks(series: Any, level: int) -> tuple[int, ...]:
    """Chunk shape of the Zarr view tifffile gives of a series level (its .zarray)."""
    store = series.aszarr(level=level)
    try:
        return tuple(int(c) for c in zarr.open(store, mode="r", zarr_format=2).chunks)
    finally:
        store.close()


def _map_axes(
    axes: str, shape: tuple[int, ...], path: Path, series: int
) -> tuple[str | None, ...]:
    """tilevision dim (or ``None``: squeezed) for each tifffile axis."""
    out: list[str | None] = []
    for axis, n in zip(axes, shape, strict=True):
        dim = AXIS_DIMS.get(axis)
        if axis in "YX":
            out.append(dim)
        elif n == 1:
            out.append(None)
        elif dim is not None:
            out.append(dim)
        else:
            what = "time points" if axis == "T" else f"entries along axis {axis!r}"
            raise ValueError(
                f"{path}: series {series} has axes {axes!r} with shape {tuple(shape)}: "
                f"{n} {what}, which tilevision cannot represent (images have dims among "
                "c, z, y, x). Export a single time point / position (e.g. Fiji: Image > "
                "Duplicate...), or pass series=<index> to read another series."
            )
    dims = [d for d in out if d is not None]
    for d in set(dims):
        if dims.count(d) > 1:
            mapped = [a for a, m in zip(axes, out, strict=True) if m == d]
            raise ValueError(
                f"{path}: series {series} has axes {axes!r} with shape {tuple(shape)}: "
                f"axes {mapped} would all become dim {d!r}. Re-save the file with one axis "
                "per dim (e.g. tifffile.imwrite(..., metadata={'axes': 'CZYX'})), or pass "
                "series=<index> to read another series."
            )
    return tuple(out)


def _level_factor(base: int, size: int) -> float:
    """Downsampling factor of a pyramid level: an integer when the sizes allow it."""
    if size == base:
        return 1.0
    ratio = base / size
    near = max(1, round(ratio))
    return float(near) if abs(base - near * size) < near else ratio


def _channel_names(
    series: Any,
    axes: str,
    shape: tuple[int, ...],
    axis_dims: tuple[str | None, ...],
    pixels: ET.Element | None,
) -> list[str] | None:
    c_axes = [a for a, d in zip(axes, axis_dims, strict=True) if d == "c"]
    if not c_axes:
        return None
    n = shape[axes.index(c_axes[0])]
    photometric = _enum_name(series.keyframe.photometric)
    if c_axes[0] == "S" and photometric in ("RGB", "YCBCR") and n in (3, 4):
        return ["R", "G", "B", "A"][:n]
    if c_axes[0] == "C" and pixels is not None:
        names = [ch.get("Name") for ch in pixels if _local(ch.tag) == "Channel"]
        if len(names) == n and all(names) and len(set(names)) == n:
            return [str(name) for name in names]
    return None


# -- spacing ------------------------------------------------------------------------
def _spacing_and_units(
    tif: tifffile.TiffFile, series: Any, spatial: list[str], pixels: ET.Element | None
) -> tuple[dict[str, float], dict[str, str | None], str | None]:
    """Level-0 pixel size per spatial dim, its units, and where it came from."""
    spacing = dict.fromkeys(spatial, 1.0)
    units: dict[str, str | None] = dict.fromkeys(spatial)
    found: dict[str, tuple[float, str | None]]
    if tif.is_ome:
        found, how = _ome_spacing(pixels), "ome"
    elif tif.is_imagej:
        found, how = _imagej_spacing(tif, series), "imagej"
    elif found := _svs_spacing(series):
        how = "aperio"
    else:
        found, how = _resolution_spacing(series.keyframe), "resolution"
    for d, (value, unit) in found.items():
        if d in spacing and np.isfinite(value) and value > 0:
            spacing[d], units[d] = float(value), unit
    return spacing, units, how if found else None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ome_pixels(tif: tifffile.TiffFile, index: int) -> ET.Element | None:
    """The OME ``Pixels`` element describing series ``index``."""
    try:
        root = ET.fromstring(tif.ome_metadata or "")
    except ET.ParseError:
        return None
    images = [el for el in root if _local(el.tag) == "Image"]
    series = tif.series[index]
    image = None
    if len(images) != len(tif.series):
        named = [el for el in images if el.get("Name") == series.name]
        image = named[0] if len(named) == 1 else None
    if image is None and index < len(images):
        image = images[index]
    if image is None:
        return None
    return next((el for el in image if _local(el.tag) == "Pixels"), None)


def _ome_spacing(pixels: ET.Element | None) -> dict[str, tuple[float, str | None]]:
    out: dict[str, tuple[float, str | None]] = {}
    if pixels is None:
        return out
    for d in ("z", "y", "x"):
        value = pixels.get(f"PhysicalSize{d.upper()}")
        if value is None:
            continue
        unit = pixels.get(f"PhysicalSize{d.upper()}Unit", "µm")  # OME default unit
        try:
            out[d] = (float(value), OME_UNITS.get(unit) or normalise_unit(unit))
        except ValueError:
            continue
    return out


def _imagej_spacing(tif: tifffile.TiffFile, series: Any) -> dict[str, tuple[float, str | None]]:
    meta = tif.imagej_metadata or {}

    def unit_of(key: str) -> str | None:
        unit = meta.get(key, meta.get("unit"))
        if isinstance(unit, str) and "\\u" in unit:
            unit = unit.encode("ascii", "backslashreplace").decode("unicode_escape")
        return normalise_unit(unit) if isinstance(unit, str) else None

    out = {
        d: (size, unit_of("yunit" if d == "y" else "unit"))
        for d, size in _pixel_sizes(series.keyframe).items()
    }
    if "spacing" in meta:
        out["z"] = (float(meta["spacing"]), unit_of("zunit"))
    return out


def _pixel_sizes(keyframe: Any) -> dict[str, float]:
    """Size of a pixel in resolution units (1 / XResolution, 1 / YResolution)."""
    out: dict[str, float] = {}
    for d, code in (("x", 282), ("y", 283)):
        value = keyframe.tags.valueof(code)
        if value is None:
            continue
        num, den = (value, 1) if np.ndim(value) == 0 else value
        if num > 0 and den > 0:
            out[d] = den / num
    return out


def _svs_spacing(series: Any) -> dict[str, tuple[float, str | None]]:
    description = series.keyframe.description or ""
    if not description.startswith("Aperio"):
        return {}
    match = re.search(r"\|\s*MPP\s*=\s*([0-9.eE+-]+)", description)
    if not match:
        return {}
    mpp = float(match.group(1))
    return {"y": (mpp, "micrometer"), "x": (mpp, "micrometer")}


#: screen resolutions that image editors write by default; they say nothing physical
DISPLAY_DPI = (72.0, 96.0)


def _resolution_spacing(keyframe: Any) -> dict[str, tuple[float, str | None]]:
    unit = int(keyframe.tags.valueof(296, default=2))
    per_unit = RESOLUTION_UNIT_UM.get(unit)
    if per_unit is None or keyframe.tags.valueof(282) is None:
        return {}
    sizes = _pixel_sizes(keyframe)
    if unit == 2 and all(
        any(abs(1 / s - dpi) < 1e-6 for dpi in DISPLAY_DPI) for s in sizes.values()
    ):
        return {}  # 72/96 dpi defaults, not a physical pixel size
    return {d: (size * per_unit, "micrometer") for d, size in sizes.items()}


# -- completeness ---------------------------------------------------------------------
def _check_segments(lvl: Any, file_size: int, path: Path) -> None:
    """Raise if a page is missing or a tile/strip lies beyond the end of the file."""
    for i in range(len(lvl)):
        page = lvl[i]
        if page is None:
            raise _corrupt(path, f"page {i} of the image is missing")
        offsets = np.asarray(page.dataoffsets, dtype=np.int64)
        counts = np.asarray(page.databytecounts, dtype=np.int64)
        if offsets.size:
            ends = np.where((offsets > 0) & (counts > 0), offsets + counts, 0)
            end = int(ends.max())
            if end > file_size:
                raise _corrupt(
                    path,
                    f"page {i} has image data up to byte {end} but the file has only "
                    f"{file_size} bytes",
                )


def read_tiff(path: str | os.PathLike[str], *, series: int = 0, level: int = 0) -> TiffSource:
    """Open a TIFF / OME-TIFF / ImageJ TIFF / BigTIFF as a block source.

    Only the header is read here; blocks are decoded tile by tile (or strip by
    strip) when requested, and uncompressed contiguous data is memory-mapped.

    Parameters
    ----------
    path : str or path-like
        The TIFF file.
    series : int, optional
        Which image series to read, for files holding several (OME-TIFF with
        several images, whole-slide files with label/macro images).
    level : int, optional
        Pyramid level of the series; spacing is scaled to it.

    Returns
    -------
    TiffSource
        Axes mapped onto dims ``("c", "z", "y", "x")``: samples and channels
        become ``c``, Z / pages become ``z``; length-1 axes are dropped.

    Raises
    ------
    ValueError
        For a truncated or corrupt file, a missing series or level, or axes that
        have no tilevision dim (several time points).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, tifffile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rgb.tif"
    >>> rgb = np.arange(64 * 48 * 3, dtype=np.uint16).reshape(64, 48, 3)
    >>> tifffile.imwrite(path, rgb, photometric="rgb", tile=(16, 16), resolution=(4, 4),
    ...                  resolutionunit="CENTIMETER")
    >>> src = read_tiff(path)
    >>> src.dims, src.shape, src.channel_names
    (('c', 'y', 'x'), (3, 64, 48), ['R', 'G', 'B'])
    >>> src.spacing, src.units
    ({'y': 2500.0, 'x': 2500.0}, {'y': 'micrometer', 'x': 'micrometer'})
    >>> bool((src[0:3, 10:20, 5:9] == rgb[10:20, 5:9].transpose(2, 0, 1)).all())
    True
    """
    return TiffSource(path, series=series, level=level)
