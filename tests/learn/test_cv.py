from __future__ import annotations

import dask.array as da
import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    ShuffleSplit,
    StratifiedGroupKFold,
    StratifiedKFold,
    cross_val_predict,
    cross_validate,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from tilevision.learn._cv import (
    cross_validate_table,
    grid_search_table,
    joblib_backend,
    stratified_folds,
)
from tilevision.learn._report import Report


def _pipeline(estimator=None):
    return Pipeline([
        ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
        ("scale", StandardScaler()),
        ("classify", estimator if estimator is not None else LogisticRegression()),
    ])  # fmt: skip


def _table(n=60, classes=("a", "b"), seed=0, nan=True):
    rng = np.random.default_rng(seed)
    y = np.asarray(classes)[np.arange(n) % len(classes)]
    codes = np.searchsorted(np.unique(y), y)
    X = rng.normal(size=(n, 4)) + codes[:, None] * np.array([1.0, 0.5, 0.0, 0.0])
    if nan:
        X[::5, 1] = np.nan
    return X, y


def _predictions(report):
    pred = report.to_dict()["predictions"]
    return np.asarray(pred["y_pred"]), np.asarray(pred["probabilities"])


@pytest.mark.parametrize("classes", [("benign", "malignant"), (0, 1, 2)])
def test_matches_sklearn_cross_validation(classes):
    X, y = _table(classes=classes)
    splitter = StratifiedKFold(5, shuffle=True, random_state=3)
    report = cross_validate_table(X, y, _pipeline(), random_state=3)
    proba = cross_val_predict(_pipeline(), X, y, cv=splitter, method="predict_proba")
    pred = cross_val_predict(_pipeline(), X, y, cv=splitter)
    got_pred, got_proba = _predictions(report)
    np.testing.assert_array_equal(got_pred, pred)
    np.testing.assert_allclose(got_proba, proba, rtol=1e-12)
    reference = Report.from_predictions(y, pred, proba, np.unique(y))
    assert report.metrics == pytest.approx(reference.metrics)
    assert report.kind == "cross-validation"
    assert report.n_folds == 5
    # per-fold scores, independently from scikit-learn's cross_validate
    scoring = ["accuracy", "balanced_accuracy"]
    scoring += ["roc_auc"] if len(classes) == 2 else ["roc_auc_ovr", "f1_macro"]
    ref = cross_validate(_pipeline(), X, y, cv=splitter, scoring=scoring)
    assert [f["accuracy"] for f in report.folds] == pytest.approx(ref["test_accuracy"])
    assert [f["balanced_accuracy"] for f in report.folds] == pytest.approx(
        ref["test_balanced_accuracy"]
    )
    auc = ref["test_roc_auc"] if len(classes) == 2 else ref["test_roc_auc_ovr"]
    assert [f["roc_auc"] for f in report.folds] == pytest.approx(auc)
    assert report.fold_mean["accuracy"] == pytest.approx(ref["test_accuracy"].mean())
    assert [f["n_test"] for f in report.folds] == [12] * 5
    assert report.extra["nan_values"] == 12
    assert report.extra["features_with_nan"] == 1
    assert report.extra["n_features"] == 4
    assert report.extra["estimator"] == "LogisticRegression"


def test_groups_never_split_and_match_sklearn():
    X, y = _table(n=80)
    groups = np.arange(80) // 4  # 20 patients of 4 samples, one class each
    y = np.where(groups % 2 == 0, "a", "b")
    report = cross_validate_table(X, y, _pipeline(), cv=4, groups=groups, extra={"tag": 1})
    splitter = StratifiedGroupKFold(4, shuffle=True, random_state=0)
    pred = cross_val_predict(_pipeline(), X, y, cv=splitter, groups=groups)
    np.testing.assert_array_equal(_predictions(report)[0], pred)
    assert report.extra["splitter"].startswith("StratifiedGroupKFold(n_splits=4")
    assert report.extra["tag"] == 1
    for train, test in splitter.split(X, y, groups):
        assert not set(groups[train]) & set(groups[test])


def test_splitter_objects():
    X, y = _table()
    report = cross_validate_table(X, y, _pipeline(), cv=KFold(3))
    np.testing.assert_array_equal(
        _predictions(report)[0], cross_val_predict(_pipeline(), X, y, cv=KFold(3))
    )
    assert report.n_folds == 3
    with pytest.raises(ValueError, match=r"do not partition the samples.*StratifiedKFold"):
        cross_validate_table(X, y, _pipeline(), cv=ShuffleSplit(3, random_state=0))
    with pytest.raises(TypeError, match="number of folds or a scikit-learn splitter"):
        cross_validate_table(X, y, _pipeline(), cv="five")


def test_class_missing_from_a_training_fold_gets_zero_probability():
    y = np.repeat(["a", "b", "c"], 4)
    X = np.arange(12.0)[:, None] + np.zeros((12, 2))
    report = cross_validate_table(X, y, LogisticRegression(), cv=KFold(3))  # fold 0 tests all "a"
    pred, proba = _predictions(report)
    np.testing.assert_array_equal(proba[:4, 0], 0.0)
    assert "a" not in pred[:4]
    assert report.per_class["a"]["recall"] == 0.0


def test_estimator_without_predict_proba():
    X, y = _table(nan=False)
    report = cross_validate_table(X, y, LinearSVC(), cv=3)
    assert np.isnan(report.metrics["roc_auc"])
    assert report.metrics["accuracy"] == pytest.approx(
        np.mean(cross_val_predict(LinearSVC(), X, y, cv=stratified_folds(y, cv=3)) == y)
    )


def test_fixed_random_state_is_reproducible():
    X, y = _table(classes=("x", "y", "z"))
    forest = RandomForestClassifier(n_estimators=15, random_state=0)
    one = cross_validate_table(X, y, _pipeline(forest), random_state=7)
    two = cross_validate_table(X, y, _pipeline(forest), random_state=7)
    assert one.to_dict() == two.to_dict()
    other = cross_validate_table(X, y, _pipeline(forest), random_state=8)
    assert other.to_dict()["predictions"] != one.to_dict()["predictions"]


def test_few_members_lower_the_number_of_folds():
    X, y = _table(n=30)
    y[:27] = "a"
    y[27:] = "b"  # three "b": three folds
    with pytest.warns(UserWarning, match=r"'b' has only 3 samples.*using 3 folds instead"):
        report = cross_validate_table(X, y, _pipeline(), cv=5)
    assert report.n_folds == 3
    groups = np.arange(30) // 2  # "b" spans groups 13 and 14 only
    with pytest.warns(UserWarning, match=r"'b' has only 2 groups.*using 2 folds instead"):
        report = cross_validate_table(X, y, _pipeline(), cv=5, groups=groups)
    assert report.n_folds == 2


def test_bad_input():
    X, y = _table(n=20)
    with pytest.raises(ValueError, match=r"got \(19,\) labels for 20 rows.*as long as X"):
        cross_validate_table(X, y[:19], _pipeline())
    with pytest.raises(ValueError, match=r"groups must hold one group per row.*patient ids"):
        cross_validate_table(X, y, _pipeline(), groups=np.arange(5))
    with pytest.raises(ValueError, match=r"2-D feature table.*reshape"):
        cross_validate_table(X[:, 0], y, _pipeline())
    with pytest.raises(ValueError, match=r"needs at least two classes.*\['a'\]"):
        cross_validate_table(X, np.full(20, "a"), _pipeline())
    lonely = y.copy()
    lonely[0] = "c"
    with pytest.raises(ValueError, match=r"\['c'\] have a single sample.*add samples or drop"):
        cross_validate_table(X, lonely, _pipeline())
    with pytest.raises(ValueError, match=r"needs at least 5 distinct groups.*holds 3.*cv=3"):
        cross_validate_table(X, y, _pipeline(), groups=np.arange(20) % 3)
    one_group = np.where(y == "b", 0, np.arange(20))  # all of "b" in a single group
    with pytest.raises(ValueError, match=r"\['b'\] have a single group.*from other groups"):
        cross_validate_table(X, y, _pipeline(), cv=3, groups=one_group)
    with pytest.raises(ValueError, match="at least 2 folds"):
        cross_validate_table(X, y, _pipeline(), cv=1)
    with pytest.raises(TypeError, match=r"lazy Dask collection.*compute"):
        cross_validate_table(da.from_array(X), y, _pipeline())
    with pytest.raises(TypeError, match=r"distributed.Client or None"):
        cross_validate_table(X, y, _pipeline(), client="tcp://localhost:8786")


def test_grid_search_scoring_and_reference():
    X, y = _table(classes=("a", "b", "c"))
    grid = {"classify__C": [0.01, 1.0]}
    search = grid_search_table(X, y, _pipeline(), grid, cv=3)
    ref = GridSearchCV(_pipeline(), grid, scoring="balanced_accuracy",
                       cv=StratifiedKFold(3, shuffle=True, random_state=0)).fit(X, y)  # fmt: skip
    assert search.scoring == "balanced_accuracy"
    assert search.best_params_ == ref.best_params_
    assert search.best_score_ == pytest.approx(ref.best_score_)
    X, y = _table()
    assert grid_search_table(X, y, _pipeline(), grid, cv=3).scoring == "roc_auc"


def test_joblib_backend_without_client():
    with joblib_backend(None) as n_jobs:
        assert n_jobs == 1
    with joblib_backend(None, 2) as n_jobs:
        assert n_jobs == 2


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=":0")  # fmt: skip
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def test_dask_cross_validation_equals_sequential_and_runs_on_cluster(client):
    from distributed import get_task_stream

    X, y = _table(classes=("a", "b", "c"))
    forest = RandomForestClassifier(n_estimators=10, random_state=0)
    sequential = cross_validate_table(X, y, _pipeline(forest), cv=4)
    with get_task_stream(client=client) as stream:
        on_dask = cross_validate_table(X, y, _pipeline(forest), cv=4, client=client)
    assert on_dask.to_dict() == sequential.to_dict()
    keys = [t["key"] for t in stream.data]
    assert len([k for k in keys if "_fit_fold" in str(k)]) == 4  # one task per fold


def test_dask_grid_search_equals_sequential(client):
    from distributed import get_task_stream

    X, y = _table()
    grid = {"classify__C": [0.01, 1.0]}
    sequential = grid_search_table(X, y, _pipeline(), grid, cv=3)
    with get_task_stream(client=client) as stream:
        on_dask = grid_search_table(X, y, _pipeline(), grid, cv=3, client=client)
    assert on_dask.best_params_ == sequential.best_params_
    np.testing.assert_array_equal(
        on_dask.cv_results_["mean_test_score"], sequential.cv_results_["mean_test_score"]
    )
    # every (parameter, fold) fit ran on the cluster: keys "batch_of__fit_and_score_<n>_calls-..."
    batches = [str(t["key"]) for t in stream.data if "_fit_and_score_" in str(t["key"])]
    assert sum(int(k.split("_fit_and_score_")[1].split("_")[0]) for k in batches) == 2 * 3
