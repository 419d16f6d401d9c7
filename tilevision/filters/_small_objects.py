"""``remove_small_objects``: object sizes summed lazily over all tiles.

Objects are the components of :func:`tilevision.filters.label` across tiles (or the
ids of a label image); their pixel counts come from a tree-summed ``bincount``.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np

from ._chain import wrap_like
from ._label import GraphBuilder, LabelPlan, as_mask_array, check_connectivity

__all__ = ["remove_small_objects"]


def _bincount(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, pixel counts) of the labels in a chunk (sparse: only the ids present)."""
    if block.size and block.min() < 0:
        raise ValueError(
            "remove_small_objects got negative labels; label images must be ≥ 0. Relabel "
            "them with tilevision.filters.label, or pass a boolean mask."
        )
    counts = np.bincount(block.ravel())
    ids = np.flatnonzero(counts)
    return ids, counts[ids]


def _add_counts(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ids, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]))
    return ids, counts.astype(np.int64)


def _dense(part: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    ids, counts = part
    out = np.zeros(int(ids[-1]) + 1 if ids.size else 1, dtype=np.int64)
    out[ids] = counts
    return out


def _object_sizes(labels: da.Array, prefix: str) -> Any:
    """Pixels per label id (a dense table), summed up a tree of tasks (lazy, a Delayed)."""
    g = GraphBuilder(prefix, [labels])
    leaves = [
        g.add(f"{prefix}-bincount-{flat}", _bincount, _ref(labels, idx))
        for flat, idx in enumerate(np.ndindex(*labels.numblocks))
    ]
    total = g.tree(leaves, _add_counts, f"{prefix}-sum")
    return g.delayed(g.add(f"{prefix}-table", _dense, total))


def _ref(array: da.Array, idx: tuple[int, ...]) -> Any:
    from dask._task_spec import TaskRef

    return TaskRef((array.name, *idx))


def _keep_mask(labels: np.ndarray, sizes: np.ndarray, max_size: int) -> np.ndarray:
    return (labels > 0) & (sizes[labels] > max_size)


def _drop_labels(labels: np.ndarray, sizes: np.ndarray, max_size: int) -> np.ndarray:
    return np.where(sizes[labels] > max_size, labels, 0).astype(labels.dtype, copy=False)


def remove_small_objects(mask: Any, max_size: int = 64, *, connectivity: int = 1) -> Any:
    """Remove objects of ``max_size`` pixels or fewer, as scikit-image 0.26 does.

    This follows scikit-image 0.26, where ``max_size`` (inclusive: objects of
    ``max_size`` pixels or fewer go) replaced the deprecated ``min_size`` (exclusive).
    For the old ``min_size=n`` pass ``max_size=n - 1``. Objects are the components of
    :func:`tilevision.filters.label` across all tiles, so an object split by chunk
    borders counts as one; object sizes come from a tree-summed, lazy ``bincount``.

    Parameters
    ----------
    mask : xarray.DataArray, dask.array.Array or numpy.ndarray
        A boolean mask (labelled with ``connectivity``), or an integer label image
        whose ids are the objects (as in scikit-image; ids must be ≥ 0 and the
        per-id count table, one entry per id up to the largest, must fit in memory).
    max_size : int, optional
        Objects with this many pixels or fewer are removed (default 64).
    connectivity : int, optional
        1 = faces only (default, as scikit-image), up to ``ndim`` = every neighbour.

    Returns
    -------
    Same type and dtype as ``mask`` (lazy for Dask and DataArray input).

    Examples
    --------
    >>> import numpy as np, dask.array as da, skimage.morphology as morph
    >>> m = da.random.default_rng(4).random((60, 70), chunks=(16, 25)) > 0.5
    >>> out = remove_small_objects(m, 5, connectivity=2)
    >>> ref = morph.remove_small_objects(m.compute(), max_size=5, connectivity=2)
    >>> bool((out.compute() == ref).all())
    True
    """
    array, _ = as_mask_array(mask, "remove_small_objects")
    if array.dtype.kind not in "biu":
        raise TypeError(
            f"remove_small_objects needs a boolean mask or an integer label image, got "
            f"{array.dtype}; threshold it first (e.g. image > 0.5)."
        )
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 0:
        raise ValueError(f"max_size must be an integer ≥ 0 (pixels), got {max_size!r}.")
    conn = check_connectivity(connectivity, array.ndim)
    max_size = int(max_size)
    history = f"remove_small_objects(max_size={max_size}, connectivity={conn})"
    if isinstance(array, np.ndarray):
        return wrap_like(mask, _remove_numpy(array, max_size, conn), history)
    if array.dtype == bool:
        plan = LabelPlan(array, conn)
        sizes = _object_sizes(plan.labels(), f"{plan.prefix}-sizes")
        labels = plan.labels(after=[sizes])
        result = da.map_blocks(
            _keep_mask, labels, sizes=sizes, max_size=max_size, dtype=bool,
            meta=np.empty((0,) * array.ndim, bool),
        )  # fmt: skip
    else:
        from dask.base import tokenize
        from dask.graph_manipulation import bind

        sizes = _object_sizes(array, f"tilevision-sizes-{tokenize(array.name)}")
        result = da.map_blocks(
            _drop_labels, bind(array, [sizes]), sizes=sizes, max_size=max_size,
            dtype=array.dtype, meta=np.empty((0,) * array.ndim, array.dtype),
        )  # fmt: skip
    return wrap_like(mask, result, history)


def _remove_numpy(array: np.ndarray, max_size: int, connectivity: int) -> np.ndarray:
    import scipy.ndimage as ndi

    if array.dtype == bool:
        structure = ndi.generate_binary_structure(array.ndim, connectivity)
        labels, _ = ndi.label(array, structure)
        return _keep_mask(labels, np.bincount(labels.ravel()), max_size)
    return _drop_labels(array, _dense(_bincount(array)), max_size)
