import json

import dask
import numpy as np
import pytest
import xarray as xr
from sklearn.linear_model import LogisticRegression

import tilevision as tv
from tilevision import Recipe, describe, tile_features
from tilevision._image import make_image
from tilevision.testing import raise_if_dask_computes

RECIPE = Recipe(["intensity"], tile=8)
LOGISTIC = LogisticRegression(max_iter=2000)


@pytest.fixture(autouse=True)
def threaded():
    with dask.config.set(scheduler="threads"):
        yield


def image_2d(seed=0, bright=False):
    data = np.random.default_rng(seed).random((32, 40)) + (1.0 if bright else 0.0)
    return make_image(data, ("y", "x"), spacing=(0.5, 0.5), units="millimeter")


def run(source, **kwargs):
    kwargs.setdefault("client", False)
    kwargs.setdefault("verbose", False)
    return tv.analyze(source, **kwargs)


def test_without_model_gives_tiles_and_descriptor():
    image = image_2d()
    result = run(image, recipe=RECIPE)
    expected = describe(tile_features(image, RECIPE)).values
    np.testing.assert_allclose(result["descriptor"].values, expected, rtol=1e-12)
    assert result["intensity.mean"].dims == ("tile_y", "tile_x")
    np.testing.assert_allclose(result["tile_x"].values, [1.75, 5.75, 9.75, 13.75, 17.75])
    assert result.attrs["recipe_hash"] == RECIPE.hash
    assert set(json.loads(result.attrs["versions"])) >= {"tilevision", "dask", "scikit-learn"}
    assert "compute_s" in json.loads(result.attrs["timings"])
    assert "probability" not in result


def test_image_level_model_probability_and_label():
    images = [image_2d(i, bright=i % 2 == 1) for i in range(8)]
    model = tv.fit(images, np.arange(8) % 2, recipe=RECIPE, estimator=LOGISTIC)
    new = image_2d(42, bright=True)
    result = run(new, model=model)
    np.testing.assert_allclose(result["probability"].values, model.predict_proba([new])[0])
    assert result["label"].item() == 1
    assert result["probability"]["class"].values.tolist() == [0, 1]
    assert len(result.attrs["model_id"]) == 16


def test_tile_level_model_tile_probability(tmp_path):
    rng = np.random.default_rng(3)
    images, masks = [], []
    for i in range(4):
        data = rng.random((32, 32))
        mask = np.zeros((32, 32), dtype=np.uint8)
        data[8 * i : 8 * i + 8, :8] += 2
        mask[8 * i : 8 * i + 8, :8] = 1
        images.append(make_image(data, ("y", "x")))
        masks.append(mask)
    model = tv.fit(images, masks, recipe=RECIPE, estimator=LOGISTIC, level="tile")
    result = run(images[0], model=model, output=tmp_path / "out")
    np.testing.assert_allclose(
        result["tile_probability"].values, model.predict_tiles(images[0]).values, rtol=1e-12
    )
    assert (tmp_path / "out" / "heatmap.png").stat().st_size > 1000
    assert "probability of 1" in (tmp_path / "out" / "report.html").read_text()
    np.testing.assert_allclose(
        result["probability"].values, model.predict_proba([images[0]])[0], rtol=1e-12
    )


def test_output_is_written_and_reused_without_computing(tmp_path):
    image = image_2d()
    out = tmp_path / "run"
    first = run(image, recipe=RECIPE, output=out)
    assert sorted(p.name for p in out.iterdir()) == [
        "analysis.json", "heatmap.png", "report.html", "result.zarr"
    ]  # fmt: skip
    report = (out / "report.html").read_text()
    assert "data:image/png;base64," in report
    assert f"{first['descriptor'].sel(feature='intensity.mean').item():.6g}" in report
    summary = json.loads((out / "analysis.json").read_text())
    assert summary["inputs_key"] == first.attrs["inputs_key"]
    with raise_if_dask_computes():  # nothing is computed again
        second = run(image, recipe=RECIPE, output=out)
    xr.testing.assert_identical(first.drop_attrs(), second.drop_attrs())
    with pytest.raises(FileExistsError, match=r"holds other results.*overwrite=True"):
        run(image, recipe=Recipe(["intensity"], tile=16), output=out)
    third = run(image, recipe=Recipe(["intensity"], tile=16), output=out, overwrite=True)
    assert third.sizes["tile_x"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_failed_run_leaves_nothing_half_written(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_zarr", broken)
    with pytest.raises(OSError, match="disk full"):
        run(image_2d(), recipe=RECIPE, output=tmp_path / "run")
    # no output folder, only the hidden checkpoint of the committed tile values
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(".run.tilevision-checkpoint-")
    monkeypatch.undo()
    result = run(image_2d(), recipe=RECIPE, output=tmp_path / "run")
    assert json.loads(result.attrs["checkpoint"]) == {"blocks": 1, "reused_blocks": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_file_source_is_ingested_once_into_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    source = tv.datasets.data_path("mr-lesions/breast1_image.nrrd")
    recipe = Recipe(["intensity"], tile=32)
    first = tv.analyze(source, recipe=recipe, client=False)
    assert "ingesting breast1_image.nrrd" in capsys.readouterr().out
    (store,) = (tmp_path / "cache").iterdir()
    second = tv.analyze(source, recipe=recipe, client=False)
    assert "ingesting" not in capsys.readouterr().out
    np.testing.assert_array_equal(first["descriptor"].values, second["descriptor"].values)
    image = tv.datasets.load_mr_lesion("breast1")[0]
    expected = describe(tile_features(image, recipe)).values
    np.testing.assert_allclose(first["descriptor"].values, expected, rtol=1e-12)
    assert store.name.startswith("breast1_image.nrrd-")


def test_model_checks(tmp_path):
    images = [image_2d(i, bright=i % 2 == 1) for i in range(6)]
    model = tv.fit(images, np.arange(6) % 2, recipe=RECIPE, estimator=LOGISTIC)
    path = model.save(tmp_path / "m.tvmodel")
    volume = make_image(np.zeros((8, 8, 8)), ("z", "y", "x"))
    with pytest.raises(ValueError, match="trained on 2-D images but this image is 3-D"):
        run(volume, model=path)
    with pytest.raises(ValueError, match="differs from the model's recipe"):
        run(images[0], model=path, recipe=Recipe(["intensity"], tile=4))
    result = run(images[1], model=path)
    assert result["label"].item() == model.predict([images[1]])[0]


def test_on_a_local_cluster():
    from distributed import Client, LocalCluster

    image = image_2d()
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        result = tv.analyze(image, recipe=RECIPE, client=client, verbose=False)
    assert result.attrs["cluster"].startswith("http")
    np.testing.assert_allclose(
        result["descriptor"].values, run(image, recipe=RECIPE)["descriptor"].values, rtol=1e-12
    )


def test_analyze_many_equals_one_by_one_and_resumes(tmp_path):
    import shutil

    images = [image_2d(i, bright=i % 2 == 1).rename(f"im{i}") for i in range(4)]
    model = tv.fit(images, np.arange(4) % 2, recipe=RECIPE, estimator=LOGISTIC)
    out = tmp_path / "many"
    table = tv.analyze_many(images, model=model, client=False, verbose=False, output=out)
    assert table.index.tolist() == ["im0", "im1", "im2", "im3"]
    for image in images:
        single = run(image, model=model)
        row = table.loc[image.name]
        assert row["label"] == single["label"].item()
        assert row["probability.1"] == pytest.approx(single["probability"].values[1])
        assert row["intensity.mean"] == pytest.approx(
            single["descriptor"].sel(feature="intensity.mean").item()
        )
    assert (out / "results.csv").exists()
    (im2,) = out.glob("im2-*")  # <name>-<8 hex digits identifying the source>
    shutil.rmtree(im2)
    with raise_if_dask_computes(max_computes=1) as counter:
        again = tv.analyze_many(images, model=model, client=False, verbose=False, output=out)
    assert counter.total_computes == 1  # only the missing image
    np.testing.assert_allclose(again.to_numpy(dtype=float), table.to_numpy(dtype=float))
    assert (im2 / "analysis.json").exists()


def test_analyze_many_on_a_cluster_writes_each_result():
    from distributed import Client, LocalCluster

    images = [image_2d(i).rename(f"im{i}") for i in range(3)]
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        table = tv.analyze_many(images, recipe=RECIPE, client=client, verbose=False)
    local = tv.analyze_many(images, recipe=RECIPE, client=False, verbose=False)
    np.testing.assert_allclose(table.to_numpy(), local.to_numpy(), rtol=1e-12)
