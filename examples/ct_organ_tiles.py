"""
Tile-level organ classification on a real CT
============================================

The bundled abdominal CT (TotalSegmentator example, 30 slices of 3 mm voxels, Hounsfield
units) comes with a voxel-wise organ map made by the TotalSegmentator model. The volume is
cut into tiles; each tile inside the body is labelled with the majority organ of the map
and described by intensity, HU-band, histogram, gradient and texture features. A
class-balanced random forest is trained on the tiles of the first half of the slices
(lower z) and scored on the tiles of the second half: the halves share no voxel and no
tile, so nothing leaks across the split.

Decisions (printed again by the script):

* organ groups: left/right pairs, vertebra levels, rib numbers and lung lobes are merged
  (``kidney_left`` and ``kidney_right`` → ``kidney``): tile features carry no position,
  so the side or the level of a structure is not visible in a tile;
* background (label 0: fat, abdominal wall, bowel content — body tissue outside every
  mapped structure) is a class of its own: most body tiles are background and a tile
  heatmap must say so; balanced accuracy weighs it like any organ;
* rare organs: an organ group with fewer than ``--min-tiles`` labelled tiles in the
  training half is merged into a class ``other``; so is, in the test half, every organ
  group that has no training tiles at all (lung bases, costal cartilage): such organs
  cannot be scored fairly as themselves, and ``other`` keeps their tiles in the overall
  figures instead of hiding them. The organ-only accuracy leaves out ``background`` and
  ``other``.

The script prints the held-out report, a per-organ table and the overall and balanced
accuracy, and saves a PNG of one tile slice of the test half: CT, true majority organ per
tile and predicted organ per tile (``Model.predict_tiles``).

Data: Wasserthal et al., *TotalSegmentator*, Radiology: AI 2023,
doi:10.1148/ryai.230024 (Apache-2.0).

Run: ``python examples/ct_organ_tiles.py --output ct-organs`` (``--quick``: fewer features
and trees, for tests).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import BoundaryNorm, ListedColormap
from sklearn.ensemble import RandomForestClassifier

import tilevision as tv

parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
parser.add_argument("--output", default="ct-organs", help="folder for the outputs")
parser.add_argument("--quick", action="store_true", help="small recipe and forest (tests)")
parser.add_argument(
    "--min-tiles", type=int, default=10, help="training tiles an organ needs to be a class"
)
args = parser.parse_args()
out = Path(args.output)
out.mkdir(parents=True, exist_ok=True)
start = time.perf_counter()

# 1. the CT, its organ map and the organ names; organ groups per voxel
ct, seg, names = tv.datasets.load_ct_organs()


def organ_group(name: str) -> str:
    """``kidney_left`` → ``kidney``, ``vertebrae_L1`` → ``vertebrae``, ``rib_left_9`` → ``rib``."""
    for family in ("vertebrae", "rib", "lung"):
        if name.startswith(family + "_"):
            return family
    return re.sub(r"_(left|right)$", "", name)


group_names = sorted({organ_group(n) for i, n in names.items() if i != 0})
group_of_id = np.zeros(max(names) + 1, dtype=np.int64)  # label id → group code (0: background)
for i, n in names.items():
    if i != 0:
        group_of_id[i] = 1 + group_names.index(organ_group(n))
group_names = ["background", *group_names]
groups = seg.copy(data=group_of_id[seg.values])

# 2. split along z: first half of the slices trains, second half tests
half = ct.sizes["z"] // 2
train_ct, test_ct = ct.isel(z=slice(0, half)), ct.isel(z=slice(half, None))
train_groups, test_groups = groups.isel(z=slice(0, half)), groups.isel(z=slice(half, None))

# 3. the recipe: 5³ voxels (15 mm) per tile, tiles at least half inside the body (HU > -500)
intensity = {"hu": True, "percentiles": [10, 25, 50, 75, 90], "percentile_bins": 512}
hu_range = [-200, 300]  # soft-tissue window: fixed, so train and test bins are the same
if args.quick:
    features = {"intensity": intensity, "histogram": {"bins": 20, "range": hu_range}}
else:
    features = {
        "intensity": intensity,
        "histogram": {"bins": 20, "range": hu_range},
        "gradient": {"sigma": 1.0, "canny": False},
        "texture": {"parts": ["glcm", "log"], "levels": 32, "range": hu_range},
    }
recipe = tv.Recipe(features, tile=5, mask="HU > -500", min_foreground=0.5, name="ct-organs")

# the tile features of each half, computed once (fit, evaluate and predict_tiles reuse them)
train_tiles = tv.tile_features(train_ct, recipe).compute()
test_tiles = tv.tile_features(test_ct, recipe).compute()
print(f"features: {time.perf_counter() - start:.1f} s")


def tile_counts(tiles, labels) -> np.ndarray:
    """Number of valid tiles whose majority organ group is each group."""
    majority = tv.learn.tile_labels(labels, tiles, rule="majority").values
    return np.bincount(majority[tiles["valid"].values], minlength=len(group_names))


# 4. classes: background, organ groups with enough training tiles, and "other"
train_counts = tile_counts(train_tiles, train_groups)
test_counts = tile_counts(test_tiles, test_groups)
kept = [g for g in range(len(group_names)) if g == 0 or train_counts[g] >= args.min_tiles]
other = len(kept)
class_of_group = np.full(len(group_names), other, dtype=np.int64)
class_of_group[kept] = np.arange(len(kept))
class_names = [group_names[g] for g in kept] + ["other"]
train_labels = train_groups.copy(data=class_of_group[train_groups.values].astype(np.uint8))
test_labels = test_groups.copy(data=class_of_group[test_groups.values].astype(np.uint8))
merged_train = [
    f"{group_names[g]} ({train_counts[g]})"
    for g in np.flatnonzero(train_counts)
    if class_of_group[g] == other
]
unseen_test = [
    f"{group_names[g]} ({test_counts[g]})"
    for g in np.flatnonzero(test_counts)
    if train_counts[g] == 0
]
print(f"CT {dict(ct.sizes)}, 3 mm voxels; train z < {half}, test z >= {half}")
print(
    f"tiles of {recipe.tile} voxels; class ids: "
    + ", ".join(f"{c} {n}" for c, n in enumerate(class_names))
)
print(f"'other' in training (organs with < {args.min_tiles} tiles): {', '.join(merged_train)}")
print(f"'other' in the test half, never seen in training: {', '.join(unseen_test) or 'none'}")

if train_counts[class_of_group == other].sum() == 0:
    raise SystemExit(
        "no training tile is 'other' (every organ group reached --min-tiles), so the test "
        "tiles of organs unseen in training have no class: raise --min-tiles."
    )

# 5. train on the first half, score on the second
estimator = RandomForestClassifier(
    n_estimators=100 if args.quick else 500,
    min_samples_leaf=3,
    class_weight="balanced_subsample",
    random_state=0,
    n_jobs=-1,
)
model = tv.fit([train_tiles], [train_labels], recipe=recipe, estimator=estimator, level="tile")
report = tv.evaluate(model, [test_tiles], [test_labels])
print(report)

# 6. per-organ table and the overall figures
print(f"\n{'organ':<30} {'train':>6} {'test':>6} {'recall':>7} {'precision':>9}")
table = []
for c, name in enumerate(class_names):
    r = report.per_class[c]
    n_train = int(model.training_["class_counts"][c])
    recall = f"{r['recall']:.3f}" if r["support"] else "n/a"
    print(f"{name:<30} {n_train:>6} {r['support']:>6} {recall:>7} {r['precision']:>9.3f}")
    table.append({"organ": name, "train_tiles": n_train, **r})
confusion = report.confusion.values
organs = [c for c, n in enumerate(class_names) if n not in ("background", "other")]
organ_rows = confusion[organs]
organ_accuracy = organ_rows[:, organs].diagonal().sum() / max(organ_rows.sum(), 1)
print(f"\ntest tiles: {report.n_samples}")
print(f"overall accuracy:   {report.metrics['accuracy']:.3f}")
print(f"balanced accuracy:  {report.metrics['balanced_accuracy']:.3f}")
print(f"organ-only accuracy ({int(organ_rows.sum())} organ tiles): {organ_accuracy:.3f}")
baseline = report.per_class[0]["support"] / report.n_samples
print(f"always 'background' would score: {baseline:.3f}")
report.to_json(out / "ct_organ_tiles_report.json", predictions=False)
summary = {
    "classes": class_names,
    "per_organ": table,
    "accuracy": report.metrics["accuracy"],
    "balanced_accuracy": report.metrics["balanced_accuracy"],
    "organ_accuracy": float(organ_accuracy),
    "background_baseline": float(baseline),
}
(out / "ct_organ_tiles_summary.json").write_text(json.dumps(summary, indent=2))

# 7. heatmap: predicted organ of each tile of the middle tile slice, next to the truth
tiles = test_tiles
proba = model.predict_tiles(tiles).compute()
truth = tv.learn.tile_labels(test_labels, tiles, rule="majority").compute()
valid = tiles["valid"].values
k = tiles.sizes["tile_z"] // 2
best = proba["class"].values[proba.fillna(-1).argmax("class").values]  # class ids
predicted = np.where(valid, best, -1)[k]
true_map = np.where(valid, truth.values, -1)[k]
shown = sorted(set(np.unique(predicted[predicted >= 0])) | set(np.unique(true_map[true_map >= 0])))
colors = plt.get_cmap("tab20").colors
cmap = ListedColormap(["white"] + [colors[i % 20] for i in range(len(shown))])
lookup = np.zeros(len(class_names) + 1, dtype=np.int64)
lookup[np.asarray(shown) + 1] = np.arange(1, len(shown) + 1)
norm = BoundaryNorm(np.arange(-0.5, len(shown) + 1.5), cmap.N)
z0 = int(tiles["tile_z_start"].values[k]) + int(tiles["tile_z_size"].values[k]) // 2
half_voxel = 1.5  # mm
extent = (
    float(ct.x[0]) - half_voxel,
    float(ct.x[-1]) + half_voxel,
    float(ct.y[-1]) + half_voxel,
    float(ct.y[0]) - half_voxel,
)
fig, axes = plt.subplots(1, 3, figsize=(16, 4.6), constrained_layout=True)
axes[0].imshow(test_ct.values[z0], cmap="gray", vmin=-200, vmax=300, extent=extent)
axes[0].set_title(f"CT, test half, z = {float(test_ct.z[z0]):.0f} mm")
for ax, grid, title in (
    (axes[1], true_map, "true majority organ per tile"),
    (axes[2], predicted, "predicted organ per tile"),
):
    image = ax.imshow(
        lookup[grid + 1], cmap=cmap, norm=norm, interpolation="nearest", extent=extent
    )
    ax.set_title(title)
for ax in axes:
    ax.set_xlabel("x (mm)")
    ax.set_ylabel("y (mm)")
agree = (predicted == true_map)[true_map >= 0].mean()
axes[2].set_xlabel(f"x (mm); {agree:.0%} of this slice's {int((true_map >= 0).sum())} tiles right")
bar = fig.colorbar(image, ax=axes[1:], ticks=np.arange(len(shown) + 1))
bar.ax.set_yticklabels(["outside body"] + [class_names[c] for c in shown])
fig.savefig(out / "ct_organ_tiles.png", dpi=90)
print(f"saved {out / 'ct_organ_tiles.png'} ({time.perf_counter() - start:.1f} s in all)")
