from __future__ import annotations

import dask.array as da
import pytest

from tilevision.testing import raise_if_dask_computes


def test_raise_if_dask_computes_catches_compute():
    x = da.ones(10, chunks=5)
    with pytest.raises(RuntimeError, match="Too many computes"), raise_if_dask_computes():
        x.sum().compute()


def test_raise_if_dask_computes_allows_budget():
    x = da.ones(10, chunks=5)
    with raise_if_dask_computes(max_computes=1) as counter:
        assert x.sum().compute() == 10
    assert counter.total_computes == 1
