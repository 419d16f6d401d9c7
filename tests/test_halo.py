from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import skimage.filters as skf
from skimage.feature import hessian_matrix

from tilevision._halo import (
    check_sigma,
    dog_radius,
    gaussian_radius,
    hessian_radius,
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


def _reach(response: np.ndarray, centre: tuple[int, ...]) -> tuple[int, ...]:
    """Per axis, how far from ``centre`` a filter's impulse response is nonzero."""
    nonzero = np.nonzero(response)
    return tuple(int(np.abs(idx - c).max()) for idx, c in zip(nonzero, centre))


@pytest.mark.parametrize(
    ("sigma", "derivs"),
    [
        (1.5, False),
        ((0.7, 2.2), False),
        ((0.0, 1.0), False),  # no smoothing along y: the two differences still reach 2
        ((1.2, 2.6), True),  # all sigma > 1: truncate 8
        (3.0, True),
    ],
)
def test_hessian_radius_is_skimage_hessian_footprint(sigma, derivs):
    # skimage's Hessian of an impulse is nonzero exactly out to the halo
    radius = hessian_radius(sigma, derivs, ndim=2)
    centre = tuple(r + 5 for r in radius)
    impulse = np.zeros(tuple(2 * c + 1 for c in centre))
    impulse[centre] = 1
    elems = hessian_matrix(
        impulse, sigma, mode="constant", order="rc", use_gaussian_derivatives=derivs
    )
    response = np.any([e != 0 for e in elems], axis=0)
    assert _reach(response, centre) == radius


def test_hessian_radius_small_sigma_with_gaussian_derivatives_uses_truncate_100():
    # any sigma ≤ 1 switches skimage to truncate=100 (far tails underflow to 0, so the
    # impulse reach is shorter; the halo is scipy's kernel radius, twice)
    sq1_2 = 1 / np.sqrt(2)
    expected = tuple(2 * r for r in gaussian_radius((sq1_2 * 1.0, sq1_2 * 2.0), 100, 2))
    assert hessian_radius((1.0, 2.0), True, ndim=2) == expected == (142, 282)
    impulse = np.zeros((301, 301))
    impulse[150, 150] = 1
    elems = hessian_matrix(
        impulse, 0.8, mode="constant", order="rc", use_gaussian_derivatives=True
    )
    reach = _reach(np.any([e != 0 for e in elems], axis=0), (150, 150))
    assert all(r <= h for r, h in zip(reach, hessian_radius(0.8, True, ndim=2)))


@pytest.mark.parametrize(
    ("low", "high", "truncate"), [(1.0, 1.6, 4.0), ((1.0, 2.0), (3.0, 2.5), 3.0)]
)
def test_dog_radius_is_skimage_dog_footprint(low, high, truncate):
    radius = dog_radius(low, high, truncate, ndim=2)
    centre = tuple(r + 5 for r in radius)
    impulse = np.zeros(tuple(2 * c + 1 for c in centre))
    impulse[centre] = 1
    response = skf.difference_of_gaussians(impulse, low, high, mode="constant", truncate=truncate)
    assert _reach(response, centre) == radius
    assert radius == tuple(
        max(a, b)
        for a, b in zip(gaussian_radius(low, truncate, 2), gaussian_radius(high, truncate, 2))
    )


@pytest.mark.parametrize("sigmas", [(0.0, 0.0), (1.0, -1.0), (np.nan, 1.0), (np.inf, 1.0)])
def test_check_sigma_rejects_bad_widths(sigmas):
    with pytest.raises(ValueError, match=r"sigma must be > 0 .*positive width in pixels"):
        check_sigma(sigmas)


def test_check_sigma_accepts_zero_on_some_axes():
    check_sigma((0.0, 1.5))
    check_sigma([2.0])
