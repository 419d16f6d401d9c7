"""Model files: safe round trip, and refusal of damaged, tampered, unsafe or foreign files."""

from __future__ import annotations

import datetime
import hashlib
import importlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import sklearn
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import (
    ExtraTreesClassifier,
    GradientBoostingClassifier,
    HistGradientBoostingClassifier,
    RandomForestClassifier,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.svm import SVC
from sklearn.tree import DecisionTreeClassifier
from threadpoolctl import threadpool_limits

import tilevision
from tilevision.learn import _model_file
from tilevision.learn._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFileError,
    read_model_file,
    trusted_types,
    write_model_file,
)

from ..conftest import no_leftovers

METADATA = {
    "recipe": {"tile": [16, 16], "families": {"intensity": {}, "glcm": {"levels": 8}}},
    "feature_names": ["intensity.mean", "intensity.std", "glcm.contrast", "glcm.energy"],
    "classes": ["a", "b", "c"],
    "metrics": {"accuracy": 0.75, "roc_auc": 0.8125, "confusion": [[3, 1], [0, 4]]},
    "level": "image",
    "n_training_samples": 90,
    "notes": None,
}


def _data(labels: str = "str") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4))
    y_int = np.arange(90) % 3
    X[:, 0] += y_int  # some signal
    X[5, 1] = np.nan  # imputed by the pipeline
    y = np.array(["a", "b", "c"])[y_int] if labels == "str" else y_int
    return X, y


def _pipeline(estimator) -> Pipeline:
    return Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("classify", estimator),
        ]
    )


ESTIMATORS = {
    "random_forest": lambda: RandomForestClassifier(
        n_estimators=5, class_weight="balanced", random_state=0
    ),
    "extra_trees": lambda: ExtraTreesClassifier(n_estimators=5, random_state=0),
    "gradient_boosting": lambda: GradientBoostingClassifier(n_estimators=5, random_state=0),
    "hist_gradient_boosting": lambda: HistGradientBoostingClassifier(
        max_iter=5, class_weight="balanced", random_state=0
    ),
    "hist_gradient_boosting_early_stop": lambda: HistGradientBoostingClassifier(
        max_iter=5, early_stopping=True, validation_fraction=0.2, random_state=0
    ),
    "decision_tree": lambda: DecisionTreeClassifier(random_state=0),
    "logistic": lambda: LogisticRegression(),
    "sgd_log_loss": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "sgd_hinge": lambda: SGDClassifier(random_state=0),
    "svc": lambda: SVC(),
    "calibrated_svc_sigmoid": lambda: CalibratedClassifierCV(SVC(), cv=3),
    "calibrated_svc_isotonic": lambda: CalibratedClassifierCV(SVC(), method="isotonic", cv=3),
    "calibrated_svc_temperature": lambda: CalibratedClassifierCV(
        SVC(), method="temperature", ensemble=False, cv=3
    ),
}


def _scores(model, X: np.ndarray) -> np.ndarray:
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    return model.decision_function(X)


def _rewrite(path: Path, *, model: bytes | None = None, metadata: dict | None = None) -> None:
    """Rewrite the zip with replaced members (what a tamperer, or a damaged copy, does)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    if model is not None:
        members["model.skops"] = model
    if metadata is not None:
        members["metadata.json"] = json.dumps(metadata).encode()
    path.unlink()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _members(path: Path) -> tuple[bytes, dict]:
    with zipfile.ZipFile(path) as archive:
        return archive.read("model.skops"), json.loads(archive.read("metadata.json"))


@pytest.fixture(scope="module")
def fitted() -> Pipeline:
    X, y = _data()
    return _pipeline(RandomForestClassifier(n_estimators=3, random_state=0)).fit(X, y)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """OpenMP threads only slow these tiny fits down on a busy machine."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def models() -> dict[tuple[str, str], Pipeline]:
    """Every listed estimator in the default pipeline, fitted on string and integer labels."""
    fitted = {}
    for labels in ("str", "int"):
        X, y = _data(labels)
        for name, make in ESTIMATORS.items():
            fitted[name, labels] = _pipeline(make()).fit(X, y)
    return fitted


@pytest.fixture
def saved(tmp_path, fitted) -> Path:
    return write_model_file(tmp_path / "model.tvmodel", fitted, METADATA)


# --- round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize("labels", ["str", "int"])
@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_round_trip_gives_identical_predictions(tmp_path, models, name, labels):
    X, _ = _data(labels)
    model = models[name, labels]
    path = write_model_file(tmp_path / "m.tvmodel", model, METADATA)
    loaded, metadata = read_model_file(path)
    assert type(loaded) is Pipeline
    assert type(loaded[-1]) is type(model[-1])
    np.testing.assert_array_equal(loaded.classes_, model.classes_)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(_scores(loaded, X), _scores(model, X))
    assert {key: metadata[key] for key in METADATA} == METADATA


def test_default_estimators_need_only_listed_types(models):
    """Independent of read_model_file: ask skops what each fitted model needs."""
    needed: set[str] = set()
    for model in models.values():
        needed |= set(skops.io.get_untrusted_types(data=skops.io.dumps(model)))
    assert needed  # skops does not trust everything by itself: the list matters
    assert needed <= set(trusted_types())


def test_trusted_types_are_explicit_existing_types():
    names = trusted_types()
    assert names == sorted(set(names))
    assert trusted_types() is not trusted_types()  # a copy each call
    for name in names:
        assert "*" not in name
        module, _, attribute = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attribute), type), name


def test_file_layout_and_recorded_metadata(saved, fitted):
    with zipfile.ZipFile(saved) as archive:
        assert sorted(archive.namelist()) == ["metadata.json", "model.skops"]
    model_bytes, record = _members(saved)
    assert record["format"] == FORMAT_NAME == "tilevision-model"
    assert record["format_version"] == FORMAT_VERSION == 1
    assert record["sha256"] == hashlib.sha256(model_bytes).hexdigest()
    assert record["versions"] == {
        "tilevision": tilevision.__version__,
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "skops": skops.__version__,
        "python": record["versions"]["python"],
    }
    created = datetime.datetime.fromisoformat(record["created"])
    assert created.utcoffset() == datetime.timedelta(0)
    assert abs(datetime.datetime.now(datetime.timezone.utc) - created).total_seconds() < 600
    for key, value in METADATA.items():
        assert record[key] == value
    # model.skops is plain skops: skops alone reads it back to the same model
    X, _ = _data()
    again = skops.io.loads(model_bytes, trusted=trusted_types())
    np.testing.assert_array_equal(again.predict_proba(X), fitted.predict_proba(X))


def test_read_returns_the_whole_record(saved):
    _, metadata = read_model_file(saved)
    assert metadata == _members(saved)[1]


def test_any_file_name_and_str_path(tmp_path, fitted):
    path = write_model_file(str(tmp_path / "model.bin"), fitted, {})
    assert path == tmp_path / "model.bin"
    loaded, _ = read_model_file(str(path))
    assert type(loaded) is Pipeline


# --- writing: overwrite, atomicity, metadata checks ----------------------------------------


def test_existing_file_refused_without_overwrite(saved, fitted):
    before = saved.read_bytes()
    with pytest.raises(FileExistsError, match=r"already exists; pass overwrite=True"):
        write_model_file(saved, fitted, METADATA)
    assert saved.read_bytes() == before
    write_model_file(saved, fitted, {"level": "tile"}, overwrite=True)
    assert read_model_file(saved)[1]["level"] == "tile"
    assert no_leftovers(saved.parent) == []


def test_missing_folder_refused(tmp_path, fitted):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        write_model_file(tmp_path / "no" / "m.tvmodel", fitted, {})


def test_folder_destination_refused(tmp_path, fitted):
    (tmp_path / "folder").mkdir()
    with pytest.raises(IsADirectoryError, match=r"is a folder.*choose a file name"):
        write_model_file(tmp_path / "folder", fitted, {}, overwrite=True)


def test_failed_serialisation_leaves_nothing(tmp_path, fitted, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(skops.io, "dumps", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_model_file(tmp_path / "m.tvmodel", fitted, METADATA)
    assert os.listdir(tmp_path) == []


def test_failure_while_writing_the_zip_keeps_the_old_file(saved, fitted, monkeypatch):
    before = saved.read_bytes()
    real = zipfile.ZipFile.writestr

    def fail_on_model(self, name, data, *args, **kwargs):
        if name == "model.skops":
            raise OSError("no space left on device")
        return real(self, name, data, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", fail_on_model)
    with pytest.raises(OSError, match="no space left"):
        write_model_file(saved, fitted, METADATA, overwrite=True)
    assert os.listdir(saved.parent) == [saved.name]
    assert saved.read_bytes() == before


@pytest.mark.parametrize(
    ("key", "value"),
    [("classes", np.array(["a", "b"])), ("metrics", {"auc": np.float32(0.5)}), ("when", object())],
)
def test_non_json_metadata_refused(tmp_path, fitted, key, value):
    with pytest.raises(TypeError, match=rf"metadata\['{key}'\] cannot be stored as JSON"):
        write_model_file(tmp_path / "m.tvmodel", fitted, {"level": "image", key: value})
    assert os.listdir(tmp_path) == []


def test_non_string_metadata_key_refused(tmp_path, fitted):
    with pytest.raises(TypeError, match=r"key 3 is a int.*must be strings"):
        write_model_file(tmp_path / "m.tvmodel", fitted, {3: "x"})


def test_metadata_must_be_a_dict(tmp_path, fitted):
    with pytest.raises(TypeError, match="metadata must be a dict, not list"):
        write_model_file(tmp_path / "m.tvmodel", fitted, [("a", 1)])


@pytest.mark.parametrize("key", ["format", "format_version", "sha256", "versions", "created"])
def test_reserved_metadata_key_refused(tmp_path, fitted, key):
    with pytest.raises(ValueError, match=f"metadata key '{key}' is reserved.*rename"):
        write_model_file(tmp_path / "m.tvmodel", fitted, {key: 1})


# --- reading: refusals ----------------------------------------------------------------------


def test_tampered_model_refused_by_checksum(saved):
    model_bytes, _ = _members(saved)
    flipped = bytearray(model_bytes)
    middle = len(flipped) // 2
    flipped[middle : middle + 4] = bytes(b ^ 0xFF for b in flipped[middle : middle + 4])
    _rewrite(saved, model=bytes(flipped))
    with pytest.raises(ModelFileError, match=r"modified after it was saved \(checksum mismatch"):
        read_model_file(saved)
    with pytest.raises(ModelFileError, match="re-save it from the original model"):
        read_model_file(saved)


def test_edited_checksum_refused(saved):
    _, record = _members(saved)
    _rewrite(saved, metadata={**record, "sha256": "0" * 64})
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        read_model_file(saved)


class Custom:
    """A class no one listed as trusted."""

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        return X


def _swap_model(path: Path, estimator) -> None:
    """Replace the estimator and update the checksum, as a deliberate attacker would."""
    model_bytes = skops.io.dumps(estimator)
    _, record = _members(path)
    record["sha256"] = hashlib.sha256(model_bytes).hexdigest()
    _rewrite(path, model=model_bytes, metadata=record)


def test_untrusted_function_refused(saved):
    hostile = Pipeline([("run", FunctionTransformer(func=os.system)), ("c", LogisticRegression())])
    _swap_model(saved, hostile)
    system = f"{os.system.__module__}.system"
    with pytest.raises(ModelFileError, match=rf"not trusted: \['{system}'\]") as info:
        read_model_file(saved)
    assert f"trusted=['{system}']" in str(info.value)
    assert "arbitrary code" in str(info.value)


def test_untrusted_class_refused_then_loaded_when_trusted(saved):
    X, y = _data()
    X = np.nan_to_num(X)
    model = Pipeline([("custom", Custom()), ("c", LogisticRegression())]).fit(X, y)
    _swap_model(saved, model)
    name = f"{__name__}.Custom"
    with pytest.raises(ModelFileError, match=rf"not trusted: \['{name}'\].*trusted=\['{name}'\]"):
        read_model_file(saved)
    with pytest.raises(ModelFileError, match="not trusted"):
        read_model_file(saved, trusted=["some.other.Type"])
    loaded, _ = read_model_file(saved, trusted=[name])
    assert type(loaded[0]) is Custom
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))


def test_trusted_must_be_a_list(saved):
    with pytest.raises(TypeError, match=r"not the string 'x\.Y'; write trusted=\['x\.Y'\]"):
        read_model_file(saved, trusted="x.Y")


def test_newer_format_version_refused(saved):
    _, record = _members(saved)
    record["format_version"] = FORMAT_VERSION + 1
    record["versions"]["tilevision"] = "9.3"
    _rewrite(saved, metadata=record)
    with pytest.raises(ModelFileError, match=r"made by a newer tilevision \(9\.3.*upgrade"):
        read_model_file(saved)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"format": "other-model"}, r"format is 'other-model', expected 'tilevision-model'"),
        ({"format_version": 0}, "format_version 0 is not a positive integer"),
        ({"format_version": "1"}, "format_version '1' is not a positive integer"),
        ({"versions": None}, "lacks its versions or checksum"),
        ({"sha256": None}, "lacks its versions or checksum"),
    ],
)
def test_foreign_metadata_refused(saved, change, match):
    _, record = _members(saved)
    _rewrite(saved, metadata={**record, **change})
    with pytest.raises(
        ModelFileError, match=rf"not a tilevision model file \((the metadata )?{match}"
    ):
        read_model_file(saved)


def test_not_a_zip_refused(tmp_path):
    path = tmp_path / "model.tvmodel"
    path.write_text("just text")
    with pytest.raises(ModelFileError, match=r"not a tilevision model file.*not a readable zip"):
        read_model_file(path)


def test_pickle_file_refused(tmp_path, fitted):
    import pickle

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(fitted))
    with pytest.raises(ModelFileError, match="not a tilevision model file"):
        read_model_file(path)


def test_bare_skops_file_refused(tmp_path, fitted):
    path = tmp_path / "model.skops"
    skops.io.dump(fitted, path)
    with pytest.raises(
        ModelFileError, match=r"not a tilevision model file.*has no metadata\.json"
    ):
        read_model_file(path)


def test_missing_member_refused(saved):
    with zipfile.ZipFile(saved) as archive:
        metadata = archive.read("metadata.json")
    saved.unlink()
    with zipfile.ZipFile(saved, "w") as archive:
        archive.writestr("metadata.json", metadata)
    with pytest.raises(ModelFileError, match=r"has no model\.skops"):
        read_model_file(saved)


@pytest.mark.parametrize(
    ("text", "match"),
    [(b"{not json", "metadata.json is not valid JSON"), (b"[1, 2]", "is not a JSON object")],
)
def test_bad_json_refused(saved, text, match):
    with zipfile.ZipFile(saved) as archive:
        model = archive.read("model.skops")
    saved.unlink()
    with zipfile.ZipFile(saved, "w") as archive:
        archive.writestr("metadata.json", text)
        archive.writestr("model.skops", model)
    with pytest.raises(ModelFileError, match=f"not a tilevision model file.*{match}"):
        read_model_file(saved)


def test_garbage_model_with_matching_checksum_refused(saved):
    garbage = b"not a skops file at all"
    _, record = _members(saved)
    record["sha256"] = hashlib.sha256(garbage).hexdigest()
    _rewrite(saved, model=garbage, metadata=record)
    with pytest.raises(ModelFileError, match=r"model\.skops cannot be parsed"):
        read_model_file(saved)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no model file at .*check the path"):
        read_model_file(tmp_path / "nothing.tvmodel")
    with pytest.raises(FileNotFoundError, match=r"\(it is a folder\)"):
        read_model_file(tmp_path)


# --- versions -------------------------------------------------------------------------------


def test_other_sklearn_version_warns_but_loads(saved, fitted):
    _, record = _members(saved)
    record["versions"]["scikit-learn"] = "0.24.2"
    _rewrite(saved, metadata=record)
    with pytest.warns(UserWarning, match=rf"scikit-learn 0\.24\.2 .* {sklearn.__version__}"):
        loaded, _ = read_model_file(saved)
    X, _ = _data()
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))


def test_same_minor_version_does_not_warn(saved):
    _, record = _members(saved)
    major, minor = sklearn.__version__.split(".")[:2]
    record["versions"]["scikit-learn"] = f"{major}.{minor}.99"
    _rewrite(saved, metadata=record)
    read_model_file(saved)  # filterwarnings=error turns any warning into a failure


def test_load_failure_names_the_versions(saved, monkeypatch):
    def broken(*args, **kwargs):
        raise AttributeError("module 'sklearn.tree._tree' has no attribute 'Tree'")

    monkeypatch.setattr(skops.io, "loads", broken)
    with pytest.raises(ModelFileError, match=r"could not be loaded \(AttributeError.*") as info:
        read_model_file(saved)
    assert f"scikit-learn {sklearn.__version__}, skops {skops.__version__}" in str(info.value)
    assert "install those versions" in str(info.value)


def test_module_exports():
    assert set(_model_file.__all__) == {
        "FORMAT_NAME",
        "FORMAT_VERSION",
        "ModelFileError",
        "read_model_file",
        "trusted_types",
        "write_model_file",
    }
    assert issubclass(ModelFileError, ValueError)
