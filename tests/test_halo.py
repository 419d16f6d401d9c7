from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi

from tilevision._halo import (
    gaussian_radius,
    plan_depth,
    prepare_chunks,
    size_radius,
    to_pixels,
)


@pytest.mark.parametrize("sigma", [0.3, 0.5, 1.0, 1.49, 2.0, 3.7])
@pytest.mark.parametrize("truncate", [2.0, 3.0, 4.0])
def test_gaussian_radius_is_scipys_kernel_radius(sigma, truncate):
    # the kernel scipy builds has 2 * radius + 1 taps: an impulse shows them
    impulse = np.zeros(101)
    impulse[50] = 1
    response = ndi.gaussian_filter1d(impulse, sigma, truncate=truncate)
    taps = np.flatnonzero(response)
    assert gaussian_radius(sigma, truncate, ndim=1) == (int(taps.max() - 50),)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8])
def test_size_radius_covers_scipy_window(size):
    impulse = np.zeros(41)
    impulse[20] = 1
    reach = np.flatnonzero(ndi.maximum_filter1d(impulse, size)) - 20
    assert max(abs(reach.min()), reach.max()) <= size_radius(size, 1)[0]


def test_prepare_chunks_merges_or_raises():
    x = da.zeros((30, 30), chunks=((2, 20, 8), (30,)))
    y, depth = prepare_chunks(x, (5, 5))
    assert min(y.chunks[0]) >= 5
    assert depth == (5, 0)
    with pytest.raises(ValueError, match=r"chunk of 2 pixels along 'y'.*halo of 5"):
        prepare_chunks(x, (5, 5), rechunk=False, axis_names=("y", "x"))


def test_plan_depth_and_units():
    assert plan_depth([(8, 8), (1, 1), (0, 2)], 2) == (9, 11)
    with pytest.raises(ValueError, match="3-axis halo"):
        plan_depth([(1, 1, 1)], 2)
    assert to_pixels(1.5, (3.0, 0.75, 0.75), "physical", "sigma") == (0.5, 2.0, 2.0)
    with pytest.raises(ValueError, match="units must be"):
        to_pixels(1.0, (1.0,), "mm", "sigma")
    with pytest.raises(ValueError, match="sigma has 2 values but the image has 3"):
        to_pixels((1, 2), (1.0, 1.0, 1.0), "pixel", "sigma")
