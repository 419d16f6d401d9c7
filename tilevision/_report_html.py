"""The files an ``analyze`` output folder holds besides the Dataset: heatmap PNG, HTML report."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

__all__ = ["HEATMAP_FILE", "REPORT_FILE", "heatmap_values", "write_heatmap", "write_report"]

HEATMAP_FILE = "heatmap.png"
REPORT_FILE = "report.html"


def heatmap_values(result: xr.Dataset) -> xr.DataArray:
    """What the heatmap shows: a tile probability, or without a tile model the first
    ``*.mean`` feature.

    For two classes the probability of the second (positive) class. For more, of the class
    that stands out: the one, other than the image's label, with the highest mean tile
    probability — the image's label is usually the background that most tiles show
    (for an organ model, "body"), whose map says least.

    Examples
    --------
    >>> import numpy as np, dask
    >>> import tilevision as tv
    >>> from tilevision._image import make_image
    >>> img = make_image(np.random.default_rng(0).random((32, 32)), ("y", "x"))
    >>> with dask.config.set(scheduler="threads"):
    ...     r = tv.analyze(img, recipe=tv.Recipe(["intensity"], tile=16), client=False,
    ...                    verbose=False)
    >>> heatmap_values(r).name
    'intensity.mean'
    """
    if "tile_probability" in result:
        classes = result["class"].values.tolist()
        shown = classes[1] if len(classes) == 2 else _salient_class(result)
        values = result["tile_probability"].sel({"class": shown}, drop=True)
        return values.rename(f"probability of {shown}")
    names = [n for n in result.data_vars if "." in str(n) and not str(n).startswith("_stat.")]
    mean = [n for n in names if str(n).endswith(".mean")]
    values = result[(mean or names)[0]]
    return values.where(result["valid"])


def _salient_class(result: xr.Dataset) -> Any:
    proba = (
        result["tile_probability"]
        .where(result["valid"])
        .mean([d for d in result["tile_probability"].dims if d != "class"])
    )
    others = proba.drop_sel({"class": result["label"].item()})
    if others.sizes["class"] == 0 or bool(others.isnull().all()):
        return result["label"].item()
    return others["class"].values[int(others.fillna(-1).argmax("class"))].item()


def write_heatmap(result: xr.Dataset, image: xr.DataArray, path: Path) -> Path:
    """Save the tile heatmap over the image's thumbnail as a PNG."""
    # a Figure without pyplot: the backend is never switched, so a notebook that runs
    # analyze(output=...) keeps showing its own figures inline
    from matplotlib.figure import Figure

    from .plot import heatmap

    fig = Figure(figsize=(7, 6))
    ax = fig.add_subplot()
    values = heatmap_values(result)
    spatial = [d for d in image.dims if d != "c"]
    image = image.isel(c=0) if "c" in image.dims else image
    level = None
    if image.attrs.get("path"):
        level = "auto"  # a coarse pyramid level of the store: a few reads
    else:  # every few pixels of an in-memory or generated image, not all of it
        step = max(1, max(image.sizes[d] for d in spatial[-2:]) // 1024)
        image = image.isel({d: slice(None, None, step) for d in spatial[-2:]})
    heatmap(values, image, ax=ax, label=str(values.name), level=level)
    source = result.attrs.get("source", "")
    name = Path(str(source)).name if source != "DataArray" else str(image.name or "image")
    ax.set_title(f"{name}: {values.name}" + (" (middle slab)" if len(spatial) == 3 else ""))
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows
    )
    return f"<table>{cells}</table>"


def write_report(result: xr.Dataset, path: Path, heatmap_png: Path | None) -> Path:
    """A small self-contained HTML report of one analysis (the PNG embedded)."""
    attrs = result.attrs
    summary: list[tuple[str, Any]] = [
        ("source", attrs.get("source", "")),
        ("recipe hash", attrs.get("recipe_hash", "")),
        ("model id", attrs.get("model_id", "") or "none"),
        ("tiles (valid / all)", f"{int(result['valid'].sum())} / {result['valid'].size}"),
        ("image shape", attrs.get("image_shape", "")),
        ("cluster", attrs.get("cluster", "")),
    ]
    if "label" in result:
        summary[0:0] = [("label", result["label"].item())] + [
            (f"probability of {c}", f"{float(p):.3f}")
            for c, p in zip(result["class"].values.tolist(), result["probability"].values)
        ]
    descriptor = [
        (str(f), f"{v:.6g}")
        for f, v in zip(result["feature"].values, np.asarray(result["descriptor"].values))
    ]
    image = ""
    if heatmap_png is not None and heatmap_png.exists():
        data = base64.b64encode(heatmap_png.read_bytes()).decode()
        image = f'<img alt="tile heatmap" src="data:image/png;base64,{data}">'
    timings = json.loads(attrs.get("timings", "{}"))
    versions = json.loads(attrs.get("versions", "{}"))
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tilevision analysis</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}
th,td{{border:1px solid #ccc;padding:2px 8px;text-align:left}}img{{max-width:100%}}</style>
</head><body>
<h1>tilevision analysis</h1>
{_table(summary)}
<h2>Tile heatmap</h2>
{image or "<p>no heatmap</p>"}
<h2>Descriptor</h2>
{_table(descriptor)}
<h2>Run</h2>
{_table([*timings.items(), *versions.items()])}
<h2>Recipe</h2>
<pre>{html.escape(json.dumps(json.loads(attrs.get("recipe", "{}")), indent=2))}</pre>
</body></html>
"""
    path.write_text(body, encoding="utf-8")
    return path
