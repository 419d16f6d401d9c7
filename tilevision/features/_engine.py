"""``tile_features``: every feature family on every tile, in one overlapped pass."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr

from .._halo import prepare_chunks
from .._halo_read import map_overlap_read
from .._version import __version__
from ..filters._chain import chain
from ..filters._steps import StepContext
from ._family import FeatureFamily, Tile
from ._mask_rule import apply_mask_rule
from ._recipe import Recipe
from ._registry import create
from ._tasks import one_task
from ._whole import as_feature_image, image_context

__all__ = ["TILE_DIMS", "TilePlan", "plan_tiles", "stat_variable", "tile_dataset", "tile_features"]

TILE_DIMS = ("tile_z", "tile_y", "tile_x")
#: about this much of the (preprocessed) image per block of tile values, in bytes: one
#: chunk of the tile Dataset, one committed block of ``analyze``'s checkpoint. Whole
#: task blocks (a 32 GiB int16 CT, float32 once preprocessed, has 256 blocks of 32 tasks):
#: the graph of the descriptor, and a checkpoint's files, grow with the blocks, not tasks
BLOCK_BYTES = 256 * 2**20
#: per-tile values ahead of the features in the block output vector
_HEAD = ("foreground_fraction", "valid")


def stat_variable(family: str, stat: str) -> str:
    """Name of a family's statistic in the tile Dataset (``"_stat.<family>.<stat>"``)."""
    return f"_stat.{family}.{stat}"


@dataclass(frozen=True)
class _Layout:
    """Where each family's features and statistics sit in a tile's output vector."""

    families: tuple[FeatureFamily, ...]
    features: tuple[tuple[str, ...], ...]
    stats: tuple[tuple[tuple[str, tuple[int, ...], float], ...], ...]

    @property
    def n_features(self) -> int:
        return sum(len(f) for f in self.features)

    @property
    def size(self) -> int:
        n_stats = sum(int(np.prod(shape)) for fam in self.stats for _, shape, _ in fam)
        return len(_HEAD) + self.n_features + n_stats


def _layout(families: Sequence[FeatureFamily], ctx: StepContext) -> _Layout:
    features, stats = [], []
    for fam in families:
        names = tuple(fam.features(ctx))
        if len(set(names)) != len(names):
            raise ValueError(f"feature family {fam.name!r} declares duplicate feature names.")
        features.append(names)
        declared = fam.statistics(ctx) if fam.additive else {}
        if fam.additive and not declared:
            raise ValueError(f"additive feature family {fam.name!r} declares no statistics.")
        stats.append(tuple((k, tuple(s.shape), s.identity) for k, s in declared.items()))
    return _Layout(tuple(families), tuple(features), tuple(stats))


def _measure_tile(
    image: np.ndarray,
    mask: np.ndarray | None,
    maps: list[np.ndarray],
    values: Mapping[str, Any],
    inner: tuple[slice, ...],
    start: tuple[int, ...],
    out: np.ndarray,
    *,
    layout: _Layout,
    map_names: tuple[tuple[str, ...], ...],
    ctx: StepContext,
    min_foreground: float,
) -> None:
    """Measure one tile (``inner`` within the given block view) into ``out``."""
    if mask is None:
        fraction = 1.0
    else:
        core = mask[inner]
        fraction = float(np.count_nonzero(core)) / core.size if core.size else 0.0
    valid = fraction > 0 and fraction >= min_foreground
    out[0], out[1] = fraction, float(valid)
    pos = len(_HEAD)
    stat_pos = pos + layout.n_features
    block_maps = iter(maps)
    for fam, names, stats, fam_maps in zip(
        layout.families, layout.features, layout.stats, map_names
    ):
        tile_maps = {name: next(block_maps) for name in fam_maps}
        sizes = [int(np.prod(shape)) for _, shape, _ in stats]
        if not valid:
            for (_, _, identity), size in zip(stats, sizes):
                out[stat_pos : stat_pos + size] = identity
                stat_pos += size
            pos += len(names)
            continue
        tile = Tile(image, mask, inner, start, ctx, tile_maps, values[fam.name])
        measured = fam.measure(tile)
        if fam.additive:
            merged = {}
            for (key, shape, _), size in zip(stats, sizes):
                if key not in measured:
                    raise ValueError(f"feature family {fam.name!r} did not measure {key!r}.")
                value = np.asarray(measured[key], dtype=np.float64)
                if value.shape != shape:
                    raise ValueError(
                        f"feature family {fam.name!r} measured {key!r} with shape "
                        f"{value.shape}, but declared {shape}."
                    )
                merged[key] = value
                out[stat_pos : stat_pos + size] = value.ravel()
                stat_pos += size
            measured = fam.finalize(merged, ctx)
        missing = [n for n in names if n not in measured]
        if missing:
            raise ValueError(f"feature family {fam.name!r} did not return features {missing}.")
        out[pos : pos + len(names)] = [float(measured[n]) for n in names]
        pos += len(names)


def _block_tiles(
    image: np.ndarray,
    *masks_maps_and_values: Any,
    has_mask: bool,
    layout: _Layout,
    map_names: tuple[tuple[str, ...], ...],
    ctx: StepContext,
    radius: tuple[int, ...],
    depth: tuple[int, ...],
    tile: tuple[int, ...],
    offsets: tuple[tuple[int, ...], ...],
    min_foreground: float,
    block_info: Mapping[Any, Any] | None = None,
) -> np.ndarray:
    """Measure every tile of one overlapped block: output ``(*tiles_per_axis, size)``.

    A block holds whole tiles of the grid (its size is a multiple of the tile, except
    at the image end); each tile is measured on a view of the block reaching
    ``radius`` beyond it — into the neighbouring tiles of the same block, or into the
    block's own halo at its edges (none at the true image edge).
    """
    ndim = ctx.ndim
    if block_info is None:  # dask probing
        return np.full((1,) * ndim + (layout.size,), np.nan)
    *map_blocks, values = masks_maps_and_values
    mask = map_blocks.pop(0) if has_mask else None
    info = block_info[0]
    loc, nblocks = info["chunk-location"], info["num-chunks"]
    low = [d if i > 0 else 0 for d, i in zip(depth, loc)]
    high = [d if i < nb - 1 else 0 for d, i, nb in zip(depth, loc, nblocks)]
    core = [n - lo - hi for n, lo, hi in zip(image.shape, low, high)]
    counts = [-(-c // t) for c, t in zip(core, tile)]
    out = np.full((*counts, layout.size), np.nan)
    for index in np.ndindex(*counts):
        first = [lo + i * t for lo, i, t in zip(low, index, tile)]
        last = [min(f + t, lo + c) for f, t, lo, c in zip(first, tile, low, core)]
        view = tuple(
            slice(max(f - r, 0), min(e + r, n))
            for f, e, r, n in zip(first, last, radius, image.shape)
        )
        inner = tuple(slice(f - v.start, e - v.start) for f, e, v in zip(first, last, view))
        start = tuple(
            int(offsets[a][loc[a]]) + f - lo for a, (f, lo) in enumerate(zip(first, low))
        )
        _measure_tile(
            image[view],
            None if mask is None else mask[view],
            [m[view] for m in map_blocks],
            values,
            inner,
            start,
            out[index],
            layout=layout,
            map_names=map_names,
            ctx=ctx,
            min_foreground=min_foreground,
        )
    return out


def _block_shape(
    tile: tuple[int, ...], chunks: tuple[tuple[int, ...], ...], shape: tuple[int, ...]
) -> tuple[int, ...]:
    """Blocks of whole tiles about the size of the storage chunks (one task each)."""
    return tuple(min(n, t * max(1, round(max(c) / t))) for t, c, n in zip(tile, chunks, shape))


def _pack_values(values: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Computed global values, as plain NumPy per family (runs inside the graph)."""
    return {fam: {k: np.asarray(v) for k, v in vals.items()} for fam, vals in values.items()}


def _mask_data(image: xr.DataArray, mask: Any, rule: str | None, raw: xr.DataArray) -> Any:
    """The boolean foreground as a Dask array (explicit mask AND recipe rule), or None."""
    result = None
    if mask is not None:
        data = mask.data if isinstance(mask, xr.DataArray) else mask
        data = data if isinstance(data, da.Array) else da.asarray(np.asarray(data))
        if tuple(data.shape) != tuple(image.shape):
            raise ValueError(
                f"the mask has shape {tuple(data.shape)} but the image has {tuple(image.shape)}; "
                "give a mask of the image's shape (the same pyramid level)."
            )
        result = data.astype(bool)
    if rule is not None:
        ruled = apply_mask_rule(raw, rule).data
        result = ruled if result is None else result & ruled
    return result


def tile_features(
    image: Any,
    recipe: Recipe | None = None,
    *,
    mask: Any = None,
    rechunk: bool = True,
) -> xr.Dataset:
    """Feature table per tile: every family of ``recipe`` on every tile, lazily.

    The image is preprocessed (the recipe's steps, fused into one overlap), cut into
    tiles of the recipe's shape, and every family measures every tile with the
    largest halo any of them needs, exchanged once. Global quantities (grey-level
    ranges, thresholds, label maps) are computed first, over the whole image.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        A 2-D or 3-D single-channel image (``tilevision.open`` gives one).
    recipe : Recipe, optional
        What to compute; :meth:`Recipe.default` for the image's dimensionality.
    mask : array-like or DataArray, optional
        Boolean foreground (e.g. an organ mask), combined (AND) with the recipe's
        mask rule. Without either, every pixel is foreground.
    rechunk : bool, optional
        One task measures a block of whole tiles (about the size of the storage
        chunks); a last block thinner than the halo joins its neighbour (default) —
        the tile grid does not change — and ``False`` raises instead.

    Returns
    -------
    xarray.Dataset
        Dims ``tile_y``, ``tile_x`` (and ``tile_z``), coords = tile centres in
        physical units (plus ``<dim>_start``/``<dim>_size`` in pixels). One float64
        variable per feature, ``"<family>.<feature>"`` (NaN for skipped tiles);
        ``foreground_fraction``; ``valid`` (measured tiles); the additive families'
        statistics as ``"_stat.<family>.<name>"``. ``attrs`` hold the recipe (JSON),
        its hash and the tile shape. Lazy: nothing is computed until asked.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, tile_features
    >>> img = np.random.default_rng(0).random((64, 96))
    >>> tiles = tile_features(img, Recipe(["intensity"], tile=32))
    >>> tiles["intensity.mean"].shape
    (2, 3)
    >>> means = tiles["intensity.mean"].values
    >>> bool(np.isclose(means[1, 2], img[32:, 64:].mean()))
    True
    """
    return tile_dataset(plan_tiles(image, recipe, mask=mask, rechunk=rechunk))


@dataclass(frozen=True)
class TilePlan:
    """The lazy per-tile output of a recipe on an image, before it becomes a Dataset.

    ``vector`` holds every tile's values (dims: the tile grid, then the layout): the
    features, ``foreground_fraction``, ``valid`` and the additive statistics, as
    placed by ``layout``. One block of ``vector`` is one task's tiles.
    :func:`tile_dataset` turns it into the Dataset of :func:`tile_features`;
    ``tilevision._checkpoint`` commits its blocks to disk as they finish.

    ``global_values`` is the lazy first pass of a global-then-local recipe (one task
    giving ``{family: {name: array}}``), or ``None`` when no family needs one or they
    were given: :meth:`with_global_values` makes the plan over computed values.
    """

    vector: da.Array
    layout: _Layout
    image: xr.DataArray  # the preprocessed image (shape, coords, attrs)
    tile: tuple[int, ...]
    recipe: Recipe
    ctx: StepContext
    blocks: tuple[int, ...]  # tiles per block of tile values, along each tile axis
    global_values: da.Array | None = None
    build: Callable[[Any], da.Array] | None = field(default=None, repr=False, compare=False)

    def block_chunks(self) -> tuple[tuple[int, ...], ...]:
        """The chunks of ``vector`` in blocks of :attr:`blocks` tiles."""
        n_tiles = self.vector.shape[:-1]
        return (
            *(tuple(min(b, n - i) for i in range(0, n, b)) for n, b in zip(n_tiles, self.blocks)),
            (self.vector.shape[-1],),
        )

    def with_vector(self, vector: da.Array) -> TilePlan:
        """The same plan over other (e.g. stored) values of the same shape."""
        if vector.shape != self.vector.shape:
            raise ValueError(f"tile values of shape {vector.shape}, expected {self.vector.shape}")
        return replace(self, vector=vector, global_values=None, build=None)

    def with_global_values(self, values: Mapping[str, Mapping[str, Any]]) -> TilePlan:
        """The plan whose tiles use ``values`` (the computed ``global_values``) instead
        of computing the first pass again."""
        if self.build is None:
            raise ValueError("this plan's tile values do not depend on global values.")
        return replace(self, vector=self.build(values), global_values=None, build=None)


def plan_tiles(
    image: Any, recipe: Recipe | None = None, *, mask: Any = None, rechunk: bool = True
) -> TilePlan:
    """The lazy :class:`TilePlan` of :func:`tile_features` (same parameters)."""
    raw = as_feature_image(image)
    recipe = recipe if recipe is not None else Recipe.default(raw.ndim)
    filtered = chain(raw, list(recipe.preprocess)) if recipe.preprocess else raw
    ctx = image_context(filtered)
    ndim = ctx.ndim
    families = [create(name, params) for name, params in recipe.features.items()]
    for fam in families:
        fam.check_ndim(ctx)
    layout = _layout(families, ctx)
    radius = tuple(max([0, *(int(fam.radius(ctx)[a]) for fam in families)]) for a in range(ndim))
    tile = recipe.tile_pixels(ctx.spacing)
    names = list(ctx.axis_names)

    block = _block_shape(tile, filtered.data.chunks, filtered.shape)
    data = filtered.data.rechunk(block)
    data, depth = prepare_chunks(data, list(radius), rechunk=rechunk, axis_names=names)
    depth = tuple(int(d) for d in depth)  # the overlap between blocks (0: one block)
    chunks = data.chunks
    mask_data = _mask_data(raw, mask, recipe.mask, raw)
    mask_da = None if mask_data is None else filtered.copy(data=mask_data.rechunk(chunks))

    prepared = {fam.name: fam.prepare(filtered, mask_da, ctx) for fam in families}
    values = {name: dict(p.values) for name, p in prepared.items()}
    packed = one_task(_pack_values, values, shape=(), dtype=object)
    map_names = tuple(tuple(prepared[f.name].maps) for f in families)
    map_arrays = [
        _as_dask(prepared[f.name].maps[k]).rechunk(chunks) for f, ks in zip(families, map_names)
        for k in ks
    ]  # fmt: skip
    has_globals = bool(any(values.values()))

    offsets = tuple(tuple(int(v) for v in np.cumsum((0, *c[:-1]))) for c in chunks)
    token = dask.base.tokenize(data, mask_data, recipe.hash, *map_arrays)

    def build(global_values: Any) -> da.Array:
        # every block reads its own halo, after the global values are known: memory does
        # not grow with the image (blocks are made slab by slab; their results are small)
        given = global_values is not packed
        if given:  # computed values: one task holds them, every block reads it
            global_values = one_task(_pack_values, global_values, shape=(), dtype=object)
        name = f"tilevision-tile-features-{token}"
        return map_overlap_read(
            _block_tiles,
            [data, *([] if mask_data is None else [mask_da.data]), *map_arrays],
            depth,
            args=[global_values],
            after=[global_values] if has_globals and not given else [],
            sweep=True,
            chunks=(*(tuple(-(-b // t) for b in c) for c, t in zip(chunks, tile)), (layout.size,)),
            dtype=np.float64,
            meta=np.empty((0,) * (ndim + 1), np.float64),
            name=f"{name}-{dask.base.tokenize(global_values)}" if given else name,
            kwargs={
                "has_mask": mask_data is not None,
                "layout": layout,
                "map_names": map_names,
                "ctx": ctx,
                "radius": radius,
                "depth": depth,
                "tile": tile,
                "offsets": offsets,
                "min_foreground": recipe.min_foreground,
            },
        )

    vector = build(packed)
    blocks = _group_tasks(vector.chunks[:ndim], tile, filtered.shape, filtered.dtype.itemsize)
    return TilePlan(
        vector, layout, filtered, tile, recipe, ctx, blocks,
        global_values=packed if has_globals else None,
        build=build if has_globals else None,
    )  # fmt: skip


def _group_tasks(
    chunks: tuple[tuple[int, ...], ...],
    tile: tuple[int, ...],
    shape: tuple[int, ...],
    itemsize: int,
    block_bytes: int | None = None,
) -> tuple[int, ...]:
    """Tiles per block along each tile axis: whole task blocks (``chunks``: tiles per
    task), grouped from the last axis on (rows, then planes) until a block holds about
    ``block_bytes`` (default :data:`BLOCK_BYTES`) of the image."""
    block_bytes = BLOCK_BYTES if block_bytes is None else block_bytes
    tiles_per_task = [max(c) for c in chunks]
    n_tiles = [sum(c) for c in chunks]
    size = itemsize * math.prod(
        min(t * k, n) for t, k, n in zip(tile, tiles_per_task, shape)
    )  # one task's pixels
    per_block = list(tiles_per_task)
    for axis in reversed(range(len(chunks))):
        n_tasks = len(chunks[axis])
        factor = max(1, min(n_tasks, block_bytes // max(size, 1)))
        per_block[axis] = min(n_tiles[axis], tiles_per_task[axis] * factor)
        size *= factor
        if factor < n_tasks:
            break
    return tuple(per_block)


def _as_dask(array: Any) -> da.Array:
    data = array.data if isinstance(array, xr.DataArray) else array
    return data if isinstance(data, da.Array) else da.asarray(np.asarray(data))


def tile_dataset(plan: TilePlan) -> xr.Dataset:
    """The tile Dataset of :func:`tile_features` from its :class:`TilePlan`, in chunks of
    :attr:`TilePlan.blocks` tiles (the graph of every variable and of the descriptor
    grows with the number of blocks, not of tasks)."""
    layout, image, tile, recipe, ctx = plan.layout, plan.image, plan.tile, plan.recipe, plan.ctx
    vector = plan.vector.rechunk(plan.block_chunks())
    ndim = ctx.ndim
    tdims = TILE_DIMS[-ndim:]
    coords: dict[str, Any] = {}
    for a, (dim, tdim) in enumerate(zip(ctx.axis_names, tdims)):
        n = image.shape[a]
        starts = np.arange(0, n, tile[a])
        sizes = np.minimum(starts + tile[a], n) - starts
        values = np.asarray(image.coords[dim].values, dtype=np.float64) if dim in image.coords \
            else np.arange(image.shape[a], dtype=np.float64)  # fmt: skip
        centres = (values[starts] + values[starts + sizes - 1]) / 2
        coords[tdim] = (tdim, centres, {"units": image.coords[dim].attrs.get("units", "")}
                        if dim in image.coords else {})  # fmt: skip
        coords[f"{tdim}_start"] = (tdim, starts.astype(np.int64))
        coords[f"{tdim}_size"] = (tdim, sizes.astype(np.int64))
    variables: dict[str, Any] = {
        "foreground_fraction": (tdims, vector[..., 0]),
        "valid": (tdims, vector[..., 1] > 0),
    }
    pos = len(_HEAD)
    for fam, names in zip(layout.families, layout.features):
        for n in names:
            variables[f"{fam.name}.{n}"] = (tdims, vector[..., pos])
            pos += 1
    for fam, stats in zip(layout.families, layout.stats):
        declared = fam.statistics(ctx) if fam.additive else {}
        for key, shape, _ in stats:
            size = int(np.prod(shape))
            values = vector[..., pos : pos + size].reshape(vector.shape[:ndim] + shape)
            sdims = tuple(f"{fam.name}.{d}" for d in declared[key].dims)
            variables[stat_variable(fam.name, key)] = ((*tdims, *sdims), values)
            pos += size
    attrs = {
        "recipe": json.dumps(recipe.to_dict(), sort_keys=True),
        "recipe_hash": recipe.hash,
        "tile_shape": list(recipe.tile_pixels(ctx.spacing)),
        "image_shape": list(image.shape),
        "image_dims": list(ctx.axis_names),
        "spacing": list(ctx.spacing),
        "tilevision_version": __version__,
    }
    if "source" in image.attrs:
        attrs["source"] = str(image.attrs["source"])
    return xr.Dataset(variables, coords=coords, attrs=attrs)
