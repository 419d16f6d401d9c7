"""Connected components across tiles, merged by a tree reduction.

The algorithm, for a Dask mask with chunks (every step lazy, memory per task bounded):

1. **Per chunk**: ``scipy.ndimage.label`` with the structuring element of the
   connectivity gives local labels 1..n_c. The task keeps only n_c and the
   1-pixel faces of its local labels (what the neighbours need).
2. **Per face**: the last slab of chunk A along an axis is compared with the first
   slab of the chunks after it along that axis, extended by one pixel on every other
   axis (for connectivity > 1 a pixel pairs with its diagonal neighbours across the
   face; the extension reaches the chunks that share only an edge or a corner with
   A). Each pair of touching labels is an equivalence, written as keys
   ``chunk << 32 | local`` that need no global offsets yet.
3. **Tree merge**: the equivalence tables of the faces are merged two at a time up a
   binary tree; each merge solves connected components of its keys (root = smallest
   key). No task but the root sees every face.
4. **Lookup table**: the per-chunk counts give offsets (a cumulative sum); with the
   merged table they give a table from every provisional label to a consecutive
   final id 1..n.
5. **Relabel**: each chunk is labelled again and mapped through its slice of the
   table. The mask's graph is cloned (``dask.graph_manipulation.bind``) so that its
   chunks are recomputed (re-read) after the table is ready, instead of the whole mask
   staying in memory between the two passes.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask._task_spec import Task, TaskRef, parse_input
from dask.base import tokenize
from dask.delayed import Delayed
from dask.graph_manipulation import bind
from dask.highlevelgraph import HighLevelGraph

from .._dtype import LABEL_DTYPE, check_numeric
from ._chain import unwrap, wrap_like

__all__ = ["label"]

_KEY_BITS = 32
_SPLIT_EVERY = 2


def check_connectivity(connectivity: int | None, ndim: int) -> int:
    """Validate ``connectivity`` (None means ``ndim``: every neighbour).

    Examples
    --------
    >>> check_connectivity(None, 3), check_connectivity(1, 2)
    (3, 1)
    >>> check_connectivity(3, 2)
    Traceback (most recent call last):
    ...
    ValueError: connectivity must be between 1 (faces only) and 2 (all neighbours) ...
    """
    if connectivity is None:
        return ndim
    if isinstance(connectivity, bool) or not isinstance(connectivity, (int, np.integer)):
        raise TypeError(f"connectivity must be an integer, got {connectivity!r}.")
    if not 1 <= connectivity <= ndim:
        raise ValueError(
            f"connectivity must be between 1 (faces only) and {ndim} (all neighbours) for a "
            f"{ndim}-D image, got {connectivity}; pass an integer in that range, or None."
        )
    return int(connectivity)


def label_dtype(chunks: Sequence[Sequence[int]]) -> np.dtype:
    """LABEL_DTYPE, or int64 when the provisional labels could overflow it.

    A chunk of ``m`` pixels holds at most ``ceil(m / 2)`` separate objects (a
    checkerboard), so the provisional labels are bounded before anything is computed.

    Examples
    --------
    >>> label_dtype(((100,), (100,)))
    dtype('int32')
    >>> label_dtype(((65536,), (65536,)))
    dtype('int64')
    """
    bound = 0
    for sizes in itertools.product(*chunks):
        bound += (math.prod(sizes) + 1) // 2
    return LABEL_DTYPE if bound <= np.iinfo(LABEL_DTYPE).max else np.dtype(np.int64)


def _local_label(block: np.ndarray, structure: np.ndarray) -> tuple[np.ndarray, int]:
    import scipy.ndimage as ndi

    mask = block if block.dtype == bool else block != 0
    out = np.int32 if block.size < 2**31 else np.int64
    labels, n = ndi.label(mask, structure, output=out)
    return labels, int(n)


def _summarise(
    block: np.ndarray, structure: np.ndarray, low: Sequence[bool], high: Sequence[bool]
) -> tuple[int, list[np.ndarray | None], list[np.ndarray | None]]:
    """Pass 1 of a chunk: its count and the 1-pixel faces its neighbours need."""
    labels, n = _local_label(block, structure)
    lows = [np.asarray(np.take(labels, 0, axis=k)) if low[k] else None for k in range(labels.ndim)]
    highs = [
        np.asarray(np.take(labels, -1, axis=k)) if high[k] else None for k in range(labels.ndim)
    ]
    return n, lows, highs


def _keys(local: np.ndarray, flat: int) -> np.ndarray:
    local = np.asarray(local)
    return np.where(local != 0, local.astype(np.int64) + (np.int64(flat) << _KEY_BITS), 0)


def _face_pairs(
    axis: int,
    flat: int,
    summary: tuple[Any, ...],
    neighbours: list[tuple[tuple[int, ...], int, tuple[Any, ...]]],
    offsets: list[tuple[int, ...]],
) -> np.ndarray:
    """Equivalences across the high face of one chunk along ``axis``, as a table of
    (2, m) int64 keys → their roots (see :func:`_components`)."""
    a = _keys(summary[2][axis], flat)
    shape = a.shape
    ext = np.zeros(tuple(s + 2 for s in shape), dtype=np.int64)
    for delta, nflat, nsummary in neighbours:
        face = nsummary[1][axis]
        src, dst = [], []
        for d, s in zip(delta, shape):
            if d < 0:
                src.append(slice(-1, None))
                dst.append(slice(0, 1))
            elif d == 0:
                src.append(slice(None))
                dst.append(slice(1, 1 + s))
            else:
                src.append(slice(0, 1))
                dst.append(slice(1 + s, 2 + s))
        ext[tuple(dst)] = _keys(face[tuple(src)], nflat)
    found = []
    for off in offsets:
        window = ext[tuple(slice(1 + o, 1 + o + s) for o, s in zip(off, shape))]
        both = (a != 0) & (window != 0)
        if both.any():
            found.append(np.stack([a[both], window[both]]))
    if not found:
        return np.zeros((2, 0), dtype=np.int64)
    return _components(np.concatenate(found, axis=1))


def _components(*tables: np.ndarray) -> np.ndarray:
    """Merge equivalence tables: every key that is not a root → its root (smallest key)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    edges = np.concatenate(tables, axis=1) if len(tables) > 1 else tables[0]
    if edges.shape[1] == 0:
        return np.zeros((2, 0), dtype=np.int64)
    keys, inverse = np.unique(edges, return_inverse=True)
    inverse = inverse.reshape(edges.shape)
    n = keys.size
    graph = coo_matrix((np.ones(edges.shape[1], np.int8), (inverse[0], inverse[1])), (n, n))
    _, comp = connected_components(graph, directed=False)
    _, first = np.unique(comp, return_index=True)  # keys are sorted: first = smallest
    roots = keys[first][comp]
    keep = keys != roots
    return np.stack([keys[keep], roots[keep]])


def _lookup_table(
    counts: Sequence[int], merged: np.ndarray, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray, np.int64]:
    """Provisional label → final id 1..n; also the per-chunk offsets and n."""
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=offsets[1:])
    total = int(offsets[-1])
    table = np.arange(total + 1, dtype=dtype)
    if merged.shape[1]:
        mask = np.int64((1 << _KEY_BITS) - 1)
        glob = [offsets[k >> _KEY_BITS] + (k & mask) for k in merged]
        table[glob[0]] = glob[1]
    is_root = table == np.arange(total + 1, dtype=dtype)
    new_id = np.cumsum(is_root, dtype=dtype)
    new_id -= 1
    return new_id[table], offsets, np.int64(new_id[-1])


def _relabel_block(
    block: np.ndarray,
    lut: tuple[np.ndarray, np.ndarray, int],
    structure: np.ndarray,
    grid: tuple[int, ...],
    out_dtype: np.dtype,
    block_id: tuple[int, ...] | None = None,
) -> np.ndarray:
    table, offsets, _ = lut
    flat = int(np.ravel_multi_index(block_id, grid))  # type: ignore[arg-type]
    local, n = _local_label(block, structure)
    start = int(offsets[flat])
    if n != int(offsets[flat + 1]) - start:
        raise RuntimeError(
            f"chunk {block_id} gave {n} components on the second pass but "
            f"{int(offsets[flat + 1]) - start} on the first: the mask is not deterministic. "
            "Persist or store the mask first (e.g. mask.persist() or to Zarr)."
        )
    sub = table[start : start + n + 1].astype(out_dtype, copy=True)
    sub[0] = 0
    return sub[local]


class GraphBuilder:
    """Tasks of one graph layer (built directly: per-task ``dask.delayed`` is far too
    slow for thousands of chunks)."""

    def __init__(self, name: str, dependencies: Sequence[Any]) -> None:
        self.name = name
        self.dependencies = list(dependencies)
        self.layer: dict[str, Task] = {}

    def add(self, key: str, func: Callable[..., Any], *args: Any) -> TaskRef:
        """Add ``func(*args)`` (args may hold :class:`TaskRef`) as ``key``; return its ref."""
        self.layer[key] = Task(key, func, *(parse_input(a) for a in args))
        return TaskRef(key)

    def tree(
        self, leaves: Sequence[TaskRef], func: Callable[..., Any], prefix: str
    ) -> TaskRef | None:
        """Combine ``leaves`` with ``func`` up a tree of fan-in ``_SPLIT_EVERY``;
        tasks are named ``f"{prefix}-{level}-{i}"``. None when there is no leaf."""
        items = list(leaves)
        if not items:
            return None
        level = 0
        while len(items) > 1:
            nxt = []
            for j, i in enumerate(range(0, len(items), _SPLIT_EVERY)):
                group = items[i : i + _SPLIT_EVERY]
                nxt.append(
                    group[0]
                    if len(group) == 1
                    else self.add(f"{prefix}-{level}-{j}", func, *group)
                )
            items = nxt
            level += 1
        return items[0]

    def delayed(self, ref: TaskRef) -> Delayed:
        """A Delayed for one task of the layer (call after adding every task)."""
        graph = HighLevelGraph.from_collections(self.name, self.layer, self.dependencies)
        return Delayed(ref.key, graph, layer=self.name)


def _neighbour_offsets(ndim: int, connectivity: int) -> list[tuple[int, ...]]:
    """Shifts on the other axes of the pixels across a face (at most connectivity - 1 ≠ 0)."""
    return [
        off
        for off in itertools.product((-1, 0, 1), repeat=ndim - 1)
        if sum(o != 0 for o in off) <= connectivity - 1
    ]


class LabelPlan:
    """The lazy pieces of a tiled labelling: lookup table, count, and relabelled chunks."""

    def __init__(self, mask: da.Array, connectivity: int) -> None:
        import scipy.ndimage as ndi

        self.mask = mask
        ndim = mask.ndim
        self.structure = ndi.generate_binary_structure(ndim, connectivity)
        self.dtype = label_dtype(mask.chunks)
        self.prefix = prefix = f"tilevision-label-{tokenize(mask.name, mask.chunks, connectivity)}"
        nb = mask.numblocks
        g = GraphBuilder(prefix, [mask])
        summaries: dict[tuple[int, ...], TaskRef] = {}
        counts = []
        for flat, idx in enumerate(np.ndindex(*nb)):
            low = [idx[k] > 0 for k in range(ndim)]
            high = [idx[k] < nb[k] - 1 for k in range(ndim)]
            summaries[idx] = g.add(
                f"{prefix}-chunk-{flat}",
                _summarise,
                TaskRef((mask.name, *idx)),
                self.structure,
                low,
                high,
            )
            counts.append(g.add(f"{prefix}-count-{flat}", _first, summaries[idx]))
        offsets = _neighbour_offsets(ndim, connectivity)
        faces = []
        for axis in range(ndim):
            for flat, idx in enumerate(np.ndindex(*nb)):
                if idx[axis] == nb[axis] - 1:
                    continue
                neighbours = []
                for delta in offsets:
                    full = list(delta)
                    full.insert(axis, 1)
                    nidx = tuple(i + d for i, d in zip(idx, full))
                    if all(0 <= i < n for i, n in zip(nidx, nb)):
                        nflat = int(np.ravel_multi_index(nidx, nb))
                        neighbours.append((delta, nflat, summaries[nidx]))
                faces.append(
                    g.add(
                        f"{prefix}-face-{axis}-{flat}",
                        _face_pairs,
                        axis,
                        flat,
                        summaries[idx],
                        neighbours,
                        offsets,
                    )
                )
        self.n_faces = len(faces)
        merged = g.tree(faces, _components, f"{prefix}-merge")
        if merged is None:
            merged = g.add(f"{prefix}-merge-none", _no_pairs)
        lut = g.add(f"{prefix}-lut", _lookup_table, counts, merged, self.dtype)
        n = g.add(f"{prefix}-n", _third, lut)
        self.lut = g.delayed(lut)
        self.n = da.from_delayed(g.delayed(n), shape=(), dtype=np.int64, name=f"{prefix}-count")

    def labels(self, after: Sequence[Any] = (), omit: Sequence[Any] = ()) -> da.Array:
        """The final labels, read again from a clone of the mask started after
        the lookup table (and ``after``) are ready; ``omit`` are parts of the mask's
        graph (e.g. a global threshold) that the clone shares instead of recomputing."""
        mask = bind(self.mask, [self.lut, *after], omit=list(omit) or None)
        return da.map_blocks(
            _relabel_block,
            mask,
            lut=self.lut,
            structure=self.structure,
            grid=mask.numblocks,
            out_dtype=self.dtype,
            name=f"{self.prefix}-relabel-{tokenize(mask.name)}",
            dtype=self.dtype,
            meta=np.empty((0,) * mask.ndim, dtype=self.dtype),
        )


def _first(x: tuple[Any, ...]) -> Any:
    return x[0]


def _third(x: tuple[Any, ...]) -> Any:
    return x[2]


def _no_pairs() -> np.ndarray:
    return np.zeros((2, 0), dtype=np.int64)


def as_mask_array(image: Any, what: str) -> tuple[Any, tuple[str, ...]]:
    """The array of a single-channel image (DataArray/Dask/NumPy) and its axis names."""
    if isinstance(image, xr.DataArray) and "c" in image.dims:
        raise ValueError(
            f"{what} works on a single-channel mask, but the image has a 'c' dim of size "
            f"{image.sizes['c']}; select a channel first, e.g. image.isel(c=0)."
        )
    array, spatial, _, _ = unwrap(image)
    check_numeric(array.dtype, "mask")
    if 0 in array.shape:
        raise ValueError(f"the mask is empty (shape {array.shape}); there is nothing to label.")
    return array, spatial


def label(image: Any, *, connectivity: int | None = None) -> tuple[Any, Any]:
    """Label connected components of a mask, across tiles, like the whole-array SciPy result.

    Foreground is every nonzero pixel (``True`` in a boolean mask); to use another
    background value pass ``image != value``. Ids are consecutive (1..n, 0 is
    background) and equal to ``scipy.ndimage.label`` / ``skimage.measure.label`` on
    the whole array up to a permutation of the ids.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Mask of any number of dims (2-D and 3-D tested), bool or numeric.
    connectivity : int, optional
        Which neighbours touch, as in scikit-image: 1 = faces only, ``ndim`` = every
        neighbour (faces, edges and corners). Default ``ndim``, like
        ``skimage.measure.label`` (``scipy.ndimage.label``'s default is 1).

    Returns
    -------
    labels : same type as ``image``
        int32 (the ``LABEL_DTYPE`` of the dtype policy); int64 when the image is so
        large that the provisional labels could exceed int32 (more than about 2**32
        pixels). Lazy for Dask and DataArray input; a DataArray keeps coords and attrs.
    n : 0-d dask.array.Array of int64 (int for NumPy input)
        The number of objects, lazy.

    Notes
    -----
    Each chunk is labelled on its own; the equivalences across chunk faces (edges and
    corners included for connectivity > 1) are merged by a binary tree of tasks,
    and a lookup table maps every provisional label to its final id. That table has
    one entry per provisional label (int32/int64: 4-8 bytes each, so millions of
    labels are fine) and must fit in memory; everything else is bounded by the chunk
    size. The mask is computed twice (once to find the equivalences, once to write
    the labels): its graph is cloned so that no chunk is held in memory in between.
    The mask must therefore be deterministic; store or persist an expensive mask first.

    See Also
    --------
    scipy.ndimage.label, skimage.measure.label

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage as ndi
    >>> mask = da.random.default_rng(0).random((60, 70), chunks=(16, 25)) > 0.6
    >>> labels, n = label(mask, connectivity=1)
    >>> ref, n_ref = ndi.label(mask.compute())
    >>> int(n.compute()) == n_ref
    True
    >>> pairs = np.unique(np.stack([labels.compute().ravel(), ref.ravel()]), axis=1)
    >>> pairs.shape[1] == n_ref + 1   # a one-to-one map of ids
    True
    """
    array, _ = as_mask_array(image, "label")
    conn = check_connectivity(connectivity, array.ndim)
    history = f"label(connectivity={conn})"
    if isinstance(array, np.ndarray):
        import scipy.ndimage as ndi

        dtype = label_dtype(tuple((s,) for s in array.shape))
        structure = ndi.generate_binary_structure(array.ndim, conn)
        labels, n = ndi.label(array != 0, structure, output=dtype)
        return wrap_like(image, labels, history), int(n)
    mask = array if array.dtype == bool else array != 0
    plan = LabelPlan(mask, conn)
    return wrap_like(image, plan.labels(), history), plan.n
