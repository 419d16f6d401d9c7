"""``Model``: a scikit-learn classifier of images that carries the Recipe of its features."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr
from sklearn.base import BaseEstimator, ClassifierMixin, clone

from .._version import __version__
from ..features import Recipe, tile_features
from ..features._engine import TILE_DIMS
from ..features._table import tile_table
from ._extract import FeatureTable, descriptor_table, resolve_recipe, tile_rows
from ._inputs import as_image_list, as_labels, load_image, split_label_images
from ._tile_labels import TILE_RULES

__all__ = ["AGGREGATES", "LEVELS", "Model", "default_estimator", "default_pipeline"]

#: what one model row is
LEVELS = ("image", "tile")
#: how tile probabilities become an image's probabilities
AGGREGATES = ("mean", "topk", "max")


def default_estimator(random_state: int | None = 0) -> Any:
    """The default classifier for small tabular data: a class-balanced random forest.

    Examples
    --------
    >>> default_estimator().class_weight
    'balanced_subsample'
    """
    from sklearn.ensemble import RandomForestClassifier

    return RandomForestClassifier(
        n_estimators=500,
        min_samples_leaf=2,
        class_weight="balanced_subsample",
        random_state=random_state,
        n_jobs=-1,
    )


def default_pipeline(estimator: Any = None, random_state: int | None = 0) -> Any:
    """Median imputer (NaN features) → scaler → ``estimator`` (:func:`default_estimator`).

    Examples
    --------
    >>> [name for name, _ in default_pipeline().steps]
    ['impute', 'scale', 'classify']
    """
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    estimator = default_estimator(random_state) if estimator is None else clone(estimator)
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("classify", estimator),
        ]
    )


def check_classes(y: np.ndarray, what: str = "labels") -> None:
    """At least two classes, or a ValueError that says so."""
    classes = np.unique(y)
    if len(classes) < 2:
        found = classes.tolist()
        raise ValueError(
            f"the {what} hold a single class {found}; a classifier needs at least two "
            "classes: add images of another class."
        )


def _json_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class Model(ClassifierMixin, BaseEstimator):
    """Classify images (or their tiles) from tile features: Recipe → descriptor → Pipeline.

    A scikit-learn estimator whose ``X`` is a list of images (paths, DataArrays, NumPy
    or Dask arrays; or an array stacked along its first axis): it composes with
    ``cross_val_score`` and ``GridSearchCV`` (parameters ``estimator__…`` reach the
    classifier). Fitting computes the features of all images together on the
    current Dask scheduler (or ``client``) and fits an imputer + scaler + estimator
    :class:`~sklearn.pipeline.Pipeline`. The recipe travels with the model, so
    prediction computes the same features.

    Parameters
    ----------
    recipe : Recipe, optional
        The features (default: :meth:`Recipe.default` for the images' dimensionality).
    estimator : scikit-learn classifier, optional
        Default: :func:`default_estimator` (class-balanced random forest).
    level : {"image", "tile"}, optional
        ``"image"``: one row per image (its descriptor). ``"tile"``: one row per valid
        tile; tile labels come from label images given as ``y`` (one per image, read
        with ``tile_rule``) or are the image's label (multiple-instance); an image's
        decision aggregates its tiles' probabilities.
    tile_rule : {"majority", "any"}, optional
        Tile label from a label image: most frequent label, or 1 if any pixel is non-zero.
    aggregate : {"mean", "topk", "max"}, optional
        Image probabilities from tile probabilities, per class: the mean over valid
        tiles, the mean of the ``top_k`` largest, or the largest; then normalised.
    top_k : int, optional
        Tiles averaged by ``aggregate="topk"``.
    incremental : bool, optional
        Tile level only: train out of core for millions of tiles. The tile rows are
        computed once into a Zarr table in a scratch folder (``fit(..., scratch=)``),
        then the estimator (default: logistic ``SGDClassifier``; it needs
        ``partial_fit``) is trained by mini-batch SGD streamed over its row chunks
        (:func:`tilevision.learn.fit_incremental`); the rows are never gathered.
    epochs : int, optional
        Passes over the rows when ``incremental``.
    random_state : int, optional
        Seed of the default estimator (and of the chunk order when ``incremental``).

    Attributes
    ----------
    pipeline_ : sklearn.pipeline.Pipeline
    classes_ : numpy.ndarray
    feature_names_ : list of str
    recipe_ : Recipe
    ndim_ : int
    imputed_ : dict
        Features that had NaN in training, and how many rows were imputed.
    training_ : dict
        Rows, classes and training accuracy.

    Examples
    --------
    >>> import numpy as np
    >>> from tilevision import Model, Recipe
    >>> rng = np.random.default_rng(0)
    >>> dark, bright = rng.random((6, 16, 16)), rng.random((6, 16, 16)) + 1
    >>> model = Model(Recipe(["intensity"], tile=8)).fit(
    ...     np.concatenate([dark, bright]), [0] * 6 + [1] * 6)
    >>> model.predict(np.stack([dark[0] + 0.05, bright[0] - 0.05])).tolist()
    [0, 1]
    """

    def __init__(
        self,
        recipe: Recipe | None = None,
        estimator: Any = None,
        *,
        level: str = "image",
        tile_rule: str = "majority",
        aggregate: str = "mean",
        top_k: int = 5,
        incremental: bool = False,
        epochs: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.recipe = recipe
        self.estimator = estimator
        self.level = level
        self.tile_rule = tile_rule
        self.aggregate = aggregate
        self.top_k = top_k
        self.incremental = incremental
        self.epochs = epochs
        self.random_state = random_state

    # ------------------------------------------------------------------ checks

    def _check_params(self) -> None:
        for name, value, valid in (
            ("level", self.level, LEVELS),
            ("tile_rule", self.tile_rule, TILE_RULES),
            ("aggregate", self.aggregate, AGGREGATES),
        ):
            if value not in valid:
                raise ValueError(f"unknown {name} {value!r}; choose one of {list(valid)}.")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 1:
            raise ValueError(f"top_k must be a positive integer, got {self.top_k!r}.")
        if self.incremental and self.level != "tile":
            raise ValueError(
                "incremental training streams tile rows: use it with level='tile' (image "
                "descriptors are one row per image and fit in memory)."
            )
        if self.recipe is not None and not isinstance(self.recipe, Recipe):
            raise TypeError(
                f"recipe must be a tilevision.Recipe, got {type(self.recipe).__name__}; "
                "build one with Recipe(...) or Recipe.from_toml(path)."
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "pipeline_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("this Model is not fitted yet: call fit(images, labels) first.")

    def _check_images(self, images: Sequence[Any]) -> None:
        _, ndim = resolve_recipe(self.recipe_, images)
        if ndim != self.ndim_:
            raise ValueError(
                f"this model was trained on {self.ndim_}-D images with recipe "
                f"{self.recipe_.hash}, but the images are {ndim}-D; use a model trained "
                f"on {ndim}-D images."
            )

    # ------------------------------------------------------------------ fitting

    def fit(
        self, X: Any, y: Any, *, groups: Any = None, client: Any = None, scratch: Any = None
    ) -> Model:
        """Compute the features of the images ``X`` and fit the pipeline on labels ``y``.

        Parameters
        ----------
        X : list or array
            The images: paths, DataArrays or arrays, or an array stacked along its
            first axis.
        y : array-like
            One label per image; with ``level="tile"`` also one label image per image
            (tile labels by ``tile_rule``).
        groups : array-like, optional
            Patient/volume id per image, passed on to the estimator's ``fit`` when it
            is a hyper-parameter search (its splitter keeps groups together).
        client : distributed.Client, optional
            Where features are computed and a search's fits run (default: the
            current Dask scheduler, joblib's default backend).
        scratch : str or path, optional
            ``incremental`` only: folder for the temporary tile table (default: the
            system's temporary folder; on a multi-node cluster give a shared folder).

        Returns
        -------
        Model
            ``self``, fitted.
        """
        self._check_params()
        images = as_image_list(X)
        recipe, ndim = resolve_recipe(self.recipe, images)
        if self.level == "image":
            labels = as_labels(y, len(images))
            check_classes(labels)
            table = descriptor_table(images, recipe, ndim, client=client)
            rows_y = labels
        elif self.incremental:
            labels, label_images = split_label_images(y, len(images))
            self.recipe_, self.ndim_ = recipe, ndim
            return self._fit_incremental(images, labels, label_images, client, scratch)
        else:
            labels, label_images = split_label_images(y, len(images))
            if labels is not None:
                check_classes(labels)
            table = tile_rows(
                images, recipe, label_images=label_images, rule=self.tile_rule, client=client
            )
            rows_y = table.y if labels is None else labels[table.image_index]
            if len(rows_y) == 0:
                raise ValueError(
                    "no valid tile in any training image (all background, or below the "
                    "recipe's min_foreground); lower min_foreground or change the mask rule."
                )
            check_classes(rows_y, "tile labels")
        self.recipe_, self.ndim_ = recipe, ndim
        row_groups = None
        if groups is not None:
            row_groups = as_labels(groups, len(images), what="groups")[table.image_index]
        return self._fit_table(table, np.asarray(rows_y), row_groups, client)

    def _fit_table(
        self, table: FeatureTable, y: np.ndarray, groups: Any = None, client: Any = None
    ) -> Model:
        from ._cv import joblib_backend

        pipeline = default_pipeline(self.estimator, self.random_state)
        params = {} if groups is None else {"classify__groups": groups}
        with joblib_backend(client, None):
            pipeline.fit(table.X, y, **params)
        self.pipeline_ = pipeline
        self.classes_ = pipeline.classes_
        self.feature_names_ = list(table.names)
        nan = np.isnan(table.X).sum(axis=0)
        self.imputed_ = {n: int(c) for n, c in zip(table.names, nan) if c}
        counts = {_json_value(c): int((y == c).sum()) for c in self.classes_}
        self.training_ = {
            "rows": len(y),
            "images": len(np.unique(table.image_index)),
            "class_counts": counts,
            "accuracy": float(np.mean(pipeline.predict(table.X) == y)),
        }
        return self

    def _fit_incremental(
        self, images: list[Any], labels: Any, label_images: Any, client: Any, scratch: Any
    ) -> Model:
        import tempfile

        from ._extract import tile_table_on_disk
        from ._incremental import fit_incremental

        with tempfile.TemporaryDirectory(prefix="tilevision-tiles-", dir=scratch) as folder:
            X, y, valid, names = tile_table_on_disk(
                images,
                self.recipe_,
                folder,
                labels=labels,
                label_images=label_images,
                rule=self.tile_rule,
                client=client,
            )
            pipeline = fit_incremental(
                X,
                y,
                estimator=self.estimator,
                epochs=self.epochs,
                random_state=self.random_state,
                client=client,
                sample_mask=valid,
            )
        counts = dict(pipeline.class_counts_)
        self.pipeline_ = pipeline
        self.classes_ = pipeline.classes_
        self.feature_names_ = list(names)
        self.imputed_ = {}  # not counted: NaN is imputed chunk by chunk
        self.training_ = {
            "rows": int(sum(counts.values())),
            "images": len(images),
            "class_counts": counts,
            "accuracy": None,  # would need another pass over the rows
        }
        return self

    # ------------------------------------------------------------------ prediction

    def _table(self, images: Sequence[Any], client: Any) -> FeatureTable:
        if self.level == "image":
            return descriptor_table(images, self.recipe_, self.ndim_, client=client)
        return tile_rows(images, self.recipe_, client=client)

    def _row_proba(self, X: np.ndarray) -> np.ndarray:
        return self.pipeline_.predict_proba(np.asarray(X, dtype=np.float64))

    def _aggregate(self, proba: np.ndarray) -> np.ndarray:
        if self.aggregate == "max":
            out = proba.max(axis=0)
        elif self.aggregate == "topk":
            k = min(self.top_k, len(proba))
            out = np.sort(proba, axis=0)[-k:].mean(axis=0)
        else:
            out = proba.mean(axis=0)
        return out / out.sum()

    def predict_proba(self, X: Any, *, client: Any = None) -> np.ndarray:
        """Class probabilities per image, ``(n_images, n_classes)`` in ``classes_`` order.

        Tile-level models aggregate the probabilities of each image's valid tiles
        (``aggregate``); an image without any valid tile gets the training class
        frequencies.
        """
        self._check_fitted()
        images = as_image_list(X)
        self._check_images(images)
        table = self._table(images, client)
        proba = self._row_proba(table.X) if len(table.X) else np.empty((0, len(self.classes_)))
        return proba if self.level == "image" else self._images_proba(table, len(images), proba)

    def _image_proba(self, rows: np.ndarray) -> np.ndarray:
        """One image's probabilities from its tiles' rows: aggregated, else the prior."""
        if len(rows):
            return self._aggregate(rows)
        counts = np.array([self.training_["class_counts"][_json_value(c)] for c in self.classes_])
        return (counts / counts.sum()).astype(np.float64)

    def _images_proba(
        self, table: FeatureTable, n_images: int, proba: np.ndarray | None = None
    ) -> np.ndarray:
        """Per-image probabilities aggregated from the tile rows of ``table``."""
        if proba is None:
            proba = self._row_proba(table.X) if len(table.X) else np.empty((0, 0))
        return np.stack(
            [self._image_proba(proba[table.image_index == i]) for i in range(n_images)]
        )

    def predict(self, X: Any, *, client: Any = None) -> np.ndarray:
        """The most probable class per image."""
        proba = self.predict_proba(X, client=client)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_tiles(self, image: Any) -> xr.DataArray:
        """Per-tile class probabilities of one image over its tile grid (lazy).

        Parameters
        ----------
        image : path, DataArray or array, or its tile features (an ``xarray.Dataset``
            from :func:`tilevision.tile_features` with the model's recipe)

        Returns
        -------
        xarray.DataArray
            float64, dims ``(tile_[z,] tile_y, tile_x, "class")`` with the tiles' coords
            (tile centres in physical units) and ``class`` coords; NaN for tiles that
            are not valid (background). Lazy: compute it, or ``.plot()`` one class.
        """
        self._check_fitted()
        if self.level == "image":
            raise ValueError(
                "predict_tiles needs a tile-level model (Model(level='tile')): an image-level "
                "model was trained on whole-image descriptors, not on tiles."
            )
        if isinstance(image, xr.Dataset):
            tiles = image
            if tiles.attrs.get("recipe_hash") != self.recipe_.hash:
                raise ValueError(
                    f"these tile features were computed with recipe "
                    f"{tiles.attrs.get('recipe_hash')}, but the model needs recipe "
                    f"{self.recipe_.hash}; compute them with model.recipe_."
                )
        else:
            self._check_images([image])
            tiles = tile_features(load_image(image), self.recipe_)
        return _tile_probabilities(tiles, self)

    # ------------------------------------------------------------------ files

    def metadata(self) -> dict[str, Any]:
        """What a model file records besides the pipeline (JSON-able)."""
        self._check_fitted()
        return {
            "recipe": self.recipe_.to_dict(),
            "recipe_hash": self.recipe_.hash,
            "feature_names": list(self.feature_names_),
            "classes": [_json_value(c) for c in self.classes_],
            "level": self.level,
            "tile_rule": self.tile_rule,
            "aggregate": self.aggregate,
            "top_k": int(self.top_k),
            "incremental": bool(self.incremental),
            "epochs": int(self.epochs),
            "ndim": int(self.ndim_),
            "estimator": type(self.pipeline_[-1]).__name__,
            "training": _jsonable(self.training_),
            "imputed": dict(self.imputed_),
            "tilevision_version": __version__,
        }

    def save(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write the fitted model to a safe model file (skops; no pickle).

        Examples
        --------
        >>> import numpy as np, tempfile, pathlib
        >>> from tilevision import Model, Recipe, load_model
        >>> x = np.random.default_rng(0).random((8, 16, 16)) + np.arange(8)[:, None, None] % 2
        >>> model = Model(Recipe(["intensity"], tile=8)).fit(x, np.arange(8) % 2)
        >>> path = model.save(pathlib.Path(tempfile.mkdtemp()) / "m.tvmodel")
        >>> bool((load_model(path).predict(x) == model.predict(x)).all())
        True
        """
        from ._model_file import write_model_file

        return write_model_file(path, self.pipeline_, self.metadata(), overwrite=overwrite)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(_json_value(k)): _jsonable(v) for k, v in value.items()}
    return _json_value(value)


def _proba_block(table: np.ndarray, valid: np.ndarray, model: Model) -> np.ndarray:
    out = np.full((len(table), len(model.classes_)), np.nan)
    keep = np.asarray(valid, dtype=bool).reshape(-1)
    if keep.any():
        out[keep] = model._row_proba(table[keep])
    return out


def _tile_probabilities(tiles: xr.Dataset, model: Model) -> xr.DataArray:
    missing = [n for n in model.feature_names_ if n not in tiles]
    if missing:
        raise ValueError(
            f"the tile features lack {missing[:5]}; compute them with the model's recipe."
        )
    import dask.array as da

    tdims = tuple(d for d in TILE_DIMS if d in tiles.dims)
    table, valid = tile_table(tiles, model.feature_names_)
    table, valid = da.asarray(table), da.asarray(valid)
    # few large blocks: each one calls the estimator (a forest's predict has a fixed cost)
    table = table.rechunk({0: 65536, 1: -1})
    valid = valid.rechunk((table.chunks[0],))
    n_classes = len(model.classes_)
    proba = da.map_blocks(
        _proba_block,
        table,
        valid[:, None],
        model=model,
        chunks=(table.chunks[0], (n_classes,)),
        dtype=np.float64,
    )
    grid = tuple(tiles.sizes[d] for d in tdims)
    proba = proba.reshape((*grid, n_classes))
    coords = {n: c for n, c in tiles.coords.items() if set(c.dims) <= set(tdims)}
    coords["class"] = list(model.classes_)
    return xr.DataArray(
        proba,
        dims=(*tdims, "class"),
        coords=coords,
        name="tile_probability",
        attrs={"recipe_hash": model.recipe_.hash},
    )
