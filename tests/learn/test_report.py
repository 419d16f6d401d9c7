from __future__ import annotations

import html
import json
import math
import warnings

import numpy as np
import pytest
import xarray as xr
from sklearn import metrics as skm

from tilevision.learn._report import METRICS, Report

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _random(n, classes, seed, *, accuracy=0.7):
    """Labels, noisy predictions and probabilities consistent with them."""
    rng = np.random.default_rng(seed)
    classes = np.asarray(classes)
    codes = np.arange(n) % len(classes)
    rng.shuffle(codes)
    logits = rng.normal(size=(n, len(classes)))
    logits[np.arange(n), codes] += rng.random(n) < accuracy  # the true class usually wins
    proba = np.exp(2 * logits) / np.exp(2 * logits).sum(axis=1, keepdims=True)
    return classes[codes], classes[proba.argmax(axis=1)], proba


def _sklearn_reference(y, pred, proba, classes):
    """The report's metrics, computed by scikit-learn on its own."""
    binary = len(classes) == 2
    avg = dict(pos_label=classes[1], average="binary") if binary else dict(average="macro")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero_division and absent-class warnings
        ref = {
            "accuracy": skm.accuracy_score(y, pred),
            "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
            "precision": skm.precision_score(y, pred, zero_division=0, **avg),
            "recall": skm.recall_score(y, pred, zero_division=0, **avg),
            "f1": skm.f1_score(y, pred, zero_division=0, **avg),
        }
    if binary:
        ref["roc_auc"] = skm.roc_auc_score(y == classes[1], proba[:, 1])
    else:
        order = np.argsort(classes)  # sklearn wants the labels sorted
        ref["roc_auc"] = skm.roc_auc_score(
            y, proba[:, order], multi_class="ovr", labels=classes[order]
        )
    return ref


@pytest.mark.parametrize(
    "classes",
    [["benign", "malignant"], [0, 1], ["liver", "kidney", "spleen"], [3, 7, 11], ["b", "a"]],
)
def test_metrics_match_sklearn(classes):
    y, pred, proba = _random(90, classes, seed=len(classes))
    report = Report.from_predictions(y, pred, proba, classes, kind="held-out")
    ref = _sklearn_reference(y, pred, proba, np.asarray(classes))
    for m in METRICS:
        assert report.metrics[m] == pytest.approx(ref[m], abs=1e-12), m
    cm = skm.confusion_matrix(y, pred, labels=classes)
    np.testing.assert_array_equal(report.confusion.values, cm)
    assert report.confusion.dims == ("true", "predicted")
    assert report.confusion.coords["true"].values.tolist() == list(classes)
    assert report.confusion.coords["predicted"].values.tolist() == list(classes)
    p, r, f, s = skm.precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    for i, c in enumerate(classes):
        row = report.per_class[c]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[i], r[i], f[i]))
        assert row["support"] == s[i]
        assert row["roc_auc"] == pytest.approx(skm.roc_auc_score(y == c, proba[:, i]))
    assert report.n_samples == 90
    assert report.classes.tolist() == list(classes)
    assert report.notes == []
    assert report.fold_mean is None
    assert report.n_folds is None


def test_class_never_predicted():
    y, pred, proba = _random(60, ["a", "b", "c"], seed=1, accuracy=0.9)
    pred = np.where(pred == "c", "a", pred)  # "c" is never predicted
    report = Report.from_predictions(y, pred, proba, ["a", "b", "c"])
    ref = _sklearn_reference(y, pred, proba, np.array(["a", "b", "c"]))
    for m in METRICS:
        assert report.metrics[m] == pytest.approx(ref[m]), m
    assert report.per_class["c"]["precision"] == 0.0
    assert report.confusion.sel(predicted="c").sum() == 0
    assert any("'c' is never predicted" in n for n in report.notes)


def test_class_absent_from_true_labels_gives_auc_on_present_classes():
    y, pred, proba = _random(60, ["a", "b", "c"], seed=2)
    keep = y != "b"
    y, pred, proba = y[keep], pred[keep], proba[keep]
    report = Report.from_predictions(y, pred, proba, ["a", "b", "c"])
    per_class = [skm.roc_auc_score(y == c, proba[:, i]) for i, c in [(0, "a"), (2, "c")]]
    assert report.metrics["roc_auc"] == pytest.approx(np.mean(per_class))
    assert math.isnan(report.per_class["b"]["roc_auc"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert report.metrics["balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(y, pred)
        )
        assert report.metrics["f1"] == pytest.approx(
            skm.f1_score(y, pred, average="macro", zero_division=0)
        )
    assert any("'b' is absent from the true labels" in n for n in report.notes)
    assert any("present in the true labels only" in n for n in report.notes)
    assert set(report.roc_curve()) == {"a", "c"}


def test_single_true_class_gives_nan_auc_not_a_crash():
    report = Report.from_predictions([1, 1, 1], [1, 0, 1], [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]],
                                     [0, 1])  # fmt: skip
    assert math.isnan(report.metrics["roc_auc"])
    assert report.metrics["accuracy"] == pytest.approx(2 / 3)
    assert any("single class" in n for n in report.notes)
    assert "roc_auc                n/a" in str(report)
    assert report.roc_curve() == {}  # no curve without negatives


def test_without_probabilities():
    report = Report.from_predictions(["x", "y", "y"], ["x", "y", "x"], None, ["x", "y"])
    assert math.isnan(report.metrics["roc_auc"])
    assert report.metrics["recall"] == 0.5
    assert any("no probabilities" in n for n in report.notes)
    with pytest.raises(ValueError, match=r"needs the predicted probabilities.*from_predictions"):
        report.plot_roc()


def test_roc_curve_matches_sklearn():
    y, _, proba = _random(50, ["neg", "pos"], seed=3)
    pred = np.array(["neg", "pos"])[proba.argmax(1)]
    report = Report.from_predictions(y, pred, proba, ["neg", "pos"])
    (fpr, tpr, thr), ref = report.roc_curve()["pos"], skm.roc_curve(y == "pos", proba[:, 1])
    for a, b in zip((fpr, tpr, thr), ref):
        np.testing.assert_array_equal(a, b)
    y, pred, proba = _random(60, [0, 1, 2], seed=4)
    curves = Report.from_predictions(y, pred, proba, [0, 1, 2]).roc_curve()
    assert sorted(curves) == [0, 1, 2]
    for i in range(3):
        np.testing.assert_array_equal(curves[i][1], skm.roc_curve(y == i, proba[:, i])[1])


def test_folds_mean_std_and_table():
    y, pred, proba = _random(40, ["a", "b"], seed=5)
    folds = [dict(zip(METRICS, np.linspace(0.5, 0.9, 6) + k / 10), fold=k) for k in range(3)]
    folds[1]["roc_auc"] = float("nan")  # a fold where AUC was undefined is left out
    report = Report.from_predictions(y, pred, proba, ["a", "b"], folds=folds)
    for m in METRICS:
        vals = np.array([f[m] for f in folds])
        vals = vals[~np.isnan(vals)]
        assert report.fold_mean[m] == pytest.approx(vals.mean())
        assert report.fold_std[m] == pytest.approx(vals.std())
    assert report.n_folds == 3
    text = str(report)
    assert text == repr(report)
    assert text.startswith(
        "Report (cross-validation, 3 folds, 40 samples, 2 classes); positive class 'b'"
    )
    long = Report.from_predictions(y, pred, proba, ["a", "b"], extra={"imputed": list(range(99))})
    assert "  imputed: [0, 1, 2," in str(long)
    assert max(len(line) for line in str(long).splitlines()) < 90  # long details are cut
    acc = report.metrics["accuracy"]
    mean, std = report.fold_mean["accuracy"], report.fold_std["accuracy"]
    assert f"accuracy             {acc:.3f}   {mean:.3f} ± {std:.3f}" in text
    cm = report.confusion.values
    assert f"a        {cm[0, 0]:>8} {cm[0, 1]:>8}" in text
    assert "class    precision  recall      f1 roc_auc support" in text
    assert html.unescape(report._repr_html_()) == f"<pre>{text}</pre>"


@pytest.mark.parametrize("classes", [["cat", "dog", "eel"], [0, 1]])
def test_json_round_trip(tmp_path, classes):
    y, pred, proba = _random(30, classes, seed=6)
    folds = [{"fold": 0, "n_test": 15, **dict.fromkeys(METRICS, 0.5)},
             {"fold": 1, "n_test": 15, **dict.fromkeys(METRICS, np.float64("nan"))}]  # fmt: skip
    extra = {"n_features": np.int64(12), "nan_features": {"glcm.contrast": np.int32(3)},
             "spacing": np.array([1.0, 0.5]), "recipe_hash": "abc123"}  # fmt: skip
    report = Report.from_predictions(y, pred, proba, classes, folds=folds, extra=extra)
    path = tmp_path / "report.json"
    text = report.to_json(path)
    assert path.read_text(encoding="utf-8") == text + "\n"

    def no_nan(name):
        raise AssertionError(f"JSON holds {name}")

    data = json.loads(text, parse_constant=no_nan)
    assert data["folds"][1]["roc_auc"] is None
    assert data["extra"] == {"n_features": 12, "nan_features": {"glcm.contrast": 3},
                             "spacing": [1.0, 0.5], "recipe_hash": "abc123"}  # fmt: skip
    back = Report.from_dict(data)
    assert back.to_dict() == report.to_dict()
    assert str(back) == str(report)
    assert back.classes.tolist() == list(classes)
    assert back.classes.dtype.kind == np.asarray(classes).dtype.kind
    xr.testing.assert_identical(back.confusion, report.confusion)
    assert back.per_class == report.per_class
    for c, (_, tpr, _) in report.roc_curve().items():
        np.testing.assert_array_equal(back.roc_curve()[c][1], tpr)
    slim = Report.from_dict(json.loads(report.to_json(predictions=False)))
    assert slim.metrics == pytest.approx(report.metrics, nan_ok=True)
    assert slim.fold_mean == report.fold_mean
    with pytest.raises(ValueError, match="saved with predictions=False"):
        slim.roc_curve()


def test_from_dict_refuses_other_data():
    good = Report.from_predictions([0, 1], [0, 1], None, [0, 1]).to_dict()
    with pytest.raises(ValueError, match="not a tilevision Report dict"):
        Report.from_dict({"metrics": {}})
    with pytest.raises(ValueError, match="version 99 is not supported"):
        Report.from_dict({**good, "version": 99})
    del good["per_class"]
    with pytest.raises(ValueError, match=r"missing \['per_class'\]"):
        Report.from_dict(good)


def test_bad_input():
    y, proba = ["a", "b", "a"], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    with pytest.raises(ValueError, match=r"not in classes: 'c'.*pass classes="):
        Report.from_predictions(y, ["a", "c", "a"], proba, ["a", "b"])
    with pytest.raises(ValueError, match="y_true holds labels that are not in classes"):
        Report.from_predictions(["z", "b", "a"], y, proba, ["a", "b"])
    with pytest.raises(ValueError, match="at least two class labels"):
        Report.from_predictions(["a"], ["a"], None, ["a"])
    with pytest.raises(ValueError, match="kind must be 'cross-validation' or 'held-out'"):
        Report.from_predictions(y, y, None, ["a", "b"], kind="test")
    with pytest.raises(ValueError, match="must be distinct"):
        Report.from_predictions(y, y, None, ["a", "b", "a"])
    with pytest.raises(ValueError, match=r"same non-zero length.*one label per sample"):
        Report.from_predictions(y, y[:2], None, ["a", "b"])
    with pytest.raises(ValueError, match=r"shape \(n_samples, n_classes\) = \(3, 2\).*order"):
        Report.from_predictions(y, y, np.ones((3, 3)) / 3, ["a", "b"])
    with pytest.raises(ValueError, match="NaN or infinite"):
        Report.from_predictions(y, y, [[np.nan, 1], [0, 1], [1, 0]], ["a", "b"])


def test_plot_roc_binary_and_multiclass():
    y, pred, proba = _random(40, ["neg", "pos"], seed=7)
    report = Report.from_predictions(y, pred, proba, ["neg", "pos"])
    ax = report.plot_roc()
    auc = skm.roc_auc_score(y == "pos", proba[:, 1])
    assert ax.get_title() == f"ROC curve, positive class pos: AUC = {auc:.3f}"
    lines = ax.get_lines()
    assert len(lines) == 2  # the curve and the chance diagonal
    fpr, tpr, _ = skm.roc_curve(y == "pos", proba[:, 1])
    np.testing.assert_array_equal(lines[0].get_xdata(), fpr)
    np.testing.assert_array_equal(lines[0].get_ydata(), tpr)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [f"pos (AUC = {auc:.3f})",
                                                                   "chance"]  # fmt: skip
    y, pred, proba = _random(60, [0, 1, 2], seed=8)
    report = Report.from_predictions(y, pred, proba, [0, 1, 2])
    _, given = plt.subplots()
    assert report.plot_roc(ax=given) is given
    macro = skm.roc_auc_score(y, proba, multi_class="ovr")
    assert given.get_title() == f"ROC curves, one vs rest: macro AUC = {macro:.3f}"
    assert len(given.get_lines()) == 4


def test_plot_confusion():
    y, pred, proba = _random(45, ["liver", "kidney", "spleen"], seed=9)
    classes = ["liver", "kidney", "spleen"]
    report = Report.from_predictions(y, pred, proba, classes)
    ax = report.plot_confusion()
    cm = skm.confusion_matrix(y, pred, labels=classes)
    assert [int(t.get_text()) for t in ax.texts] == cm.ravel().tolist()
    assert [t.get_text() for t in ax.get_xticklabels()] == classes
    assert [t.get_text() for t in ax.get_yticklabels()] == classes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("predicted", "true")
    assert f"accuracy {skm.accuracy_score(y, pred):.3f}" in ax.get_title()
    np.testing.assert_array_equal(ax.images[0].get_array(), cm)
