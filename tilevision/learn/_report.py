"""``Report``: how good a classifier is, as numbers, a table, JSON and plots."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import xarray as xr

__all__ = ["METRICS", "Report"]

#: the headline metrics of every report, in display order
METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc")
_PER_CLASS = ("precision", "recall", "f1", "roc_auc", "support")
_FORMAT = "tilevision.learn.Report"
_VERSION = 1

ReportKind = Literal["cross-validation", "held-out"]


def _label_codes(values: np.ndarray, index: dict[Any, int], what: str) -> np.ndarray:
    codes = np.array([index.get(v, -1) for v in values.tolist()], dtype=np.intp)
    if (codes < 0).any():
        unknown = sorted({repr(v) for v, c in zip(values.tolist(), codes) if c < 0})
        raise ValueError(
            f"{what} holds labels that are not in classes: {', '.join(unknown[:5])}; "
            f"pass classes= listing every label (e.g. the model's classes_)."
        )
    return codes


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    if positive.all() or not positive.any():
        return math.nan
    return float(roc_auc_score(positive, score))


def _compute(
    codes_true: np.ndarray, codes_pred: np.ndarray, proba: np.ndarray | None, classes: np.ndarray
) -> tuple[dict[str, float], list[dict[str, float]], np.ndarray, list[str]]:
    """Metrics, per-class records, confusion counts and notes from integer label codes."""
    k = len(classes)
    cm = np.bincount(codes_true * k + codes_pred, minlength=k * k).reshape(k, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    notes: list[str] = []

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.zeros(k), where=den > 0)

    precision = ratio(tp, predicted)
    recall = ratio(tp, support)
    f1 = ratio(2 * tp, support + predicted)
    auc = np.full(k, math.nan)
    if proba is not None:
        for i in range(k):
            auc[i] = _binary_auc(codes_true == i, proba[:, i])
    for i, c in enumerate(classes.tolist()):
        if support[i] == 0:
            notes.append(
                f"class {c!r} is absent from the true labels: its recall and "
                "ROC AUC are undefined (recall reported as 0, AUC as NaN)"
            )
        if predicted[i] == 0:
            notes.append(f"class {c!r} is never predicted: its precision is reported as 0")
    in_true = support > 0
    seen = in_true | (predicted > 0)
    metrics = {
        "accuracy": float(tp.sum() / max(int(support.sum()), 1)),
        "balanced_accuracy": float(recall[in_true].mean()),
    }
    if k == 2:
        metrics.update(precision=precision[1], recall=recall[1], f1=f1[1], roc_auc=auc[1])
    else:
        defined = ~np.isnan(auc)
        metrics.update(
            precision=precision[seen].mean(),
            recall=recall[seen].mean(),
            f1=f1[seen].mean(),
            roc_auc=auc[defined].mean() if defined.any() else math.nan,
        )
        if proba is not None and defined.any() and not defined.all():
            notes.append(
                "ROC AUC is the one-vs-rest macro average over the classes present "
                "in the true labels only"
            )
    if proba is None:
        notes.append("no probabilities were given: ROC AUC is NaN")
    elif np.isnan(metrics["roc_auc"]):
        notes.append("ROC AUC is undefined: the true labels hold a single class")
    records = [
        {
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "roc_auc": float(auc[i]),
            "support": int(support[i]),
        }
        for i in range(k)
    ]
    return {m: float(v) for m, v in metrics.items()}, records, cm, notes


def _jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars/arrays as Python objects and NaN/inf as ``None``."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


def _short(value: Any, width: int = 76) -> str:
    text = str(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


class Report:
    """The evaluation of a classifier: metrics, confusion matrix and per-class scores.

    Build it with :meth:`from_predictions` (or :meth:`from_dict`); it prints as a
    table, exports JSON (:meth:`to_json`) and plots its ROC curve and confusion
    matrix. For two classes the positive class is ``classes[1]`` and precision,
    recall, F1 and ROC AUC are those of that class; for more classes they are
    macro averages and ROC AUC is one-vs-rest.

    Attributes
    ----------
    classes : numpy.ndarray
        The class labels, in the order of the probability columns.
    metrics : dict of str to float
        ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``, ``f1``,
        ``roc_auc`` (NaN where undefined; :attr:`notes` says why).
    per_class : dict
        Class label to ``precision``, ``recall``, ``f1``, ``roc_auc`` (one vs rest)
        and ``support`` (number of true samples).
    kind : {"cross-validation", "held-out"}
        Out-of-fold predictions, or predictions on a held-out set.
    folds : list of dict or None
        The metrics of each cross-validation fold.
    extra : dict
        Context given by the caller (number of features, imputed NaN, recipe hash...).
    notes : list of str
        Why some metric is undefined or was computed on fewer classes.
    """

    def __init__(
        self,
        *,
        classes: Sequence[Any],
        metrics: Mapping[str, float],
        confusion: Any,
        per_class: Sequence[Mapping[str, float]],
        kind: ReportKind = "held-out",
        folds: Sequence[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
        notes: Sequence[str] = (),
        predictions: Mapping[str, Any] | None = None,
    ) -> None:
        self.classes = np.asarray(classes)
        self.metrics = {m: float(metrics[m]) for m in METRICS}
        self._confusion = np.asarray(confusion, dtype=np.int64)
        self.per_class = {
            c: {key: (int(r[key]) if key == "support" else float(r[key])) for key in _PER_CLASS}
            for c, r in zip(self.classes.tolist(), per_class)
        }
        self.kind = kind
        self.folds = None if folds is None else [dict(f) for f in folds]
        self.extra = _jsonable(dict(extra or {}))
        self.notes = list(notes)
        self._predictions = None if predictions is None else dict(predictions)

    @classmethod
    def from_predictions(
        cls,
        y_true: Any,
        y_pred: Any,
        probabilities: Any,
        classes: Any,
        *,
        kind: ReportKind = "cross-validation",
        folds: Sequence[Mapping[str, Any]] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> Report:
        """Score predicted labels (and class probabilities) against the true labels.

        Parameters
        ----------
        y_true, y_pred : array-like of shape (n_samples,)
            True and predicted labels (ints or strings), all in ``classes``.
        probabilities : array-like of shape (n_samples, n_classes) or None
            Class probabilities, columns in the order of ``classes`` (``None``:
            ROC AUC is NaN).
        classes : array-like of shape (n_classes,)
            The distinct class labels (at least two), e.g. the model's ``classes_``.
        kind : {"cross-validation", "held-out"}, optional
            How the predictions were obtained (shown in the table).
        folds : list of dict, optional
            Per-fold metrics (keys from :data:`METRICS`); their mean and standard
            deviation are shown next to the pooled metrics.
        extra : dict, optional
            JSON-able context to keep with the report (feature count, imputed NaN...).

        Returns
        -------
        Report

        Examples
        --------
        >>> r = Report.from_predictions(["a", "b", "b", "a"], ["a", "b", "a", "a"],
        ...                             [[.9, .1], [.2, .8], [.6, .4], [.7, .3]], ["a", "b"],
        ...                             kind="held-out")
        >>> r.metrics["accuracy"], r.metrics["recall"], r.metrics["roc_auc"]
        (0.75, 0.5, 1.0)
        >>> int(r.confusion.sel(true="b", predicted="a"))
        1
        """
        if kind not in ("cross-validation", "held-out"):
            raise ValueError(
                f"kind must be 'cross-validation' or 'held-out', got {kind!r}; pass one of them."
            )
        classes = np.asarray(classes)
        if classes.ndim != 1 or len(classes) < 2:
            raise ValueError(
                f"classes must list at least two class labels, got {classes.tolist()!r}; "
                "pass the model's classes_."
            )
        index = {c: i for i, c in enumerate(classes.tolist())}
        if len(index) != len(classes):
            raise ValueError(f"classes must be distinct, got {classes.tolist()!r}")
        y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
        if y_true.ndim != 1 or y_true.shape != y_pred.shape or len(y_true) == 0:
            raise ValueError(
                f"y_true and y_pred must be 1-D with the same non-zero length, got shapes "
                f"{y_true.shape} and {y_pred.shape}; pass one label per sample."
            )
        proba = None
        if probabilities is not None:
            proba = np.asarray(probabilities, dtype=np.float64)
            if proba.shape != (len(y_true), len(classes)):
                raise ValueError(
                    f"probabilities must have shape (n_samples, n_classes) = "
                    f"{(len(y_true), len(classes))}, got {proba.shape}; pass predict_proba's "
                    "output with columns in the order of classes."
                )
            if not np.isfinite(proba).all():
                raise ValueError("probabilities hold NaN or infinite values; pass finite ones.")
        codes_true = _label_codes(y_true, index, "y_true")
        codes_pred = _label_codes(y_pred, index, "y_pred")
        metrics, per_class, cm, notes = _compute(codes_true, codes_pred, proba, classes)
        predictions = {"y_true": y_true, "y_pred": y_pred, "probabilities": proba}
        return cls(
            classes=classes,
            metrics=metrics,
            confusion=cm,
            per_class=per_class,
            kind=kind,
            folds=folds,
            extra=extra,
            notes=notes,
            predictions=predictions,
        )

    # --- derived values ------------------------------------------------------------------

    @property
    def confusion(self) -> xr.DataArray:
        """Counts of samples by true (rows) and predicted (columns) class."""
        return xr.DataArray(
            self._confusion.copy(),
            dims=("true", "predicted"),
            coords={"true": self.classes, "predicted": self.classes},
            name="confusion",
        )

    @property
    def n_samples(self) -> int:
        """Number of scored samples."""
        return int(self._confusion.sum())

    @property
    def n_folds(self) -> int | None:
        """Number of cross-validation folds (``None`` without folds)."""
        return None if self.folds is None else len(self.folds)

    def _fold_stat(self, stat: str) -> dict[str, float] | None:
        if not self.folds:
            return None
        out = {}
        for m in METRICS:
            v = np.array([_float(f.get(m)) for f in self.folds])
            v = v[~np.isnan(v)]
            out[m] = math.nan if v.size == 0 else float(v.mean() if stat == "mean" else v.std())
        return out

    @property
    def fold_mean(self) -> dict[str, float] | None:
        """Mean of each metric over the folds (NaN folds left out); ``None`` without folds."""
        return self._fold_stat("mean")

    @property
    def fold_std(self) -> dict[str, float] | None:
        """Standard deviation (ddof=0) of each metric over the folds; ``None`` without folds."""
        return self._fold_stat("std")

    def _require_predictions(self, what: str) -> dict[str, Any]:
        if self._predictions is None or self._predictions.get("probabilities") is None:
            raise ValueError(
                f"{what} needs the predicted probabilities, which this report does not hold "
                "(no probabilities were given, or it was saved with predictions=False); "
                "rebuild it with Report.from_predictions(..., probabilities)."
            )
        return self._predictions

    def roc_curve(self) -> dict[Any, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """ROC curve points ``(fpr, tpr, thresholds)`` by class.

        Two classes: one entry, for the positive class ``classes[1]``. More: one
        one-vs-rest curve per class present in the true labels.

        Returns
        -------
        dict
            Class label to ``(fpr, tpr, thresholds)`` from ``sklearn.metrics.roc_curve``.

        Examples
        --------
        >>> proba = [[.8, .2], [.3, .7], [.6, .4]]
        >>> r = Report.from_predictions([0, 1, 1], [0, 1, 0], proba, [0, 1])
        >>> fpr, tpr, thresholds = r.roc_curve()[1]
        >>> fpr.tolist(), tpr.tolist()
        ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])
        """
        from sklearn.metrics import roc_curve

        pred = self._require_predictions("roc_curve")
        y_true, proba = np.asarray(pred["y_true"]), np.asarray(pred["probabilities"])
        which = [1] if len(self.classes) == 2 else range(len(self.classes))
        curves = {}
        for i in which:
            positive = y_true == self.classes[i]
            if positive.any() and not positive.all():
                curves[self.classes[i].item()] = roc_curve(positive, proba[:, i])
        return curves

    # --- text -------------------------------------------------------------------------------

    def _header(self) -> str:
        parts = [self.kind]
        if self.folds:
            parts.append(f"{len(self.folds)} folds")
        parts += [f"{self.n_samples} samples", f"{len(self.classes)} classes"]
        head = f"Report ({', '.join(parts)})"
        if len(self.classes) == 2:
            head += f"; positive class {self.classes[1].item()!r}"
        return head

    def __str__(self) -> str:
        lines = [self._header(), ""]
        mean, std = self.fold_mean, self.fold_std
        lines.append(f"{'metric':<18} {'value':>7}" + ("   fold mean ± std" if mean else ""))
        for m in METRICS:
            row = f"{m:<18} {_fmt(self.metrics[m]):>7}"
            if mean and std:
                row += f"   {_fmt(mean[m])} ± {_fmt(std[m])}"
            lines.append(row)
        names = [str(c) for c in self.classes.tolist()]
        width = max(8, *(len(n) for n in names), len(str(self._confusion.max())) + 1)
        lines += ["", "confusion matrix (rows: true, columns: predicted)"]
        lines.append(" " * width + " " + " ".join(f"{n:>{width}}" for n in names))
        for n, row in zip(names, self._confusion):
            lines.append(f"{n:<{width}} " + " ".join(f"{v:>{width}d}" for v in row))
        lines += [
            "",
            f"{'class':<{width}} {'precision':>9} {'recall':>7} {'f1':>7} "
            f"{'roc_auc':>7} {'support':>7}",
        ]
        for n, r in zip(names, self.per_class.values()):
            lines.append(
                f"{n:<{width}} {_fmt(r['precision']):>9} {_fmt(r['recall']):>7} "
                f"{_fmt(r['f1']):>7} {_fmt(r['roc_auc']):>7} {r['support']:>7d}"
            )
        if self.extra:
            lines += ["", "details"] + [f"  {k}: {_short(v)}" for k, v in self.extra.items()]
        if self.notes:
            lines += ["", "notes"] + [f"  - {n}" for n in self.notes]
        return "\n".join(lines)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(str(self))}</pre>"

    # --- JSON -------------------------------------------------------------------------------

    def to_dict(self, *, predictions: bool = True) -> dict[str, Any]:
        """The report as JSON-able Python objects (NaN as ``None``).

        Parameters
        ----------
        predictions : bool, optional
            Keep the true/predicted labels and probabilities (needed by
            :meth:`roc_curve` and :meth:`plot_roc` after :meth:`from_dict`).

        Returns
        -------
        dict

        Examples
        --------
        >>> r = Report.from_predictions([0, 1], [0, 1], [[.9, .1], [.2, .8]], [0, 1])
        >>> d = r.to_dict(predictions=False)
        >>> d["metrics"]["f1"], d["confusion"]
        (1.0, [[1, 0], [0, 1]])
        """
        pred = None
        if predictions and self._predictions is not None:
            pred = {k: _jsonable(v) for k, v in self._predictions.items()}
        return {
            "format": _FORMAT,
            "version": _VERSION,
            "kind": self.kind,
            "classes": _jsonable(self.classes),
            "n_samples": self.n_samples,
            "metrics": _jsonable(self.metrics),
            "fold_mean": _jsonable(self.fold_mean),
            "fold_std": _jsonable(self.fold_std),
            "confusion": _jsonable(self._confusion),
            "per_class": [
                {"class": c, **_jsonable(r)}
                for c, r in zip(_jsonable(self.classes), self.per_class.values())
            ],
            "folds": _jsonable(self.folds),
            "extra": _jsonable(self.extra),
            "notes": list(self.notes),
            "predictions": pred,
        }

    def to_json(self, path: Any = None, *, predictions: bool = True, indent: int = 2) -> str:
        """The report as JSON text (NaN as ``null``), also written to ``path`` if given.

        Parameters
        ----------
        path : str or os.PathLike, optional
            File to write.
        predictions : bool, optional
            Keep the labels and probabilities (see :meth:`to_dict`).
        indent : int, optional
            JSON indentation.

        Returns
        -------
        str

        Examples
        --------
        >>> r = Report.from_predictions([0, 1, 1], [0, 1, 1], None, [0, 1])
        >>> '"roc_auc": null' in r.to_json()
        True
        """
        text = json.dumps(self.to_dict(predictions=predictions), indent=indent, allow_nan=False)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text + "\n", encoding="utf-8")
        return text

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Report:
        """Rebuild a report from :meth:`to_dict` output (or its JSON, parsed).

        Parameters
        ----------
        data : dict
            As returned by :meth:`to_dict`.

        Returns
        -------
        Report

        Examples
        --------
        >>> r = Report.from_predictions(["x", "y"], ["x", "x"], [[.6, .4], [.7, .3]], ["x", "y"])
        >>> Report.from_dict(json.loads(r.to_json())).metrics == r.metrics
        True
        """
        if not isinstance(data, Mapping) or data.get("format") != _FORMAT:
            raise ValueError(
                f"this is not a tilevision Report dict (its 'format' is not {_FORMAT!r}); "
                "pass the output of Report.to_dict() or json.loads(Report.to_json())."
            )
        if data.get("version") != _VERSION:
            raise ValueError(
                f"Report dict version {data.get('version')!r} is not supported (this "
                f"tilevision reads version {_VERSION}); re-create the report with this version."
            )
        missing = [
            k for k in ("kind", "classes", "metrics", "confusion", "per_class") if k not in data
        ]
        if missing:
            raise ValueError(f"Report dict is missing {missing}; pass Report.to_dict() output.")
        metrics = {m: _float(data["metrics"].get(m)) for m in METRICS}
        per_class = [
            {k: _float(r.get(k)) if k != "support" else r["support"] for k in _PER_CLASS}
            for r in data["per_class"]
        ]
        pred = data.get("predictions")
        if pred is not None:
            proba = pred.get("probabilities")
            pred = {
                "y_true": np.asarray(pred["y_true"]),
                "y_pred": np.asarray(pred["y_pred"]),
                "probabilities": None if proba is None else np.asarray(proba, float),
            }
        folds = data.get("folds")
        if folds is not None:
            folds = [{k: (_float(v) if k in METRICS else v) for k, v in f.items()} for f in folds]
        return cls(
            classes=data["classes"],
            metrics=metrics,
            confusion=data["confusion"],
            per_class=per_class,
            kind=data["kind"],
            folds=folds,
            extra=data.get("extra"),
            notes=data.get("notes", ()),
            predictions=pred,
        )

    # --- plots -------------------------------------------------------------------------------

    def plot_roc(self, ax: Any = None) -> Any:
        """Plot the ROC curve(s) with their AUC on ``ax`` (a new figure if ``None``).

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on.

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> proba = [[.8, .2], [.3, .7], [.6, .4]]
        >>> r = Report.from_predictions([0, 1, 1], [0, 1, 0], proba, [0, 1])
        >>> r.plot_roc().get_title()
        'ROC curve, positive class 1: AUC = 1.000'
        >>> import matplotlib.pyplot as plt; plt.close("all")
        """
        curves = self.roc_curve()
        ax = _axes(ax)
        for c, (fpr, tpr, _) in curves.items():
            ax.plot(fpr, tpr, label=f"{c} (AUC = {_fmt(self.per_class[c]['roc_auc'])})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="chance")
        if len(self.classes) == 2:
            title = f"ROC curve, positive class {self.classes[1].item()}"
            title += f": AUC = {_fmt(self.metrics['roc_auc'])}"
        else:
            title = f"ROC curves, one vs rest: macro AUC = {_fmt(self.metrics['roc_auc'])}"
        ax.set(
            xlabel="false positive rate",
            ylabel="true positive rate",
            xlim=(0, 1),
            ylim=(0, 1.01),
            title=title,
        )
        ax.legend(loc="lower right")
        return ax

    def plot_confusion(self, ax: Any = None) -> Any:
        """Plot the confusion matrix, with the count in each cell, on ``ax``.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Axes to draw on (a new figure if ``None``).

        Returns
        -------
        matplotlib.axes.Axes

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> r = Report.from_predictions([0, 1, 1], [0, 1, 0], None, [0, 1])
        >>> [t.get_text() for t in r.plot_confusion().texts]
        ['1', '0', '1', '1']
        >>> import matplotlib.pyplot as plt; plt.close("all")
        """
        ax = _axes(ax)
        cm = self._confusion
        ax.imshow(cm, cmap="Blues", vmin=0)
        names = [str(c) for c in self.classes.tolist()]
        half = cm.max() / 2
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", color="white" if v > half else "black")
        ax.set_xticks(range(len(names)), names)
        ax.set_yticks(range(len(names)), names)
        ax.set(
            xlabel="predicted",
            ylabel="true",
            title=f"Confusion matrix: accuracy {_fmt(self.metrics['accuracy'])}, "
            f"balanced {_fmt(self.metrics['balanced_accuracy'])}",
        )
        return ax


def _axes(ax: Any) -> Any:
    if ax is not None:
        return ax
    try:
        import matplotlib.pyplot as plt
    except ImportError as e:  # pragma: no cover - matplotlib is in the test extra
        raise ImportError(
            "plotting a Report needs matplotlib; install it with `pip install matplotlib`."
        ) from e
    return plt.subplots()[1]
