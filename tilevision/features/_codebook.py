"""Bag of visual words: a codebook of tile-feature prototypes and per-image word histograms."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import dask
import dask.array as da
import numpy as np
import xarray as xr

from ._table import tile_feature_names as _feature_names
from ._table import tile_table as _table

__all__ = ["Codebook", "fit_codebook"]


@dataclass(frozen=True)
class Codebook:
    """Prototypes of standardised tile features (fitted by :func:`fit_codebook`).

    Attributes
    ----------
    features : tuple of str
        Tile feature names used, in order.
    mean, scale : numpy.ndarray
        Standardisation of each feature (from the training tiles).
    centers : numpy.ndarray
        ``(n_words, n_features)`` cluster centres in standardised units.
    """

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    centers: np.ndarray

    @property
    def n_words(self) -> int:
        return int(self.centers.shape[0])

    def _words(self, table: np.ndarray) -> np.ndarray:
        z = (np.asarray(table, dtype=np.float64) - self.mean) / self.scale
        z = np.where(np.isfinite(z), z, 0.0)
        d = ((z[:, None, :] - self.centers[None]) ** 2).sum(-1)
        return np.argmin(d, axis=1) if len(z) else np.zeros(0, dtype=np.int64)

    def _histogram(self, table: np.ndarray, valid: np.ndarray) -> np.ndarray:
        words = self._words(np.asarray(table)[np.asarray(valid, dtype=bool)])
        counts = np.bincount(words, minlength=self.n_words).astype(np.float64)
        return counts / counts.sum() if counts.sum() else np.full(self.n_words, np.nan)

    def histogram(self, tiles: xr.Dataset) -> xr.DataArray:
        """Fraction of valid tiles nearest to each word (lazy), over dim ``feature``.

        Examples
        --------
        >>> import numpy as np
        >>> from tilevision import Recipe, tile_features
        >>> img = np.random.default_rng(0).random((64, 64))
        >>> tiles = tile_features(img, Recipe(["intensity"], tile=16))
        >>> book = fit_codebook([tiles], n_words=2, random_state=0)
        >>> float(book.histogram(tiles).sum())
        1.0
        """
        missing = [f for f in self.features if f not in tiles]
        if missing:
            raise ValueError(
                f"these tiles lack the codebook's features {missing}; compute them with the "
                "recipe the codebook was fitted on."
            )
        table, valid = _table(tiles, self.features)
        hist = da.from_delayed(
            dask.delayed(self._histogram)(table, valid), shape=(self.n_words,), dtype=np.float64
        )
        names = [f"bovw.word_{i:02d}" for i in range(self.n_words)]
        return xr.DataArray(hist, dims=("feature",), coords={"feature": names})


def fit_codebook(
    tiles: Sequence[xr.Dataset],
    n_words: int = 16,
    *,
    features: Sequence[str] | None = None,
    random_state: int | None = 0,
    batch_size: int = 1024,
) -> Codebook:
    """Fit a codebook of ``n_words`` tile prototypes (MiniBatchKMeans) on training tiles.

    This computes the tile features of ``tiles`` (it is a fit: you asked for it).

    Parameters
    ----------
    tiles : sequence of xarray.Dataset
        Tile features of the training images (:func:`tilevision.tile_features`).
    n_words : int, optional
        Codebook size.
    features : sequence of str, optional
        Tile features to use (default: all per-tile features of the first Dataset).
    random_state : int, optional
        Seed of the k-means initialisation.
    batch_size : int, optional
        MiniBatchKMeans batch size.

    Returns
    -------
    Codebook

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Recipe, tile_features
    >>> img = np.random.default_rng(1).random((64, 64))
    >>> book = fit_codebook([tile_features(img, Recipe(["intensity"], tile=16))], n_words=3)
    >>> book.n_words, book.features[:1]
    (3, ('intensity.count',))
    """
    from sklearn.cluster import MiniBatchKMeans

    if isinstance(tiles, xr.Dataset):
        tiles = [tiles]
    if not tiles:
        raise ValueError("fit_codebook needs at least one tile Dataset.")
    if not isinstance(n_words, int) or n_words < 1:
        raise ValueError(f"n_words must be a positive integer, got {n_words!r}.")
    names = tuple(features) if features is not None else tuple(_feature_names(tiles[0]))
    if not names:
        raise ValueError("no per-tile features to fit a codebook on.")
    tables = [_table(t, names) for t in tiles]
    computed = dask.compute(*tables)
    rows = [np.asarray(tab)[np.asarray(val, dtype=bool)] for tab, val in computed]
    data = np.concatenate(rows) if rows else np.empty((0, len(names)))
    data = data[np.isfinite(data).all(axis=1)]
    if len(data) < n_words:
        raise ValueError(
            f"only {len(data)} valid tiles with finite features to fit {n_words} words; use "
            "more images, smaller tiles or fewer words."
        )
    mean = data.mean(axis=0)
    scale = data.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    kmeans = MiniBatchKMeans(
        n_clusters=n_words, random_state=random_state, batch_size=batch_size, n_init=3
    ).fit((data - mean) / scale)
    return Codebook(names, mean, scale, np.asarray(kmeans.cluster_centers_, dtype=np.float64))
