import dask.array as da
import numpy as np
import pytest
import xarray as xr
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score

import tilevision as tv
from tilevision import Model, Recipe, describe, tile_features
from tilevision.features._table import tile_feature_names
from tilevision.learn import default_pipeline
from tilevision.testing import raise_if_dask_computes

RECIPE = Recipe(["intensity"], tile=8)
LOGISTIC = LogisticRegression(max_iter=2000)


def two_class_images(n=12, shape=(16, 16), seed=0):
    """Half dark, half bright noise images; labels 0/1."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    images = rng.random((n, *shape)) + 0.6 * labels.reshape(-1, *([1] * len(shape)))
    return images, labels


def descriptor_matrix(images, recipe):
    return np.stack([describe(tile_features(im, recipe)).values for im in images])


@pytest.mark.parametrize("shape", [(16, 16), (8, 8, 8)])
def test_predictions_equal_a_pipeline_fitted_on_the_descriptors(shape):
    images, labels = two_class_images(shape=shape)
    test, _ = two_class_images(6, shape=shape, seed=1)
    model = Model(RECIPE, LOGISTIC).fit(images, labels)
    reference = default_pipeline(LOGISTIC).fit(descriptor_matrix(images, RECIPE), labels)
    expected = reference.predict_proba(descriptor_matrix(test, RECIPE))
    np.testing.assert_allclose(model.predict_proba(test), expected, rtol=1e-12)
    assert (
        model.predict(test).tolist() == reference.predict(descriptor_matrix(test, RECIPE)).tolist()
    )
    assert model.feature_names_[:2] == ["tiles.valid_count", "tiles.valid_fraction"]
    assert model.ndim_ == len(shape)
    assert model.recipe_ == RECIPE


def test_default_recipe_and_string_labels():
    images, labels = two_class_images(6, shape=(8, 8))
    names = np.array(["benign", "malignant"])[labels]
    model = Model(Recipe(["intensity"], tile=16)).fit(list(images), names)
    assert model.classes_.tolist() == ["benign", "malignant"]
    assert set(model.predict(images[:2])) <= {"benign", "malignant"}
    assert Model(estimator=LOGISTIC).fit(images, labels).recipe_ == Recipe.default(2)


def test_sklearn_conventions_clone_cross_val_and_grid_search():
    images, labels = two_class_images(8, shape=(8, 8))
    model = Model(RECIPE, LOGISTIC)
    assert clone(model).get_params()["recipe"] == RECIPE
    scores = cross_val_score(model, list(images), labels, cv=2)
    assert scores.shape == (2,)
    assert scores.min() >= 0.75
    search = GridSearchCV(model, {"estimator__C": [0.01, 10.0]}, cv=2).fit(list(images), labels)
    assert search.best_params_["estimator__C"] in (0.01, 10.0)
    assert model.get_params()["estimator__C"] == 1.0


def test_tile_level_with_label_images_and_predict_tiles():
    rng = np.random.default_rng(0)
    images, masks = [], []
    for _ in range(4):
        image = rng.random((32, 32))
        mask = np.zeros((32, 32), dtype=np.uint8)
        a, b = rng.integers(0, 4, 2)
        image[a * 8 : a * 8 + 8, b * 8 : b * 8 + 8] += 2  # one bright tile per image
        mask[a * 8 : a * 8 + 8, b * 8 : b * 8 + 8] = 1
        images.append(image)
        masks.append(mask)
    model = Model(RECIPE, LOGISTIC, level="tile", tile_rule="majority").fit(images, masks)
    assert model.training_["rows"] == 4 * 16
    assert model.training_["class_counts"] == {0: 60, 1: 4}
    with raise_if_dask_computes():
        probability = model.predict_tiles(images[0])
    assert isinstance(probability.data, da.Array)
    assert probability.dims == ("tile_y", "tile_x", "class")
    assert probability["class"].values.tolist() == [0, 1]
    tiles = tile_features(images[0], RECIPE)
    np.testing.assert_array_equal(probability["tile_y"].values, tiles["tile_y"].values)
    table = np.stack([tiles[n].values.ravel() for n in tile_feature_names(tiles)], axis=1)
    expected = model.pipeline_.predict_proba(table).reshape(4, 4, 2)
    np.testing.assert_allclose(probability.values, expected, rtol=1e-12)
    hot = np.unravel_index(np.argmax(probability.values[..., 1]), (4, 4))
    assert masks[0][hot[0] * 8, hot[1] * 8] == 1
    # the same from precomputed tile features
    np.testing.assert_allclose(model.predict_tiles(tiles).values, expected, rtol=1e-12)
    other = tile_features(images[0], Recipe(["intensity"], tile=4))
    with pytest.raises(ValueError, match=r"computed with recipe .* model\.recipe_"):
        model.predict_tiles(other)


@pytest.mark.parametrize("aggregate", ["mean", "topk", "max"])
def test_tile_level_image_decision_aggregates_tiles(aggregate):
    images, labels = two_class_images(8, shape=(24, 24))
    model = Model(RECIPE, LOGISTIC, level="tile", aggregate=aggregate, top_k=3)
    model.fit(images, labels)  # multiple instance: every tile inherits its image's label
    assert model.training_["rows"] == 8 * 9
    proba = model.predict_proba(images[:2])
    tiles = tile_features(images[1], RECIPE)
    table = np.stack([tiles[n].values.ravel() for n in tile_feature_names(tiles)], axis=1)
    rows = model.pipeline_.predict_proba(table)
    per_class = {
        "mean": rows.mean(axis=0),
        "topk": np.sort(rows, axis=0)[-3:].mean(axis=0),
        "max": rows.max(axis=0),
    }[aggregate]
    np.testing.assert_allclose(proba[1], per_class / per_class.sum(), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)


def test_image_without_valid_tiles_gets_the_training_prior():
    images, labels = two_class_images(8)
    images[labels == 1] += 1
    model = Model(Recipe(["intensity"], tile=8, mask="> 0.5"), LOGISTIC, level="tile")
    model.fit(images, labels)
    blank = np.zeros((1, 16, 16))
    counts = model.training_["class_counts"]
    prior = np.array([counts[0], counts[1]]) / (counts[0] + counts[1])
    np.testing.assert_allclose(model.predict_proba(blank)[0], prior)


def test_nan_features_are_imputed_and_reported():
    images, labels = two_class_images(8)
    descriptors = [describe(tile_features(im, RECIPE)).compute() for im in images]
    descriptors[0] = descriptors[0].copy(
        data=np.where(
            descriptors[0]["feature"] == "intensity.skewness", np.nan, descriptors[0].values
        )
    )
    model = Model(RECIPE, LOGISTIC).fit(descriptors, labels)
    assert model.imputed_ == {"intensity.skewness": 1}
    assert np.isfinite(model.predict_proba(descriptors[:1])).all()


def test_bad_input():
    images, labels = two_class_images(6)
    with pytest.raises(ValueError, match="6 images but 5 labels"):
        Model(RECIPE).fit(images, labels[:5])
    with pytest.raises(ValueError, match=r"single class.*at least two classes"):
        Model(RECIPE).fit(images, np.zeros(6))
    with pytest.raises(ValueError, match="unknown level 'pixel'"):
        Model(RECIPE, level="pixel").fit(images, labels)
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        Model(RECIPE, level="tile", top_k=0).fit(images, labels)
    with pytest.raises(TypeError, match=r"recipe must be a tilevision.Recipe"):
        Model({"intensity": {}}).fit(images, labels)
    with pytest.raises(TypeError, match=r"collection of images.*wrap it in a list"):
        Model(RECIPE).fit(images[0], labels)
    with pytest.raises(NotFittedError, match="call fit"):
        Model(RECIPE).predict(images)
    model = Model(RECIPE, LOGISTIC).fit(images, labels)
    with pytest.raises(ValueError, match=r"trained on 2-D images.*3-D"):
        model.predict(np.zeros((2, 8, 8, 8)))
    with pytest.raises(ValueError, match="tile-level model"):
        model.predict_tiles(images[0])
    other = describe(tile_features(images[0], Recipe(["intensity"], tile=4)))
    with pytest.raises(ValueError, match="computed with recipe"):
        model.predict([other])
    with pytest.raises(ValueError, match="no valid tile in any training image"):
        Model(Recipe(["intensity"], tile=8, mask="> 5"), level="tile").fit(images, labels)


def test_save_load_round_trip(tmp_path):
    images, labels = two_class_images(10, shape=(8, 8, 8))
    model = tv.fit(images, np.array(["a", "b"])[labels], recipe=RECIPE, estimator=LOGISTIC)
    path = model.save(tmp_path / "model.tvmodel")
    loaded = tv.load_model(path)
    test, _ = two_class_images(4, shape=(8, 8, 8), seed=3)
    np.testing.assert_array_equal(loaded.predict_proba(test), model.predict_proba(test))
    assert loaded.predict(test).tolist() == model.predict(test).tolist()
    assert loaded.recipe_ == model.recipe_
    assert loaded.feature_names_ == model.feature_names_
    assert loaded.training_ == model.training_
    with pytest.raises(FileExistsError, match="overwrite"):
        model.save(path)


def test_load_refuses_a_file_with_an_edited_recipe(tmp_path):
    import json
    import zipfile

    images, labels = two_class_images(6)
    path = tv.fit(images, labels, recipe=RECIPE, estimator=LOGISTIC).save(tmp_path / "m.tvmodel")
    with zipfile.ZipFile(path) as z:
        members = {n: z.read(n) for n in z.namelist()}
    meta = json.loads(members["metadata.json"])
    meta["recipe"]["tile"] = [4.0, 4.0]
    members["metadata.json"] = json.dumps(meta).encode()
    edited = tmp_path / "edited.tvmodel"
    with zipfile.ZipFile(edited, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(tv.learn.ModelFileError, match="does not match its recorded hash"):
        tv.load_model(edited)


def test_fit_accepts_paths_and_dataarrays(tmp_path):
    images, labels = two_class_images(6, shape=(8, 8, 8))
    paths = []
    for i, im in enumerate(images):
        p = tmp_path / f"im{i}.npy"
        np.save(p, im)
        paths.append(p)
    arrays = [xr.DataArray(im, dims=("z", "y", "x")) for im in images]
    a = Model(RECIPE, LOGISTIC).fit(paths, labels)
    b = Model(RECIPE, LOGISTIC).fit(arrays, labels)
    np.testing.assert_allclose(a.predict_proba(paths), b.predict_proba(arrays), rtol=1e-12)


@pytest.mark.parametrize("with_masks", [False, True])
def test_incremental_tile_training_streams_the_rows(tmp_path, with_masks):
    from sklearn.linear_model import SGDClassifier

    from tilevision.learn import fit_incremental, tile_rows

    rng = np.random.default_rng(0)
    images = rng.random((6, 32, 32))
    images[:3] += 0.8
    images[0, :8, :8] = 0  # background tiles under the mask rule, skipped
    labels = np.array([1, 1, 1, 0, 0, 0])
    masks = [np.full((32, 32), v, dtype=np.uint8) for v in labels]
    recipe = Recipe(["intensity"], tile=8, mask="> 0")
    y = masks if with_masks else labels
    sgd = SGDClassifier(loss="log_loss", random_state=0)
    model = Model(recipe, sgd, level="tile", incremental=True, epochs=3)
    model.fit(list(images), y, scratch=tmp_path)
    assert list(tmp_path.iterdir()) == []  # the scratch table is removed
    # reference: the same streamed training on the in-memory rows, one chunk
    table = tile_rows(list(images), recipe)
    reference = fit_incremental(table.X, labels[table.image_index], estimator=sgd, epochs=3)
    np.testing.assert_allclose(
        model.pipeline_[-1].coef_, reference[-1].coef_, rtol=1e-10, atol=1e-12
    )
    assert model.training_["rows"] == 6 * 16 - 1
    assert model.predict(images[[0, 5]]).tolist() == [1, 0]
    path = model.save(tmp_path / "m.tvmodel")
    loaded = tv.load_model(path)
    np.testing.assert_array_equal(loaded.predict_proba(images), model.predict_proba(images))
    with pytest.raises(ValueError, match="use it with level='tile'"):
        Model(recipe, incremental=True).fit(images, labels)
