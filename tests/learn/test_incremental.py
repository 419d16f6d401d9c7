"""Out-of-core mini-batch SGD over the row chunks of a Dask table (issue 5, item 4)."""

from __future__ import annotations

import threading
from typing import ClassVar

import dask
import dask.array as da
import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import SGDClassifier
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_class_weight

from tilevision.learn._incremental import fit_incremental

CHUNK = 2_000


def _problem(n: int = 20_000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(
        n_samples=n,
        n_features=8,
        n_informative=4,
        weights=[0.7, 0.3],
        n_clusters_per_class=1,
        class_sep=2.0,
        random_state=seed,
    )
    # offsets and spreads far from standard, so that a wrong scaler shows
    return X * np.arange(1, 9) + 100.0 * np.arange(8), y


def _reference(X, y, order, batch_rows=None, random_state=0):
    """SGDClassifier.partial_fit on NumPy mini-batches, scaled by a whole-array StandardScaler."""
    scaler = StandardScaler().fit(X)
    classes = np.unique(y)
    cw = compute_class_weight("balanced", classes=classes, y=y)
    clf = SGDClassifier(loss="log_loss", alpha=1e-4, random_state=random_state)
    for i in order:
        xb, yb = scaler.transform(X[i * CHUNK : (i + 1) * CHUNK]), y[i * CHUNK : (i + 1) * CHUNK]
        step = batch_rows or len(yb)
        for s in range(0, len(yb), step):
            ym = yb[s : s + step]
            clf.partial_fit(xb[s : s + step], ym, classes=classes, sample_weight=cw[ym])
    return clf


def _recording(X: np.ndarray, log: list[int]) -> da.Array:
    """X as a Dask table whose chunk tasks record their block index when they run."""
    lock = threading.Lock()

    def record(block, block_id=None):
        with lock:
            log.append(block_id[0])
        return block

    return da.from_array(X, chunks=(CHUNK, -1)).map_blocks(record, dtype=X.dtype)


# --- (a) streamed statistics ----------------------------------------------------------------


@pytest.mark.parametrize("rows", [CHUNK, (1, 4999, 3000, 7000, 5000)])
def test_streamed_scaler_equals_whole_array_fit(rows):
    X, y = _problem()
    Xd = da.from_array(X, chunks=(rows, -1))
    model = fit_incremental(Xd, y, epochs=1)
    ref = StandardScaler().fit(X)
    got = model.named_steps["scale"]
    np.testing.assert_allclose(got.mean_, ref.mean_, rtol=1e-10)
    np.testing.assert_allclose(got.var_, ref.var_, rtol=1e-10)
    np.testing.assert_allclose(got.scale_, ref.scale_, rtol=1e-10)
    assert got.n_samples_seen_ == ref.n_samples_seen_ == len(X)
    np.testing.assert_allclose(got.transform(X[:50]), ref.transform(X[:50]), atol=1e-9)


def test_constant_feature_gets_unit_scale_like_sklearn():
    X, y = _problem(4_000)
    X[:, 3] = 7.25
    model = fit_incremental(da.from_array(X, chunks=(1_000, -1)), y, epochs=1)
    ref = StandardScaler().fit(X)
    np.testing.assert_allclose(model.named_steps["scale"].scale_, ref.scale_, rtol=1e-10)
    assert model.named_steps["scale"].scale_[3] == 1.0


# --- (b) same model as partial_fit on the same NumPy mini-batches ----------------------------


@pytest.mark.parametrize("batch_rows", [None, 700])
def test_equals_numpy_partial_fit_in_the_same_order(batch_rows):
    X, y = _problem()
    X_test, y_test = X[-4_000:], y[-4_000:]  # held out
    X_train, y_train = X[:-4_000], y[:-4_000]
    n_chunks = len(X_train) // CHUNK
    log: list[int] = []
    Xd = _recording(X_train, log)
    model = fit_incremental(
        Xd, da.from_array(y_train, chunks=CHUNK), epochs=2, batch_rows=batch_rows
    )
    order = log[n_chunks:]  # the first n_chunks records are the statistics pass
    assert sorted(order[:n_chunks]) == sorted(order[n_chunks:]) == list(range(n_chunks))
    assert order != sorted(order)  # shuffled
    expected = np.random.default_rng(0)
    assert order == [int(i) for _ in range(2) for i in expected.permutation(n_chunks)]

    ref = _reference(X_train, y_train, order, batch_rows=batch_rows)
    clf = model.named_steps["classify"]
    np.testing.assert_allclose(clf.coef_, ref.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(clf.intercept_, ref.intercept_, rtol=1e-8, atol=1e-10)
    accuracy = (model.predict(X_test) == y_test).mean()
    assert accuracy > 0.9
    proba = model.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_reproducible_and_order_depends_on_random_state():
    X, y = _problem(8_000)
    Xd = da.from_array(X, chunks=(1_000, -1))
    a = fit_incremental(Xd, y, epochs=2, random_state=3).named_steps["classify"].coef_
    b = fit_incremental(Xd, y, epochs=2, random_state=3).named_steps["classify"].coef_
    c = fit_incremental(Xd, y, epochs=2, random_state=4).named_steps["classify"].coef_
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_numpy_input_and_string_labels():
    X, y = _problem(6_000)
    names = np.array(["benign", "tumour"])[y]
    model = fit_incremental(X, names, batch_rows=1_000, epochs=3)
    assert list(model.classes_) == ["benign", "tumour"]
    assert (model.predict(X) == names).mean() > 0.9


# --- (c) never gathers the table --------------------------------------------------------------


class SpyScheduler:
    """Synchronous scheduler that records the size of everything each computation returns."""

    def __init__(self) -> None:
        self.calls: list[int] = []  # elements returned per computation
        self.started = 0
        self.lock = threading.Lock()

    def __call__(self, dsk, keys, **kwargs):
        with self.lock:
            self.started += 1
        results = dask.get(dsk, keys, **kwargs)
        with self.lock:
            self.calls.append(self._size(results))
        return results

    def _size(self, obj) -> int:
        if isinstance(obj, np.ndarray):
            return obj.size
        if isinstance(obj, list | tuple):
            return sum(self._size(o) for o in obj)
        return 1


class WatchedSGD(SGDClassifier):
    """Records, at each partial_fit, how many computations the spy has started."""

    spy: SpyScheduler | None = None
    started_at_fit: ClassVar[list[int]] = []

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        self.started_at_fit.append(self.spy.started)
        return super().partial_fit(X, y, classes=classes, sample_weight=sample_weight)


def test_no_computation_returns_more_than_one_chunk(monkeypatch):
    X, y = _problem()
    n_chunks, n_features, epochs = len(X) // CHUNK, X.shape[1], 3
    log: list[int] = []
    spy = SpyScheduler()
    monkeypatch.setattr(WatchedSGD, "spy", spy)
    monkeypatch.setattr(WatchedSGD, "started_at_fit", [])
    with dask.config.set(scheduler=spy):
        fit_incremental(
            _recording(X, log),
            da.from_array(y, chunks=CHUNK),
            epochs=epochs,
            estimator=WatchedSGD(loss="log_loss", random_state=0),
        )
    # at the k-th mini-batch: the statistics pass, chunks 0..k, and at most one in flight
    started = np.array(WatchedSGD.started_at_fit)
    assert len(started) == epochs * n_chunks
    assert np.all(started <= np.arange(len(started)) + 3)
    # one statistics pass + one computation per chunk and epoch, nothing else
    assert len(spy.calls) == 1 + epochs * n_chunks
    # the X and y of one chunk at most (the statistics are a few feature-length vectors)
    assert max(spy.calls) <= CHUNK * (n_features + 1)
    assert spy.calls[0] < 10 * n_features
    # every chunk task ran once per pass
    assert np.bincount(log).tolist() == [1 + epochs] * n_chunks


def test_spy_catches_a_gathered_table():
    # the bound above can fail: gathering the table (as np.asarray would) exceeds it
    X, _ = _problem()
    spy = SpyScheduler()
    with dask.config.set(scheduler=spy):
        da.from_array(X, chunks=(CHUNK, -1)).compute()
    assert max(spy.calls) > CHUNK * (X.shape[1] + 1)


# --- (d) NaN features -------------------------------------------------------------------------


def test_nan_features_are_ignored_by_statistics_and_imputed_after_scaling():
    X, y = _problem(10_000)
    rng = np.random.default_rng(5)
    X[rng.random(X.shape) < 0.1] = np.nan
    X[:CHUNK, 2] = np.nan  # one chunk without any value of feature 2
    model = fit_incremental(da.from_array(X, chunks=(CHUNK, -1)), y, epochs=2)
    ref = StandardScaler().fit(X)  # scikit-learn ignores NaN too
    scale = model.named_steps["scale"]
    np.testing.assert_allclose(scale.mean_, ref.mean_, rtol=1e-10)
    np.testing.assert_allclose(scale.var_, ref.var_, rtol=1e-10)
    np.testing.assert_array_equal(scale.n_samples_seen_, ref.n_samples_seen_)
    z = model[:-1].transform(X)
    nan = np.isnan(X)
    assert not np.isnan(z).any()
    np.testing.assert_array_equal(z[nan], 0.0)  # the feature mean, in scaled units
    np.testing.assert_allclose(z[~nan], ref.transform(X)[~nan], atol=1e-9)
    assert (model.predict(X) == y).mean() > 0.85


def test_all_nan_feature_is_kept_and_imputed():
    X, y = _problem(4_000)
    X[:, 0] = np.nan
    model = fit_incremental(da.from_array(X, chunks=(1_000, -1)), y, epochs=1)
    scale = model.named_steps["scale"]
    assert (scale.mean_[0], scale.scale_[0]) == (0.0, 1.0)
    z = model[:-1].transform(X)
    assert z.shape == X.shape
    np.testing.assert_array_equal(z[:, 0], 0.0)


# --- (e) on a distributed cluster ---------------------------------------------------------------


def test_distributed_client_gives_the_same_model():
    distributed = pytest.importorskip("distributed")
    X, y = _problem(8_000)
    Xd, yd = da.from_array(X, chunks=(1_000, -1)), da.from_array(y, chunks=1_000)
    local = fit_incremental(Xd, yd, epochs=2).named_steps["classify"]
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        remote = fit_incremental(Xd, yd, epochs=2, client=client)
    clf = remote.named_steps["classify"]
    np.testing.assert_allclose(clf.coef_, local.coef_, rtol=1e-12)
    np.testing.assert_allclose(clf.intercept_, local.intercept_, rtol=1e-12)


# --- options ----------------------------------------------------------------------------------


def test_class_weight_none_and_dict_and_explicit_classes():
    X, y = _problem(4_000)
    Xd = da.from_array(X, chunks=(1_000, -1))
    plain = fit_incremental(Xd, y, epochs=1, class_weight=None).named_steps["classify"]
    ones = fit_incremental(Xd, y, epochs=1, class_weight={0: 1.0, 1: 1.0})
    np.testing.assert_allclose(ones.named_steps["classify"].coef_, plain.coef_, rtol=1e-12)
    three = fit_incremental(Xd, y, classes=[0, 1, 2], epochs=1)
    assert list(three.classes_) == [0, 1, 2]


def test_other_partial_fit_estimator_is_cloned():
    X, y = _problem(4_000)
    est = SGDClassifier(loss="modified_huber", random_state=1)
    model = fit_incremental(X, y, estimator=est, batch_rows=1_000, epochs=2)
    assert not hasattr(est, "coef_")  # the caller's estimator is untouched
    assert (model.predict(X) == y).mean() > 0.85


def test_y_rechunked_to_match_x():
    X, y = _problem(4_000)
    Xd = da.from_array(X, chunks=(1_000, -1))
    a = fit_incremental(Xd, da.from_array(y, chunks=1_000), epochs=1)
    b = fit_incremental(Xd, da.from_array(y, chunks=700), epochs=1)
    np.testing.assert_array_equal(a[-1].coef_, b[-1].coef_)
    Xc = da.from_array(X, chunks=(1_000, 3))  # columns split: merged
    c = fit_incremental(Xc, y, epochs=1)
    np.testing.assert_array_equal(a[-1].coef_, c[-1].coef_)


# --- (f) bad input ----------------------------------------------------------------------------


@pytest.fixture
def small():
    X, y = _problem(400)
    return da.from_array(X, chunks=(100, -1)), y


def test_x_not_2d(small):
    with pytest.raises(ValueError, match=r"X must be a 2-D.*reshape"):
        fit_incremental(np.zeros((4, 2, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="X must be a 2-D"):
        fit_incremental(small[0][:, 0], small[1])


def test_y_length_or_shape_mismatch(small):
    X, y = small
    with pytest.raises(ValueError, match="y has 399 labels but X has 400 rows"):
        fit_incremental(X, y[:-1])
    with pytest.raises(ValueError, match=r"y must be 1-D.*ravel"):
        fit_incremental(X, y[:, None])


def test_single_class(small):
    X, _ = small
    with pytest.raises(ValueError, match=r"needs at least two classes.*another class"):
        fit_incremental(X, np.ones(400, dtype=int))
    with pytest.raises(ValueError, match="needs at least two classes"):
        fit_incremental(X, np.ones(400, dtype=int), classes=[0, 1])


def test_labels_missing_from_classes(small):
    X, y = small
    with pytest.raises(ValueError, match=r"labels \[1\] missing from classes; add them"):
        fit_incremental(X, y, classes=[0, 5])


def test_estimator_without_partial_fit(small):
    with pytest.raises(TypeError, match=r"use an SGDClassifier.*or fit in memory"):
        fit_incremental(*small, estimator=RandomForestClassifier())


def test_estimator_with_balanced_class_weight(small):
    with pytest.raises(ValueError, match="pass class_weight='balanced' to fit_incremental"):
        fit_incremental(*small, estimator=SGDClassifier(class_weight="balanced"))


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True])
def test_bad_epochs(small, epochs):
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        fit_incremental(*small, epochs=epochs)


def test_bad_batch_rows_and_class_weight(small):
    with pytest.raises(ValueError, match="batch_rows must be a positive integer"):
        fit_incremental(*small, batch_rows=0)
    with pytest.raises(ValueError, match="class_weight must be 'balanced', None or a dict"):
        fit_incremental(*small, class_weight="auto")


def test_infinite_features_and_unknown_chunks(small):
    X, y = small
    bad = X.compute()
    bad[3, 1] = np.inf
    with pytest.raises(ValueError, match="infinite values; replace them with NaN"):
        fit_incremental(da.from_array(bad, chunks=(100, -1)), y)
    with pytest.raises(ValueError, match=r"unknown chunk sizes.*compute_chunk_sizes"):
        fit_incremental(X[X[:, 0] > -np.inf], y)
    with pytest.raises(TypeError, match="X must hold numbers"):
        fit_incremental(np.array([["a", "b"], ["c", "d"]]), [0, 1])
