from __future__ import annotations

import json

import fsspec
import numpy as np
import pytest
import zarr

import tilevision as tv
from tilevision.io import MetadataError, MissingMetadataWarning
from tilevision.testing import raise_if_dask_computes


@pytest.fixture
def store(tmp_path):
    data = np.arange(5 * 40 * 30, dtype="int16").reshape(5, 40, 30)
    return tv.ingest(
        data, tmp_path / "vol.zarr", chunks=(2, 16, 16), spacing=(3.0, 0.5, 0.5),
        units="millimeter", origin=(-10.0, 4.0, 0.0),
    )  # fmt: skip


def test_open_is_lazy_and_labelled(store):
    with raise_if_dask_computes():
        img = tv.open(store)
        level1 = tv.open(store, level=1)
        rechunked = tv.open(store, chunks={"z": 5})
    assert img.dims == ("z", "y", "x")
    assert img.chunks == ((2, 2, 1), (16, 16, 8), (16, 14))
    np.testing.assert_allclose(img.z.values, [-10, -7, -4, -1, 2])
    np.testing.assert_allclose(img.y.values[:2], [4.0, 4.5])
    assert img.attrs["spacing"] == {"z": 3.0, "y": 0.5, "x": 0.5}
    assert img.attrs["units"]["y"] == "millimeter"
    assert img.attrs["level"] == 0
    assert level1.attrs["level"] == 1
    assert level1.attrs["spacing"]["y"] == 1.0
    assert rechunked.chunks[0] == (5,)


def test_level_coords_are_consistent_in_physical_space(store):
    img, coarse = tv.open(store), tv.open(store, level=1)
    # the first coarse pixel centre is the mean of the two fine ones it averages
    assert coarse.y.values[0] == pytest.approx(img.y.values[:2].mean())
    assert coarse.x.values[0] == pytest.approx(img.x.values[:2].mean())


def test_fsspec_urls(store):
    fs = fsspec.filesystem("memory")
    fs.put(str(store), "/tv-test/vol.zarr", recursive=True)
    try:
        remote = tv.open("memory://tv-test/vol.zarr")
        np.testing.assert_array_equal(remote.values, tv.open(store).values)
        assert remote.attrs["spacing"] == tv.open(store).attrs["spacing"]
    finally:
        fs.rm("/tv-test", recursive=True)
    local_url = tv.open(f"file://{store}")
    assert local_url.shape == (5, 40, 30)


def test_plain_array_warns_and_uses_unit_spacing(tmp_path):
    arr = zarr.create_array(tmp_path / "plain.zarr", shape=(6, 7), chunks=(3, 3), dtype="f4")
    arr[:] = 1.5
    with pytest.warns(MissingMetadataWarning, match=r"unit spacing.*tilevision.ingest"):
        img = tv.open(tmp_path / "plain.zarr")
    assert img.dims == ("y", "x")
    assert img.attrs["spacing"] == {"y": 1.0, "x": 1.0}
    assert img.chunks == ((3, 3), (3, 3, 1))
    assert float(img.sum()) == 1.5 * 42


def test_plain_array_dimension_names_are_used(tmp_path):
    zarr.create_array(
        tmp_path / "named.zarr", shape=(3, 6, 7), chunks=(3, 3, 3), dtype="u1",
        dimension_names=("c", "y", "x"),
    )  # fmt: skip
    with pytest.warns(MissingMetadataWarning):
        img = tv.open(tmp_path / "named.zarr")
    assert img.dims == ("c", "y", "x")


def test_missing_store(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no such Zarr store.*tilevision.ingest"):
        tv.open(tmp_path / "nothing.zarr")


def test_partial_output_refused(tmp_path):
    partial = tmp_path / ".x.zarr.tilevision-partial-abc"
    partial.mkdir()
    with pytest.raises(ValueError, match="unfinished output"):
        tv.open(partial)


def test_not_a_zarr_store(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="not a readable Zarr store"):
        tv.open(tmp_path / "empty")


def test_group_without_metadata(tmp_path):
    group = zarr.open_group(tmp_path / "g.zarr", mode="w")
    group.create_array("data", shape=(4, 4), dtype="u1")
    with pytest.raises(ValueError, match=r"without OME-NGFF.*'data'"):
        tv.open(tmp_path / "g.zarr")


def test_level_out_of_range(store):
    with pytest.raises(ValueError, match=r"level=7 is out of range.*0 to"):
        tv.open(store, level=7)


def _edit_metadata(store, edit):
    path = store / "zarr.json"
    meta = json.loads(path.read_text())
    edit(meta["attributes"]["ome"]["multiscales"][0])
    path.write_text(json.dumps(meta))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda ms: ms.pop("axes"), "axes' must be a non-empty list"),
        (lambda ms: ms["axes"].__setitem__(0, {"name": "t", "type": "time"}), "axis 't'"),
        (lambda ms: ms.__setitem__("datasets", []), "datasets' must be a non-empty list"),
        (lambda ms: ms["datasets"][0].pop("path"), "has no 'path'"),
        (
            lambda ms: ms["datasets"][0]["coordinateTransformations"][0].__setitem__(
                "scale", [1.0, 2.0]
            ),
            "scale must be a list of 3 numbers",
        ),
        (
            lambda ms: ms["datasets"][0]["coordinateTransformations"][0].__setitem__(
                "scale", [1.0, 0.0, 1.0]
            ),
            "scale must be positive",
        ),
        (lambda ms: ms["datasets"][0].__setitem__("path", "9"), "no such array exists"),
    ],
)
def test_malformed_metadata(store, edit, message):
    _edit_metadata(store, edit)
    with pytest.raises((MetadataError, ValueError), match=message):
        tv.open(store)


def test_malformed_metadata_names_the_fix(store):
    _edit_metadata(store, lambda ms: ms.pop("axes"))
    with pytest.raises(MetadataError, match=r"OME-NGFF 0.5.*tilevision.ingest"):
        tv.open(store)


def test_ngff_04_style_group_is_read(tmp_path):
    group = zarr.open_group(tmp_path / "v2.zarr", mode="w", zarr_format=2)
    arr = group.create_array("0", shape=(6, 8), chunks=(3, 4), dtype="u2")
    arr[:] = 5
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "axes": [
                {"name": "y", "type": "space", "unit": "micrometer"},
                {"name": "x", "type": "space", "unit": "micrometer"},
            ],
            "datasets": [
                {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [2, 2]}]}
            ],
        }
    ]
    img = tv.open(tmp_path / "v2.zarr")
    assert img.attrs["spacing"] == {"y": 2.0, "x": 2.0}
    assert img.attrs["ngff_version"] == "0.4"
    assert int(img.sum()) == 5 * 48
