from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest
import xarray as xr

import tilevision as tv
from tilevision.cli import build_parser, main

from .conftest import no_leftovers


def test_ingest_and_info(tmp_path, capsys):
    src = tmp_path / "vol.npy"
    data = np.arange(6 * 20 * 30, dtype="uint16").reshape(6, 20, 30)
    np.save(src, data)
    dest = tmp_path / "vol.zarr"
    code = main(
        ["ingest", str(src), str(dest), "--chunks", "4,8,8", "--spacing", "3,0.5,0.5",
         "--units", "millimeter", "--quiet"]
    )  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "z=6 × y=20 × x=30" in out
    assert "z=3 mm, y=0.5 mm, x=0.5 mm" in out
    np.testing.assert_array_equal(tv.open(dest).values, data)
    assert main(["info", str(dest), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["chunks"] == {"z": 4, "y": 8, "x": 8}
    assert summary["spacing"] == {"z": 3.0, "y": 0.5, "x": 0.5}
    assert summary["provenance"]["source_format"] == "npy"


def test_errors_are_one_line_with_exit_code_1(tmp_path, capsys):
    code = main(["ingest", str(tmp_path / "missing.tif"), str(tmp_path / "out.zarr")])
    assert code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("tilevision ingest: error: no such file or folder")
    assert "Traceback" not in err
    assert no_leftovers(tmp_path) == []


def test_existing_destination_needs_overwrite(tmp_path, capsys):
    src = tmp_path / "a.npy"
    np.save(src, np.zeros((4, 4), "uint8"))
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet"]) == 0
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet"]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert main(["ingest", str(src), str(tmp_path / "a.zarr"), "--quiet", "--overwrite"]) == 0


def test_debug_shows_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["--debug", "info", str(tmp_path / "nothing.zarr")])


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as excinfo:
        main(["ingest"])
    assert excinfo.value.code == 2
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "tilevision.cli", "--help"], capture_output=True, text=True,
        check=True,
    )  # fmt: skip
    for command in ("demo", "ingest", "info"):
        assert command in result.stdout


@pytest.mark.parametrize("cluster", [False, True], ids=["threads", "local-cluster"])
def test_demo_quick(tmp_path, capsys, monkeypatch, cluster):
    # the demo's flow with a smaller AdrenalMNIST3D subsample (the real --quick one is slow)
    monkeypatch.setattr("tilevision._demo.QUICK_SIZES", (24, 16))
    args = ["demo", "--quick", "--output", str(tmp_path / "demo")]
    if not cluster:
        args.append("--no-cluster")
    assert main(args) == 0
    out = capsys.readouterr().out
    assert ("Dask dashboard: http" in out) == cluster
    for name in ("ct", "phantom", "slide"):
        img = tv.open(tmp_path / "demo" / f"{name}.zarr")
        assert img.attrs["n_levels"] >= 1
    ct = tv.open(tmp_path / "demo" / "ct.zarr")
    assert ct.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}
    assert ct.shape == (112, 101, 122)
    # the ingested slide is analysed by a tile model trained on another slide
    _check_demo_slide_analysis(tmp_path / "demo", out)
    # ... and it ends with a trained model and its validation report
    _check_demo_model(tmp_path / "demo", out, n_train=24, n_val=16, recompute=not cluster)
    assert "Done in" in out
    if cluster:  # a second run replaces its own outputs
        assert main(args) == 0


def _check_demo_slide_analysis(folder, out):
    analysis = folder / "slide-analysis"
    assert (analysis / "heatmap.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (analysis / "report.html").exists()
    assert f"The slide's heatmap: {analysis / 'heatmap.png'}" in out
    result = xr.open_zarr(analysis / "result.zarr", consolidated=True)
    assert result.attrs["image_shape"] == list(tv.open(folder / "slide.zarr").shape)
    # the printed tile accuracy, recomputed from the stored result and the true regions
    printed = float(re.search(r"tile accuracy ([0-9.]+)", out).group(1))
    _, truth = tv.datasets.texture_slide((1024, 1024), seed=0, region_size=256, labels=True)
    blocks = truth.values.reshape(8, 128, 8, 128).transpose(0, 2, 1, 3).reshape(8, 8, -1)
    majority = np.array([[np.bincount(b).argmax() for b in row] for row in blocks])
    predicted = result["tile_probability"].argmax("class").values
    assert printed == pytest.approx(np.mean(predicted == majority), abs=1e-3)
    assert printed > 0.85


def _check_demo_model(folder, out, *, n_train, n_val, recompute=False):
    from tilevision.datasets import load_adrenalmnist3d

    model = tv.load_model(folder / "model.tvmodel")
    assert model.training_["images"] == n_train
    assert model.classes_.tolist() == [0, 1]
    assert model.recipe_ == tv.Recipe({"shape": {}}, tile=28)
    report = json.loads((folder / "report.json").read_text())
    assert report["kind"] == "held-out"
    assert report["n_samples"] == n_val
    assert 0.0 <= report["metrics"]["roc_auc"] <= 1.0
    for name in ("roc.png", "confusion.png"):
        assert (folder / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"trained on {n_train} volumes" in out
    assert f"Report (held-out, {n_val} samples, 2 classes); positive class 1" in out
    assert f"val ROC AUC {report['metrics']['roc_auc']:.3f}" in out
    assert f"model: {folder / 'model.tvmodel'}" in out
    if recompute:  # the saved report is the model's score on the val subsample
        from tilevision._demo import _subsample

        val_images, val_labels = load_adrenalmnist3d(28, "val")
        keep = _subsample(val_labels, n_val)
        assert report["predictions"]["y_true"] == val_labels[keep].tolist()
        np.testing.assert_allclose(
            report["predictions"]["probabilities"], model.predict_proba(val_images[keep])
        )


@pytest.mark.slow
def test_demo_quick_real_sizes(tmp_path, capsys):
    assert main(["demo", "--quick", "--output", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    _check_demo_model(tmp_path / "demo", out, n_train=150, n_val=60)
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    assert report["metrics"]["roc_auc"] > 0.6  # better than chance on AdrenalMNIST3D


# ---------------------------------------------------------------- fit / predict / evaluate

RECIPE_TOML = "tile = [8]\n[features.intensity]\n"


def _write_images(folder, n, *, shape=(16, 16), seed=0):
    """``n`` images alternating dark/bright, saved as .npy; returns their names."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        np.save(folder / f"im{i}.npy", rng.random(shape) + (i % 2))
        names.append(f"im{i}.npy")
    return names


def _csv(path, header, rows):
    path.write_text("\n".join([header, *(",".join(map(str, r)) for r in rows)]) + "\n")
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Train/test CSVs of 2-D .npy images (classes dark/bright) and a model fitted by the CLI."""
    root = tmp_path_factory.mktemp("learn")
    names = _write_images(root / "img", 8)
    classes = ["dark", "bright"]
    train = _csv(
        root / "train.csv",
        "path,label,group",
        [(f"img/{n}", classes[i % 2], f"p{i // 2}") for i, n in enumerate(names)],
    )
    test_names = _write_images(root / "test", 4, seed=1)
    test = _csv(root / "test.csv", "Path,Label", [
        (f"test/{n}", classes[i % 2]) for i, n in enumerate(test_names)
    ])  # fmt: skip
    recipe = root / "recipe.toml"
    recipe.write_text(RECIPE_TOML)
    model = root / "model.tvmodel"
    args = ["fit", str(train), "-o", str(model), "--recipe", str(recipe), "--estimator",
            "logistic", "--json"]  # fmt: skip
    return {"root": root, "train": train, "test": test, "recipe": recipe, "model": model,
            "fit_args": args}  # fmt: skip


def _fit(trained, capsys):
    if not trained["model"].exists():
        assert main(trained["fit_args"]) == 0
        trained["fit_summary"] = json.loads(capsys.readouterr().out)
    return trained["model"]


def test_fit_writes_a_model_the_library_loads(trained, capsys):
    from sklearn.linear_model import LogisticRegression

    path = _fit(trained, capsys)
    summary = trained["fit_summary"]
    model = tv.load_model(path)
    assert summary["model"] == str(path.resolve())
    assert summary["images"] == 8
    assert summary["level"] == "image"
    assert summary["classes"] == ["bright", "dark"] == model.classes_.tolist()
    assert summary["class_counts"] == {"bright": 4, "dark": 4}
    assert summary["training_accuracy"] == 1.0
    assert model.recipe_ == tv.Recipe.from_toml(trained["recipe"])
    estimator = model.pipeline_[-1]
    assert isinstance(estimator, LogisticRegression)
    assert (estimator.class_weight, estimator.max_iter) == ("balanced", 5000)
    # an existing model file is kept unless --overwrite
    assert main(trained["fit_args"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--overwrite" in err


def test_fit_prints_a_summary(tmp_path, capsys):
    names = _write_images(tmp_path, 4, shape=(8, 8))
    table = _csv(tmp_path / "t.csv", "path,label", [(n, i % 2) for i, n in enumerate(names)])
    (tmp_path / "r.json").write_text(tv.Recipe(["intensity"], tile=8).to_json())
    model = tmp_path / "m.tvmodel"
    args = ["fit", str(table), "-o", str(model), "--recipe", str(tmp_path / "r.json")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "image-level RandomForestClassifier on 4 images" in out  # the default estimator
    assert "classes: 0 (2), 1 (2)" in out
    assert f"model: {model.resolve()}" in out
    assert tv.load_model(model).classes_.tolist() == [0, 1]  # integer labels stay integers


def test_predict_matches_the_library(trained, capsys, tmp_path):
    model_path = _fit(trained, capsys)
    model = tv.load_model(model_path)
    root = trained["root"]
    extra = root / "img" / "im1.npy"
    out = tmp_path / "pred.csv"
    assert (
        main(["predict", str(model_path), str(trained["test"]), str(extra), "-o", str(out)]) == 0
    )
    assert capsys.readouterr().out == f"wrote 5 predictions to {out}\n"
    lines = out.read_text().splitlines()
    assert lines[0] == "path,label,prob_bright,prob_dark"
    rows = [line.split(",") for line in lines[1:]]
    assert [r[0] for r in rows] == [f"test/im{i}.npy" for i in range(4)] + [str(extra)]
    paths = [root / "test" / f"im{i}.npy" for i in range(4)] + [extra]
    expected = model.predict_proba(paths)
    np.testing.assert_allclose([[float(v) for v in r[2:]] for r in rows], expected, rtol=1e-5)
    assert [r[1] for r in rows] == model.predict(paths).tolist()
    assert [r[1] for r in rows] == ["dark", "bright", "dark", "bright", "bright"]
    # stdout as CSV, and JSON
    assert main(["predict", str(model_path), str(extra)]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith(f"{extra},bright,")
    assert main(["predict", str(model_path), str(extra), "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["label"] == "bright"
    np.testing.assert_allclose(list(row["probabilities"].values()), expected[-1], rtol=1e-12)


def test_predict_on_a_scheduler(trained, capsys):
    from distributed import LocalCluster

    model_path = _fit(trained, capsys)
    args = ["predict", str(model_path), str(trained["test"])]
    assert main(args) == 0
    expected = capsys.readouterr().out
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster:
        assert main([*args, "--scheduler", cluster.scheduler_address]) == 0
        assert capsys.readouterr().out == expected
    assert tv.cluster.current_client() is None  # the CLI closed its client


def test_evaluate_held_out_writes_report_and_plots(trained, capsys, tmp_path):
    model_path = _fit(trained, capsys)
    out = tmp_path / "eval"
    assert (
        main(["evaluate", str(trained["test"]), "--model", str(model_path), "-o", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert printed.startswith("Report (held-out, 4 samples, 2 classes)")
    assert sorted(p.name for p in out.iterdir()) == ["confusion.png", "report.json", "roc.png"]
    for name in ("confusion.png", "roc.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "report.json").read_text())
    paths = [trained["root"] / "test" / f"im{i}.npy" for i in range(4)]
    reference = tv.evaluate(tv.load_model(model_path), paths, ["dark", "bright"] * 2)
    assert saved["metrics"] == reference.to_dict()["metrics"]
    assert saved["metrics"]["roc_auc"] == 1.0
    assert saved["predictions"] is not None  # the ROC curve can be redrawn from the file


def test_evaluate_cross_validation_matches_the_library(trained, capsys):
    from sklearn.linear_model import LogisticRegression

    args = ["evaluate", str(trained["train"]), "--recipe", str(trained["recipe"]), "--cv", "2",
            "--estimator", "logistic", "--seed", "3", "--json"]  # fmt: skip
    assert main(args) == 0
    got = json.loads(capsys.readouterr().out)
    root = trained["root"]
    reference = tv.evaluate(
        [root / "img" / f"im{i}.npy" for i in range(8)],
        ["dark", "bright"] * 4,
        recipe=tv.Recipe.from_toml(trained["recipe"]),
        estimator=LogisticRegression(class_weight="balanced", max_iter=5000, random_state=3),
        cv=2,
        groups=[f"p{i // 2}" for i in range(8)],
        random_state=3,
    ).to_dict(predictions=False)
    assert got["kind"] == "cross-validation"
    assert len(got["folds"]) == 2
    assert got["metrics"] == reference["metrics"]
    assert got["folds"] == reference["folds"]
    # the group column keeps each patient's two images in one fold
    assert "Group" in got["extra"]["splitter"]


def test_tile_level_fit_predict_tiles(tmp_path, capsys):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(4):
        image = rng.random((16, 16))
        mask = np.zeros((16, 16), "uint8")
        mask[:, : 8 if i % 2 else 3] = 1  # odd: 2 of 4 tiles all 1; even: 3/8 of 2 tiles
        image[mask == 1] += 1
        np.save(tmp_path / f"im{i}.npy", image)
        np.save(tmp_path / f"mask{i}.npy", mask)
        rows.append((f"im{i}.npy", f"mask{i}.npy"))
    table = _csv(tmp_path / "tiles.csv", "path,label", rows)
    (tmp_path / "r.toml").write_text(RECIPE_TOML)
    model_path = tmp_path / "tile.tvmodel"
    args = ["fit", str(table), "-o", str(model_path), "--level", "tile", "--recipe",
            str(tmp_path / "r.toml"), "--estimator", "logistic", "--aggregate", "max",
            "--json"]  # fmt: skip
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["level"], summary["images"], summary["rows"]) == ("tile", 4, 16)
    assert summary["class_counts"] == {"0": 12, "1": 4}  # majority rule on the masks
    model = tv.load_model(model_path)
    assert model.aggregate == "max"
    assert model.tile_rule == "majority"
    args[args.index(str(model_path))] = str(tmp_path / "any.tvmodel")
    assert main([*args, "--tile-rule", "any"]) == 0
    assert json.loads(capsys.readouterr().out)["class_counts"] == {"0": 8, "1": 8}
    tiles = tmp_path / "tiles"
    pred = ["predict", str(model_path), str(tmp_path / "im0.npy"), str(tmp_path / "im1.npy"),
            "--tiles", str(tiles), "--json"]  # fmt: skip
    assert main(pred) == 0
    rows = json.loads(capsys.readouterr().out)
    for i, row in enumerate(rows):
        assert row["tiles"] == str(tiles / f"im{i}.tiles.npz")
        with np.load(row["tiles"], allow_pickle=False) as saved:
            expected = model.predict_tiles(tmp_path / f"im{i}.npy")
            np.testing.assert_allclose(saved["probability"], expected.values, rtol=1e-12)
            assert saved["dims"].tolist() == ["tile_y", "tile_x", "class"]
            assert saved["classes"].tolist() == [0, 1]
            np.testing.assert_array_equal(saved["coord_tile_x"], expected["tile_x"].values)
    # an image-level model has no tiles: a usage error
    image_model = tmp_path / "image.tvmodel"
    image_table = _csv(
        tmp_path / "img.csv", "path,label", [(f"im{i}.npy", i % 2) for i in range(4)]
    )
    assert main(["fit", str(image_table), "-o", str(image_model), "--recipe",
                 str(tmp_path / "r.toml"), "--estimator", "logistic", "--json"]) == 0  # fmt: skip
    capsys.readouterr()
    assert (
        main(["predict", str(image_model), str(tmp_path / "im0.npy"), "--tiles", str(tiles)]) == 2
    )
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--level tile" in err


def _bad_input(tmp_path, case):
    """Files for one bad-input case; returns the CLI arguments."""
    names = _write_images(tmp_path, 4, shape=(8, 8))
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE_TOML)
    fit = ["fit", "--recipe", str(recipe), "-o", str(tmp_path / "m.tvmodel")]
    table = tmp_path / "t.csv"
    if case == "missing csv":
        return [*fit, str(tmp_path / "nothing.csv")]
    if case == "no label column":
        _csv(table, "path,class", [(n, i % 2) for i, n in enumerate(names)])
    elif case == "missing image":
        _csv(table, "path,label", [(names[0], 0), ("gone.npy", 1)])
    elif case == "empty label":
        _csv(table, "path,label", [(names[0], ""), (names[1], 1)])
    elif case == "single class":
        _csv(table, "path,label", [(n, "a") for n in names])
    elif case == "not a model":
        (tmp_path / "fake.tvmodel").write_text("not a model")
        return ["predict", str(tmp_path / "fake.tvmodel"), str(tmp_path / names[0])]
    elif case == "header only":
        _csv(table, "path,label", [])
    elif case == "mixed label images":
        _csv(table, "path,label", [(names[0], names[1]), (names[2], 1)])
        return [*fit, "--level", "tile", str(table)]
    return [*fit, str(table)]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing csv", r"nothing\.csv does not exist: give a CSV file of images; the first line "
                        r"must be a header"),
        ("no label column", r"t\.csv has no 'label' column \(its first line is 'path,class'\)"),
        ("missing image", r"line 3 of .*t\.csv: image 'gone\.npy' does not exist"),
        ("empty label", r"line 2 of .*t\.csv: the label is empty; give every image a label"),
        ("header only", r"t\.csv has a header but no rows"),
        ("single class", r"the labels hold a single class \['a'\]; a classifier needs at least"),
        ("not a model", r"fake\.tvmodel is not a tilevision model file"),
        ("mixed label images", r"line 3 of .*t\.csv: label '1' is not an existing label image, "
                               r"but other rows name label images"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_with_exit_code_1(tmp_path, capsys, case, message):
    import re

    args = _bad_input(tmp_path, case)
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert err.startswith(f"tilevision {args[0]}: error: ")
    assert re.search(message, err), err
    assert not (tmp_path / "m.tvmodel").exists()


def test_predicting_images_of_another_dimensionality(trained, capsys, tmp_path):
    model_path = _fit(trained, capsys)
    np.save(tmp_path / "vol.npy", np.zeros((8, 8, 8)))
    assert main(["predict", str(model_path), str(tmp_path / "vol.npy")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "trained on 2-D images" in err
    assert "but the images are 3-D" in err


def test_evaluate_options_that_do_not_go_together(trained, capsys):
    model_path = _fit(trained, capsys)
    args = ["evaluate", str(trained["test"]), "--model", str(model_path), "--cv", "3"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "--cv" in err
    assert "--model" in err


def test_learn_commands_help(capsys):
    from tilevision.learn._estimators import ESTIMATOR_NAMES

    for command in ("fit", "predict", "evaluate"):
        with pytest.raises(SystemExit) as excinfo:
            main([command, "--help"])
        assert excinfo.value.code == 0
        assert f"usage: tilevision {command}" in capsys.readouterr().out
    main_help = build_parser().format_help()
    for command in ("fit", "predict", "evaluate"):
        assert command in main_help
    fit_help = build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
    for name in ESTIMATOR_NAMES:
        assert f"{name}:" in " ".join(fit_help.split())
    with pytest.raises(SystemExit) as excinfo:
        main(["fit", "t.csv", "-o", "m.tvmodel", "--estimator", "svm"])
    assert excinfo.value.code == 2
    assert "unknown estimator 'svm'; choose one of rf, hgb, logistic" in capsys.readouterr().err


def test_estimator_names():
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from tilevision.learn import default_estimator
    from tilevision.learn._estimators import ESTIMATOR_NAMES, estimator_from_name

    assert ESTIMATOR_NAMES == ("rf", "hgb", "logistic")
    rf = estimator_from_name("rf", 7)
    assert isinstance(rf, RandomForestClassifier)
    assert rf.get_params() == default_estimator(7).get_params()
    hgb = estimator_from_name("hgb", 7)
    assert isinstance(hgb, HistGradientBoostingClassifier)
    assert (hgb.class_weight, hgb.random_state) == ("balanced", 7)
    with pytest.raises(ValueError, match=r"unknown estimator 'svm'; choose one of \['rf'"):
        estimator_from_name("svm")


def test_analyze_with_a_model_matches_the_library(trained, capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    path = _fit(trained, capsys)
    image = trained["root"] / "test" / "im1.npy"
    out = tmp_path / "result"
    args = ["analyze", str(image), "--model", str(path), "--output", str(out), "--no-cluster"]
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    model = tv.load_model(path)
    expected = model.predict_proba([np.load(image)])[0]
    assert summary["label"] == model.predict([np.load(image)])[0]
    assert summary["probability"]["bright"] == pytest.approx(expected[0])
    assert (out / "result.zarr").is_dir()
    assert main(args) == 0  # a re-run re-uses the results
    assert "re-using the finished results" in capsys.readouterr().out


def test_analyze_bad_source(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not an image")
    assert main(["analyze", str(tmp_path / "notes.txt"), "--no-cluster"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("tilevision analyze: error:")
    assert "\n" not in err


def test_unknown_cluster_profile_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TILEVISION_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "img.npy"
    np.save(source, np.zeros((16, 16), dtype=np.uint8))
    assert main(["analyze", str(source), "--scheduler", "no-such-profile", "--jobs", "2"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "'no-such-profile' is neither a scheduler address" in err
    assert "jobqueue.yaml" in err


def test_bench_is_a_cli_command(capsys):
    assert main(["bench", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("features", "filters", "global_stats", "ingest", "label"):
        assert f"  {name} " in out
    with pytest.raises(SystemExit) as excinfo:
        main(["bench", "--help"])
    assert excinfo.value.code == 0
    assert "--quick" in capsys.readouterr().out
