"""``tilevision.analyze``: open → recipe → tile features → descriptor → prediction, at once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr

from ._version import __version__

if TYPE_CHECKING:
    from ._checkpoint import Checkpoint
    from .features._engine import TilePlan

__all__ = ["RESULT_STORE", "SUMMARY_FILE", "TABLE_FILE", "analyze", "analyze_many", "cache_dir"]

#: inside an ``output=`` folder: the result Dataset (Zarr) and the run's summary
RESULT_STORE = "result.zarr"
SUMMARY_FILE = "analysis.json"
#: inside an ``analyze_many`` output folder: the table, one row per source
TABLE_FILE = "results.csv"
#: environment variable naming the folder where non-Zarr sources are ingested
CACHE_ENV = "TILEVISION_CACHE"


def cache_dir() -> Path:
    """Where sources that are not OME-Zarr are ingested once (``$TILEVISION_CACHE``).

    Default: ``~/.cache/tilevision`` (``$XDG_CACHE_HOME/tilevision`` when set).

    Examples
    --------
    >>> cache_dir().name
    'tilevision'
    """
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tilevision"


def _say(verbose: bool, message: str) -> None:
    if verbose:
        print(message, flush=True)


def _source_key(path: Path) -> str:
    """Identity of a source file or folder: resolved path, size and modification time."""
    stat = path.stat()
    size = stat.st_size
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    text = f"{path.resolve()}|{size}|{stat.st_mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _url_key(url: str) -> str:
    """Identity of a remote store: its URL and each object's name, size and version tag
    (ETag, else modification time), from one listing; no pixel is read."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(url)
    digest = hashlib.sha256(url.encode())
    for name, info in sorted(fs.find(root, detail=True).items()):
        tag = next(
            (info[k] for k in ("ETag", "etag", "LastModified", "last_modified", "mtime")
             if info.get(k) is not None),
            None,
        )  # fmt: skip
        digest.update(f"\n{name}|{info.get('size')}|{tag}".encode())
    return "url-" + digest.hexdigest()[:16]


def open_source(source: Any, *, level: int = 0, verbose: bool = True) -> tuple[xr.DataArray, str]:
    """The image of ``source`` (lazy) and a key that changes when the source changes.

    OME-Zarr paths and URLs open directly (:func:`tilevision.open`); any other file
    that :func:`tilevision.ingest` reads is ingested once into :func:`cache_dir` (a
    message says so) and opened from there; a DataArray is used as it is.
    """
    from .io import detect_format, ingest, open

    if isinstance(source, xr.DataArray):
        from dask.base import tokenize

        return source, "array-" + tokenize(source)[:16]
    text = os.fspath(source)
    if "://" in text:
        image = open(text, level=level)  # first: its clear errors for a wrong URL
        return image, _url_key(text)
    path = Path(text)
    key = _source_key(path)
    if detect_format(path) == "zarr":
        return open(path, level=level), key
    store = cache_dir() / f"{path.name}-{key}.zarr"
    if not store.exists():
        _say(verbose, f"ingesting {path.name} into {store} (once: later runs re-use it)")
        store.parent.mkdir(parents=True, exist_ok=True)
        ingest(path, store)
    return open(store, level=level), key


def _model_id(model: Any) -> str:
    """A short fingerprint of a fitted model (its metadata and fitted pipeline)."""
    import joblib

    digest = hashlib.sha256(joblib.hash(model.pipeline_).encode())
    digest.update(json.dumps(model.metadata(), sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def _versions() -> dict[str, str]:
    import dask
    import sklearn

    return {
        "tilevision": __version__,
        "numpy": np.__version__,
        "dask": dask.__version__,
        "xarray": xr.__version__,
        "scikit-learn": sklearn.__version__,
    }


def _predictions(model: Any, tiles: xr.Dataset, descriptor: xr.DataArray) -> dict[str, Any]:
    """Lazy ``probability`` (dim class) and, for tile-level models, ``tile_probability``."""
    from .features._tasks import one_task
    from .learn._model import _tile_probabilities

    classes = list(model.classes_)
    out: dict[str, Any] = {}
    if model.level == "tile":
        tile_probability = _tile_probabilities(tiles, model)
        n_classes = len(classes)

        def image_probability(values: np.ndarray) -> np.ndarray:
            rows = values.reshape(-1, n_classes)
            rows = rows[~np.isnan(rows).any(axis=1)]
            return model._image_proba(rows)

        probability = one_task(
            image_probability, tile_probability.data, shape=(n_classes,), dtype=np.float64
        )
        out["tile_probability"] = tile_probability
    else:
        probability = one_task(
            lambda d: model._row_proba(np.asarray(d)[None])[0],
            descriptor.data,
            shape=(len(classes),),
            dtype=np.float64,
        )
    out["probability"] = xr.DataArray(probability, dims=("class",), coords={"class": classes})
    return out


def _check_model(model: Any, recipe: Any, ndim: int) -> Any:
    from .learn import Model, load_model

    if model is None:
        return None
    if not isinstance(model, Model):
        model = load_model(model)
    if recipe is not None and recipe != model.recipe_:
        raise ValueError(
            f"recipe {recipe.hash} differs from the model's recipe {model.recipe_.hash}; a "
            "model must see the features it was trained on: leave recipe=None to use the "
            "model's."
        )
    if ndim != model.ndim_:
        raise ValueError(
            f"the model was trained on {model.ndim_}-D images but this image is {ndim}-D; use "
            f"a model trained on {ndim}-D images."
        )
    return model


def _plan(image: xr.DataArray, model: Any, recipe: Any) -> TilePlan:
    from .features import Recipe
    from .features._engine import plan_tiles
    from .features._whole import as_feature_image

    spatial = [d for d in image.dims if d != "c"]
    recipe = model.recipe_ if model is not None else recipe
    recipe = recipe if recipe is not None else Recipe.default(len(spatial))
    return plan_tiles(as_feature_image(image), recipe)


def _assemble(plan: TilePlan, model: Any) -> xr.Dataset:
    """The lazy result from the tile values: tiles, descriptor, predictions."""
    from .features import describe
    from .features._engine import tile_dataset

    tiles = tile_dataset(plan)
    descriptor = describe(tiles)
    result = tiles.assign(descriptor=descriptor.variable).assign_coords(
        feature=descriptor["feature"]
    )
    if model is not None:
        result = result.assign(_predictions(model, tiles, descriptor))
    # the per-tile partial statistics (histograms, co-occurrence counts) only serve the
    # descriptor: not computed into the result (they can be hundreds of MB for a CT)
    partial = [name for name in result.data_vars if str(name).startswith("_stat.")]
    return result.drop_vars(partial)


def _key(source_key: str, recipe_hash: str, model_id: str | None, level: int) -> str:
    text = f"{source_key}|{recipe_hash}|{model_id}|{level}|{__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reuse(output: Path, key: str, overwrite: bool) -> xr.Dataset | None:
    summary = output / SUMMARY_FILE
    if not output.exists():
        return None
    if summary.exists() and json.loads(summary.read_text()).get("inputs_key") == key:
        return xr.open_zarr(output / RESULT_STORE, consolidated=True, chunks=None).load()
    if not overwrite:
        raise FileExistsError(
            f"{output} exists and holds other results (another source, recipe or model); "
            "pass overwrite=True to replace it, or choose another output folder."
        )
    return None


def analyze(
    source: Any,
    *,
    model: Any = None,
    recipe: Any = None,
    client: Any = None,
    output: str | os.PathLike[str] | None = None,
    level: int = 0,
    overwrite: bool = False,
    verbose: bool = True,
    progress: bool | None = None,
) -> xr.Dataset:
    """Analyse one image end to end: tile features, descriptor and (with a model) its class.

    Opens the source, runs the recipe (fused preprocessing and tile features), reduces
    the tiles to the image descriptor and, when a model is given, classifies the
    image (and its tiles, for a tile-level model) — all in one computation on the
    cluster.

    Parameters
    ----------
    source : path, URL or xarray.DataArray
        An OME-Zarr store (path or URL), or any file :func:`tilevision.ingest` reads
        (ingested once into :func:`cache_dir`, with a message), or an image DataArray.
    model : Model or path, optional
        A fitted :class:`tilevision.Model` or a model file; its recipe is used.
    recipe : Recipe, optional
        Without a model: what to compute (default :meth:`Recipe.default`).
    client : distributed.Client, str or False, optional
        The cluster (or a scheduler address); default: the running client, else an
        embedded ``LocalCluster`` sized to the machine (:func:`tilevision.cluster.client`).
        ``False``: Dask's current scheduler, no cluster.
    output : path, optional
        Folder to write: ``result.zarr`` (the Dataset), ``heatmap.png`` (tile heatmap
        over the image), ``report.html`` and ``analysis.json`` (summary), written
        atomically: under a temporary name, renamed when complete (a killed run's
        temporary is never read, and the next run removes it). Re-running with the
        same source, recipe and model re-uses it and computes nothing. Meanwhile the
        tile values are committed block by block (about 256 MiB of image each) to a
        hidden checkpoint folder beside it: a killed run, called again, computes only
        the blocks it had not committed. The checkpoint is removed at the end.
    level : int, optional
        Pyramid level of an OME-Zarr source.
    overwrite : bool, optional
        Replace an ``output`` folder that holds other results.
    verbose : bool, optional
        Print what happens (ingest, dashboard link, timings).
    progress : bool, optional
        Show a progress bar (a widget in Jupyter, a text bar in a terminal); default:
        as ``verbose``.

    Returns
    -------
    xarray.Dataset
        The tile feature variables (dims ``tile_[z,]y,x``), ``descriptor`` (dim
        ``feature``) and, with a model, ``probability`` (dim ``class``), ``label`` and,
        for a tile-level model, ``tile_probability``; computed. ``attrs`` record the
        recipe and its hash, the model id, the source, versions, timings and the
        cluster.

    Examples
    --------
    >>> import numpy as np, dask
    >>> import tilevision as tv
    >>> from tilevision._image import make_image
    >>> img = make_image(np.random.default_rng(0).random((64, 64)), ("y", "x"))
    >>> with dask.config.set(scheduler="threads"):
    ...     result = tv.analyze(img, recipe=tv.Recipe(["intensity"], tile=32), client=False,
    ...                         verbose=False)
    >>> result["descriptor"].sel(feature="tiles.valid_count").item()
    4.0
    """
    start = time.perf_counter()
    job = _prepare(source, model, recipe, level, verbose)
    out = None if output is None else Path(output)
    if out is not None:
        from .io._atomic import remove_stale

        remove_stale(out.parent, out.name)
        reused = _reuse(out, job.key, overwrite)
        if reused is not None:
            _say(verbose, f"re-using the finished results in {out}")
            return reused
    cluster, link = _cluster(client, verbose)
    opened = time.perf_counter()
    progress = verbose if progress is None else progress
    checkpoint = None
    if out is None:
        result = _compute(job.lazy, cluster, progress)
    else:
        result, checkpoint = _compute_checkpointed(job, out, cluster, progress, verbose)
    computed = time.perf_counter()
    result = _finish(
        job, result, link or _cluster_name(cluster), opened - start, computed - opened
    )
    if out is not None:
        _write(result, out, job)
        checkpoint.remove()
        _say(verbose, f"results written to {out}")
    _say(verbose, f"analysed {result.attrs['source']} in {computed - start:.1f} s")
    return result


@dataclass
class _Job:
    """One source, ready to compute: its lazy result and what identifies it."""

    source: Any
    model: Any
    image: xr.DataArray
    plan: TilePlan  # the lazy tile values, which ``lazy`` is computed from
    lazy: xr.Dataset
    key: str
    model_id: str | None
    folder: str  # its output folder's name in analyze_many


def _prepare(source: Any, model: Any, recipe: Any, level: int, verbose: bool) -> _Job:
    image, source_key = open_source(source, level=level, verbose=verbose)
    ndim = sum(1 for d in image.dims if d != "c")
    model = _check_model(model, recipe, ndim)
    plan = _plan(image, model, recipe)
    lazy = _assemble(plan, model)
    model_id = None if model is None else _model_id(model)
    key = _key(source_key, lazy.attrs["recipe_hash"], model_id, level)
    folder = _folder_name(source, source_key)
    return _Job(source, model, image, plan, lazy, key, model_id, folder)


def _cluster(client: Any, verbose: bool) -> tuple[Any, str | None]:
    from .cluster import client as make_client
    from .cluster import dashboard_link

    cluster = None if client is False else make_client(client)
    link = None if cluster is None else dashboard_link(cluster)
    if link:
        _say(verbose, f"Dask dashboard: {link}")
    return cluster, link


def _compute(lazy: xr.Dataset, cluster: Any, progress: bool) -> xr.Dataset:
    from ._progress import local_progress, show_progress

    if cluster is None:
        with local_progress(progress):
            return lazy.compute()
    future = cluster.compute(lazy)
    if progress:
        show_progress(future)
    return future.result()


def _compute_checkpointed(
    job: _Job, output: Path, cluster: Any, progress: bool, verbose: bool
) -> tuple[xr.Dataset, Checkpoint]:
    """The result, its tile values committed block by block beside ``output`` first
    (a killed run resumes from the committed blocks); the rest is computed here from
    the stored values (small next to the image)."""
    from ._checkpoint import Checkpoint, commit_tiles

    checkpoint = Checkpoint.of(output, job.key)
    checkpoint.remove_others()
    committed = commit_tiles(job.plan, checkpoint, cluster, progress=progress)
    if committed.reused:
        _say(
            verbose,
            f"resumed: {committed.reused} of {committed.blocks} tile blocks were committed "
            "by an earlier run",
        )
    result = _assemble(committed.plan, job.model).compute(scheduler="threads")
    result.attrs["checkpoint"] = json.dumps(
        {"blocks": committed.blocks, "reused_blocks": committed.reused}
    )
    return result, checkpoint


def _cluster_name(cluster: Any) -> str:
    return "current scheduler" if cluster is None else str(cluster)


def _finish(
    job: _Job, result: xr.Dataset, cluster: str, open_s: float, compute_s: float
) -> xr.Dataset:
    if job.model is not None:
        proba = result["probability"].values
        result["label"] = xr.DataArray(job.model.classes_[int(np.argmax(proba))])
    source = job.source
    result.attrs.update(
        {
            "source": str(source) if not isinstance(source, xr.DataArray) else "DataArray",
            "model_id": job.model_id or "",
            "versions": json.dumps(_versions()),
            "timings": json.dumps({"open_s": round(open_s, 3), "compute_s": round(compute_s, 3)}),
            "cluster": cluster,
            "inputs_key": job.key,
        }
    )
    return result


def analyze_many(
    sources: Sequence[Any],
    *,
    model: Any = None,
    recipe: Any = None,
    client: Any = None,
    output: str | os.PathLike[str] | None = None,
    level: int = 0,
    overwrite: bool = False,
    verbose: bool = True,
    progress: bool | None = None,
) -> Any:
    """Analyse many images together on the cluster; one row per image in a DataFrame.

    Every source's graph is built first and all of them are computed together (on a
    cluster as they finish, each result written at once when ``output`` is given, so
    an interrupted run keeps what finished and a re-run computes only what is missing).
    A source listed twice is computed once.

    On a cluster, a worker lost mid-run (its process killed, its batch job cancelled
    or past its wall time) costs only the tasks it ran or held: Dask runs them again
    on the other workers, which is safe because the tasks are pure (same inputs, same
    result, no side effects). Dask gives up on a task (``KilledWorker``) only when
    more workers than ``distributed.scheduler.allowed-failures`` (default 3) died
    while running it.

    Parameters
    ----------
    sources : sequence of paths, URLs or DataArrays
        The images (see :func:`analyze`).
    model, recipe, client, level, verbose
        As for :func:`analyze`.
    progress : bool, optional
        Show progress (default: as ``verbose``): a line per finished image in a
        terminal, Dask's progress widget in Jupyter.
    output : path, optional
        Folder holding ``results.csv`` and one :func:`analyze` output folder per
        source, named ``<name>-<id>``: ``<id>`` (8 hex digits) identifies the source
        itself — a file or Zarr store by its location, a URL by its text, an
        in-memory DataArray by its content — and not its position in ``sources``, the
        recipe or the model. So adding, removing or reordering sources re-uses every
        finished folder. Each folder appears complete or not at all (written, then
        renamed): after a crash, a kill or a lost job, run the same call again; it
        computes only the missing images and removes the unfinished temporaries that
        the killed run left. Folders of sources no longer listed are left alone
        (``results.csv`` lists this call's sources only).
    overwrite : bool, optional
        A source's folder made with other inputs (another recipe, model or level, or
        a file changed since) raises ``FileExistsError``, before anything is
        computed; ``overwrite=True`` recomputes and replaces those folders.

    Returns
    -------
    pandas.DataFrame
        Indexed by source; with a model the ``label`` and one ``probability.<class>``
        column per class, then the descriptor's features.

    Examples
    --------
    >>> import numpy as np, dask
    >>> import tilevision as tv
    >>> from tilevision._image import make_image
    >>> imgs = [make_image(np.full((16, 16), v), ("y", "x")) for v in (1.0, 2.0)]
    >>> with dask.config.set(scheduler="threads"):
    ...     table = tv.analyze_many(imgs, recipe=tv.Recipe(["intensity"], tile=8),
    ...                             client=False, verbose=False)
    >>> table["intensity.mean"].tolist()
    [1.0, 2.0]
    """
    import pandas as pd

    from .io._atomic import remove_stale

    jobs = [_prepare(s, model, recipe, level, verbose) for s in sources]
    root = None if output is None else Path(output)
    folders: list[Path | None] = [None] * len(jobs)
    results: list[xr.Dataset | None] = [None] * len(jobs)
    if root is not None:
        root.mkdir(parents=True, exist_ok=True)
        stale = remove_stale(root)
        if stale:
            _say(verbose, f"removed {len(stale)} unfinished folders left by an interrupted run")
        for i, job in enumerate(jobs):
            folders[i] = root / job.folder
            results[i] = _reuse(folders[i], job.key, overwrite)
    # a source listed twice is computed (and written) once
    first = {job.key: i for i, job in reversed(list(enumerate(jobs)))}
    todo = [i for i, r in enumerate(results) if r is None and first[jobs[i].key] == i]
    n_done = sum(r is not None for r in results)
    _say(verbose, f"{n_done} of {len(jobs)} images already analysed")
    cluster, link = _cluster(client, verbose)
    progress = verbose if progress is None else progress
    start = time.perf_counter()
    finished = 0

    def done(i: int, result: xr.Dataset) -> None:
        nonlocal finished
        elapsed = time.perf_counter() - start
        results[i] = _finish(jobs[i], result, link or _cluster_name(cluster), 0.0, elapsed)
        if folders[i] is not None:
            _write(results[i], folders[i], jobs[i])
        finished += 1
        label = f" {results[i]['label'].item()}" if "label" in results[i] else ""
        name = _name(jobs[i].source)
        _say(progress, f"  [{finished}/{len(todo)}] {name}{label} ({elapsed:.1f} s)")

    if cluster is None:
        import dask

        from ._progress import local_progress

        with local_progress(progress):
            computed = dask.compute(*[jobs[i].lazy for i in todo])
        for i, result in zip(todo, computed):
            done(i, result)
    else:
        from distributed import as_completed

        from ._progress import in_notebook, show_progress

        futures = {cluster.compute(jobs[i].lazy): i for i in todo}
        if progress and in_notebook():
            show_progress(list(futures))
        for future in as_completed(futures):
            done(futures[future], future.result())
    rows = [_row(results[first[job.key]]) for job in jobs]
    table = pd.DataFrame(rows, index=pd.Index([_name(j.source) for j in jobs], name="source"))
    if root is not None:
        _write_table(table, root / TABLE_FILE)
    _say(verbose, f"analysed {len(todo)} images in {time.perf_counter() - start:.1f} s")
    return table


def _name(source: Any) -> str:
    if isinstance(source, xr.DataArray):
        return str(source.name or "image")
    return Path(os.fspath(source).rstrip("/")).name


def _source_id(source: Any, source_key: str) -> str:
    """A source's identity for its folder name: where it is, or (a DataArray) its content.

    Unlike the source key it does not change when a file is rewritten in place: the
    file keeps its folder, whose results then no longer match (see ``overwrite``).
    """
    if isinstance(source, xr.DataArray):
        text = source_key
    else:
        text = os.fspath(source)
        if "://" not in text:
            text = str(Path(text).resolve())
    return hashlib.sha256(text.encode()).hexdigest()


def _folder_name(source: Any, source_key: str) -> str:
    """``<name>-<8 hex digits of the source's identity>``, safe as a folder name."""
    name = re.sub(r"[^\w.+-]", "_", _name(source)).lstrip(".") or "image"
    return f"{name}-{_source_id(source, source_key)[:8]}"


def _write_table(table: Any, path: Path) -> None:
    """``table`` as CSV, written under a temporary name then renamed (never half written)."""
    from .io._atomic import PARTIAL_MARKER, _tag

    tmp = path.parent / f".{path.name}{PARTIAL_MARKER}{_tag()}"
    try:
        table.to_csv(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _row(result: xr.Dataset) -> dict[str, Any]:
    row: dict[str, Any] = {}
    if "label" in result:
        row["label"] = result["label"].item()
        for c, p in zip(result["class"].values.tolist(), result["probability"].values):
            row[f"probability.{c}"] = float(p)
    row.update(zip(map(str, result["feature"].values), result["descriptor"].values.tolist()))
    return row


def _write(result: xr.Dataset, output: Path, job: _Job) -> None:
    from ._report_html import HEATMAP_FILE, REPORT_FILE, write_heatmap, write_report
    from .io._atomic import atomic_directory

    key = job.key
    summary = {
        "inputs_key": key,
        "source": result.attrs["source"],
        "recipe_hash": result.attrs["recipe_hash"],
        "model_id": result.attrs["model_id"],
        "valid_tiles": int(result["valid"].sum()),
    }
    if "checkpoint" in result.attrs:
        summary["checkpoint"] = json.loads(result.attrs["checkpoint"])
    if "label" in result:
        summary["label"] = result["label"].item()
        summary["probability"] = dict(
            zip(map(str, result["class"].values.tolist()), result["probability"].values.tolist())
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_directory(output, overwrite=True) as tmp:
        result.to_zarr(tmp / RESULT_STORE, zarr_format=2, consolidated=True)
        png = write_heatmap(result, job.image, tmp / HEATMAP_FILE)
        write_report(result, tmp / REPORT_FILE, png)
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str))
