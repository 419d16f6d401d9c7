"""Testing helpers for tilevision and its plugins.

``raise_if_dask_computes`` makes laziness a tested contract (as in xarray's test
suite): inside the context, any Dask computation raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask
import dask.array as da
import numpy as np

__all__ = [
    "AWKWARD_CHUNKS_2D",
    "AWKWARD_CHUNKS_3D",
    "AWKWARD_SHAPE_2D",
    "AWKWARD_SHAPE_3D",
    "CountingScheduler",
    "assert_tiled_equals_whole",
    "raise_if_dask_computes",
]

#: chunkings that find seam bugs: uneven, tiny tails, single chunk, 1-pixel-thick
#: slabs, and chunks close to typical halos; the explicit ones add up to these shapes
AWKWARD_SHAPE_2D = (46, 50)
AWKWARD_SHAPE_3D = (10, 35, 40)
AWKWARD_CHUNKS_2D: tuple[Any, ...] = (
    (17, 23),
    ((5, 30, 10, 1), (7, 7, 7, 7, 7, 7, 7, 1)),
    (-1, -1),
    (1, -1),
    (9, 10),
)
AWKWARD_CHUNKS_3D: tuple[Any, ...] = (
    (5, 17, 23),
    ((1, 6, 3), (11, 11, 11, 2), (20, 5, 15)),
    (-1, -1, -1),
    (1, -1, -1),
    (4, 9, 10),
)


class CountingScheduler:
    """A Dask scheduler that counts computations and raises past ``max_computes``.

    Examples
    --------
    >>> import dask, dask.array as da
    >>> counter = CountingScheduler(max_computes=1)
    >>> with dask.config.set(scheduler=counter):
    ...     _ = da.ones(4, chunks=2).sum().compute()
    >>> counter.total_computes
    1
    """

    def __init__(self, max_computes: int = 0) -> None:
        self.total_computes = 0
        self.max_computes = max_computes

    def __call__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        self.total_computes += 1
        if self.total_computes > self.max_computes:
            raise RuntimeError(
                f"Too many computes. Total: {self.total_computes} > max: {self.max_computes}."
            )
        return dask.get(dsk, keys, **kwargs)


@contextlib.contextmanager
def raise_if_dask_computes(max_computes: int = 0) -> Iterator[CountingScheduler]:
    """Context manager in which more than ``max_computes`` Dask computations raise.

    Examples
    --------
    >>> import dask.array as da
    >>> with raise_if_dask_computes():
    ...     y = da.ones(4, chunks=2) + 1   # building a graph is fine
    >>> with raise_if_dask_computes():
    ...     y.sum().compute()
    Traceback (most recent call last):
    ...
    RuntimeError: Too many computes. Total: 1 > max: 0.
    """
    scheduler = CountingScheduler(max_computes)
    with dask.config.set(scheduler=scheduler):
        yield scheduler


def assert_tiled_equals_whole(
    tiled: Any,
    reference: Any,
    array: np.ndarray,
    chunks: Any,
    *,
    rtol: float = 0.0,
    atol: float = 0.0,
    rechunk_ok: bool = True,
) -> None:
    """Assert that ``tiled(dask_array)`` equals ``reference(array)`` at every pixel.

    ``tiled`` receives ``array`` as a Dask array with ``chunks`` and must return a
    Dask array, which is checked to be lazy (built without computing) and to have
    the reference's dtype and shape. With ``rtol = atol = 0`` the comparison is exact.

    Examples
    --------
    >>> import scipy.ndimage as ndi
    >>> from tilevision.filters import gaussian
    >>> x = np.random.default_rng(0).random((40, 50), dtype="float32")
    >>> assert_tiled_equals_whole(lambda a: gaussian(a, 1.5),
    ...     lambda a: ndi.gaussian_filter(a, 1.5, mode="nearest"), x, (7, 13))
    """
    lazy = da.from_array(array, chunks=chunks)
    with raise_if_dask_computes():
        result = tiled(lazy)
    assert isinstance(result, da.Array), f"expected a Dask array, got {type(result).__name__}"
    expected = np.asarray(reference(array))
    got = result.compute()
    assert got.shape == expected.shape, f"shape {got.shape} != {expected.shape}"
    assert got.dtype == expected.dtype, f"dtype {got.dtype} != {expected.dtype}"
    if rtol == 0 and atol == 0:
        np.testing.assert_array_equal(got, expected, err_msg=f"chunks={lazy.chunks}")
    else:
        np.testing.assert_allclose(
            got, expected, rtol=rtol, atol=atol, err_msg=f"chunks={lazy.chunks}"
        )
