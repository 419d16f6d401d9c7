"""``describe``: one fixed-length descriptor per image from its tile features."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

from ..filters._steps import StepContext
from ._engine import TILE_DIMS, stat_variable
from ._family import FeatureFamily
from ._recipe import Recipe
from ._registry import create
from ._tasks import one_task

__all__ = ["SUMMARIES", "describe", "descriptor_names"]

#: distribution statistics over valid tiles for non-additive features
SUMMARIES = ("mean", "std", "p10", "p50", "p90")
_GENERAL = ("tiles.valid_count", "tiles.valid_fraction", "tiles.foreground_fraction")


def _context(tiles: xr.Dataset) -> StepContext:
    dims = tuple(tiles.attrs["image_dims"])
    return StepContext(
        ndim=len(dims),
        spacing=tuple(float(s) for s in tiles.attrs["spacing"]),
        axis_names=dims,
        dtype=np.dtype(np.float64),
    )


def _recipe_of(tiles: xr.Dataset, recipe: Recipe | None) -> Recipe:
    if "recipe" not in tiles.attrs:
        raise ValueError(
            "these tiles carry no recipe in their attrs; pass the Dataset returned by "
            "tilevision.tile_features (or give recipe=)."
        )
    stored = Recipe.from_json(tiles.attrs["recipe"])
    if recipe is not None and recipe.hash != stored.hash:
        raise ValueError(
            f"the recipe given (hash {recipe.hash}) is not the one these tiles were computed "
            f"with (hash {stored.hash}); recompute the tiles or pass recipe=None."
        )
    return stored


def descriptor_names(recipe: Recipe, ndim: int) -> list[str]:
    """The descriptor's feature names for ``recipe`` on a ``ndim``-D image (stable order).

    Examples
    --------
    >>> from tilevision import Recipe
    >>> names = descriptor_names(Recipe(["intensity"]), 2)
    >>> names[:2], "intensity.mean" in names
    (['tiles.valid_count', 'tiles.valid_fraction'], True)
    """
    ctx = StepContext(ndim=ndim, spacing=(1.0,) * ndim, axis_names=("z", "y", "x")[-ndim:],
                      dtype=np.dtype(np.float64))  # fmt: skip
    names = list(_GENERAL)
    for name, params in recipe.features.items():
        names += _family_names(create(name, params), ctx)
    return names


def _family_names(fam: FeatureFamily, ctx: StepContext) -> list[str]:
    if fam.additive:
        return [f"{fam.name}.{f}" for f in fam.features(ctx)]
    return [f"{fam.name}.{f}.{s}" for f in fam.features(ctx) for s in SUMMARIES]


def _merge(tiles: xr.Dataset, fam: FeatureFamily, ctx: StepContext, tdims: tuple[str, ...]) -> Any:
    """The family's statistics merged over valid tiles (lazy DataArrays)."""
    valid = tiles["valid"]
    merged = {}
    for key, stat in fam.statistics(ctx).items():
        var = tiles[stat_variable(fam.name, key)]
        if stat.merge == "sum":
            merged[key] = var.where(valid, 0.0).sum(tdims).data
        elif stat.merge == "min":
            merged[key] = var.where(valid, np.inf).min(tdims).data
        else:
            merged[key] = var.where(valid, -np.inf).max(tdims).data
    return merged


def _finalize(
    fam: FeatureFamily, ctx: StepContext, merged: Mapping[str, Any], n_valid: Any
) -> Any:
    names = fam.features(ctx)
    if not n_valid:
        return np.full(len(names), np.nan)
    stats = {k: np.asarray(v, dtype=np.float64) for k, v in merged.items()}
    values = fam.finalize(stats, ctx)
    return np.array([float(values[n]) for n in names])


def _summarise(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """mean, std, p10, p50, p90 of each feature (rows) over valid tiles (NaN if none)."""
    picked = values[:, valid.ravel()]
    out = np.full((values.shape[0], len(SUMMARIES)), np.nan)
    for i, row in enumerate(picked):
        row = row[np.isfinite(row)]
        if row.size:
            out[i] = [row.mean(), row.std(), *np.percentile(row, [10, 50, 90])]
    return out.ravel()


def _assemble(ctx: StepContext, general: Any, n_valid: Any, parts: Sequence[Any]) -> np.ndarray:
    """The descriptor vector from the computed pieces (runs inside the graph)."""
    out = [_general(*general)]
    for kind, fam, value in parts:
        if kind == "merge":
            out.append(_finalize(fam, ctx, value, n_valid))
        elif kind == "summary":
            out.append(_summarise(np.asarray(value), np.asarray(general[0])))
        else:
            out.append(np.asarray(value, dtype=np.float64))
    return np.concatenate([np.ravel(p) for p in out])


def _general(valid: np.ndarray, fraction: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    valid, fraction = np.asarray(valid, dtype=bool), np.asarray(fraction)
    total = sizes.sum()
    return np.array(
        [
            valid.sum(),
            valid.mean() if valid.size else np.nan,
            (fraction * sizes).sum() / total if total else np.nan,
        ],
        dtype=np.float64,
    )


def describe(
    tiles: xr.Dataset, recipe: Recipe | None = None, *, codebook: Any = None
) -> xr.DataArray:
    """One descriptor per image: a fixed-length vector over dim ``"feature"``.

    For additive families (counts, moments, histograms, co-occurrence matrices) the
    statistics of all valid tiles are merged and the features computed from them:
    the value equals the same feature computed on the whole image (its foreground).
    Other families' features are summarised over valid tiles by their mean, std and
    10th/50th/90th percentiles (``"<family>.<feature>.p50"``). Three general entries
    come first: ``tiles.valid_count``, ``tiles.valid_fraction`` and
    ``tiles.foreground_fraction``. Without any valid tile the values are NaN.

    Parameters
    ----------
    tiles : xarray.Dataset
        From :func:`tilevision.tile_features` (lazy or computed).
    recipe : Recipe, optional
        Checked against the recipe stored in ``tiles`` (the stored one is used).
    codebook : Codebook, optional
        Appends a bag-of-visual-words histogram of the valid tiles
        (:func:`tilevision.features.fit_codebook`).

    Returns
    -------
    xarray.DataArray
        float64 over ``feature`` (names as coords), lazy if ``tiles`` is; attrs hold
        the recipe hash.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, describe, tile_features
    >>> img = np.random.default_rng(0).random((64, 96))
    >>> d = describe(tile_features(img, Recipe(["intensity"], tile=32)))
    >>> bool(np.isclose(float(d.sel(feature="intensity.mean")), img.mean()))
    True
    """
    recipe = _recipe_of(tiles, recipe)
    ctx = _context(tiles)
    tdims = tuple(d for d in TILE_DIMS if d in tiles.dims)
    valid = tiles["valid"]
    n_valid = valid.sum().data
    sizes = 1
    for d in tdims:
        sizes = sizes * tiles[f"{d}_size"]
    general = (valid.data, tiles["foreground_fraction"].data, sizes.transpose(*tdims).values)
    parts: list[Any] = []
    names = list(_GENERAL)
    for name, params in recipe.features.items():
        fam = create(name, params)
        names += _family_names(fam, ctx)
        if fam.additive:
            parts.append(("merge", fam, _merge(tiles, fam, ctx, tdims)))
        else:
            feats = [tiles[f"{name}.{f}"].data for f in fam.features(ctx)]
            stacked = da.stack(feats).reshape(len(feats), -1) if feats else np.empty((0, 0))
            parts.append(("summary", fam, stacked))
    if codebook is not None:
        words = codebook.histogram(tiles)
        names += list(words.coords["feature"].values)
        parts.append(("values", None, words.data))
    vector = one_task(
        _assemble, ctx, general, n_valid, parts, shape=(len(names),), dtype=np.float64
    )
    return xr.DataArray(
        vector,
        dims=("feature",),
        coords={"feature": names},
        name="descriptor",
        attrs={
            "recipe_hash": recipe.hash,
            "recipe": tiles.attrs["recipe"],
            "image_dims": list(tiles.attrs.get("image_dims", ctx.axis_names)),
        },
    )
