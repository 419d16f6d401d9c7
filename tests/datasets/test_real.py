"""Loaders of the bundled real data, checked against the files read by their own libraries."""

from __future__ import annotations

import csv
import pathlib
import shutil

import numpy as np
import pytest

import tilevision
from tilevision.datasets import _real
from tilevision.datasets._real import (
    data_dir,
    load_adrenalmnist3d,
    load_ct,
    load_ct_organs,
    load_mr,
    load_mr_lesion,
)

nib = pytest.importorskip("nibabel")
nrrd = pytest.importorskip("nrrd")

BUNDLED = pathlib.Path(tilevision.__file__).parent / "datasets" / "data"


def _nifti(name):
    return np.asanyarray(nib.load(BUNDLED / "ct-organs" / name).dataobj).T


def test_data_dir_default_env_and_argument(monkeypatch, tmp_path):
    monkeypatch.delenv("TILEVISION_DATA", raising=False)
    assert data_dir() == BUNDLED
    monkeypatch.setenv("TILEVISION_DATA", str(tmp_path))
    assert data_dir() == tmp_path
    assert data_dir(BUNDLED) == BUNDLED  # an explicit folder wins over the variable


@pytest.mark.parametrize(
    ("small", "shape", "dtype"),
    [(False, (112, 101, 122), "int32"), (True, (30, 101, 122), "int16")],
)
def test_load_ct(small, shape, dtype):
    ct = load_ct(small=small)
    assert isinstance(ct.data, np.ndarray)  # in memory
    assert ct.shape == shape
    assert ct.dtype == dtype
    assert ct.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}
    assert ct.attrs["units"] == dict.fromkeys("zyx", "millimeter")
    name = "example_ct_sm.nii.gz" if small else "example_ct.nii.gz"
    np.testing.assert_array_equal(ct.values, _nifti(name))
    assert ct.z.values[1] - ct.z.values[0] == 3.0


def test_load_ct_organs_labels_and_names():
    image, labels, names = load_ct_organs()
    assert image.shape == labels.shape == (30, 101, 122)
    assert labels.dtype == np.uint8
    assert isinstance(labels.data, np.ndarray)
    assert labels.attrs["spacing"] == image.attrs["spacing"]
    np.testing.assert_array_equal(labels.values, _nifti("example_seg.nii.gz"))
    assert names[0] == "background"
    assert names[1] == "spleen"
    assert len(names) == 118
    # the voxel counts listed in the CSV are those of the label image
    with open(BUNDLED / "ct-organs" / "label_names_total_v2.csv", newline="") as fh:
        counts = {int(r["label_id"]): int(r["voxels_in_example_seg"]) for r in csv.DictReader(fh)}
    found = np.bincount(labels.values.ravel(), minlength=len(names))
    assert {i: int(n) for i, n in enumerate(found)} == counts
    assert int((found[1:] > 0).sum()) == 41


def test_load_mr():
    image, labels = load_mr()
    assert image.shape == labels.shape == (20, 91, 117)
    assert image.dtype == np.int16
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(image.values, _nifti("example_mr_sm.nii.gz"))
    np.testing.assert_array_equal(labels.values, _nifti("example_seg_mr.nii.gz"))
    assert image.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}


@pytest.mark.parametrize(
    ("case", "shape"), [("brain1", (25, 256, 256)), ("brain2", (23, 256, 256)),
                        ("breast1", (21, 120, 45))],
)  # fmt: skip
def test_load_mr_lesion(case, shape):
    image, mask = load_mr_lesion(case)
    ref_image, header = nrrd.read(
        str(BUNDLED / "mr-lesions" / f"{case}_image.nrrd"), index_order="C"
    )
    ref_mask, _ = nrrd.read(str(BUNDLED / "mr-lesions" / f"{case}_label.nrrd"), index_order="C")
    assert image.shape == mask.shape == shape
    assert mask.dtype == np.uint8
    assert set(np.unique(mask.values)) == {0, 1}
    np.testing.assert_array_equal(image.values, ref_image)
    np.testing.assert_array_equal(mask.values, ref_mask != 0)
    norms = np.linalg.norm(header["space directions"], axis=1)[::-1]
    assert list(image.attrs["spacing"].values()) == norms.tolist()
    assert mask.attrs["spacing"] == image.attrs["spacing"]


@pytest.mark.parametrize(
    ("size", "split", "counts"),
    [(28, "train", [929, 259]), (28, "val", [76, 22]), (64, "val", [76, 22]),
     pytest.param(64, "train", [929, 259], marks=pytest.mark.slow)],  # 300 MiB
)  # fmt: skip
def test_load_adrenalmnist3d(size, split, counts):
    images, labels = load_adrenalmnist3d(size, split)
    assert images.shape == (sum(counts), size, size, size)
    assert images.dtype == np.uint8
    assert labels.shape == (sum(counts),)
    assert labels.dtype.kind == "i"
    assert np.bincount(labels).tolist() == counts
    assert images[0].max() == 255
    assert set(np.unique(images[:5])) == {0, 255}
    if size == 28:  # the 64³ train split is 300 MiB: compare the small one in full
        with np.load(BUNDLED / "adrenalmnist3d" / f"adrenalmnist3d_{size}.npz") as npz:
            np.testing.assert_array_equal(images, npz[f"{split}_images"])
            np.testing.assert_array_equal(labels, npz[f"{split}_labels"][:, 0])


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: load_mr_lesion("lung1"),
            r"unknown case 'lung1'.*\['brain1', 'brain2', 'breast1'\]",
        ),
        (lambda: load_adrenalmnist3d(32), r"unknown size 32.*\[28, 64\]"),
        (lambda: load_adrenalmnist3d(28, "test"), r"unknown split 'test'.*\['train', 'val'\]"),
    ],
)
def test_unknown_names(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    "loader",
    [load_ct, load_ct_organs, load_mr, lambda: load_mr_lesion("brain2"), load_adrenalmnist3d],
)
def test_env_override_to_empty_folder(monkeypatch, tmp_path, loader):
    monkeypatch.setenv("TILEVISION_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"missing data file .*TILEVISION_DATA"):
        loader()


def test_env_override_reads_from_that_folder(monkeypatch, tmp_path):
    (tmp_path / "ct-organs").mkdir()
    shutil.copy(BUNDLED / "ct-organs" / "example_ct_sm.nii.gz", tmp_path / "ct-organs")
    monkeypatch.setenv("TILEVISION_DATA", str(tmp_path))
    ct = load_ct(small=True)
    assert ct.attrs["source"] == str(tmp_path / "ct-organs" / "example_ct_sm.nii.gz")
    with pytest.raises(FileNotFoundError, match=r"example_ct\.nii\.gz"):
        load_ct()
    with pytest.raises(FileNotFoundError, match=r"root="):
        load_ct(root=tmp_path / "nowhere")


def test_all_names_exported():
    import tilevision.datasets

    assert set(_real.__all__) == {
        "data_dir", "data_path", "load_adrenalmnist3d", "load_ct", "load_ct_organs", "load_mr",
        "load_mr_lesion",
    }  # fmt: skip
    assert set(_real.__all__) <= set(tilevision.datasets.__all__)
