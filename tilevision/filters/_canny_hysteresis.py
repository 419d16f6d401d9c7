"""Canny hysteresis: components of weak ∪ strong candidates that hold a strong pixel.

On a whole in-memory candidate map, as scikit-image does; on a tiled one, resolved
across tiles by the engine of :func:`~tilevision.filters.label` (see ``_canny``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask._task_spec import TaskRef
from dask.base import tokenize

from .._dtype import MASK_DTYPE
from ._label import GraphBuilder, LabelPlan

__all__ = ["hysteresis_tiled", "hysteresis_whole"]


def hysteresis_whole(candidates: np.ndarray) -> np.ndarray:
    """scikit-image's edge tracking on a whole in-memory candidate map."""
    import scipy.ndimage as ndi

    low_mask = candidates != 0
    labels, count = ndi.label(low_mask, np.ones((3,) * candidates.ndim, dtype=bool))
    if count == 0:
        return low_mask
    good = np.zeros(count + 1, dtype=bool)
    good[np.unique(labels[candidates == 2])] = True
    return good[labels]


def _stack_seeds(candidates: np.ndarray) -> np.ndarray:
    return np.stack([candidates != 0, candidates == 2])


def _strong_ids(labels: np.ndarray) -> np.ndarray:
    ids = np.unique(labels[1])
    return ids[ids != 0]


def _union(*parts: np.ndarray) -> np.ndarray:
    return np.unique(np.concatenate(parts))


def _keep(labels: np.ndarray, kept: np.ndarray) -> np.ndarray:
    ids = labels[0]
    return (ids != 0) & np.isin(ids, kept)


def hysteresis_tiled(candidates: da.Array, omit: Sequence[Any] = ()) -> da.Array:
    """Components of weak ∪ strong that hold a strong pixel, resolved across tiles.

    Three passes over the candidates, none holding more than a chunk: the label
    equivalences, the labels under strong pixels, the labels kept.
    """
    ndim = candidates.ndim
    stacked = da.map_blocks(
        _stack_seeds,
        candidates,
        new_axis=0,
        chunks=((2,), *candidates.chunks),
        dtype=MASK_DTYPE,
        meta=np.empty((0,) * (ndim + 1), MASK_DTYPE),
    )
    plan = LabelPlan(stacked, ndim + 1)
    labels = plan.labels((), omit)
    prefix = f"{plan.prefix}-canny-kept"
    g = GraphBuilder(prefix, [labels])
    leaves = [
        g.add(f"{prefix}-ids-{flat}", _strong_ids, TaskRef((labels.name, *idx)))
        for flat, idx in enumerate(np.ndindex(*labels.numblocks))
    ]
    root = g.tree(leaves, _union, f"{prefix}-union")
    assert root is not None  # an image has at least one chunk
    kept = g.delayed(root)
    again = plan.labels([kept], omit)
    return da.map_blocks(
        _keep,
        again,
        kept=kept,
        drop_axis=0,
        dtype=MASK_DTYPE,
        meta=np.empty((0,) * ndim, MASK_DTYPE),
        name=f"tilevision-canny-{tokenize(again.name)}",
    )
