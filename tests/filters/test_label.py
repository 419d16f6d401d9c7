from __future__ import annotations

import math
import pathlib

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.ndimage as ndi
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tilevision as tv
from tilevision.filters import label
from tilevision.filters._label import LabelPlan, label_dtype
from tilevision.testing import (
    AWKWARD_CHUNKS_2D,
    AWKWARD_CHUNKS_3D,
    AWKWARD_SHAPE_2D,
    AWKWARD_SHAPE_3D,
    raise_if_dask_computes,
)

RNG = np.random.default_rng(7)
DATA = pathlib.Path(tv.__file__).parent / "datasets" / "data"


def _scipy(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    return ndi.label(mask, ndi.generate_binary_structure(mask.ndim, connectivity))


def assert_same_components(ours: np.ndarray, ref: np.ndarray) -> None:
    """``ours`` and ``ref`` are the same partition: ids map one-to-one and onto, 0 ↔ 0."""
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours == 0, ref == 0)
    pairs = np.unique(np.stack([ours.ravel(), ref.ravel()]), axis=1)
    n_ours, n_ref = np.unique(ours).size, np.unique(ref).size
    assert n_ours == n_ref, f"{n_ours - 1} objects, expected {n_ref - 1}"
    assert pairs.shape[1] == n_ref, "some object is split or merged"
    # consecutive ids 1..n (and 0 where there is background)
    ids = np.unique(ours)
    np.testing.assert_array_equal(ids[ids > 0], np.arange(1, np.count_nonzero(ids) + 1))


def check_label(mask: np.ndarray, chunks, connectivity: int, scheduler: str = "sync") -> None:
    lazy = da.from_array(mask, chunks=chunks)
    with raise_if_dask_computes():
        labels, n = label(lazy, connectivity=connectivity)
    assert isinstance(labels, da.Array)
    assert isinstance(n, da.Array)
    assert n.shape == ()
    got, count = dask.compute(labels, n, scheduler=scheduler)
    ref, n_ref = _scipy(mask, connectivity)
    assert got.dtype == np.int32
    assert int(count) == n_ref
    assert_same_components(got, ref)


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_2D)
@pytest.mark.parametrize("connectivity", [1, 2])
@pytest.mark.parametrize("density", [0.35, 0.6])
def test_random_2d(chunks, connectivity, density):
    mask = RNG.random(AWKWARD_SHAPE_2D) < density
    check_label(mask, chunks, connectivity)


@pytest.mark.parametrize("chunks", AWKWARD_CHUNKS_3D)
@pytest.mark.parametrize("connectivity", [1, 2, 3])
def test_random_3d(chunks, connectivity):
    mask = RNG.random(AWKWARD_SHAPE_3D) < 0.3
    check_label(mask, chunks, connectivity)


def _snake(shape: tuple[int, int]) -> np.ndarray:
    """One serpentine path through the whole image (rows 0, 2, 4, ... joined at the ends)."""
    mask = np.zeros(shape, bool)
    mask[::2] = True
    for i in range(1, shape[0], 2):
        mask[i, -1 if i % 4 == 1 else 0] = True
    return mask


def _spiral(n: int) -> np.ndarray:
    """A square spiral path with one-pixel gaps between its turns: one winding object."""
    mask = np.zeros((n, n), bool)
    y = x = 0
    mask[0, 0] = True
    lengths = [n - 1] * 3 + [m for m in range(n - 3, 0, -2) for _ in range(2)]
    for i, length in enumerate(lengths):
        dy, dx = [(0, 1), (1, 0), (0, -1), (-1, 0)][i % 4]
        for _ in range(length):
            y, x = y + dy, x + dx
            mask[y, x] = True
    return mask


@pytest.mark.parametrize("chunks", [(3, 4), (1, 7), (5, 1), (-1, -1)])
@pytest.mark.parametrize("connectivity", [1, 2])
def test_snake_and_spiral_are_one_object_across_many_chunks(chunks, connectivity):
    snake = _snake((21, 19))
    assert _scipy(snake, 1)[1] == 1
    check_label(snake, chunks, connectivity)
    spiral = _spiral(23)
    assert _scipy(spiral, 1)[1] == 1
    assert spiral.sum() > 250
    check_label(spiral, chunks, connectivity)


@pytest.mark.parametrize("chunks", [(4, 5), (1, 3), (7, 1), (2, 2)])
def test_diagonals_join_only_with_diagonal_connectivity(chunks):
    """Anti-diagonal lines cross chunk corners: only connectivity 2 joins their pixels."""
    i, j = np.indices((16, 19))
    lines = (i + j) % 3 == 0
    checker = (i + j) % 2 == 0
    for mask in (lines, checker):
        assert _scipy(mask, 1)[1] == mask.sum()  # every pixel alone
        check_label(mask, chunks, 1)
        check_label(mask, chunks, 2)
    assert _scipy(checker, 2)[1] == 1


@pytest.mark.parametrize("chunks", [(3, 4, 5), (1, 2, 3), (2, 2, 2), (5, 1, 4)])
def test_3d_corner_diagonals(chunks):
    """Lines along (1, 1, 1) touch only at cube corners: connectivity 3 joins them."""
    i, j, k = np.indices((8, 10, 11))
    mask = ((j - i) % 4 == 0) & ((k - i) % 5 == 0)
    assert _scipy(mask, 2)[1] == mask.sum()
    assert _scipy(mask, 3)[1] < mask.sum() / 3
    for connectivity in (1, 2, 3):
        check_label(mask, chunks, connectivity)
    # planes i + j + k = const touch along edges (connectivity 2)
    planes = (i + j + k) % 4 == 0
    for connectivity in (1, 2):
        check_label(planes, chunks, connectivity)


@st.composite
def _cases(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.integers(1, 14 if ndim < 3 else 8)) for _ in range(ndim))
    chunks = []
    for n in shape:
        sizes, left = [], n
        while left:
            c = draw(st.integers(1, left))
            sizes.append(c)
            left -= c
        chunks.append(tuple(sizes))
    connectivity = draw(st.integers(1, ndim))
    density = draw(st.floats(0.05, 0.95))
    seed = draw(st.integers(0, 2**32 - 1))
    mask = np.random.default_rng(seed).random(shape) < density
    return mask, tuple(chunks), connectivity


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_cases())
def test_property_bijection_with_scipy(case):
    mask, chunks, connectivity = case
    check_label(mask, chunks, connectivity)


def test_numeric_input_nonzero_is_foreground():
    image = RNG.integers(-2, 3, size=(20, 25)).astype(np.int16)
    lazy = da.from_array(image, chunks=(6, 7))
    labels, n = label(lazy, connectivity=1)
    ref, n_ref = _scipy(image != 0, 1)
    assert int(n.compute()) == n_ref
    assert_same_components(labels.compute(), ref)
    floats = da.from_array(image.astype(np.float32) * 0.5, chunks=(6, 7))
    assert_same_components(label(floats, connectivity=1)[0].compute(), ref)


def test_numpy_in_numpy_out():
    mask = RNG.random((30, 31)) < 0.5
    labels, n = label(mask)
    ref, n_ref = _scipy(mask, 2)
    assert isinstance(labels, np.ndarray)
    assert labels.dtype == np.int32
    assert n == n_ref
    np.testing.assert_array_equal(labels, ref)
    wrapped, n2 = label(xr.DataArray(mask, dims=("y", "x")))
    assert isinstance(wrapped, xr.DataArray)
    assert n2 == n_ref
    np.testing.assert_array_equal(wrapped.values, ref)


def test_dataarray_in_dataarray_out_lazy():
    mask = RNG.random((9, 30, 40)) < 0.4
    img = tv._image.make_image(
        da.from_array(mask, chunks=(4, 11, 13)), ("z", "y", "x"), spacing=(2.0, 0.5, 0.5)
    )
    with raise_if_dask_computes():
        labels, n = label(img)
    assert isinstance(labels, xr.DataArray)
    assert labels.dims == img.dims
    assert labels.attrs["spacing"] == img.attrs["spacing"]
    assert labels.attrs["filters"][-1] == "label(connectivity=3)"
    xr.testing.assert_identical(labels.coords.to_dataset(), img.coords.to_dataset())
    assert labels.dtype == np.int32
    ref, n_ref = _scipy(mask, 3)
    assert int(n) == n_ref
    assert_same_components(labels.values, ref)


def test_bone_in_bundled_ct():
    nib = pytest.importorskip("nibabel")
    path = DATA / "ct-organs" / "example_ct_sm.nii.gz"
    volume = np.asarray(nib.load(path).dataobj).transpose(2, 1, 0)
    bone = volume > 200
    assert bone.any()
    for connectivity in (1, 3):
        check_label(bone, (7, 30, 30), connectivity, scheduler="threads")


def _graph(collection) -> dict:
    return dict(collection.__dask_graph__())


def test_equivalences_merge_up_a_binary_tree():
    mask = da.from_array(RNG.random((40, 36, 30)) < 0.4, chunks=(5, 6, 7))
    plan = LabelPlan(mask, 3)
    graph = _graph(plan.lut)
    faces = {k for k in graph if isinstance(k, str) and k.startswith(f"{plan.prefix}-face-")}
    merges = {k for k in graph if isinstance(k, str) and k.startswith(f"{plan.prefix}-merge-")}
    assert len(faces) == plan.n_faces == 7 * 6 * 5 + 8 * 5 * 5 + 8 * 6 * 4
    assert len(merges) == len(faces) - 1  # a binary tree: leaves - 1 inner nodes

    depth: dict[str, int] = {}
    leaves: dict[str, frozenset[str]] = {}

    def visit(key: str) -> None:
        if key in depth:
            return
        deps = [d for d in graph[key].dependencies if d in merges or d in faces]
        for d in deps:
            if d in merges:
                visit(d)
        depth[key] = 1 + max((depth.get(d, 0) for d in deps), default=0)
        leaves[key] = frozenset().union(*(leaves.get(d, frozenset({d})) for d in deps))
        assert len(deps) == 2, f"{key} merges {len(deps)} tables"

    for key in merges:
        visit(key)
    root = max(merges, key=lambda k: len(leaves[k]))
    assert leaves[root] == faces
    assert max(depth.values()) == math.ceil(math.log2(len(faces)))
    # only the root sees every face; the lookup table depends on the root alone
    assert all(len(leaves[k]) < len(faces) for k in merges - {root})
    lut_deps = graph[plan.lut.key].dependencies
    assert not lut_deps & faces
    assert lut_deps & merges == {root}
    assert all(len(graph[k].dependencies) <= 1 + 3**2 for k in faces)  # bounded per face


def test_mask_is_recomputed_after_the_table_not_held():
    """The relabel pass reads a clone of the mask that waits for the lookup table."""
    base = da.from_array(RNG.random((30, 30)) < 0.5, chunks=10)
    mask = base > 0
    plan = LabelPlan(mask, 1)
    labels = plan.labels()
    graph = _graph(labels)
    relabel = [k for k in graph if isinstance(k, tuple) and k[0] == labels.name]
    inputs = {d for k in relabel for d in graph[k].dependencies if d != plan.lut.key}
    originals = set(dask.core.flatten(mask.__dask_keys__()))
    assert len(inputs) == len(originals) == 9
    assert not inputs & originals
    # the clone's roots wait for the lookup table

    def ancestors(key, seen):
        for dep in dask.core.get_dependencies(graph, key):
            if dep not in seen:
                seen.add(dep)
                ancestors(dep, seen)
        return seen

    # every chunk of the clone is read only after the lookup table exists
    assert all(plan.lut.key in ancestors(d, set()) for d in inputs)


def test_non_deterministic_mask_is_reported():
    calls: dict[tuple[int, ...], int] = {}

    def flip(block, block_info=None):
        where = tuple(block_info[0]["chunk-location"])
        calls[where] = calls.get(where, 0) + 1
        out = np.zeros(block.shape, bool)
        out[:: calls[where]] = True
        return out

    mask = da.zeros((20, 20), chunks=10, dtype=bool).map_blocks(flip, dtype=bool)
    labels, _ = label(mask, connectivity=1)
    with pytest.raises(RuntimeError, match=r"not deterministic.*Persist or store"):
        labels.compute(scheduler="sync")


def test_dtype_policy_int32_unless_the_count_could_overflow():
    assert label_dtype(((100, 100), (50,))) == np.int32
    big = da.zeros((70_000, 70_000), chunks=(10_000, 10_000), dtype=bool)
    with raise_if_dask_computes():
        labels, n = label(big)
    assert labels.dtype == np.int64
    assert n.dtype == np.int64


def test_empty_and_full_masks():
    for value in (False, True):
        mask = np.full((13, 17), value)
        check_label(mask, (4, 5), 2)


@pytest.mark.parametrize(
    ("connectivity", "error", "message"),
    [
        (0, ValueError, r"connectivity must be between 1 \(faces only\) and 3"),
        (4, ValueError, r"between 1 \(faces only\) and 3 \(all neighbours\).*got 4"),
        (1.5, TypeError, "connectivity must be an integer"),
    ],
)
def test_bad_connectivity(connectivity, error, message):
    with pytest.raises(error, match=message):
        label(da.zeros((4, 5, 6), chunks=2, dtype=bool), connectivity=connectivity)


def test_bad_input():
    img = tv._image.make_image(da.zeros((2, 10, 10), dtype=bool), ("c", "y", "x"))
    with pytest.raises(ValueError, match=r"single-channel.*image.isel\(c=0\)"):
        label(img)
    with pytest.raises(ValueError, match="the mask is empty"):
        label(da.zeros((0, 5), dtype=bool))
    with pytest.raises(TypeError, match="non-numeric dtype"):
        label(np.array([["a", "b"]]))
