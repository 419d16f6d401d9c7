"""Out-of-core training: mini-batch SGD streamed over the row chunks of a Dask feature table.

For tile-level training on millions of tiles: the table is never gathered on one machine.
One tree reduction on the cluster gives the scaling statistics and class counts, then each
epoch computes the row chunks one at a time (the next one in flight while the current one
is fitted) and feeds them to ``estimator.partial_fit``.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import reduce
from typing import Any

import dask
import dask.array as da
import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

__all__ = ["fit_incremental"]

#: rows per chunk when a NumPy table is wrapped and ``batch_rows`` is not given
DEFAULT_NUMPY_ROWS = 65_536
#: how many partial statistics one task of the tree reduction combines
_FAN_IN = 8


def _kept(xb: Any, yb: Any, mb: Any) -> tuple[np.ndarray, np.ndarray]:
    """The rows of a chunk that ``sample_mask`` keeps (all rows without a mask)."""
    xb, yb = np.asarray(xb, dtype=np.float64), np.asarray(yb)
    if mb is None:
        return xb, yb
    keep = np.asarray(mb, dtype=bool)
    return xb[keep], yb[keep]


def _chunk_stats(xb: np.ndarray, yb: np.ndarray, mb: Any = None) -> tuple[np.ndarray, ...]:
    """Count, mean and sum of squared deviations per feature (NaN ignored); label counts."""
    xb, yb = _kept(xb, yb, mb)
    if np.isinf(xb).any():
        raise ValueError(
            "X contains infinite values; replace them with NaN (imputed) or finite values."
        )
    seen = ~np.isnan(xb)
    count = seen.sum(axis=0).astype(np.float64)
    total = np.where(seen, xb, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    dev = np.where(seen, xb - mean, 0.0)
    labels, counts = np.unique(np.asarray(yb), return_counts=True)
    return count, mean, (dev * dev).sum(axis=0), labels, counts


def _combine(a: tuple[np.ndarray, ...], b: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Merge two partial statistics (Chan, Golub and LeVeque's pairwise update)."""
    (na, ma, m2a, la, ca), (nb, mb, m2b, lb, cb) = a, b
    n = na + nb
    frac = np.divide(nb, n, out=np.zeros_like(n), where=n > 0)
    delta = mb - ma
    labels, inverse = np.unique(np.concatenate([la, lb]), return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=np.concatenate([ca, cb]))
    return n, ma + delta * frac, m2a + m2b + delta * delta * na * frac, labels, counts


def _combine_many(*parts: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    return reduce(_combine, parts)


def _scaler(count: np.ndarray, mean: np.ndarray, m2: np.ndarray) -> StandardScaler:
    """A fitted StandardScaler from streamed statistics (what ``fit`` on the whole table gives)."""
    var = np.divide(m2, count, out=np.zeros_like(m2), where=count > 0)
    # scikit-learn's test for near-constant features: scale 1 where var is rounding noise
    eps = np.finfo(np.float64).eps
    constant = var <= count * eps * var + (count * mean * eps) ** 2
    scaler = StandardScaler()
    scaler.mean_, scaler.var_ = mean, var
    scaler.scale_ = np.where(constant, 1.0, np.sqrt(var))
    n_seen = count.astype(np.int64)
    scaler.n_samples_seen_ = int(n_seen[0]) if np.all(n_seen == n_seen[0]) else n_seen
    scaler.n_features_in_ = mean.size
    return scaler


def _as_table(X: Any, y: Any, batch_rows: int | None) -> tuple[da.Array, da.Array]:
    """Validate and align: X chunked along rows only, y chunked like X's rows."""
    if not isinstance(X, da.Array):
        X = np.asarray(X)
        if X.ndim == 2:
            X = da.from_array(X, chunks=(batch_rows or DEFAULT_NUMPY_ROWS, -1))
    if X.ndim != 2:
        raise ValueError(
            f"X must be a 2-D (n_samples, n_features) table, got {X.ndim} dimension(s); "
            "reshape it, e.g. X.reshape(len(X), -1)."
        )
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError("X has unknown chunk sizes; call X.compute_chunk_sizes() first.")
    if X.shape[1] == 0:
        raise ValueError("X has no feature columns.")
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == bool):
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}; encode features as floats.")
    if len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    if not isinstance(y, da.Array):
        y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D (one label per row), got shape {y.shape}; use y.ravel().")
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"y has {y.shape[0]} labels but X has {X.shape[0]} rows; give one label per row."
        )
    if isinstance(y, da.Array):
        y = y.rechunk((X.chunks[0],)) if y.chunks[0] != X.chunks[0] else y
    else:
        y = da.from_array(y, chunks=(X.chunks[0],))
    return X, y


def _check_estimator(estimator: Any, random_state: int | None, weighted: bool) -> Any:
    if estimator is None:
        return SGDClassifier(loss="log_loss", alpha=1e-4, random_state=random_state)
    if not hasattr(estimator, "partial_fit") or not is_classifier(estimator):
        raise TypeError(
            f"{type(estimator).__name__} cannot be trained incrementally (it needs a "
            "classifier's partial_fit); use an SGDClassifier (or another classifier with "
            "partial_fit), or fit in memory with tilevision.fit."
        )
    if getattr(estimator, "class_weight", None) == "balanced":
        raise ValueError(
            "partial_fit does not support class_weight='balanced' on the estimator; leave it "
            "unset and pass class_weight='balanced' to fit_incremental instead."
        )
    if weighted and "sample_weight" not in inspect.signature(estimator.partial_fit).parameters:
        raise TypeError(
            f"{type(estimator).__name__}.partial_fit takes no sample_weight; pass "
            "class_weight=None to fit_incremental."
        )
    return clone(estimator)


def _class_weights(
    classes: np.ndarray, labels: np.ndarray, counts: np.ndarray, class_weight: Any
) -> np.ndarray | None:
    """One weight per class of ``classes`` (sorted), or None for unweighted."""
    if class_weight is None:
        return None
    if isinstance(class_weight, Mapping):
        return np.array([float(class_weight.get(c, 1.0)) for c in classes.tolist()])
    if class_weight != "balanced":
        raise ValueError(f"class_weight must be 'balanced', None or a dict, got {class_weight!r}.")
    per_class = np.zeros(classes.size)
    per_class[np.searchsorted(classes, labels)] = counts
    safe = np.where(per_class > 0, per_class, 1.0)
    return np.where(per_class > 0, counts.sum() / (classes.size * safe), 1.0)


def _stream(blocks: Sequence[tuple[Any, ...]], client: Any) -> Iterator[tuple[Any, ...]]:
    """Compute ``blocks`` in order on the cluster, one in flight while the caller uses one."""
    pool = None if client is not None else ThreadPoolExecutor(max_workers=1)

    def submit(block: tuple[Any, ...]) -> Any:
        if client is not None:
            return client.compute(list(block))
        return pool.submit(dask.compute, *block)  # type: ignore[union-attr]

    def result(handle: Any) -> tuple[Any, ...]:
        return tuple(client.gather(handle) if client is not None else handle.result())

    pending = submit(blocks[0]) if blocks else None
    try:
        for i in range(len(blocks)):
            current = pending
            pending = submit(blocks[i + 1]) if i + 1 < len(blocks) else None
            yield result(current)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        elif pending is not None:
            client.cancel(pending)


def fit_incremental(
    X: Any,
    y: Any,
    *,
    classes: Sequence[Any] | np.ndarray | None = None,
    estimator: Any = None,
    epochs: int = 5,
    batch_rows: int | None = None,
    random_state: int | None = 0,
    client: Any = None,
    class_weight: str | Mapping[Any, float] | None = "balanced",
    sample_mask: Any = None,
) -> Pipeline:
    """Train a classifier by mini-batch SGD streamed over the row chunks of a Dask table.

    The table is never gathered: one tree reduction on the cluster gives the scaling
    statistics and class counts (one computation), then each of ``epochs`` passes visits the
    row chunks in a shuffled order, computing one chunk at a time on the cluster (the next
    in flight while the current one is fitted) and feeding it to ``estimator.partial_fit``
    in this process. This computes ``X`` and ``y`` (it is a fit: you asked for it).

    Parameters
    ----------
    X : dask.array.Array or numpy.ndarray
        ``(n_samples, n_features)`` feature table, chunked along rows (columns are merged
        into one chunk). NaN is allowed: it is ignored by the statistics and replaced by the
        feature mean (0 after scaling). A NumPy table is cut into chunks of ``batch_rows``.
    y : dask.array.Array or numpy.ndarray
        ``(n_samples,)`` labels (rechunked to match ``X``'s row chunks).
    classes : array-like, optional
        All class labels. Default: the labels found in ``y`` by the statistics pass.
    estimator : classifier with ``partial_fit``, optional
        Cloned before training. Default ``SGDClassifier(loss="log_loss", alpha=1e-4)``
        (logistic regression: ``predict_proba`` works).
    epochs : int, optional
        Passes over the table.
    batch_rows : int, optional
        Largest mini-batch; larger chunks are split. Default: one mini-batch per chunk.
    random_state : int, optional
        Seed of the chunk order (epoch ``e`` visits chunks in the ``e``-th
        ``numpy.random.default_rng(random_state).permutation(n_chunks)``) and of the default
        estimator.
    client : distributed.Client, optional
        Cluster to compute on. Default: the current Dask scheduler.
    class_weight : "balanced", dict or None, optional
        ``"balanced"`` weights each row by ``n_samples / (n_classes * count_of_its_class)``
        (as scikit-learn does), passed to ``partial_fit`` as ``sample_weight``.
    sample_mask : dask.array.Array or numpy.ndarray, optional
        ``(n_samples,)`` booleans: only the rows where it is True are used (e.g. the valid
        tiles of a tile table); filtered inside each chunk's task.

    Returns
    -------
    sklearn.pipeline.Pipeline
        Fitted ``[("scale", StandardScaler), ("impute", SimpleImputer), ("classify", ...)]``
        that predicts on NumPy tables. Its ``class_counts_`` attribute holds the number of
        training rows per class (``{label: count}``).

    Examples
    --------
    >>> import dask.array as da
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=600, random_state=0)
    >>> model = fit_incremental(da.from_array(X, chunks=(200, -1)), y, epochs=3)
    >>> model.predict_proba(X[:4]).shape
    (4, 2)
    >>> bool((model.predict(X) == y).mean() > 0.8)
    True
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}.")
    if batch_rows is not None and (not isinstance(batch_rows, int | np.integer) or batch_rows < 1):
        raise ValueError(f"batch_rows must be a positive integer or None, got {batch_rows!r}.")
    X, y = _as_table(X, y, batch_rows)
    estimator = _check_estimator(estimator, random_state, class_weight is not None)
    xs = list(X.to_delayed(optimize_graph=False).ravel())
    ys = list(y.to_delayed(optimize_graph=False).ravel())
    ms: list[Any] = [None] * len(xs)
    if sample_mask is not None:
        _, mask = _as_table(X, sample_mask, None)
        if mask.dtype != bool:
            raise TypeError(f"sample_mask must hold booleans, got dtype {mask.dtype}.")
        ms = list(mask.to_delayed(optimize_graph=False).ravel())

    # pass 1: statistics and class counts by a tree reduction; only small vectors come back
    parts = [dask.delayed(_chunk_stats, pure=True)(xb, yb, mb) for xb, yb, mb in zip(xs, ys, ms)]
    while len(parts) > 1:
        step = dask.delayed(_combine_many, pure=True)
        parts = [step(*parts[i : i + _FAN_IN]) for i in range(0, len(parts), _FAN_IN)]
    stats = client.compute(parts[0]).result() if client is not None else dask.compute(parts[0])[0]
    count, mean, m2, labels, counts = stats
    classes = labels if classes is None else np.unique(np.asarray(classes))
    if classes.size < 2 or labels.size < 2:
        found = labels.tolist()
        raise ValueError(
            f"classification needs at least two classes; y holds {found}. Label rows of "
            "another class too."
        )
    unknown = labels[~np.isin(labels, classes)]
    if unknown.size:
        raise ValueError(f"y holds labels {unknown.tolist()} missing from classes; add them.")
    weights = _class_weights(classes, labels, counts, class_weight)
    scaler = _scaler(count, mean, m2)
    imputer = SimpleImputer(strategy="constant", fill_value=0.0, keep_empty_features=True)
    imputer.fit(np.zeros((1, X.shape[1])))

    # passes 2..: shuffled chunk order per epoch, one chunk in memory plus one in flight
    rng = np.random.default_rng(random_state)
    order = [int(i) for _ in range(epochs) for i in rng.permutation(len(xs))]
    blocks = [(xs[i], ys[i]) if ms[i] is None else (xs[i], ys[i], ms[i]) for i in order]
    with contextlib.closing(_stream(blocks, client)) as chunks:
        for block in chunks:
            xb, yb = _kept(*block) if len(block) == 3 else _kept(*block, None)
            xb = imputer.transform(scaler.transform(xb))
            step_rows = batch_rows or max(len(yb), 1)
            for start in range(0, len(yb), step_rows):
                xm, ym = xb[start : start + step_rows], yb[start : start + step_rows]
                w = None if weights is None else weights[np.searchsorted(classes, ym)]
                kwargs = {} if w is None else {"sample_weight": w}
                estimator.partial_fit(xm, ym, classes=classes, **kwargs)
    pipeline = Pipeline([("scale", scaler), ("impute", imputer), ("classify", estimator)])
    pipeline.class_counts_ = {
        c.item() if isinstance(c, np.generic) else c: int(n) for c, n in zip(labels, counts)
    }
    return pipeline
