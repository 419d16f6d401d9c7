"""Files of the classification command line.

In: image tables (a CSV of ``path,label[,group]``, checked row by row) and recipe files.
Out: tile probabilities (``.npz``) and reports (JSON and PNG plots).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ImageTable",
    "image_list",
    "read_image_table",
    "read_recipe",
    "tile_file",
    "write_report",
    "write_tile_probabilities",
]

_INT = re.compile(r"[+-]?\d+")
_HEADER_HELP = (
    "the first line must be a header naming the columns, e.g. 'path,label' or "
    "'path,label,group' (paths relative to the CSV's folder)"
)


@dataclass
class ImageTable:
    """The rows of an image CSV, with paths resolved against the CSV's folder.

    Attributes
    ----------
    source : pathlib.Path
        The CSV file.
    names : list of str
        The ``path`` values as written in the CSV.
    paths : list of pathlib.Path
        The image paths (relative ones joined to the CSV's folder); all exist.
    lines : list of int
        The line number of each row in the CSV (the header is line 1).
    labels : numpy.ndarray or None
        One class per image (int when every label is an integer, else str), or None
        when the labels are label images or were not read.
    label_images : list of pathlib.Path or None
        One label image (mask, organ map) per image, when every ``label`` value is an
        existing path (tile-level tables only).
    groups : numpy.ndarray or None
        The ``group`` column (patient/volume ids) as str, when present.
    """

    source: Path
    names: list[str]
    paths: list[Path]
    lines: list[int]
    labels: np.ndarray | None = None
    label_images: list[Path] | None = None
    groups: np.ndarray | None = None

    @property
    def targets(self) -> np.ndarray | list[Path] | None:
        """What ``fit``/``evaluate`` take as labels: the classes or the label images."""
        return self.label_images if self.label_images is not None else self.labels


def _resolve(folder: Path, value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else folder / path


def _classes(values: list[str]) -> np.ndarray:
    if all(_INT.fullmatch(v) for v in values):
        return np.array([int(v) for v in values], dtype=np.int64)
    return np.array(values, dtype=str)


def read_image_table(
    path: str | os.PathLike[str], *, labels: bool = True, level: str = "image"
) -> ImageTable:
    """Read and check a CSV of images: columns ``path``, ``label`` and optionally ``group``.

    A header line is required (column names are case-insensitive; other columns are
    ignored). Relative image paths resolve against the CSV's folder. Labels that are all
    integers become ints, else strings. With ``level="tile"``, a ``label`` column whose
    values are all existing paths names one label image per image (tile labels come
    from it); otherwise it holds one class per image.

    Parameters
    ----------
    path : str or path-like
        The CSV file.
    labels : bool, optional
        Read (and require) the ``label`` column; ``False`` reads paths only.
    level : {"image", "tile"}, optional
        Whether label images are allowed in the ``label`` column.

    Returns
    -------
    ImageTable

    Raises
    ------
    FileNotFoundError
        If the CSV or an image it names does not exist (the message gives the line).
    ValueError
        If a column is missing, a value is empty, or the table has no rows.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("a.npy", "b.npy"):
    ...     np.save(folder / name, np.zeros((4, 4)))
    >>> _ = (folder / "train.csv").write_text("path,label\\na.npy,0\\nb.npy,1\\n")
    >>> table = read_image_table(folder / "train.csv")
    >>> [p.name for p in table.paths], table.labels.tolist()
    (['a.npy', 'b.npy'], [0, 1])
    """
    source = Path(path).expanduser()
    if not source.is_file():
        what = "is a folder, not a CSV file" if source.is_dir() else "does not exist"
        raise FileNotFoundError(f"{source} {what}: give a CSV file of images; {_HEADER_HELP}.")
    with source.open(newline="", encoding="utf-8-sig") as stream:
        rows = [(line, row) for line, row in enumerate(csv.reader(stream), 1) if any(row)]
    if not rows:
        raise ValueError(f"{source} is empty; {_HEADER_HELP}.")
    header = [h.strip().lower() for h in rows[0][1]]
    needed = ["path", "label"] if labels else ["path"]
    missing = [c for c in needed if c not in header]
    if missing:
        raise ValueError(
            f"{source} has no {' or '.join(repr(c) for c in missing)} column (its first line "
            f"is {','.join(rows[0][1])!r}); {_HEADER_HELP}."
        )
    column = {name: header.index(name) for name in ("path", "label", "group") if name in header}
    if not labels:
        column.pop("label", None)
    body = rows[1:]
    if not body:
        raise ValueError(f"{source} has a header but no rows: add one line per image.")
    folder = source.parent
    values: dict[str, list[str]] = {name: [] for name in column}
    for line, row in body:
        for name, index in column.items():
            value = row[index].strip() if index < len(row) else ""
            if not value:
                raise ValueError(
                    f"line {line} of {source}: the {name} is empty; give every image a "
                    f"{name}, or delete the line."
                )
            values[name].append(value)
    paths = [_resolve(folder, v) for v in values["path"]]
    for (line, _), name, image in zip(body, values["path"], paths):
        if not image.exists():
            raise FileNotFoundError(
                f"line {line} of {source}: image {name!r} does not exist (looked for "
                f"{image}); paths are relative to the CSV's folder. Fix the path or delete "
                "the line."
            )
    table = ImageTable(source, values["path"], paths, [line for line, _ in body])
    if "group" in values:
        table.groups = np.array(values["group"], dtype=str)
    if "label" in values:
        _set_labels(table, values["label"], level)
    return table


def _set_labels(table: ImageTable, values: list[str], level: str) -> None:
    folder = table.source.parent
    if level == "tile":
        candidates = [_resolve(folder, v) for v in values]
        exists = [p.exists() for p in candidates]
        if all(exists):
            table.label_images = candidates
            return
        if any(exists):
            line = table.lines[exists.index(False)]
            raise FileNotFoundError(
                f"line {line} of {table.source}: label {values[exists.index(False)]!r} is not "
                "an existing label image, but other rows name label images; give a label "
                "image (mask) for every row, or a class for every row."
            )
    table.labels = _classes(values)


def image_list(items: Sequence[str]) -> tuple[list[str], list[Path]]:
    """Images named on the command line: paths, and the rows of ``.csv`` tables.

    Parameters
    ----------
    items : sequence of str
        Image paths, or CSV files (suffix ``.csv``) with a ``path`` column.

    Returns
    -------
    names : list of str
        The paths as given (CSV rows: as written in the CSV).
    paths : list of pathlib.Path
        The paths to read (CSV rows: resolved against the CSV's folder).

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> np.save(folder / "a.npy", np.zeros((4, 4)))
    >>> _ = (folder / "new.csv").write_text("path\\na.npy\\n")
    >>> names, paths = image_list([str(folder / "new.csv"), str(folder / "a.npy")])
    >>> names[0], paths[0] == paths[1]
    ('a.npy', True)
    """
    names: list[str] = []
    paths: list[Path] = []
    for item in items:
        if item.lower().endswith(".csv"):
            table = read_image_table(item, labels=False)
            names += table.names
            paths += table.paths
        else:
            path = Path(item).expanduser()
            if not path.exists():
                raise FileNotFoundError(
                    f"image {item} does not exist; give image files or a .csv table with a "
                    "'path' column."
                )
            names.append(item)
            paths.append(path)
    return names, paths


def read_recipe(path: str | os.PathLike[str] | None) -> Any:
    """A :class:`~tilevision.Recipe` from a ``.toml`` or ``.json`` file (None: None).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from tilevision import Recipe
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "r.toml"
    >>> _ = Recipe(["intensity"], tile=8).to_toml(path)
    >>> read_recipe(path) == Recipe(["intensity"], tile=8)
    True
    """
    if path is None:
        return None
    from ..features import Recipe

    source = Path(path).expanduser()
    if not source.is_file():
        raise FileNotFoundError(
            f"recipe file {source} does not exist; give a .toml or .json file."
        )
    suffix = source.suffix.lower()
    if suffix == ".toml":
        return Recipe.from_toml(source)
    if suffix == ".json":
        return Recipe.from_json(source)
    raise ValueError(
        f"recipe file {source} has suffix {suffix or '(none)'!r}; use a .toml or .json file "
        "(write one with Recipe.to_toml)."
    )


def tile_file(folder: Path, name: str, used: set[str]) -> Path:
    """``folder/<stem>.tiles.npz`` for image ``name``; a suffix ``-2``… keeps names unique.

    Examples
    --------
    >>> used = set()
    >>> [tile_file(Path("out"), n, used).name for n in ("a/x.nii.gz", "b/x.npy")]
    ['x.tiles.npz', 'x-2.tiles.npz']
    """
    stem = Path(Path(name).name.removesuffix(".gz")).stem or "image"
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return folder / f"{candidate}.tiles.npz"


def write_tile_probabilities(model: Any, image: Any, dest: Path) -> Path:
    """Write a tile-level model's per-tile probabilities of one image to ``dest`` (.npz).

    The archive holds ``probability`` (tile grid × class, NaN for tiles that are not
    valid), ``dims`` (the dimension names), ``classes`` and ``coord_<name>`` for every
    coordinate of the tile grid (tile centres, starts and sizes). It reads back with
    ``numpy.load(dest, allow_pickle=False)``.

    Parameters
    ----------
    model : Model
        A fitted tile-level model.
    image : path, DataArray or array
        The image.
    dest : pathlib.Path
        The ``.npz`` file to write.

    Returns
    -------
    pathlib.Path
        ``dest``.
    """
    proba = model.predict_tiles(image).compute()
    arrays = {
        "probability": proba.values,
        "dims": np.array(proba.dims, dtype=str),
        "classes": np.asarray(model.classes_.tolist()),  # str or int, never object
    }
    for name, coord in proba.coords.items():
        if name != "class":
            arrays[f"coord_{name}"] = coord.values
    np.savez(dest, **arrays)
    return dest


def write_report(report: Any, folder: Path) -> list[Path]:
    """Write ``report.json``, ``roc.png`` (when there are probabilities) and ``confusion.png``.

    Parameters
    ----------
    report : Report
        The evaluation.
    folder : pathlib.Path
        Created if needed; files in it with these names are replaced.

    Returns
    -------
    list of pathlib.Path
        The files written.
    """
    from matplotlib.figure import Figure

    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "report.json"]
    report.to_json(written[0])
    plots = [("confusion.png", report.plot_confusion)]
    try:
        if report.roc_curve():
            plots.insert(0, ("roc.png", report.plot_roc))
    except ValueError:
        pass  # no probabilities: no ROC curve
    for name, plot in plots:
        figure = Figure(figsize=(5, 4.5), layout="constrained")
        plot(ax=figure.subplots())
        figure.savefig(folder / name, dpi=100)
        written.append(folder / name)
    return written
