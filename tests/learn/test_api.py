import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, roc_auc_score
from sklearn.model_selection import GridSearchCV, GroupKFold

import tilevision as tv
from tilevision import Recipe, describe, tile_features
from tilevision.learn import cross_validate_table, default_pipeline

RECIPE = Recipe(["intensity"], tile=8)
LOGISTIC = LogisticRegression(max_iter=2000)


def images_and_labels(n=16, shape=(16, 16), seed=0, shift=0.15):
    """Overlapping classes, so scores are not all perfect."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.random((n, *shape)) + shift * labels.reshape(-1, *([1] * len(shape)))
    return images, labels


def descriptor_matrix(images, recipe):
    return np.stack([describe(tile_features(im, recipe)).values for im in images])


def test_cross_validation_equals_cross_validating_the_descriptor_table():
    images, labels = images_and_labels()
    groups = np.repeat(np.arange(8), 2)
    report = tv.evaluate(images, labels, recipe=RECIPE, estimator=LOGISTIC, cv=4, groups=groups)
    expected = cross_validate_table(
        descriptor_matrix(images, RECIPE), labels, default_pipeline(LOGISTIC), cv=4, groups=groups
    )
    assert report.metrics == expected.metrics
    assert report.kind == "cross-validation"
    assert report.n_folds == 4
    assert report.extra["level"] == "image"
    assert report.extra["recipe_hash"] == RECIPE.hash


def test_held_out_evaluation_matches_sklearn_metrics():
    images, labels = images_and_labels(shift=0.3)
    test, test_labels = images_and_labels(10, seed=5, shift=0.3)
    model = tv.fit(images, labels, recipe=RECIPE, estimator=LOGISTIC)
    report = tv.evaluate(model, test, test_labels)
    proba = model.predict_proba(test)
    assert report.kind == "held-out"
    assert report.metrics["accuracy"] == pytest.approx(
        accuracy_score(test_labels, model.predict(test))
    )
    assert report.metrics["roc_auc"] == pytest.approx(roc_auc_score(test_labels, proba[:, 1]))
    assert report.confusion.values.sum() == 10


def test_tile_level_cross_validation_never_splits_an_image():
    rng = np.random.default_rng(1)
    images = rng.random((6, 24, 24))
    masks = np.zeros((6, 24, 24), dtype=np.uint8)
    for i in range(6):
        images[i, :8, 8 * (i % 3) : 8 * (i % 3) + 8] += 1.0
        masks[i, :8, 8 * (i % 3) : 8 * (i % 3) + 8] = 1

    seen = []

    class SpyFolds(GroupKFold):
        def split(self, X, y=None, groups=None):
            seen.append(np.asarray(groups))
            yield from super().split(X, y, groups)

    report = tv.evaluate(
        list(images), list(masks), recipe=RECIPE, estimator=LOGISTIC, level="tile", cv=SpyFolds(3)
    )
    (groups,) = seen
    assert groups.tolist() == np.repeat(np.arange(6), 9).tolist()  # the image of each tile
    assert report.n_samples == 6 * 9
    assert report.extra["level"] == "tile"
    assert report.metrics["roc_auc"] > 0.9


def test_tile_level_held_out_with_label_images_scores_tiles():
    rng = np.random.default_rng(2)
    images = rng.random((4, 16, 16))
    masks = (images > 0.99).astype(np.uint8)
    images[:, :8, :8] += 1
    masks[:, :8, :8] = 1
    model = tv.fit(list(images[:3]), list(masks[:3]), recipe=RECIPE, estimator=LOGISTIC,
                   level="tile", tile_rule="majority")  # fmt: skip
    report = tv.evaluate(model, [images[3]], [masks[3]])
    assert report.n_samples == 4
    assert report.metrics["accuracy"] == 1.0


def test_fit_with_a_grid_search_estimator_and_groups():
    images, labels = images_and_labels(12, shape=(8, 8), shift=0.5)
    groups = np.repeat(np.arange(6), 2)
    search = GridSearchCV(LOGISTIC, {"C": [0.1, 1.0]}, cv=GroupKFold(3))
    model = tv.fit(images, labels, recipe=RECIPE, estimator=search, groups=groups)
    assert model.pipeline_[-1].best_params_["C"] in (0.1, 1.0)
    with pytest.raises(ValueError, match="12 images but 5 groups"):
        tv.fit(images, labels, recipe=RECIPE, estimator=search, groups=groups[:5])


def test_with_a_distributed_client():
    from distributed import Client, LocalCluster

    images, labels = images_and_labels(12, shape=(8, 8))
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        a = tv.evaluate(images, labels, recipe=RECIPE, estimator=LOGISTIC, cv=3, client=client)
        model = tv.fit(images, labels, recipe=RECIPE, estimator=LOGISTIC, client=client)
    b = tv.evaluate(images, labels, recipe=RECIPE, estimator=LOGISTIC, cv=3)
    assert a.to_dict() == b.to_dict()
    np.testing.assert_array_equal(
        model.predict_proba(images), tv.fit(images, labels, recipe=RECIPE, estimator=LOGISTIC)
        .predict_proba(images)
    )  # fmt: skip


def test_evaluate_bad_input():
    images, labels = images_and_labels(8, shape=(8, 8))
    with pytest.raises(TypeError, match="cross-validates"):
        tv.evaluate(images, recipe=RECIPE)
    model = tv.fit(images, labels, recipe=RECIPE, estimator=LOGISTIC)
    with pytest.raises(TypeError, match="held-out images and labels"):
        tv.evaluate(model, images)
    with pytest.raises(ValueError, match="8 images but 7 labels"):
        tv.evaluate(model, images, labels[:7])
    with pytest.raises(ValueError, match="single class"):
        tv.evaluate(images, np.ones(8), recipe=RECIPE)
    with pytest.raises(ValueError, match="trained on 2-D"):
        tv.evaluate(model, np.zeros((2, 4, 8, 8)), [0, 1])
