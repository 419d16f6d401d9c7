"""
Classify adrenal-gland shapes (AdrenalMNIST3D): normal vs hyperplasia
=====================================================================

AdrenalMNIST3D (MedMNIST v2, CC BY 4.0) holds binary 3-D masks of adrenal glands
segmented in abdominal CT, labelled normal (0) or hyperplasia (1); the train and val
splits are bundled (train 929/259, val 76/22). Each volume gets one descriptor:

* ``shape`` of the mask: voxel and mesh volume, marching-cubes surface area,
  sphericity, compactness, principal axis lengths, elongation, flatness, extent;
* ``intensity`` of the mask smoothed by a Gaussian (σ = 2 voxels at 64³, 1 at 28³), read on
  the gland's own voxels (``mask="> 0"`` applies to the raw mask). A voxel deep in
  a thick limb keeps a value near 255, a voxel of a thin limb loses part of it to
  the background, so these percentiles measure how thick the gland is — and
  hyperplasia thickens the limbs.

The recipe, the volume size (64³), the estimator (logistic regression) and its ``C``
were chosen by 5-fold cross-validation on the train split only (train CV ROC AUC
0.854 at 64³ against 0.833 at 28³; random forests, extra trees, gradient boosting and
SVMs scored lower, and texture, gradient or histogram features did not help). The
script prints that cross-validated figure, fits the model on the whole train split,
scores it **once** on the val split, and compares it with the majority class and the
published MedMNIST v2 baselines (those are on the held-back test split, so the
comparison is indicative). It ends with the
features that matter: the drop in val ROC AUC when a feature is shuffled
(permutation importance) and the standardised logistic-regression coefficients.

Features are computed once per volume (in parallel, ``--jobs``) and the
descriptors are handed to ``tv.evaluate`` and ``tv.fit``, which accept them in
place of the images.

Run: ``python examples/classify_adrenalmnist3d.py --output adrenal`` (a few minutes on
two cores; ``--size 28`` for the 28³ volumes, ``--quick`` for a check in seconds on 40
volumes per split at 28³).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import dask
import matplotlib.pyplot as plt
import numpy as np
from joblib import Parallel, delayed
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LogisticRegression

import tilevision as tv

#: best MedMNIST v2 baselines on the (held-back) test split, 28³ (Yang et al., Sci. Data
#: 2023): ROC AUC about 0.83-0.84 (3-D ResNets), accuracy about 0.80 (auto-sklearn)
PUBLISHED = {"roc_auc": 0.84, "accuracy": 0.80}
#: Gaussian σ (voxels) of the thickness read-out: the same physical scale at both sizes
SIGMA = {28: 1.0, 64: 2.0}
SEED = 0
#: volumes per split kept by --quick (enough of both classes for 5 folds)
QUICK_LIMIT = 40


def make_recipe(size: int) -> tv.Recipe:
    """The feature recipe chosen by cross-validation on the train split."""
    return tv.Recipe(
        {"shape": {}, "intensity": {"percentiles": [5, 10, 25, 50, 75, 90, 95]}},
        preprocess=[{"name": "gaussian", "sigma": SIGMA[size]}],
        mask="> 0",  # the gland's voxels, read on the raw mask
        tile=size,  # one tile: the volume is tiny
        name=f"adrenal-shape-thickness-{size}",
    )


def _describe_batch(volumes: np.ndarray, recipe: tv.Recipe) -> list:
    """The descriptors of a batch of volumes, each computed at once in this process."""
    with dask.config.set(scheduler="synchronous"):
        return [tv.describe(tv.tile_features(v, recipe).compute()) for v in volumes]


def descriptors(volumes: np.ndarray, recipe: tv.Recipe, jobs: int) -> list:
    """One descriptor (a DataArray over ``feature``) per volume, ``jobs`` processes."""
    batches = [b for b in np.array_split(volumes, max(4 * jobs, 1)) if len(b)]
    parts = Parallel(n_jobs=jobs)(delayed(_describe_batch)(b, recipe) for b in batches)
    return [d for part in parts for d in part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument(
        "--size", type=int, choices=(28, 64), default=None, help="volume edge (default 64)"
    )
    parser.add_argument("--limit", type=int, default=None, help="first N volumes of each split")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="processes")
    parser.add_argument("--output", default="adrenal-classification", help="output folder")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a check in seconds: 28³, first 40 volumes of each split, one process",
    )
    args = parser.parse_args()
    if args.quick:
        args.limit, args.jobs = args.limit or QUICK_LIMIT, 1
    if args.size is None:
        args.size = 28 if args.quick else 64
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    train_x, train_y = tv.datasets.load_adrenalmnist3d(args.size, "train")
    val_x, val_y = tv.datasets.load_adrenalmnist3d(args.size, "val")
    if args.limit is not None:
        train_x, train_y = train_x[: args.limit], train_y[: args.limit]
        val_x, val_y = val_x[: args.limit], val_y[: args.limit]
    print(
        f"AdrenalMNIST3D {args.size}³: train {np.bincount(train_y).tolist()}, "
        f"val {np.bincount(val_y).tolist()} (normal, hyperplasia)"
    )

    recipe = make_recipe(args.size)
    estimator = LogisticRegression(C=0.1, max_iter=5000)
    train_d = descriptors(train_x, recipe, args.jobs)
    val_d = descriptors(val_x, recipe, args.jobs)
    print(f"features of {len(train_d) + len(val_d)} volumes: {time.perf_counter() - start:.0f} s")

    # honest protocol: the choice was made on train-split CV; val is scored once
    cv = tv.evaluate(train_d, train_y, recipe=recipe, estimator=estimator, cv=5)
    model = tv.fit(train_d, train_y, recipe=recipe, estimator=estimator)
    val = tv.evaluate(model, val_d, val_y)
    majority = float(np.mean(val_y == np.bincount(train_y).argmax()))

    print("\n5-fold cross-validation on the train split")
    print(cv)
    print("\nval split (fitted on the whole train split, scored once)")
    print(val)
    m = val.metrics
    print(
        f"\nval: ROC AUC {m['roc_auc']:.3f}, accuracy {m['accuracy']:.3f}, balanced "
        f"accuracy {m['balanced_accuracy']:.3f}, F1 {m['f1']:.3f} "
        f"(train CV ROC AUC {cv.metrics['roc_auc']:.3f})"
    )
    print(f"majority class on val: accuracy {majority:.3f}")
    print(
        f"best published MedMNIST v2 baselines (test split): ROC AUC about "
        f"{PUBLISHED['roc_auc']:.2f}, accuracy about {PUBLISHED['accuracy']:.2f}"
    )
    # the features that matter: shuffle one column of the val table at a time
    names = model.feature_names_
    table = np.stack([d.sel(feature=names).values for d in val_d])
    shuffled = permutation_importance(
        model.pipeline_, table, val_y, scoring="roc_auc", n_repeats=30, random_state=SEED
    )
    coef = model.pipeline_[-1].coef_[0]
    order = np.argsort(shuffled.importances_mean)[::-1][:10]
    top = [
        {
            "feature": names[i],
            "auc_drop": float(shuffled.importances_mean[i]),
            "auc_drop_std": float(shuffled.importances_std[i]),
            "coefficient": float(coef[i]),
        }
        for i in order
    ]
    print("\ntop 10 features (drop in val ROC AUC when shuffled; standardised coefficient)")
    for row in top:
        print(
            f"  {row['feature']:28s} {row['auc_drop']:+.3f} ± {row['auc_drop_std']:.3f}"
            f"   coef {row['coefficient']:+.2f}"
        )

    elapsed = time.perf_counter() - start
    summary = {
        "dataset": f"AdrenalMNIST3D {args.size}",
        "limit": args.limit,
        "recipe": recipe.to_dict(),
        "estimator": repr(estimator),
        "seed": SEED,
        "cv_train": cv.to_dict(predictions=False),
        "val": val.to_dict(predictions=False),
        "val_majority_accuracy": majority,
        "published_best_test": PUBLISHED,
        "top_features": top,
        "seconds": elapsed,
    }
    (out / "adrenalmnist3d_report.json").write_text(json.dumps(summary, indent=2) + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.5), constrained_layout=True)
    cv.plot_roc(axes[0])
    axes[0].set_title(f"train 5-fold CV: AUC {cv.metrics['roc_auc']:.3f}")
    val.plot_roc(axes[1])
    axes[1].set_title(f"val: AUC {m['roc_auc']:.3f}")
    fig.savefig(out / "adrenalmnist3d_roc.png", dpi=90)
    fig, ax = plt.subplots(figsize=(4.5, 4), constrained_layout=True)
    val.plot_confusion(ax)
    ax.set_title(f"val: accuracy {m['accuracy']:.3f}")
    fig.savefig(out / "adrenalmnist3d_confusion.png", dpi=90)
    print(f"\nsaved the report, ROC and confusion figures in {out} ({elapsed:.0f} s)")


if __name__ == "__main__":
    main()
