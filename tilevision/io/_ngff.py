"""OME-NGFF 0.5 ``multiscales`` metadata: build it for ingest, parse it for open.

Version 0.5 stores everything under the ``"ome"`` key of a Zarr v3 group's
attributes; version 0.4 (Zarr v2, top-level ``"multiscales"``) is also read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["NGFF_VERSION", "Multiscale", "build_multiscales", "parse_multiscales"]

NGFF_VERSION = "0.5"

#: spatial units NGFF accepts (UDUNITS-2 names)
SPACE_UNITS = frozenset(
    {
        "angstrom", "attometer", "centimeter", "decimeter", "exameter", "femtometer",
        "foot", "gigameter", "hectometer", "inch", "kilometer", "megameter", "meter",
        "micrometer", "mile", "millimeter", "nanometer", "parsec", "petameter",
        "picometer", "terameter", "yard", "yoctometer", "yottameter", "zeptometer",
        "zettameter",
    }
)  # fmt: skip

#: common spellings found in file headers, mapped onto NGFF unit names
UNIT_ALIASES = {
    "mm": "millimeter",
    "millimetre": "millimeter",
    "um": "micrometer",
    "µm": "micrometer",
    "μm": "micrometer",
    "micron": "micrometer",
    "microns": "micrometer",
    "micrometre": "micrometer",
    "nm": "nanometer",
    "cm": "centimeter",
    "m": "meter",
    "meters": "meter",
}


def normalise_unit(unit: str | None) -> str | None:
    """Map a header's unit spelling onto an NGFF unit name, or ``None`` if unknown.

    Examples
    --------
    >>> normalise_unit("mm"), normalise_unit("µm"), normalise_unit("pixel")
    ('millimeter', 'micrometer', None)
    """
    if not unit:
        return None
    key = str(unit).strip()
    key = UNIT_ALIASES.get(key, UNIT_ALIASES.get(key.lower(), key.lower()))
    return key if key in SPACE_UNITS else None


@dataclass(frozen=True)
class Multiscale:
    """The parts of one NGFF ``multiscales`` entry that tilevision uses."""

    dims: tuple[str, ...]
    units: dict[str, str | None]
    paths: tuple[str, ...]
    scales: tuple[tuple[float, ...], ...]
    translations: tuple[tuple[float, ...], ...]
    name: str | None
    version: str


def build_multiscales(
    *,
    dims: Sequence[str],
    units: Mapping[str, str | None],
    spacing: Mapping[str, float],
    origin: Mapping[str, float],
    factors: Sequence[Mapping[str, int]],
    name: str,
    method: str,
) -> dict[str, Any]:
    """Return the ``"ome"`` attribute block of an NGFF 0.5 image group.

    ``factors[i]`` is the cumulative downsampling factor per dim of level ``i``.
    Pixel centres of a mean-downsampled level sit half a block in from the
    level-0 origin, which the translation records.

    Examples
    --------
    >>> ome = build_multiscales(dims=("y", "x"), units={"y": "micrometer", "x": "micrometer"},
    ...     spacing={"y": 0.5, "x": 0.5}, origin={"y": 0.0, "x": 0.0},
    ...     factors=[{"y": 1, "x": 1}, {"y": 2, "x": 2}], name="slide", method="mean")
    >>> ome["multiscales"][0]["datasets"][1]["coordinateTransformations"]
    [{'type': 'scale', 'scale': [1.0, 1.0]}, {'type': 'translation', 'translation': [0.25, 0.25]}]
    """
    axes = []
    for d in dims:
        if d == "c":
            axes.append({"name": "c", "type": "channel"})
        else:
            axis: dict[str, Any] = {"name": d, "type": "space"}
            if units.get(d):
                axis["unit"] = units[d]
            axes.append(axis)
    datasets = []
    for level, factor in enumerate(factors):
        scale = [1.0 if d == "c" else float(spacing[d] * factor[d]) for d in dims]
        translation = [
            0.0 if d == "c" else float(origin[d] + (factor[d] - 1) * spacing[d] / 2) for d in dims
        ]
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": scale},
                    {"type": "translation", "translation": translation},
                ],
            }
        )
    multiscale = {
        "name": name,
        "axes": axes,
        "datasets": datasets,
        "type": method,
        "metadata": {"method": f"tilevision {method} downsampling by 2"},
    }
    return {"version": NGFF_VERSION, "multiscales": [multiscale]}


class MetadataError(ValueError):
    """Malformed OME-NGFF metadata."""


def parse_multiscales(attrs: Mapping[str, Any], where: str) -> Multiscale | None:
    """Read the first ``multiscales`` entry of group attrs; ``None`` if there is none.

    Raises :class:`MetadataError` naming the broken field when the metadata is
    present but malformed.
    """
    if "ome" in attrs and isinstance(attrs["ome"], Mapping):
        block = attrs["ome"]
        version = str(block.get("version", NGFF_VERSION))
    elif "multiscales" in attrs:
        block = attrs
        version = "0.4"
    else:
        return None
    fix = (
        "Fix the group's zarr.json attributes to follow OME-NGFF 0.5 "
        "(https://ngff.openmicroscopy.org/0.5/), or re-create the store with "
        "tilevision.ingest()."
    )

    def bad(msg: str) -> MetadataError:
        return MetadataError(f"{where}: malformed OME-NGFF metadata: {msg}. {fix}")

    multiscales = block.get("multiscales")
    if not isinstance(multiscales, list) or not multiscales:
        raise bad("'multiscales' must be a non-empty list")
    ms = multiscales[0]
    if not isinstance(ms, Mapping):
        raise bad("'multiscales[0]' must be an object")
    axes = ms.get("axes")
    if not isinstance(axes, list) or not axes:
        raise bad("'multiscales[0].axes' must be a non-empty list")
    dims: list[str] = []
    units: dict[str, str | None] = {}
    for i, axis in enumerate(axes):
        if isinstance(axis, str):  # NGFF 0.3 style
            axis = {"name": axis}
        if not isinstance(axis, Mapping) or not isinstance(axis.get("name"), str):
            raise bad(f"axis {i} has no 'name'")
        name = axis["name"]
        if axis.get("type") == "channel":
            name = "c"
        if name not in ("c", "z", "y", "x"):
            raise bad(
                f"axis {name!r} is not supported (tilevision reads axes among c, z, y, x; "
                "select a single time point first)"
            )
        dims.append(name)
        if name != "c":
            units[name] = normalise_unit(axis.get("unit"))
    datasets = ms.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise bad("'multiscales[0].datasets' must be a non-empty list")
    paths, scales, translations = [], [], []
    for i, ds in enumerate(datasets):
        if not isinstance(ds, Mapping) or not isinstance(ds.get("path"), str):
            raise bad(f"datasets[{i}] has no 'path'")
        scale = [1.0] * len(dims)
        translation = [0.0] * len(dims)
        for t in ds.get("coordinateTransformations", []):
            if not isinstance(t, Mapping):
                raise bad(f"datasets[{i}].coordinateTransformations holds a non-object")
            kind = t.get("type")
            values = t.get(kind) if kind in ("scale", "translation") else None
            if kind not in ("scale", "translation", "identity"):
                raise bad(f"datasets[{i}] has an unsupported transformation {kind!r}")
            if kind == "identity":
                continue
            if (
                not isinstance(values, list)
                or len(values) != len(dims)
                or not all(isinstance(v, (int, float)) for v in values)
            ):
                raise bad(
                    f"datasets[{i}] {kind} must be a list of {len(dims)} numbers, got {values!r}"
                )
            if kind == "scale":
                if any(v <= 0 for v in values):
                    raise bad(f"datasets[{i}] scale must be positive, got {values}")
                scale = [float(v) for v in values]
            else:
                translation = [float(v) for v in values]
        paths.append(ds["path"])
        scales.append(tuple(scale))
        translations.append(tuple(translation))
    return Multiscale(
        dims=tuple(dims),
        units=units,
        paths=tuple(paths),
        scales=tuple(scales),
        translations=tuple(translations),
        name=ms.get("name"),
        version=version,
    )
