import pickle
import time

import dask
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from tilevision._image import image_geometry
from tilevision.datasets._phantom import PHANTOM_LABELS, ct_phantom
from tilevision.testing import raise_if_dask_computes

# A small phantom with the default field of view (about 358 mm) and visible lesions.
SMALL = {
    "shape": (24, 96, 128),
    "spacing": (4.0, 3.73, 2.8),
    "lesions": 6,
    "lesion_radius": (10.0, 18.0),
}


@pytest.fixture(scope="module")
def small():
    img, lab = ct_phantom(**SMALL, seed=3, chunks=(8, 48, 64), labels=True)
    return img, lab, img.values, lab.values


def test_full_size_is_lazy_and_instant():
    with raise_if_dask_computes():
        start = time.perf_counter()
        img, lab = ct_phantom(labels=True)
        elapsed = time.perf_counter() - start
    assert elapsed < 1.0
    for arr, dtype in ((img, np.int16), (lab, np.uint8)):
        assert arr.shape == (256, 512, 512)
        assert arr.dims == ("z", "y", "x")
        assert arr.dtype == dtype
        assert arr.chunks == ((128,) * 2, (128,) * 4, (128,) * 4)
        spacing, origin, units = image_geometry(arr)
        assert spacing == {"z": 1.0, "y": 0.7, "x": 0.7}
        assert origin == {"z": 0.0, "y": 0.0, "x": 0.0}
        assert units == dict.fromkeys("zyx", "millimeter")
    assert lab.attrs["label_names"] == ["air", "body", "lung", "bone", "lesion"]
    assert len(img.attrs["lesions"]) == 8


def test_one_block_is_computed_alone():
    img = ct_phantom()
    part = img.data[130:140, 200:210, 300:310]
    (optimized,) = dask.optimize(part)
    graph = optimized.__dask_graph__()
    # One generator task (fused with the slicing) and one index range per axis.
    assert sum(str(k[0]).startswith("ct-phantom-image") for k in graph) == 1
    assert len(graph) <= 3 + 2
    start = time.perf_counter()
    values = part.compute(scheduler="sync")
    assert time.perf_counter() - start < 5
    # Same voxels from a phantom with another chunking.
    other = ct_phantom(chunks=(7, 33, 50))[130:140, 200:210, 300:310]
    np.testing.assert_array_equal(values, other.values)


@st.composite
def uneven_chunks(draw, n, max_blocks=5):
    """Explicit, possibly uneven block sizes along an axis of length ``n``."""
    cuts = draw(st.sets(st.integers(1, n - 1), max_size=max_blocks - 1)) if n > 1 else set()
    edges = [0, *sorted(cuts), n]
    return tuple(int(d) for d in np.diff(edges))


@st.composite
def shapes_and_chunks(draw):
    shape = (
        draw(st.integers(1, 10)),
        draw(st.integers(2, 40)),
        draw(st.integers(2, 40)),
    )
    return shape, tuple(draw(uneven_chunks(n)) for n in shape)


@settings(max_examples=12, deadline=None)
@given(shapes_and_chunks(), st.integers(0, 2**32), st.booleans())
def test_chunking_does_not_change_voxels(shape_chunks, seed, other_spacing):
    shape, chunks = shape_chunks
    spacing = (3.0, 4.0, 5.0) if other_spacing else (1.0, 0.7, 0.7)
    kw = {"shape": shape, "seed": seed, "lesions": 4, "spacing": spacing, "labels": True}
    img_a, lab_a = ct_phantom(chunks=chunks, **kw)
    img_b, lab_b = ct_phantom(chunks=-1, **kw)
    assert img_b.data.npartitions == 1
    np.testing.assert_array_equal(img_a.values, img_b.values)
    np.testing.assert_array_equal(lab_a.values, lab_b.values)


def test_same_seed_same_data_other_seed_other_data():
    kw = {"shape": (8, 40, 48), "chunks": 16, "lesions": 3}
    a, b, c = ct_phantom(seed=5, **kw), ct_phantom(seed=5, **kw), ct_phantom(seed=6, **kw)
    assert a.data.name == b.data.name
    assert a.data.name != c.data.name
    np.testing.assert_array_equal(a.values, b.values)
    assert a.attrs["lesions"] == b.attrs["lesions"]
    assert a.attrs["lesions"] != c.attrs["lesions"]
    assert np.mean(a.values != c.values) > 0.5  # the noise differs almost everywhere


def test_hu_per_label_class(small):
    _, _, v, lb = small
    assert set(np.unique(lb)) == set(range(len(PHANTOM_LABELS)))
    air, body, lung, bone, lesion = (v[lb == k].astype(float) for k in range(5))
    assert abs(np.median(air) + 1000) <= 3
    assert 18 < air.std() < 22  # noise of 20 HU
    assert np.median(lung) < -750
    assert np.percentile(lung, 95) < -500
    assert np.median(bone) > 500
    assert np.percentile(bone, 5) > 300
    assert -30 < np.median(body) < 80
    assert np.median(lesion) > np.median(body) + 20


def test_noise_free_hu_ranges(small):
    _, _, _, lb = small
    clean = ct_phantom(**SMALL, seed=3, noise=0.0).values
    assert (clean[lb == 0] == -1000).all()
    assert clean[lb == 1].min() >= -110
    assert clean[lb == 1].max() <= 90
    assert clean[lb == 2].min() >= -860
    assert clean[lb == 3].min() >= 640
    noisy = small[2]
    diff = noisy.astype(float) - clean
    assert abs(diff.mean()) < 0.5
    assert 19 < diff.std() < 21


def _ellipsoid_rho(img, lesion):
    zz, yy, xx = np.meshgrid(img.z.values, img.y.values, img.x.values, indexing="ij")
    p = np.stack([zz, yy, xx], axis=-1) - np.asarray(lesion["center_mm"])
    q = p @ np.asarray(lesion["rotation"]).T
    return ((q / np.asarray(lesion["radii_mm"])) ** 2).sum(axis=-1)


def test_lesions_match_their_recorded_ellipsoids(small):
    img, _, v, lb = small
    clean = ct_phantom(**SMALL, seed=3, noise=0.0).values
    union = np.zeros(lb.shape, dtype=bool)
    near_boundary = np.zeros(lb.shape, dtype=bool)
    owner = np.full(lb.shape, -1)
    for i, lesion in enumerate(img.attrs["lesions"]):
        rho = _ellipsoid_rho(img, lesion)
        union |= rho <= 1
        near_boundary |= np.abs(rho - 1) < 1e-9
        owner[rho <= 1] = i
        assert 30 <= lesion["hu"] - 40 <= 80
    inside_body = lb != 0
    expected = union & inside_body
    agree = (lb == 4) == expected
    assert agree[~near_boundary].all()
    assert expected.sum() > 500
    for i, lesion in enumerate(img.attrs["lesions"]):
        mine = (owner == i) & (lb == 4) & ~near_boundary
        if mine.sum() == 0:
            continue
        values = clean[mine]
        assert values.min() >= lesion["hu"] - 16
        assert values.max() <= lesion["hu"] + 16
        if mine.sum() >= 30:
            shell = ndimage.binary_dilation(mine, iterations=2) & ~(lb == 4)
            assert abs(v[mine].mean() - v[shell].mean()) > 20


def test_lesion_attrs_are_plain_json():
    import json

    img = ct_phantom((8, 32, 32), lesions=2, lesion_radius=(5.0, 6.0), seed=9)
    lesions = json.loads(json.dumps(img.attrs["lesions"]))
    assert len(lesions) == 2
    for lesion in lesions:
        assert max(lesion["radii_mm"]) <= 6.0
        assert min(lesion["radii_mm"]) >= 0.7 * 5.0
        rot = np.asarray(lesion["rotation"])
        np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-12)


def test_zero_lesions_and_pickling():
    img, lab = ct_phantom((6, 24, 32), lesions=0, chunks=4, labels=True)
    assert img.attrs["lesions"] == []
    assert 4 not in np.unique(lab.values)
    again = pickle.loads(pickle.dumps(img.data))
    np.testing.assert_array_equal(again.compute(), img.values)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"shape": (-4, 16, 16)}, ValueError, "shape entries must be positive"),
        ({"shape": (16, 16)}, ValueError, "shape must have 3 entries"),
        ({"shape": (4, 16, 16.5)}, TypeError, "shape entries must be ints"),
        ({"shape": 16}, TypeError, "shape must be a tuple of 3 ints"),
        ({"lesions": -1}, ValueError, "lesions must be an int >= 0"),
        ({"lesions": 2.5}, ValueError, "lesions must be an int >= 0"),
        ({"lesion_radius": (12.0, 4.0)}, ValueError, r"lesion_radius must be \(low, high\)"),
        ({"lesion_radius": (0.0, 4.0)}, ValueError, r"lesion_radius must be \(low, high\)"),
        ({"spacing": (1.0, 0.7)}, ValueError, "spacing must be 3 positive"),
        ({"spacing": (1.0, -0.7, 0.7)}, ValueError, "spacing must be 3 positive"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int"),
        ({"noise": -5.0}, ValueError, "noise must be a standard deviation >= 0"),
        ({"chunks": 0}, ValueError, "invalid chunks=0 .* positive int"),
        ({"chunks": (4, 4)}, ValueError, "invalid chunks=.*2 entries for 3 axes"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    kw = {"shape": (8, 16, 16), **kwargs}
    with pytest.raises(error, match=match):
        ct_phantom(**kw)
