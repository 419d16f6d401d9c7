"""Model files: a fitted estimator and its metadata in a safe, checked zip file.

A model file is a zip archive (suggested suffix ``.tvmodel``) with two members:

``model.skops``
    The estimator serialised by :func:`skops.io.dumps` — never a bare pickle.
    Loading it instantiates only types from an explicit trusted list
    (:func:`trusted_types`, plus what skops itself trusts: scikit-learn
    estimators, NumPy arrays, Python primitives).
``metadata.json``
    The format name and version, the SHA-256 of ``model.skops``, the versions of
    the libraries that wrote it, the creation time, and the caller's metadata
    (Recipe, feature names, classes, training metrics, ...).

The checksum detects a file changed after it was saved (a damaged copy, an edit);
it is not a signature — anyone can recompute it — so a hostile file is stopped by
the trusted-type check, not by the checksum.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import platform
import uuid
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._version import __version__
from ..io._atomic import PARTIAL_MARKER, check_destination

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "ModelFileError",
    "read_model_file",
    "trusted_types",
    "write_model_file",
]

FORMAT_NAME = "tilevision-model"
FORMAT_VERSION = 1

MODEL_MEMBER = "model.skops"
METADATA_MEMBER = "metadata.json"
RESERVED_KEYS = ("format", "format_version", "sha256", "versions", "created")

# Fully-qualified names of the types a tilevision model may contain beyond what skops
# trusts by default. Found by fitting each estimator (inside the default imputer +
# scaler pipeline, with integer and string labels) and asking
# ``skops.io.get_untrusted_types``; the estimators themselves are listed too so the
# list documents what a model file may hold. Explicit names only, no wildcards.
_TRUSTED_TYPES = (
    # NumPy
    "numpy.dtype",
    # the default pipeline
    "sklearn.pipeline.Pipeline",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.preprocessing._data.StandardScaler",
    # trees and forests
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.ensemble._forest.ExtraTreesClassifier",
    "sklearn.ensemble._gb.GradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    # linear models and SVMs
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    "sklearn.svm._classes.SVC",
    # probability calibration
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.isotonic.IsotonicRegression",
)


class ModelFileError(ValueError):
    """A file that is not a usable tilevision model file; the message says why and what to do."""


def trusted_types() -> list[str]:
    """Return the fully-qualified type names a model file may contain by default.

    These are trusted in addition to what :mod:`skops.io` trusts on its own
    (scikit-learn estimators, NumPy arrays, Python primitives). Pass more names to
    :func:`read_model_file` with ``trusted=`` only for files from a source you trust.

    Returns
    -------
    list of str
        A new list each call, sorted.

    Examples
    --------
    >>> names = trusted_types()
    >>> "sklearn.tree._tree.Tree" in names
    True
    >>> any("*" in name for name in names)
    False
    """
    return sorted(_TRUSTED_TYPES)


def _skops_io() -> Any:
    try:
        import skops.io
    except ImportError as error:  # pragma: no cover - skops is a dependency
        raise ImportError(
            "model files need skops; install it with `pip install skops` "
            "(or `conda install -c conda-forge skops`)."
        ) from error
    return skops.io


def _library_versions() -> dict[str, str]:
    import numpy
    import sklearn
    import skops

    return {
        "tilevision": __version__,
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "skops": skops.__version__,
        "python": platform.python_version(),
    }


def _check_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metadata, Mapping):
        raise TypeError(
            f"metadata must be a dict, not {type(metadata).__name__}; pass e.g. "
            "{'feature_names': [...], 'classes': [...]}."
        )
    checked: dict[str, Any] = {}
    for key, value in metadata.items():
        if not isinstance(key, str):
            raise TypeError(
                f"metadata key {key!r} is a {type(key).__name__}; model-file metadata keys "
                "must be strings — convert it with str()."
            )
        if key in RESERVED_KEYS:
            raise ValueError(
                f"metadata key {key!r} is reserved (the file writes {', '.join(RESERVED_KEYS)} "
                "itself); rename that key."
            )
        try:
            json.dumps(value)
        except (TypeError, ValueError) as error:
            raise TypeError(
                f"metadata[{key!r}] cannot be stored as JSON ({error}); convert it to plain "
                "Python values first (lists, dicts, str, int, float, bool, None — e.g. "
                "array.tolist(), float(x), recipe.to_dict())."
            ) from error
        checked[key] = value
    return checked


def write_model_file(
    path: str | os.PathLike[str],
    estimator: Any,
    metadata: Mapping[str, Any],
    *,
    overwrite: bool = False,
) -> Path:
    """Save a fitted estimator and its metadata to a tilevision model file.

    The estimator is serialised with :func:`skops.io.dumps` (no bare pickle) and
    stored next to a JSON record of the format version, the checksum of the
    serialised estimator, the library versions and ``metadata``. The file is
    written to a temporary sibling and renamed into place, so an interrupted or
    failed save leaves no half-written file (and an existing file unchanged).

    Parameters
    ----------
    path : str or path-like
        Destination file, e.g. ``"model.tvmodel"``. Its folder must exist.
    estimator : object
        The fitted estimator, usually a scikit-learn Pipeline.
    metadata : dict
        The caller's record (Recipe as a dict, feature names, classes, metrics,
        ...). Keys are strings; values must be JSON-serialisable. The keys
        ``format``, ``format_version``, ``sha256``, ``versions`` and ``created``
        are reserved.
    overwrite : bool, default False
        Replace ``path`` when it exists.

    Returns
    -------
    pathlib.Path
        The written file.

    Raises
    ------
    FileExistsError
        If ``path`` exists and ``overwrite`` is false.
    FileNotFoundError
        If the folder of ``path`` does not exist.
    TypeError
        If ``metadata`` holds a value that JSON cannot store (the message names the key).
    ValueError
        If ``metadata`` uses a reserved key.

    See Also
    --------
    read_model_file : the reverse, with checks.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.linear_model import LogisticRegression
    >>> model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     written = write_model_file(
    ...         Path(folder) / "demo.tvmodel", model, {"classes": [0, 1]}
    ...     )
    ...     print(written.name)
    demo.tvmodel
    """
    checked = _check_metadata(metadata)
    dest = check_destination(path, overwrite)
    if dest.is_dir():
        raise IsADirectoryError(
            f"{dest} is a folder; a model file is a single file — choose a file name such as "
            f"{dest / 'model.tvmodel'}."
        )
    model_bytes = _skops_io().dumps(estimator)
    record = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "sha256": hashlib.sha256(model_bytes).hexdigest(),
        "versions": _library_versions(),
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **checked,
    }
    metadata_bytes = json.dumps(record, indent=2, sort_keys=False).encode("utf-8")

    tmp = dest.parent / f".{dest.name}{PARTIAL_MARKER}{uuid.uuid4().hex[:12]}"
    try:
        with zipfile.ZipFile(tmp, "x", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_MEMBER, metadata_bytes)
            archive.writestr(MODEL_MEMBER, model_bytes)
        if dest.exists() and not overwrite:
            raise FileExistsError(f"{dest} appeared while it was being written; not replaced.")
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    return dest


def _not_a_model_file(path: Path, problem: str) -> ModelFileError:
    return ModelFileError(
        f"{path} is not a tilevision model file ({problem}); pass a file written by "
        "Model.save(), or re-save the model."
    )


def _read_members(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [m for m in (METADATA_MEMBER, MODEL_MEMBER) if m not in names]
            if missing:
                raise _not_a_model_file(path, f"the zip has no {' or '.join(missing)}")
            metadata_bytes = archive.read(METADATA_MEMBER)
            model_bytes = archive.read(MODEL_MEMBER)
    except zipfile.BadZipFile as error:
        raise _not_a_model_file(path, f"not a readable zip archive: {error}") from error
    try:
        record = json.loads(metadata_bytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise _not_a_model_file(path, f"{METADATA_MEMBER} is not valid JSON: {error}") from error
    if not isinstance(record, dict):
        raise _not_a_model_file(path, f"{METADATA_MEMBER} is not a JSON object")
    return model_bytes, record


def _check_record(path: Path, record: dict[str, Any], model_bytes: bytes) -> None:
    if record.get("format") != FORMAT_NAME:
        raise _not_a_model_file(
            path, f"format is {record.get('format')!r}, expected {FORMAT_NAME!r}"
        )
    version = record.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise _not_a_model_file(path, f"format_version {version!r} is not a positive integer")
    versions = record.get("versions")
    if version > FORMAT_VERSION:
        writer = versions.get("tilevision", "unknown") if isinstance(versions, dict) else "unknown"
        raise ModelFileError(
            f"{path} was made by a newer tilevision ({writer}; model-file format version "
            f"{version}), but this tilevision ({__version__}) reads format version "
            f"{FORMAT_VERSION} at most; upgrade tilevision (pip install -U tilevision) to "
            "load it."
        )
    if not isinstance(versions, dict) or not isinstance(record.get("sha256"), str):
        raise _not_a_model_file(path, "the metadata lacks its versions or checksum")
    if hashlib.sha256(model_bytes).hexdigest() != record["sha256"]:
        raise ModelFileError(
            f"{path} was modified after it was saved (checksum mismatch: {MODEL_MEMBER} does "
            "not match the SHA-256 recorded in its metadata); re-save it from the original "
            "model, or use an unmodified copy."
        )


def _major_minor(version: str) -> tuple[str, ...]:
    return tuple(str(version).split(".")[:2])


def _warn_on_version_change(path: Path, versions: dict[str, Any]) -> None:
    import sklearn

    written = versions.get("scikit-learn")
    if written is None or _major_minor(written) != _major_minor(sklearn.__version__):
        warnings.warn(
            f"{path} was saved with scikit-learn {written} and is being loaded with "
            f"scikit-learn {sklearn.__version__}; predictions may differ. Check them, or "
            f"install scikit-learn {written} to reproduce the original model exactly, and "
            "re-save the model with the current version.",
            UserWarning,
            stacklevel=3,
        )


def read_model_file(
    path: str | os.PathLike[str], *, trusted: Sequence[str] | None = None
) -> tuple[Any, dict[str, Any]]:
    """Load a model file written by :func:`write_model_file`, checking it first.

    The checks, in order: the file is a zip with the two members and valid JSON
    metadata; the format is a tilevision model of a version this tilevision
    reads; the serialised estimator matches its recorded checksum; and it holds
    only trusted types (:func:`trusted_types` plus ``trusted``, plus what skops
    trusts by default). Nothing is instantiated before every check passes.

    Parameters
    ----------
    path : str or path-like
        The model file.
    trusted : sequence of str, optional
        Extra fully-qualified type names to trust, in addition to
        :func:`trusted_types`. Pass them only for a file from a source you trust:
        loading may run code of those types.

    Returns
    -------
    estimator : object
        The fitted estimator.
    metadata : dict
        The whole ``metadata.json`` record: ``format``, ``format_version``,
        ``sha256``, ``versions``, ``created`` and the caller's keys (tuples come
        back as lists).

    Raises
    ------
    ModelFileError
        If the file is not a tilevision model file, was made by a newer format
        version, was modified after it was saved, holds untrusted types, or
        cannot be loaded with the installed libraries.
    FileNotFoundError
        If ``path`` does not exist.

    Warns
    -----
    UserWarning
        If the file was written with another scikit-learn major.minor version.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> model = DecisionTreeClassifier().fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     saved = write_model_file(Path(folder) / "m.tvmodel", model, {"classes": ["a", "b"]})
    ...     loaded, metadata = read_model_file(saved)
    >>> loaded.predict([[2.5]]).tolist(), metadata["classes"], metadata["format"]
    (['b'], ['a', 'b'], 'tilevision-model')
    """
    if isinstance(trusted, str):
        raise TypeError(
            f"trusted must be a list of type names, not the string {trusted!r}; "
            f"write trusted=[{trusted!r}]."
        )
    allowed = set(_TRUSTED_TYPES) | set(trusted or ())
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"no model file at {path}"
            + (" (it is a folder)" if path.is_dir() else "")
            + "; check the path."
        )
    model_bytes, record = _read_members(path)
    _check_record(path, record, model_bytes)

    sio = _skops_io()
    try:
        found = sio.get_untrusted_types(data=model_bytes)
    except Exception as error:
        raise _not_a_model_file(path, f"{MODEL_MEMBER} cannot be parsed: {error}") from error
    untrusted = sorted(name for name in found if name not in allowed)
    if untrusted:
        raise ModelFileError(
            f"{path} contains types that are not trusted: {untrusted}. Loading them could run "
            "arbitrary code, so the file was not loaded. Only if you trust where the file "
            f"came from, load it with trusted={untrusted}."
        )
    _warn_on_version_change(path, record["versions"])
    try:
        # skops checks again against the same list: a second lock on the same door
        estimator = sio.loads(model_bytes, trusted=sorted(allowed))
    except Exception as error:
        versions = record["versions"]
        raise ModelFileError(
            f"{path} could not be loaded ({type(error).__name__}: {error}). It was written "
            f"with scikit-learn {versions.get('scikit-learn')}, skops {versions.get('skops')}, "
            f"numpy {versions.get('numpy')}; install those versions to load it, then re-save "
            "it with the current ones."
        ) from error
    return estimator, record
