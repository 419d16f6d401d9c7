"""The gallery examples run top to bottom (the notebooks: tests/test_notebooks.py)."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: examples with a --quick mode, run by their own tests below (their full runs take minutes)
QUICK = {"classify_adrenalmnist3d.py", "ct_organ_tiles.py", "mr_lesion_tiles.py"}
EXAMPLES = sorted(p for p in (ROOT / "examples").glob("*.py") if p.name not in QUICK)


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    result = subprocess.run(
        [sys.executable, str(script), "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.glob("*.png")), "the example should save a figure"


# ---------------------------------------------------------------- real-data tile classifiers


def _run_quick(script: str, output: Path) -> str:
    """Run ``examples/<script> --quick`` against this checkout (not an installed copy)."""
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    command = [sys.executable, "-W", "error", str(ROOT / "examples" / script)]
    result = subprocess.run(
        [*command, "--output", str(output), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=output,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def _tile_blocks(shape, tile):
    """Every tile of a grid (partial tiles at the far edges) as a tuple of slices."""
    for index in np.ndindex(*(-(-s // t) for s, t in zip(shape, tile))):
        yield tuple(slice(i * t, (i + 1) * t) for i, t in zip(index, tile))


def _organ_group(name):
    for family in ("vertebrae", "rib", "lung"):
        if name.startswith(family + "_"):
            return family
    return re.sub(r"_(left|right)$", "", name)


def _majority_tiles(hu, codes, tile, min_foreground):
    """Majority code (ties: smallest) of each tile with enough HU > -500 voxels."""
    found = []
    for block in _tile_blocks(hu.shape, tile):
        inside = hu[block] > -500
        if inside.any() and inside.mean() >= min_foreground:
            values, counts = np.unique(codes[block], return_counts=True)
            found.append(int(values[np.argmax(counts)]))
    return np.array(found)


def test_ct_organ_tiles_example(tmp_path, data_dir):
    nib = pytest.importorskip("nibabel")
    stdout = _run_quick("ct_organ_tiles.py", tmp_path)
    assert (tmp_path / "ct_organ_tiles.png").is_file()
    assert "overall accuracy" in stdout
    summary = json.loads((tmp_path / "ct_organ_tiles_summary.json").read_text())
    report = json.loads((tmp_path / "ct_organ_tiles_report.json").read_text())

    # reference: the NIfTI files read by nibabel, tiles of 5 voxels cut with NumPy
    folder = data_dir / "ct-organs"
    hu = np.asanyarray(nib.load(folder / "example_ct_sm.nii.gz").dataobj).T
    seg = np.asanyarray(nib.load(folder / "example_seg.nii.gz").dataobj).T
    with open(folder / "label_names_total_v2.csv", newline="") as fh:
        names = {int(r["label_id"]): r["name"] for r in csv.DictReader(fh)}
    groups = ["background", *sorted({_organ_group(n) for i, n in names.items() if i})]
    to_group = np.zeros(max(names) + 1, dtype=np.int64)
    for i, n in names.items():
        to_group[i] = groups.index("background" if i == 0 else _organ_group(n))
    half = hu.shape[0] // 2
    train = _majority_tiles(hu[:half], to_group[seg[:half]], (5, 5, 5), 0.5)

    # classes: background, groups with >= 10 training tiles, then "other"
    counts = np.bincount(train, minlength=len(groups))
    kept = [g for g in range(len(groups)) if g == 0 or counts[g] >= 10]
    assert summary["classes"] == [groups[g] for g in kept] + ["other"]
    assert "liver" in summary["classes"]
    assert "lung" not in summary["classes"]  # lung bases lie in the test half only

    # the held-out tiles: the second half only, labelled by majority class
    to_class = np.full(len(groups), len(kept), dtype=np.int64)
    to_class[kept] = np.arange(len(kept))
    test = _majority_tiles(hu[half:], to_class[to_group[seg[half:]]], (5, 5, 5), 0.5)
    assert report["n_samples"] == len(test)
    support = [r["support"] for r in report["per_class"]]
    assert support == np.bincount(test, minlength=len(kept) + 1).tolist()

    # the model beats always answering "background", and names organs well above chance
    assert summary["background_baseline"] == pytest.approx(np.mean(test == 0))
    assert summary["accuracy"] > summary["background_baseline"] + 0.1
    assert summary["organ_accuracy"] > 0.5
    assert report["metrics"]["balanced_accuracy"] > 0.4


def test_mr_lesion_tiles_example(tmp_path, data_dir):
    nrrd = pytest.importorskip("nrrd")
    stdout = _run_quick("mr_lesion_tiles.py", tmp_path)
    assert (tmp_path / "mr_lesion_tiles.png").is_file()
    assert "tile ROC AUC" in stdout
    report = json.loads((tmp_path / "mr_lesion_tiles_report.json").read_text())

    # reference: brain2 read by pynrrd; --quick keeps the lesion slices +- 2; the volume is
    # normalised to its 1st-99th percentiles; tiles (1, 12, 12) with >= 25 % of voxels > 0.1
    image = nrrd.read(str(data_dir / "mr-lesions" / "brain2_image.nrrd"))[0].T.astype(float)
    mask = nrrd.read(str(data_dir / "mr-lesions" / "brain2_label.nrrd"))[0].T != 0
    low, high = np.percentile(image, [1, 99])
    inside = (image - low) / (high - low) > 0.1
    z = np.flatnonzero(mask.any(axis=(1, 2)))
    keep = slice(max(z[0] - 2, 0), z[-1] + 3)
    inside, mask = inside[keep], mask[keep]
    lesion = [
        bool(mask[block].any())
        for block in _tile_blocks(mask.shape, (1, 12, 12))
        if inside[block].any() and inside[block].mean() >= 0.25
    ]
    assert report["n_samples"] == len(lesion)
    assert [r["support"] for r in report["per_class"]] == [lesion.count(False), sum(lesion)]
    assert sum(lesion) >= 5  # the (small) brain2 lesion gives a handful of tiles

    # trained on brain1 only, the model ranks brain2's lesion tiles well above chance
    assert report["metrics"]["roc_auc"] > 0.75
    assert report["per_class"][1]["recall"] >= 0.5


def test_classify_adrenalmnist3d_example(tmp_path, data_dir):
    stdout = _run_quick("classify_adrenalmnist3d.py", tmp_path)
    for name in ("adrenalmnist3d_roc.png", "adrenalmnist3d_confusion.png"):
        assert (tmp_path / name).stat().st_size > 0
    assert "val: ROC AUC" in stdout
    summary = json.loads((tmp_path / "adrenalmnist3d_report.json").read_text())

    # reference: the labels read from the bundled file with NumPy; --quick keeps the
    # first 40 volumes of each split
    with np.load(data_dir / "adrenalmnist3d" / "adrenalmnist3d_28.npz") as npz:
        train = npz["train_labels"].ravel()[:40]
        val = npz["val_labels"].ravel()[:40]
    assert summary["limit"] == 40
    for part, labels in (("cv_train", train), ("val", val)):
        report = summary[part]
        assert report["n_samples"] == len(labels)
        assert [r["support"] for r in report["per_class"]] == np.bincount(labels).tolist()
        assert np.sum(report["confusion"]) == len(labels)
        metrics = report["metrics"]
        assert set(metrics) >= {"roc_auc", "accuracy", "balanced_accuracy", "f1"}
    assert summary["cv_train"]["kind"] == "cross-validation"
    assert summary["val"]["kind"] == "held-out"
    majority = np.bincount(train).argmax()
    assert summary["val_majority_accuracy"] == pytest.approx(np.mean(val == majority))
    assert len(summary["top_features"]) == 10
    assert {f["feature"].split(".")[0] for f in summary["top_features"]} <= {
        "shape",
        "intensity",
        "tiles",
    }
    # even from 40 training volumes, the shape model ranks the val volumes above chance
    assert summary["val"]["metrics"]["roc_auc"] > 0.6
