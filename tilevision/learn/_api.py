"""``fit``, ``evaluate`` and ``load_model``: the classification entry points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..features import Recipe
from ._extract import FeatureTable, descriptor_table, resolve_recipe, tile_rows
from ._inputs import as_image_list, as_labels, check_groups, split_label_images
from ._model import Model, check_classes, default_pipeline
from ._report import Report

__all__ = ["evaluate", "fit", "load_model"]


def _client(client: Any) -> Any:
    """A ``distributed.Client`` from ``client`` (address, Client) or the running one."""
    from ..cluster import client as make_client
    from ..cluster import current_client

    if client is None:
        return current_client()
    return make_client(client)


def fit(
    images: Any,
    labels: Any,
    *,
    recipe: Recipe | None = None,
    estimator: Any = None,
    level: str = "image",
    groups: Any = None,
    client: Any = None,
    **model_params: Any,
) -> Model:
    """Train a :class:`Model`: features of all images computed together, then a Pipeline.

    Parameters
    ----------
    images : list or array
        Paths (OME-Zarr, NIfTI, NRRD, DICOM, TIFF…), DataArrays or arrays; or one
        array with the images stacked along its first axis.
    labels : array-like
        One label per image; for ``level="tile"`` also one label image per image
        (organ map, lesion mask), read per tile with ``tile_rule``.
    recipe : Recipe, optional
        The features (default: :meth:`Recipe.default` for the images).
    estimator : scikit-learn classifier, optional
        Default: a class-balanced random forest. A hyper-parameter search
        (``GridSearchCV``) works too: its folds run on the cluster and ``groups`` reach
        its splitter.
    level : {"image", "tile"}, optional
        One row per image, or one row per valid tile (see :class:`Model`).
    groups : array-like, optional
        Patient/volume id per image, passed to a search estimator's splitter.
    client : distributed.Client or str, optional
        Cluster (or scheduler address) that computes the features and runs the
        search; default: the running client, else Dask's threaded scheduler.
    **model_params
        ``tile_rule``, ``aggregate``, ``top_k``, ``random_state`` (see :class:`Model`).

    Returns
    -------
    Model

    Examples
    --------
    >>> import numpy as np
    >>> import tilevision as tv
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((12, 16, 16)) + np.arange(12)[:, None, None] % 2
    >>> model = tv.fit(images, np.arange(12) % 2, recipe=tv.Recipe(["intensity"], tile=8))
    >>> model.classes_.tolist(), model.training_["accuracy"]
    ([0, 1], 1.0)
    """
    model = Model(recipe, estimator, level=level, **model_params)
    fit_params = {}
    if groups is not None:
        fit_params["groups"] = check_groups(groups, len(as_image_list(images)))
    return model.fit(images, labels, client=_client(client), **fit_params)


def load_model(path: str | Path, *, trusted: Any = None) -> Model:
    """Load a model saved with :meth:`Model.save` (checked: format, checksum, trusted types).

    Parameters
    ----------
    path : str or path
        The model file.
    trusted : sequence of str, optional
        Extra type names to trust (only for files from a source you trust).

    Returns
    -------
    Model
        Fitted, with the recipe, feature names and classes it was saved with.

    Examples
    --------
    >>> import numpy as np, tempfile, pathlib
    >>> import tilevision as tv
    >>> x = np.random.default_rng(0).random((8, 16, 16)) + np.arange(8)[:, None, None] % 2
    >>> model = tv.fit(x, np.arange(8) % 2, recipe=tv.Recipe(["intensity"], tile=8))
    >>> path = model.save(pathlib.Path(tempfile.mkdtemp()) / "model.tvmodel")
    >>> tv.load_model(path).recipe_ == model.recipe_
    True
    """
    from ._model_file import ModelFileError, read_model_file

    pipeline, meta = read_model_file(path, trusted=trusted)
    try:
        recipe = Recipe.from_dict(meta["recipe"])
        if recipe.hash != meta["recipe_hash"]:
            raise ModelFileError(
                f"{path}: the recipe in the file does not match its recorded hash "
                f"({recipe.hash} != {meta['recipe_hash']}); the file was edited or made by "
                "an incompatible tilevision. Re-save the model from the original."
            )
        model = Model(
            recipe,
            pipeline[-1],
            level=meta["level"],
            tile_rule=meta["tile_rule"],
            aggregate=meta["aggregate"],
            top_k=int(meta["top_k"]),
            incremental=bool(meta.get("incremental", False)),
            epochs=int(meta.get("epochs", 5)),
        )
        model.recipe_, model.ndim_ = recipe, int(meta["ndim"])
        model.pipeline_ = pipeline
        model.classes_ = np.asarray(pipeline.classes_)
        model.feature_names_ = list(meta["feature_names"])
        model.imputed_ = dict(meta.get("imputed", {}))
        model.training_ = dict(meta["training"])
        model.training_["class_counts"] = {
            c: meta["training"]["class_counts"][str(c)] for c in model.classes_.tolist()
        }
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(
            f"{path}: the model metadata is incomplete or invalid ({exc!r}); it was not "
            "written by Model.save of a compatible tilevision. Re-save the model."
        ) from exc
    if [str(c) for c in model.classes_.tolist()] != [str(c) for c in meta["classes"]]:
        raise ModelFileError(
            f"{path}: the classes recorded ({meta['classes']}) differ from the estimator's "
            f"({model.classes_.tolist()}); the file is inconsistent. Re-save the model."
        )
    return model


# ---------------------------------------------------------------- evaluate


def _rows(
    model: Model, images: list[Any], labels: Any, client: Any
) -> tuple[FeatureTable, np.ndarray]:
    """The feature table and one label per row, for ``model``'s level."""
    if model.level == "image":
        y = as_labels(labels, len(images))
        check_classes(y)
        return descriptor_table(images, model.recipe_, model.ndim_, client=client), y
    values, label_images = split_label_images(labels, len(images))
    table = tile_rows(
        images, model.recipe_, label_images=label_images, rule=model.tile_rule, client=client
    )
    y = table.y if values is None else values[table.image_index]
    check_classes(np.asarray(y), "tile labels")
    return table, np.asarray(y)


def evaluate(
    images_or_model: Any,
    images: Any = None,
    labels: Any = None,
    *,
    recipe: Recipe | None = None,
    estimator: Any = None,
    level: str = "image",
    cv: Any = 5,
    groups: Any = None,
    client: Any = None,
    random_state: int | None = 0,
    **model_params: Any,
) -> Report:
    """How good is a model? Cross-validation, or a fitted model scored on held-out images.

    ``evaluate(images, labels, recipe=..., estimator=..., cv=5, groups=...)``
    computes the features once and cross-validates the pipeline: stratified folds,
    grouped when ``groups`` (patient/volume ids per image) are given; tile-level
    rows are always grouped by image, so no image is in train and test at once.
    ``evaluate(model, images, labels)`` scores a fitted :class:`Model` on held-out
    images (tile level with label images: per tile; else per image).

    Parameters
    ----------
    images_or_model : list, array or Model
        The images (first form) or a fitted model (second form).
    images : list or array, optional
        Second form: the held-out images. First form: the labels may be given here.
    labels : array-like, optional
        One label per image, or label images for tile level.
    recipe, estimator, level, **model_params
        As in :func:`fit` (first form only).
    cv : int or scikit-learn splitter, optional
        Folds (first form).
    groups : array-like, optional
        Patient/volume id per image: never split across train and test.
    client : distributed.Client or str, optional
        Computes the features; the folds fan out over it (joblib's Dask backend).
    random_state : int, optional
        Seed of the fold shuffle and of the default estimator.

    Returns
    -------
    Report
        Metrics, confusion matrix, per-class table; prints as a table, ``to_json``,
        ``plot_roc``, ``plot_confusion``.

    Examples
    --------
    >>> import numpy as np
    >>> import tilevision as tv
    >>> rng = np.random.default_rng(0)
    >>> images = rng.random((20, 16, 16)) + np.arange(20)[:, None, None] % 2
    >>> report = tv.evaluate(images, np.arange(20) % 2, recipe=tv.Recipe(["intensity"], tile=8))
    >>> report.metrics["accuracy"]
    1.0
    """
    from ._cv import cross_validate_table

    client = _client(client)
    if isinstance(images_or_model, Model):
        if labels is None:
            raise TypeError(
                "evaluate(model, images, labels): give the held-out images and labels."
            )
        return _held_out(images_or_model, images, labels, client)
    if labels is not None or images is None:
        raise TypeError(
            "evaluate(images, labels, recipe=..., ...) cross-validates; evaluate(model, "
            "images, labels) scores a fitted model. Got neither form."
        )
    image_list, labels = as_image_list(images_or_model), images
    model = Model(recipe, estimator, level=level, random_state=random_state, **model_params)
    model._check_params()
    model.recipe_, model.ndim_ = resolve_recipe(recipe, image_list)
    table, y = _rows(model, image_list, labels, client)
    image_groups = check_groups(groups, len(image_list))
    if image_groups is not None:
        row_groups = image_groups[table.image_index]
    elif model.level == "tile":
        row_groups = table.image_index
    else:
        row_groups = None
    pipeline = default_pipeline(estimator, random_state)
    return cross_validate_table(
        table.X,
        y,
        pipeline,
        cv=cv,
        groups=row_groups,
        random_state=random_state,
        client=client,
        extra=_extra(model, table, pipeline),
    )


def _extra(model: Model, table: FeatureTable, pipeline: Any) -> dict[str, Any]:
    nan = np.isnan(table.X).sum(axis=0)
    return {
        "level": model.level,
        "recipe_hash": model.recipe_.hash,
        "estimator": type(pipeline[-1]).__name__,
        "n_features": len(table.names),
        "n_images": len(np.unique(table.image_index)),
        "imputed": {n: int(c) for n, c in zip(table.names, nan) if c},
    }


def _held_out(model: Model, images: Any, labels: Any, client: Any) -> Report:
    model._check_fitted()
    image_list = as_image_list(images)
    model._check_images(image_list)
    values, label_images = (
        split_label_images(labels, len(image_list))
        if model.level == "tile"
        else (as_labels(labels, len(image_list)), None)
    )
    if label_images is not None:
        table, y = _rows(model, image_list, labels, client)
        proba = model._row_proba(table.X)
    else:
        assert values is not None
        table = model._table(image_list, client)
        y = values
        proba = (
            model._row_proba(table.X)
            if model.level == "image"
            else model._images_proba(table, len(image_list))
        )
    predicted = model.classes_[np.argmax(proba, axis=1)]
    return Report.from_predictions(
        y,
        predicted,
        proba,
        model.classes_,
        kind="held-out",
        extra=_extra(model, table, model.pipeline_),
    )
