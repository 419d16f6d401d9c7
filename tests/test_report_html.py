"""What the heatmap of an analysis shows."""

from __future__ import annotations

import numpy as np
import xarray as xr

from tilevision._report_html import heatmap_values


def result(proba, label, valid=None):
    proba = np.asarray(proba, dtype=float)
    ty, tx, n = proba.shape
    valid = np.ones((ty, tx), bool) if valid is None else np.asarray(valid)
    return xr.Dataset(
        {
            "tile_probability": (("tile_y", "tile_x", "class"), proba),
            "valid": (("tile_y", "tile_x"), valid),
            "label": ((), label),
        },
        coords={"class": list(range(10, 10 + n))},
    )


def test_two_classes_show_the_positive_one():
    r = result([[[0.9, 0.1], [0.2, 0.8]]], label=10)
    values = heatmap_values(r)
    assert values.name == "probability of 11"
    np.testing.assert_array_equal(values.values, [[0.1, 0.8]])


def test_many_classes_show_the_salient_class_not_the_background_label():
    # background (10) wins most tiles; class 12 is mostly more probable than 11
    proba = [[[0.8, 0.15, 0.05], [0.7, 0.0, 0.3], [0.1, 0.1, 0.8], [0.9, 0.05, 0.05]]]
    values = heatmap_values(result(proba, label=10))
    assert values.name == "probability of 12"
    np.testing.assert_array_equal(values.values, [[0.05, 0.3, 0.8, 0.05]])


def test_invalid_tiles_do_not_vote():
    proba = [[[0.0, 1.0, 0.0], [0.6, 0.1, 0.3], [0.6, 0.1, 0.3]]]
    valid = [[False, True, True]]  # the tile that says "11" is outside the image mask
    assert heatmap_values(result(proba, label=10, valid=valid)).name == "probability of 12"
    assert heatmap_values(result(proba, label=10)).name == "probability of 11"
