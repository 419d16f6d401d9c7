"""Classifiers by short name (``rf``, ``hgb``, ``logistic``), shared by the CLI and the demo."""

from __future__ import annotations

from typing import Any

__all__ = ["ESTIMATOR_NAMES", "estimator_from_name"]

#: the names :func:`estimator_from_name` knows, the default first
ESTIMATOR_NAMES = ("rf", "hgb", "logistic")


def estimator_from_name(name: str, random_state: int | None = 0) -> Any:
    """A fresh scikit-learn classifier for a short name.

    Parameters
    ----------
    name : {"rf", "hgb", "logistic"}
        ``"rf"``: the library default, a class-balanced random forest
        (:func:`~tilevision.learn.default_estimator`); ``"hgb"``:
        ``HistGradientBoostingClassifier(class_weight="balanced")``; ``"logistic"``:
        ``LogisticRegression(class_weight="balanced", max_iter=5000)``.
    random_state : int, optional
        Seed of the estimator (where it has one).

    Returns
    -------
    sklearn.base.ClassifierMixin
        An unfitted estimator.

    Raises
    ------
    ValueError
        If ``name`` is not one of :data:`ESTIMATOR_NAMES`.

    Examples
    --------
    >>> type(estimator_from_name("hgb")).__name__
    'HistGradientBoostingClassifier'
    >>> estimator_from_name("logistic").class_weight
    'balanced'
    """
    if name == "rf":
        from ._model import default_estimator

        return default_estimator(random_state)
    if name == "hgb":
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(class_weight="balanced", random_state=random_state)
    if name == "logistic":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            class_weight="balanced", max_iter=5000, random_state=random_state
        )
    raise ValueError(
        f"unknown estimator {name!r}; choose one of {list(ESTIMATOR_NAMES)} (or pass a "
        "scikit-learn estimator object to tilevision.fit)."
    )
