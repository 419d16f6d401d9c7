"""Features of many images at once: one descriptor row per image, or one row per tile.

Small images (in memory, or files below :data:`SMALL_IMAGE_BYTES`) are measured whole
in one task each, so many of them run side by side on the workers; large images
keep their tile graph, and all of them are computed together in one call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ..features import Recipe, describe, descriptor_names, tile_features
from ..features._table import tile_feature_names, tile_table
from ..features._tasks import one_task
from ._inputs import describe_source, image_ndim, load_image
from ._tile_labels import tile_labels

__all__ = [
    "SMALL_IMAGE_BYTES",
    "FeatureTable",
    "descriptor_table",
    "resolve_recipe",
    "tile_rows",
    "tile_table_on_disk",
]

#: images up to this size are measured whole inside one task each
SMALL_IMAGE_BYTES = 64 * 2**20


@dataclass
class FeatureTable:
    """Rows of features: one per image (descriptors) or one per valid tile.

    Attributes
    ----------
    X : numpy.ndarray
        ``(n_rows, n_features)`` float64 (NaN where a feature is undefined).
    names : list of str
        Feature names, in column order.
    image_index : numpy.ndarray
        Which image (position in the input list) each row comes from.
    tile_index : numpy.ndarray or None
        Flat (C-order) position of the row's tile in its image's tile grid.
    y : numpy.ndarray or None
        Tile labels read from label images (tile rows only).
    """

    X: np.ndarray
    names: list[str]
    image_index: np.ndarray
    tile_index: np.ndarray | None = None
    y: np.ndarray | None = None


def resolve_recipe(recipe: Recipe | None, images: Sequence[Any]) -> tuple[Recipe, int]:
    """The recipe (default for the images' dimensionality) and that dimensionality.

    Every image must have the same number of spatial dimensions.
    """
    ndims = {image_ndim(im) for im in images}
    if len(ndims) != 1:
        raise ValueError(
            f"the images mix {sorted(ndims)}-D data; fit and predict one dimensionality at a "
            "time (2-D slides or 3-D volumes)."
        )
    (ndim,) = ndims
    if ndim not in (2, 3):
        raise ValueError(
            f"images must be 2-D or 3-D single-channel, got {ndim} dimensions; select one "
            "channel first."
        )
    return (recipe if recipe is not None else Recipe.default(ndim)), ndim


def _is_small(image: Any) -> bool:
    if isinstance(image, np.ndarray):
        return True
    return int(getattr(image, "nbytes", SMALL_IMAGE_BYTES + 1)) <= SMALL_IMAGE_BYTES


def _check_hash(obj: Any, recipe: Recipe, item: Any) -> None:
    found = obj.attrs.get("recipe_hash")
    if found != recipe.hash:
        raise ValueError(
            f"the features of {describe_source(item)} were computed with recipe {found}, "
            f"but this needs recipe {recipe.hash}; compute them again with the model's "
            "recipe (model.recipe_) or pass the images themselves."
        )


@dataclass
class _Now:
    """A job that measures one small image whole, inside one task: ``func(*args)``."""

    func: Any
    args: tuple[Any, ...]
    shape: tuple[int, ...]
    dtype: Any


def _compute(jobs: list[Any], client: Any) -> list[Any]:
    """Compute every job (a Dask array, or a :class:`_Now`) together.

    Without a client the jobs become one Dask computation; with one, in-memory arrays
    are scattered to the workers first (not packed into the task graph) and each small
    image is one submitted task.
    """
    if client is None:
        arrays = [
            one_task(j.func, *j.args, shape=j.shape, dtype=j.dtype) if isinstance(j, _Now) else j
            for j in jobs
        ]
        return list(dask.compute(*arrays))
    arrays = [a for j in jobs if isinstance(j, _Now) for a in j.args if isinstance(a, np.ndarray)]
    scattered = iter(client.scatter(arrays, hash=False) if arrays else [])
    futures = []
    for j in jobs:
        if isinstance(j, _Now):
            args = [next(scattered) if isinstance(a, np.ndarray) else a for a in j.args]
            futures.append(client.submit(j.func, *args, pure=False))
        else:
            futures.append(client.compute(j))
    return client.gather(futures)


# ---------------------------------------------------------------- descriptors


def _descriptor_now(item: Any, recipe: Recipe) -> np.ndarray:
    """A whole descriptor in this task (the image read and measured here)."""
    with dask.config.set(scheduler="sync"):
        tiles = tile_features(load_image(item), recipe).compute()  # small: merge in NumPy
        return describe(tiles).values


def descriptor_table(
    images: Sequence[Any], recipe: Recipe, ndim: int, *, client: Any = None
) -> FeatureTable:
    """The descriptor of every image, computed together: ``(n_images, n_features)``.

    ``images`` entries are paths, arrays or DataArrays (measured with ``recipe``), or
    tile-feature Datasets and descriptors already made with ``recipe``.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe
    >>> imgs = np.random.default_rng(0).random((3, 16, 16))
    >>> t = descriptor_table(list(imgs), Recipe(["intensity"], tile=8), 2)
    >>> t.X.shape, t.names[4], bool(np.isclose(t.X[2, 4], imgs[2].mean()))
    ((3, 16), 'intensity.mean', True)
    """
    names = descriptor_names(recipe, ndim)
    shape, rows = (len(names),), []
    for item in images:
        if isinstance(item, xr.DataArray) and "feature" in item.dims:
            _check_hash(item, recipe, item)
            rows.append(da.asarray(item.data))
        elif isinstance(item, xr.Dataset):
            _check_hash(item, recipe, item)
            rows.append(da.asarray(describe(item).data))
        else:
            image = load_image(item)
            if _is_small(image):
                source = item if not isinstance(image, np.ndarray) or item is image else image
                rows.append(_Now(_descriptor_now, (source, recipe), shape, np.float64))
            else:
                rows.append(describe(tile_features(image, recipe)).data)
    values = np.stack([np.asarray(v, dtype=np.float64) for v in _compute(rows, client)])
    return FeatureTable(values.reshape(-1, len(names)), names, np.arange(len(images)))


# ---------------------------------------------------------------- tile rows


def _boxed(value: Any) -> np.ndarray:
    """``value`` in a 0-d object array (the chunk of a ``shape=()`` object task)."""
    box = np.empty((), dtype=object)
    box[()] = value
    return box


def _rows(names: list[str], table: np.ndarray, valid: np.ndarray, labels: Any) -> np.ndarray:
    index = np.flatnonzero(np.asarray(valid, dtype=bool))
    y = None if labels is None else np.asarray(labels).reshape(-1)[index]
    return _boxed((names, np.asarray(table, dtype=np.float64)[index], index, y))


def _tile_parts(image: Any, label_image: Any, recipe: Recipe, rule: str) -> tuple[Any, ...]:
    tiles = image if isinstance(image, xr.Dataset) else tile_features(image, recipe)
    names = tile_feature_names(tiles)
    table, valid = tile_table(tiles, names)
    labels = None
    if label_image is not None:
        labels = tile_labels(load_image(label_image), tiles, rule).data
    return names, table, valid, labels


def _tile_rows_now(item: Any, label_image: Any, recipe: Recipe, rule: str) -> np.ndarray:
    with dask.config.set(scheduler="sync"):
        names, table, valid, labels = _tile_parts(load_image(item), label_image, recipe, rule)
        table, valid, labels = dask.compute(table, valid, labels)
    return _rows(names, table, valid, labels)


def tile_rows(
    images: Sequence[Any],
    recipe: Recipe,
    *,
    label_images: Sequence[Any] | None = None,
    rule: str = "majority",
    client: Any = None,
) -> FeatureTable:
    """Per-tile features of the valid tiles of every image, computed together.

    With ``label_images`` (one per image) each row also gets its tile label
    (:func:`tile_labels` with ``rule``).

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe
    >>> imgs = [np.zeros((16, 16)), np.ones((16, 32))]
    >>> t = tile_rows(imgs, Recipe(["intensity"], tile=8))
    >>> t.X.shape, t.image_index.tolist()
    ((12, 13), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    """
    parts: list[Any] = []
    names: list[str] | None = None
    for i, item in enumerate(images):
        label_image = None if label_images is None else label_images[i]
        if isinstance(item, xr.Dataset):
            _check_hash(item, recipe, item)
        image = item if isinstance(item, xr.Dataset) else load_image(item)
        if not isinstance(image, xr.Dataset) and _is_small(image):
            source = item if not isinstance(image, np.ndarray) or item is image else image
            parts.append(_Now(_tile_rows_now, (source, label_image, recipe, rule), (), object))
        else:
            names, table, valid, labels = _tile_parts(image, label_image, recipe, rule)
            parts.append(one_task(_rows, names, table, valid, labels, shape=(), dtype=object))
    results = [r[()] if isinstance(r, np.ndarray) else r for r in _compute(parts, client)]
    for i, (found, *_) in enumerate(results):
        if names is None:
            names = list(found)
        elif list(found) != names:
            raise ValueError(
                f"image {i} gave different tile features ({len(found)}) than the others "
                f"({len(names)}); use one recipe for all images."
            )
    assert names is not None
    X = np.concatenate([r[1] for r in results]) if results else np.empty((0, len(names)))
    image_index = np.concatenate(
        [np.full(len(r[2]), i, dtype=np.int64) for i, r in enumerate(results)]
    )
    tile_index = np.concatenate([r[2] for r in results]).astype(np.int64)
    y = None if label_images is None else np.concatenate([r[3] for r in results])
    return FeatureTable(X.reshape(-1, len(names)), names, image_index, tile_index, y)


# ---------------------------------------------------------------- tile rows on disk


def _rows_per_chunk(n_features: int, target_bytes: int = 32 * 2**20) -> int:
    return max(1024, target_bytes // (8 * max(n_features, 1)))


def tile_table_on_disk(
    images: Sequence[Any],
    recipe: Recipe,
    directory: str | Path,
    *,
    labels: np.ndarray | None = None,
    label_images: Sequence[Any] | None = None,
    rule: str = "majority",
    client: Any = None,
) -> tuple[da.Array, da.Array, da.Array, list[str]]:
    """Every tile row of every image written once to a Zarr table; lazy arrays over it.

    For training on more tiles than fit in memory (:func:`fit_incremental`): the tile
    features of all images are computed in one pass and stored in ``directory`` in
    row chunks, never gathered; epochs then read the chunks back instead of computing
    the features again.

    Returns
    -------
    X : dask.array.Array
        ``(n_tiles, n_features)`` float64, every tile of every image (C order per image).
    y : dask.array.Array
        Tile labels: from ``label_images`` (stored too) or each image's label.
    valid : dask.array.Array
        Which rows are valid tiles (the others are background and must be skipped).
    names : list of str
        Feature names.

    Examples
    --------
    >>> import numpy as np, tempfile
    >>> from tilevision import Recipe
    >>> imgs = [np.zeros((16, 16)), np.ones((16, 32))]
    >>> X, y, valid, names = tile_table_on_disk(
    ...     imgs, Recipe(["intensity"], tile=8), tempfile.mkdtemp(), labels=np.array([0, 1]))
    >>> X.shape, y.compute().tolist()
    ((12, 13), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    """
    import zarr

    tables, valids, ys, names = [], [], [], None
    for i, item in enumerate(images):
        image = item if isinstance(item, xr.Dataset) else load_image(item)
        label_image = None if label_images is None else label_images[i]
        found, table, valid, tile_y = _tile_parts(image, label_image, recipe, rule)
        if names is None:
            names = found
        elif found != names:
            raise ValueError(f"image {i} gave different tile features; use one recipe for all.")
        tables.append(da.asarray(table, dtype=np.float64))
        valids.append(da.asarray(valid))
        if labels is not None:
            ys.append(da.full(table.shape[0], labels[i], chunks=table.chunks[0]))
        else:
            ys.append(da.asarray(tile_y).reshape(-1))
    assert names is not None
    rows = _rows_per_chunk(len(names))
    X = da.concatenate(tables).rechunk((rows, -1))
    valid = da.concatenate(valids).rechunk((rows,))
    y = da.concatenate(ys).rechunk((rows,))
    root = Path(directory)
    stored = {"X": X, "valid": valid}
    if labels is None:
        stored["y"] = y
    writes = [
        da.to_zarr(array, zarr.open_array(root / name, mode="w", shape=array.shape,
                   chunks=array.chunksize, dtype=array.dtype), compute=False)
        for name, array in stored.items()
    ]  # fmt: skip
    if client is not None:
        client.gather(client.compute(writes))
    else:
        dask.compute(*writes)
    X = da.from_zarr(str(root / "X"))
    valid = da.from_zarr(str(root / "valid"))
    y = da.from_zarr(str(root / "y")) if labels is None else y
    return X, y, valid, names
