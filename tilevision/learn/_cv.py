"""Cross-validation and grid search on a feature table, fanned out over Dask when asked."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np

from ._report import METRICS, Report

__all__ = ["cross_validate_table", "grid_search_table", "joblib_backend", "stratified_folds"]


def _table(X: Any, y: Any, groups: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``X``, ``y`` and ``groups`` as NumPy arrays, checked for shape and length."""
    import dask

    for name, value in (("X", X), ("y", y), ("groups", groups)):
        if dask.is_dask_collection(value):
            raise TypeError(
                f"{name} is a lazy Dask collection; feature tables are small: compute it "
                "first (e.g. X = X.compute())."
            )
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D feature table (n_samples, n_features), got shape {X.shape}; "
            "reshape it, e.g. X.reshape(len(X), -1)."
        )
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must hold one label per row of X: got {y.shape} labels for {len(X)} rows; "
            "pass a 1-D array of labels as long as X."
        )
    if groups is not None:
        groups = np.asarray(groups)
        if groups.shape != y.shape:
            raise ValueError(
                f"groups must hold one group per row of X: got shape {groups.shape} for "
                f"{len(X)} rows; pass a 1-D array (e.g. patient ids) as long as X."
            )
    return X, y, groups


def _check_classes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    classes, counts = np.unique(y, return_counts=True)
    if len(classes) < 2:
        raise ValueError(
            f"classification needs at least two classes; the labels hold only "
            f"{classes.tolist()!r}; add samples of another class."
        )
    return classes, counts


def stratified_folds(
    y: Any, *, cv: Any = 5, groups: Any = None, random_state: int | None = 0
) -> Any:
    """The cross-validation splitter for labels ``y`` (and ``groups``).

    ``cv`` folds of ``StratifiedKFold(shuffle=True)``, or of
    ``StratifiedGroupKFold(shuffle=True)`` when ``groups`` are given (samples of a
    group never fall on both sides of a split). When a class has fewer samples
    (with groups: fewer distinct groups) than ``cv``, the number of folds is
    lowered to that count, with a ``UserWarning``; a class with a single sample
    (or group) cannot be cross-validated and raises ``ValueError``.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Class labels.
    cv : int or scikit-learn splitter, optional
        Number of folds (at least 2), or a splitter object, returned unchanged.
    groups : array-like of shape (n_samples,), optional
        Group of each sample (patient, volume...).
    random_state : int or None, optional
        Seed of the shuffle.

    Returns
    -------
    sklearn.model_selection.BaseCrossValidator

    Examples
    --------
    >>> splitter = stratified_folds(["a"] * 6 + ["b"] * 4, cv=3)
    >>> type(splitter).__name__, splitter.n_splits
    ('StratifiedKFold', 3)
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    y = np.asarray(y)
    if not isinstance(cv, (int, np.integer)) or isinstance(cv, bool):
        if isinstance(cv, str) or not hasattr(cv, "split"):
            raise TypeError(
                f"cv must be a number of folds or a scikit-learn splitter, got {cv!r}; "
                "pass e.g. cv=5 or cv=sklearn.model_selection.KFold(5)."
            )
        return cv
    if cv < 2:
        raise ValueError(f"cv must be at least 2 folds, got {cv}; pass e.g. cv=5.")
    classes, counts = _check_classes(y)
    if groups is None:
        unit = "samples"
    else:
        groups = np.asarray(groups)
        n_groups = len(np.unique(groups))
        if n_groups < cv:
            raise ValueError(
                f"grouped cross-validation with {cv} folds needs at least {cv} distinct "
                f"groups, but groups holds {n_groups}; pass fewer folds (cv={max(n_groups, 2)}) "
                "or more groups."
            )
        unit = "groups"
        counts = np.array([len(np.unique(groups[y == c])) for c in classes])
    lonely = classes[counts < 2].tolist()
    if lonely:
        raise ValueError(
            f"cannot cross-validate: class(es) {lonely!r} have a single {unit[:-1]}, so no "
            "fold can both train on and test them; add samples "
            f"{'from other groups ' if groups is not None else ''}or drop the class."
        )
    smallest = int(counts.min())
    if smallest < cv:
        least = classes[counts.argmin()].item()
        warnings.warn(
            f"class {least!r} has only {smallest} {unit}, fewer than the {cv} folds asked: "
            f"using {smallest} folds instead (give more {unit} per class to keep {cv}).",
            UserWarning,
            stacklevel=2,
        )
        cv = smallest
    if groups is None:
        return StratifiedKFold(cv, shuffle=True, random_state=random_state)
    return StratifiedGroupKFold(cv, shuffle=True, random_state=random_state)


@contextlib.contextmanager
def joblib_backend(client: Any, n_jobs: int | None = None) -> Iterator[int]:
    """Run joblib (and scikit-learn's ``n_jobs``) on ``client``'s Dask cluster within the block.

    Parameters
    ----------
    client : distributed.Client or None
        The cluster; ``None`` leaves joblib's configuration as it is.
    n_jobs : int, optional
        Workers to use; default 1 without a client, -1 (all the cluster's threads) with one.

    Yields
    ------
    int
        The ``n_jobs`` to pass to ``joblib.Parallel`` or to an estimator.

    Examples
    --------
    >>> from joblib import Parallel, delayed
    >>> with joblib_backend(None) as n_jobs:
    ...     Parallel(n_jobs=n_jobs)(delayed(abs)(i) for i in (-1, -2))
    [1, 2]
    """
    import joblib

    if client is None:
        yield 1 if n_jobs is None else n_jobs
        return
    from distributed import Client

    if not isinstance(client, Client):
        raise TypeError(
            f"client must be a distributed.Client or None, got {type(client).__name__}; "
            "create one with tilevision.cluster.client()."
        )
    with joblib.parallel_config(backend="dask", client=client):
        yield -1 if n_jobs is None else n_jobs


def _proba(model: Any, X: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """``model.predict_proba(X)`` with columns for all ``classes`` (0 for unseen ones)."""
    out = np.zeros((len(X), len(classes)))
    cols = np.searchsorted(classes, model.classes_)
    out[:, cols] = model.predict_proba(X)
    return out


def _fit_fold(
    pipeline: Any, X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, classes: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Fit a clone of ``pipeline`` on ``train``; predicted labels and probabilities on ``test``."""
    from sklearn.base import clone

    model = clone(pipeline).fit(X[train], y[train])
    proba = _proba(model, X[test], classes) if hasattr(model, "predict_proba") else None
    return model.predict(X[test]), proba


def cross_validate_table(
    X: Any,
    y: Any,
    pipeline: Any,
    *,
    cv: Any = 5,
    groups: Any = None,
    random_state: int | None = 0,
    client: Any = None,
    n_jobs: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Report:
    """Cross-validate a classifier on a feature table: out-of-fold predictions, scored.

    Each fold fits a clone of ``pipeline`` on the other folds and predicts its
    own samples; the folds run in parallel through joblib, on the Dask cluster
    of ``client`` when one is given (joblib's Dask backend). The folds are
    stratified (and grouped when ``groups`` are given, see
    :func:`stratified_folds`); a fixed ``random_state`` and a deterministic
    estimator (its own ``random_state`` set) give identical reports, with or
    without a client.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Feature table; NaN is allowed when ``pipeline`` imputes it.
    y : array-like of shape (n_samples,)
        Class labels (ints or strings), at least two classes.
    pipeline : scikit-learn classifier
        Estimator or Pipeline (cloned, never fitted in place).
    cv : int or scikit-learn splitter, optional
        Number of folds, or a splitter whose test folds partition the samples.
    groups : array-like of shape (n_samples,), optional
        Group of each sample (patient, volume): never split across train and test.
    random_state : int or None, optional
        Seed of the fold shuffle.
    client : distributed.Client, optional
        Run the folds on this Dask cluster.
    n_jobs : int, optional
        joblib workers (default: 1 without a client, all the cluster's threads with one).
    extra : dict, optional
        More context to keep in the report (recipe hash, feature names...).

    Returns
    -------
    Report
        ``kind="cross-validation"``, with per-fold metrics in ``folds``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat(["healthy", "tumour"], 20)
    >>> X = rng.normal(size=(40, 3)) + (y == "tumour")[:, None] * 2.0
    >>> report = cross_validate_table(X, y, LogisticRegression(), cv=4)
    >>> report.n_folds, report.metrics["accuracy"] > 0.8
    (4, True)
    """
    from joblib import Parallel, delayed

    X, y, groups = _table(X, y, groups)
    classes, _ = _check_classes(y)
    splitter = stratified_folds(y, cv=cv, groups=groups, random_state=random_state)
    splits = list(splitter.split(X, y, groups))
    order = np.sort(np.concatenate([test for _, test in splits]))
    if not np.array_equal(order, np.arange(len(y))):
        raise ValueError(
            f"the test folds of {splitter!r} do not partition the samples (each sample "
            "must be tested exactly once); pass a K-fold splitter such as StratifiedKFold."
        )
    with joblib_backend(client, n_jobs) as jobs:
        results = Parallel(n_jobs=jobs, batch_size=1)(
            delayed(_fit_fold)(pipeline, X, y, train, test, classes) for train, test in splits
        )
    y_pred = np.empty_like(y)
    proba = None if results[0][1] is None else np.zeros((len(y), len(classes)))
    folds = []
    for i, ((train, test), (pred, p)) in enumerate(zip(splits, results)):
        y_pred[test] = pred
        if proba is not None:
            proba[test] = p
        scored = Report.from_predictions(y[test], pred, p, classes)
        folds.append({"fold": i, "n_train": len(train), "n_test": len(test),
                      **{m: scored.metrics[m] for m in METRICS}})  # fmt: skip
    nan = np.isnan(X)
    info = {
        "n_features": X.shape[1],
        "nan_values": int(nan.sum()),
        "features_with_nan": int(nan.any(axis=0).sum()),
        "splitter": repr(splitter),
        "estimator": _name(pipeline),
    }
    return Report.from_predictions(
        y, y_pred, proba, classes, kind="cross-validation", folds=folds,
        extra={**info, **(extra or {})},
    )  # fmt: skip


def _name(pipeline: Any) -> str:
    steps = getattr(pipeline, "steps", None)
    return type(steps[-1][1] if steps else pipeline).__name__


def grid_search_table(
    X: Any,
    y: Any,
    pipeline: Any,
    param_grid: Mapping[str, Any] | list[Mapping[str, Any]],
    *,
    cv: Any = 5,
    groups: Any = None,
    random_state: int | None = 0,
    client: Any = None,
    scoring: Any = None,
    n_jobs: int | None = None,
) -> Any:
    """Grid-search ``pipeline``'s parameters by cross-validation, fanned out like the folds.

    The splits are those of :func:`cross_validate_table` (same fallback and
    errors); every (parameter, fold) fit runs through joblib, on the Dask
    cluster of ``client`` when one is given. The best parameters are refitted
    on all the data.

    Parameters
    ----------
    X, y, pipeline, cv, groups, random_state, client, n_jobs
        As for :func:`cross_validate_table`.
    param_grid : dict or list of dict
        Parameter names (``"classify__C"`` for a Pipeline step) to lists of values.
    scoring : str or callable, optional
        Default: ``"roc_auc"`` for two classes, else ``"balanced_accuracy"``.

    Returns
    -------
    sklearn.model_selection.GridSearchCV
        Fitted: ``best_params_``, ``best_score_``, ``cv_results_``, ``best_estimator_``.

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> rng = np.random.default_rng(0)
    >>> y = np.repeat([0, 1], 20)
    >>> X = rng.normal(size=(40, 3)) + y[:, None]
    >>> search = grid_search_table(X, y, LogisticRegression(), {"C": [0.01, 1.0]}, cv=4)
    >>> sorted(search.best_params_), search.scoring
    (['C'], 'roc_auc')
    """
    from sklearn.model_selection import GridSearchCV

    X, y, groups = _table(X, y, groups)
    classes, _ = _check_classes(y)
    splitter = stratified_folds(y, cv=cv, groups=groups, random_state=random_state)
    if scoring is None:
        scoring = "roc_auc" if len(classes) == 2 else "balanced_accuracy"
    with joblib_backend(client, n_jobs) as jobs:
        search = GridSearchCV(pipeline, param_grid, scoring=scoring, cv=splitter, n_jobs=jobs)
        search.fit(X, y, groups=groups)
    return search
