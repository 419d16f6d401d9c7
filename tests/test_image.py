from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from tilevision._image import default_dims, image_geometry, make_image, validate_dims
from tilevision.testing import raise_if_dask_computes


def test_make_image_is_lazy_and_has_physical_coords():
    data = da.zeros((4, 6, 8), chunks=2)
    with raise_if_dask_computes():
        img = make_image(data, ("z", "y", "x"), spacing=(3, 0.5, 0.25), origin=(1, 2, 3),
                         units="millimeter")  # fmt: skip
    assert img.data is data
    np.testing.assert_allclose(img.z.values, [1, 4, 7, 10])
    np.testing.assert_allclose(img.x.values[-1], 3 + 7 * 0.25)
    assert img.x.attrs["units"] == "millimeter"
    spacing, origin, units = image_geometry(img)
    assert spacing == {"z": 3.0, "y": 0.5, "x": 0.25}
    assert origin == {"z": 1.0, "y": 2.0, "x": 3.0}
    assert units == dict.fromkeys("zyx", "millimeter")


def test_geometry_from_coords_when_attrs_are_gone():
    img = make_image(np.zeros((3, 5)), ("y", "x"), spacing=(2, 4), origin=(10, 20))
    img.attrs = {}
    spacing, origin, _ = image_geometry(img)
    assert spacing == {"y": 2.0, "x": 4.0}
    assert origin == {"y": 10.0, "x": 20.0}


def test_channels():
    img = make_image(np.zeros((3, 4, 4)), ("c", "y", "x"), channel_names=["R", "G", "B"])
    assert list(img.c.values) == ["R", "G", "B"]
    with pytest.raises(ValueError, match="2 channel names for 3 channels"):
        make_image(np.zeros((3, 4, 4)), ("c", "y", "x"), channel_names=["R", "G"])


@pytest.mark.parametrize(
    ("dims", "ndim", "message"),
    [
        (("y", "x"), 3, "names 2 axes but the array has 3"),
        (("q", "x"), 2, "unknown dim name"),
        (("x", "y"), 2, "not in the order"),
        (("c", "z"), 2, "must include at least 'y' and 'x'"),
    ],
)
def test_validate_dims_errors(dims, ndim, message):
    with pytest.raises(ValueError, match=message):
        validate_dims(dims, ndim)


def test_default_dims_error():
    with pytest.raises(ValueError, match="Pass dims="):
        default_dims(5)


@pytest.mark.parametrize("bad", [0, -1, np.nan])
def test_bad_spacing(bad):
    with pytest.raises(ValueError, match="must be a positive number"):
        make_image(np.zeros((2, 2)), ("y", "x"), spacing=bad)
