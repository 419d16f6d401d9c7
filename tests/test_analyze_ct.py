"""``tv.analyze`` on the real CT with a tile-level organ model, checked against the NIfTI file.

The model is trained on the 30-slice crop that comes with a voxel-wise organ map (the
last 30 slices of the whole CT); ``analyze`` then runs on the whole CT
(``example_ct.nii.gz``, 112 slices) on an in-process cluster. The geometry is checked
against the NIfTI header read with nibabel, the valid tiles against the body mask
computed with NumPy, and the predicted organs of the cropped part against the organ map.
Re-running with the same inputs is checked by counting the tasks the scheduler ran.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from distributed import Client, LocalCluster
from PIL import Image
from sklearn.ensemble import RandomForestClassifier

import tilevision as tv

from .conftest import TaskCounter

nib = pytest.importorskip("nibabel")

TILE = 6  # voxels (18 mm)
HU_BODY = -500
CLASSES = {"liver": 1, "spleen": 2, "kidney_left": 3, "kidney_right": 3}  # 4: other organ
RECIPE = tv.Recipe(
    {"intensity": {"hu": True, "percentiles": [10, 50, 90], "percentile_bins": 256, "bins": 32}},
    tile=TILE,
    mask=f"HU > {HU_BODY}",
    min_foreground=0.5,
    name="ct-organs-test",
)


def organ_classes(seg: np.ndarray, names: dict[int, str]) -> np.ndarray:
    """0 background, 1 liver, 2 spleen, 3 kidney, 4 any other mapped structure."""
    lut = np.full(max(names) + 1, 4, dtype=np.uint8)
    lut[0] = 0
    for i, name in names.items():
        lut[i] = CLASSES.get(name, lut[i])
    return lut[seg]


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    """The model, the NIfTI reference and two ``analyze`` runs with their task counts."""
    root = tmp_path_factory.mktemp("ct")
    path = tv.datasets.data_path("ct-organs/example_ct.nii.gz")
    crop, seg, names = tv.datasets.load_ct_organs()
    labels = seg.copy(data=organ_classes(seg.values, names))
    estimator = RandomForestClassifier(
        n_estimators=30, min_samples_leaf=2, class_weight="balanced", random_state=0, n_jobs=1
    )
    with (
        pytest.MonkeyPatch.context() as mp,
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        mp.setenv("TILEVISION_CACHE", str(root / "cache"))
        model = tv.fit([crop], [labels], recipe=RECIPE, level="tile", estimator=estimator)
        counter = TaskCounter()
        cluster.scheduler.add_plugin(counter, name="task-counter")
        out = root / "analysis"
        first = tv.analyze(path, model=model, client=client, output=out, verbose=False)
        ran_first, counter.ran = counter.ran, 0
        second = tv.analyze(path, model=model, client=client, output=out, verbose=False)
        ran_second = counter.ran
        link = client.dashboard_link
    nifti = nib.load(path)
    return {
        "path": path,
        "model": model,
        "result": first,
        "rerun": second,
        "ran": (ran_first, ran_second),
        "out": out,
        "link": link,
        "nifti": nifti,
        "volume": np.asarray(nifti.dataobj).transpose(2, 1, 0),  # NIfTI (i, j, k) → z, y, x
        "crop_labels": labels.values,
    }


def test_dims_and_classes(ct):
    result = ct["result"]
    assert result["tile_probability"].dims == ("tile_z", "tile_y", "tile_x", "class")
    assert result["descriptor"].dims == ("feature",)
    assert result["probability"].dims == ("class",)
    assert result["intensity.mean"].dims == ("tile_z", "tile_y", "tile_x")
    assert result["class"].values.tolist() == [0, 1, 2, 3, 4]
    shape = ct["volume"].shape
    assert result.attrs["image_shape"] == list(shape) == [112, 101, 122]
    expected = [-(-n // TILE) for n in shape]  # ceil: the last tile of an axis is partial
    assert [result.sizes[d] for d in ("tile_z", "tile_y", "tile_x")] == expected
    assert "intensity.p50" in result["feature"].values.tolist()


def test_tile_coordinates_are_millimetres_of_the_nifti_header(ct):
    result, nifti = ct["result"], ct["nifti"]
    affine = nifti.affine
    assert np.count_nonzero(affine[:3, :3] - np.diag(np.diag(affine[:3, :3]))) == 0
    zooms = nifti.header.get_zooms()
    for dim, axis in (("z", 2), ("y", 1), ("x", 0)):
        start = result[f"tile_{dim}_start"].values
        size = result[f"tile_{dim}_size"].values
        assert size.sum() == ct["volume"].shape[2 - axis]
        np.testing.assert_array_equal(start, np.r_[0, np.cumsum(size)[:-1]])
        centre_voxel = start + (size - 1) / 2
        expected = affine[axis, 3] + affine[axis, axis] * centre_voxel  # voxel → mm
        np.testing.assert_allclose(result[f"tile_{dim}"].values, expected, atol=1e-3)
        full = size == TILE
        steps = np.diff(result[f"tile_{dim}"].values[full])
        np.testing.assert_allclose(steps, TILE * zooms[axis], atol=1e-3)
    assert result.attrs["spacing"] == [float(z) for z in zooms[::-1]] == [3.0, 3.0, 3.0]


def test_valid_tiles_are_the_body_tiles(ct):
    """valid ⇔ at least half of the tile's voxels are above -500 HU (NumPy reference)."""
    body = ct["volume"] > HU_BODY
    result = ct["result"]
    expected = np.zeros(result["valid"].shape, dtype=bool)
    for k in np.ndindex(expected.shape):
        block = body[tuple(slice(TILE * i, TILE * (i + 1)) for i in k)]
        expected[k] = block.mean() >= 0.5
    np.testing.assert_array_equal(result["valid"].values, expected)
    assert 0.3 < expected.mean() < 0.9  # the body fills part of the field of view


def test_attrs_record_the_run(ct):
    result, model = ct["result"], ct["model"]
    attrs = result.attrs
    assert tv.Recipe.from_dict(json.loads(attrs["recipe"])) == model.recipe_ == RECIPE
    assert attrs["recipe_hash"] == RECIPE.hash
    assert len(attrs["model_id"]) == 16
    assert int(attrs["model_id"], 16) >= 0
    assert attrs["source"] == str(ct["path"])
    versions = json.loads(attrs["versions"])
    assert versions["tilevision"] == tv.__version__
    assert {"numpy", "dask", "xarray", "scikit-learn"} <= set(versions)
    assert json.loads(attrs["timings"])["compute_s"] > 0
    assert attrs["cluster"] == ct["link"]


def test_probabilities_are_finite_on_valid_tiles_and_sum_to_one(ct):
    result = ct["result"]
    valid = result["valid"].values
    proba = result["tile_probability"].values
    assert valid.sum() > 1000
    assert not np.isnan(proba[valid]).any()
    assert np.isnan(proba[~valid]).all()  # tiles outside the body are not classified
    np.testing.assert_allclose(proba[valid].sum(axis=-1), 1.0, atol=1e-9)
    assert ((proba[valid] >= 0) & (proba[valid] <= 1)).all()
    image = result["probability"].values
    np.testing.assert_allclose(image.sum(), 1.0, atol=1e-9)
    assert result["label"].item() == result["class"].values[np.argmax(image)]
    # the image probability is the mean of the tile probabilities (aggregate="mean")
    np.testing.assert_allclose(image, proba[valid].mean(axis=0), rtol=1e-9)


def crop_offset(volume: np.ndarray, crop: np.ndarray) -> int:
    """First slice of ``volume`` where ``crop`` lies (found from the voxels themselves).

    The crop's NIfTI header repeats the whole CT's origin, but its voxels are the last
    30 slices of the whole CT: only the voxels tell where it lies.
    """
    n = crop.shape[0]
    (offsets,) = np.nonzero(
        [np.array_equal(volume[o : o + n], crop) for o in range(volume.shape[0] - n + 1)]
    )
    assert len(offsets) == 1
    return int(offsets[0])


def test_organs_of_the_mapped_slices_are_recognised(ct):
    """Tiles inside the slices with an organ map mostly get their majority organ."""
    result, labels = ct["result"], ct["crop_labels"]
    crop, _, _ = tv.datasets.load_ct_organs()
    offset = crop_offset(ct["volume"], crop.values)
    assert offset == 82
    organ_map = np.full(ct["volume"].shape, 255, dtype=np.uint8)  # 255: no map here
    organ_map[offset : offset + labels.shape[0]] = labels
    starts, sizes = result["tile_z_start"].values, result["tile_z_size"].values
    inside = np.flatnonzero(starts >= offset)  # tile slices wholly inside the map
    proba = result["tile_probability"].isel(tile_z=inside).values
    predicted = np.nan_to_num(proba, nan=-1.0).argmax(axis=-1)  # class ids are 0..4
    valid = result["valid"].isel(tile_z=inside).values
    truth = np.zeros(valid.shape, dtype=np.int64)
    for k, j, i in np.ndindex(truth.shape):
        z0 = starts[inside[k]]
        block = organ_map[z0 : z0 + sizes[inside[k]], TILE * j : TILE * (j + 1),
                          TILE * i : TILE * (i + 1)]  # fmt: skip
        truth[k, j, i] = np.bincount(block.ravel()).argmax()  # majority (ties: smallest)
    counts = np.bincount(truth[valid], minlength=5)
    assert valid.sum() > 500  # many body tiles
    assert counts[1] > 100  # many liver tiles
    accuracy = (predicted == truth)[valid].mean()
    assert accuracy > counts.max() / counts.sum() + 0.1, accuracy  # well above chance
    assert accuracy > 0.7, accuracy
    liver = valid & (truth == 1)
    assert (predicted[liver] == 1).mean() > 0.7


def test_output_folder_heatmap_and_report(ct):
    out = ct["out"]
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.json", "heatmap.png", "report.html", "result.zarr"
    ]  # fmt: skip
    png = out / "heatmap.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        width, height = im.size
        pixels = np.asarray(im.convert("RGB"), dtype=float)
    assert 300 <= width <= 2000
    assert 300 <= height <= 2000
    assert pixels.std() > 20  # not blank
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["label"] == ct["result"]["label"].item()
    assert summary["valid_tiles"] == int(ct["result"]["valid"].sum())
    assert "probability of 1" in (out / "report.html").read_text()


def test_rerun_with_the_same_inputs_runs_no_task(ct):
    ran_first, ran_second = ct["ran"]
    assert ran_first > 0
    assert ran_second == 0
    first, second = ct["result"], ct["rerun"]
    assert second.attrs["inputs_key"] == first.attrs["inputs_key"]
    assert second["tile_probability"].dtype == first["tile_probability"].dtype
    np.testing.assert_array_equal(
        second["tile_probability"].values, first["tile_probability"].values
    )
    np.testing.assert_array_equal(second["descriptor"].values, first["descriptor"].values)
    assert second["label"].item() == first["label"].item()
