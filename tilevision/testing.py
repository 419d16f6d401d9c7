"""Testing helpers for tilevision and its plugins.

``raise_if_dask_computes`` makes laziness a tested contract (as in xarray's test
suite): inside the context, any Dask computation raises.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import dask

__all__ = ["CountingScheduler", "raise_if_dask_computes"]


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
