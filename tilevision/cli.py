"""The ``tilevision`` command line: a thin layer over the library.

Errors print on one line without a traceback (``--debug`` shows it); exit codes:
0 success, 1 error, 2 bad usage, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from . import _bench
from ._version import __version__

__all__ = ["main"]


def _parse_chunks(text: str) -> Any:
    if text == "auto":
        return "auto"
    parts = [int(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _parse_levels(text: str) -> Any:
    return "auto" if text == "auto" else int(text)


def _parse_floats(text: str) -> Any:
    parts = [float(p) for p in text.split(",")]
    return parts[0] if len(parts) == 1 else tuple(parts)


def _progress(enabled: bool) -> Any:
    """A progress bar for local-scheduler computations (a no-op context otherwise)."""
    from ._progress import local_progress
    from .cluster import current_client

    # on a cluster the dashboard shows progress
    return local_progress(enabled and current_client() is None)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .io import format_info, info, ingest

    options = {}
    if args.series:
        options["series"] = args.series
    start = time.perf_counter()
    with _progress(not args.quiet):
        dest = ingest(
            args.source,
            args.dest,
            chunks=args.chunks,
            levels=args.levels,
            compressor=args.compressor,
            overwrite=args.overwrite,
            downsample_method=args.downsample,
            format=args.format,
            spacing=args.spacing,
            units=args.units,
            **options,
        )
    elapsed = time.perf_counter() - start
    summary = info(dest)
    if args.json:
        print(json.dumps(dict(summary, seconds=round(elapsed, 3)), default=str))
    else:
        print(format_info(summary))
        print(f"  written in {elapsed:.1f} s")
    return 0


def _cmd_info(args: argparse.Namespace) -> int:
    from .io import format_info, info

    summary = info(args.path)
    print(json.dumps(summary, default=str, indent=1) if args.json else format_info(summary))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ._demo import run_demo

    return run_demo(output=Path(args.output), use_cluster=not args.no_cluster, quick=args.quick)


# ---------------------------------------------------------------- classification


class UsageError(ValueError):
    """Options that do not go together (exit code 2)."""


def _estimator_name(text: str) -> str:
    """``--estimator``: checked against the names of ``estimator_from_name`` (imported late)."""
    from .learn._estimators import ESTIMATOR_NAMES

    if text not in ESTIMATOR_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown estimator {text!r}; choose one of {', '.join(ESTIMATOR_NAMES)}"
        )
    return text


def _scheduler(args: argparse.Namespace) -> Any:
    """A context giving the client of ``--scheduler`` (an address or a jobqueue profile)
    and ``--tls``, closed on exit with any cluster it started; or None: the default."""
    if args.scheduler is None and args.tls is None:
        return contextlib.nullcontext()
    from .cluster import session

    return session(args.scheduler, jobs=args.jobs, security=args.tls)


def _cmd_cluster_certs(args: argparse.Namespace) -> int:
    from .cluster import make_certificates

    hosts = args.host or ("localhost", "127.0.0.1")
    folder = make_certificates(
        Path(args.folder).expanduser(), hosts=hosts, days=args.days, overwrite=args.overwrite
    )
    print(f"certificates for a TLS cluster written to {folder.resolve()}")
    print(f"  use them with: --tls {folder}  or  tv.cluster.client(..., security={str(folder)!r})")
    return 0


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _cmd_fit(args: argparse.Namespace) -> int:
    from .learn import fit
    from .learn._estimators import estimator_from_name
    from .learn._table_io import read_image_table, read_recipe

    output = Path(args.output).expanduser()
    if output.exists() and not args.overwrite:
        raise FileExistsError(f"{output} exists; pass --overwrite to replace it.")
    if not output.parent.is_dir():
        raise FileNotFoundError(f"the folder of {output} does not exist; create it first.")
    recipe = read_recipe(args.recipe)
    table = read_image_table(args.table, level=args.level)
    estimator = estimator_from_name(args.estimator, args.seed)
    start = time.perf_counter()
    with _scheduler(args) as client:
        model = fit(
            table.paths,
            table.targets,
            recipe=recipe,
            estimator=estimator,
            level=args.level,
            client=client,
            tile_rule=args.tile_rule,
            aggregate=args.aggregate,
            random_state=args.seed,
        )
    path = model.save(output, overwrite=args.overwrite)
    training = model.training_
    summary = {
        "model": str(path.resolve()),
        "level": model.level,
        "images": int(training["images"]),
        "rows": int(training["rows"]),
        "classes": [c.item() if hasattr(c, "item") else c for c in model.classes_],
        "class_counts": {str(k): int(v) for k, v in training["class_counts"].items()},
        "training_accuracy": float(training["accuracy"]),
        "estimator": type(model.pipeline_[-1]).__name__,
        "n_features": len(model.feature_names_),
        "recipe_hash": model.recipe_.hash,
        "seconds": round(time.perf_counter() - start, 3),
    }
    if args.json:
        print(json.dumps(summary))
        return 0
    counts = ", ".join(f"{k} ({v})" for k, v in summary["class_counts"].items())
    rows = "" if model.level == "image" else f", {summary['rows']} tiles"
    print(
        f"trained a {model.level}-level {summary['estimator']} on {summary['images']} "
        f"images{rows} in {summary['seconds']:.1f} s\n"
        f"  classes: {counts}\n"
        f"  features: {summary['n_features']} (recipe {summary['recipe_hash']})\n"
        f"  training accuracy: {_fmt(summary['training_accuracy'])} (on the training data; "
        "`tilevision evaluate` gives an honest estimate)\n"
        f"  model: {summary['model']}"
    )
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    import csv
    import io

    from .learn import load_model
    from .learn._table_io import image_list, tile_file, write_tile_probabilities

    model = load_model(args.model)
    if args.tiles and model.level != "tile":
        raise UsageError(
            f"--tiles needs a tile-level model, but {args.model} is an image-level model; "
            "train one with `tilevision fit --level tile`."
        )
    names, paths = image_list(args.images)
    with _scheduler(args) as client:
        proba = model.predict_proba(paths, client=client)
    classes = model.classes_.tolist()
    labels = [classes[i] for i in proba.argmax(axis=1)]
    tiles: list[str | None] = [None] * len(paths)
    if args.tiles:
        folder = Path(args.tiles).expanduser()
        folder.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for i, (name, path) in enumerate(zip(names, paths)):
            dest = tile_file(folder, name, used)
            write_tile_probabilities(model, path, dest)
            tiles[i] = str(dest)
    if args.json:
        rows = [
            {"path": n, "label": lab, "probabilities": dict(zip(map(str, classes), p.tolist()))}
            | ({"tiles": t} if t else {})
            for n, lab, p, t in zip(names, labels, proba, tiles)
        ]
        print(json.dumps(rows))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["path", "label", *(f"prob_{c}" for c in classes)])
    for name, label, p in zip(names, labels, proba):
        writer.writerow([name, label, *(f"{v:.6g}" for v in p)])
    if args.output:
        Path(args.output).expanduser().write_text(text.getvalue(), encoding="utf-8")
        if not args.json:
            print(f"wrote {len(names)} predictions to {args.output}")
    elif not args.json:
        print(text.getvalue(), end="")
    if args.tiles and not args.json:
        print(f"tile probabilities (.tiles.npz) in {args.tiles}")
    return 0


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .learn import evaluate, load_model
    from .learn._estimators import estimator_from_name
    from .learn._table_io import read_image_table, read_recipe, write_report

    start = time.perf_counter()
    if args.model:
        given = [f"--{n.replace('_', '-')}" for n in _TRAINING_OPTIONS if getattr(args, n)]
        if given:
            raise UsageError(
                f"{', '.join(given)} set how a model is trained in cross-validation; with "
                "--model the model's own recipe and estimator are used. Drop them or --model."
            )
        model = load_model(args.model)
        table = read_image_table(args.table, level=model.level)
        with _scheduler(args) as client:
            report = evaluate(model, table.paths, table.targets, client=client)
    else:
        level = args.level or "image"
        recipe = read_recipe(args.recipe)
        table = read_image_table(args.table, level=level)
        estimator = estimator_from_name(args.estimator or "rf", args.seed)
        with _scheduler(args) as client:
            report = evaluate(
                table.paths,
                table.targets,
                recipe=recipe,
                estimator=estimator,
                level=level,
                cv=args.cv or 5,
                groups=table.groups,
                client=client,
                random_state=args.seed,
                tile_rule=args.tile_rule or "majority",
                aggregate=args.aggregate or "mean",
            )
    written = write_report(report, Path(args.output).expanduser()) if args.output else []
    if args.json:
        print(json.dumps(report.to_dict(predictions=False)))
        return 0
    print(report)
    print(f"\nevaluated in {time.perf_counter() - start:.1f} s")
    if written:
        print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from ._analyze import analyze
    from .learn._table_io import read_recipe

    recipe = read_recipe(args.recipe) if args.recipe else None
    with _scheduler(args) as client:
        result = analyze(
            args.source,
            model=args.model,
            recipe=recipe,
            client=False if args.no_cluster else client,
            output=Path(args.output).expanduser() if args.output else None,
            level=args.level,
            overwrite=args.overwrite,
            verbose=not args.json,
        )
    summary: dict[str, Any] = {
        "source": result.attrs["source"],
        "recipe_hash": result.attrs["recipe_hash"],
        "tiles": int(result["valid"].size),
        "valid_tiles": int(result["valid"].sum()),
        "output": str(Path(args.output).expanduser().resolve()) if args.output else None,
    }
    if "label" in result:
        summary["label"] = result["label"].item()
        summary["probability"] = {
            str(c): float(p) for c, p in zip(result["class"].values, result["probability"].values)
        }
    if args.json:
        print(json.dumps(summary, default=str))
        return 0
    for key, value in summary.items():
        print(f"  {key}: {value}")
    return 0


#: evaluate options that only apply to cross-validation (not with --model)
_TRAINING_OPTIONS = ("recipe", "estimator", "level", "tile_rule", "aggregate", "cv")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tilevision`` command."""
    parser = argparse.ArgumentParser(
        prog="tilevision",
        description="Tile-by-tile analysis of images too large for memory, on Dask.",
    )
    parser.add_argument("--version", action="version", version=f"tilevision {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show full tracebacks instead of one-line errors"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = sub.add_parser(
        "demo",
        help="ingest sample data (real CT, synthetic phantom and slide) and summarise it",
        description="Generate and load sample images, ingest them to OME-Zarr on a local "
        "Dask cluster, open them lazily and print a summary.",
    )
    demo.add_argument("--output", default="tilevision-demo", help="folder for the outputs")
    demo.add_argument(
        "--no-cluster",
        action="store_true",
        help="use Dask's threaded scheduler instead of starting a local distributed cluster",
    )
    demo.add_argument("--quick", action="store_true", help="smaller synthetic images")
    demo.set_defaults(func=_cmd_demo)

    ing = sub.add_parser(
        "ingest",
        help="convert an image (TIFF, PNG/JPEG, DICOM, NIfTI, NRRD, NumPy, Zarr) to OME-Zarr",
        description="Stream an image into a chunked, compressed OME-Zarr store "
        "(Zarr v3, NGFF 0.5) with a multiscale pyramid.",
    )
    ing.add_argument("source", help="file, DICOM folder or Zarr store to read")
    ing.add_argument("dest", help="the .zarr folder to write")
    ing.add_argument(
        "--chunks", type=_parse_chunks, default="auto", help="tile size: auto, N or Z,Y,X"
    )
    ing.add_argument(
        "--levels", type=_parse_levels, default="auto", help="pyramid levels: auto or N"
    )
    ing.add_argument(
        "--compressor",
        default="zstd",
        choices=["zstd", "blosc-zstd", "blosc-lz4", "gzip", "none"],
    )
    ing.add_argument("--downsample", default="mean", choices=["mean", "nearest"])
    ing.add_argument("--format", default=None, help="force the source format")
    ing.add_argument(
        "--spacing", type=_parse_floats, default=None, help="override spacing: S or Z,Y,X"
    )
    ing.add_argument("--units", default=None, help="override units (e.g. millimeter)")
    ing.add_argument("--series", default=None, help="DICOM SeriesInstanceUID to read")
    ing.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    ing.add_argument("--json", action="store_true", help="print the summary as JSON")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    ing.set_defaults(func=_cmd_ingest)

    inf = sub.add_parser(
        "info",
        help="shape, chunks, spacing, pyramid levels and provenance of an OME-Zarr image",
    )
    inf.add_argument("path", help="the .zarr store (path or URL)")
    inf.add_argument("--json", action="store_true", help="print JSON")
    inf.set_defaults(func=_cmd_info)
    _add_learn_parsers(sub)
    _add_analyze_parser(sub)
    _add_cluster_parser(sub)
    _bench.add_parser(sub)
    return parser


def _add_cluster_parser(sub: Any) -> None:
    cl = sub.add_parser(
        "cluster",
        help="cluster helpers: make TLS certificates",
        description="Helpers for running tilevision on a Dask cluster.",
    )
    actions = cl.add_subparsers(dest="action", metavar="ACTION", required=True)
    certs = actions.add_parser(
        "certs",
        help="write a private certificate authority and a node certificate for TLS",
        description="Write ca.pem, ca-key.pem, node.pem and node-key.pem into FOLDER (mode "
        "0700). Scheduler, workers and clients started with --tls FOLDER (or "
        "security=FOLDER) then only talk encrypted, to peers holding these certificates. "
        "On a batch system, put FOLDER on the filesystem the jobs share.",
    )
    certs.add_argument("folder", metavar="FOLDER", help="where to write the certificates")
    certs.add_argument(
        "--host", action="append", default=None, metavar="NAME",
        help="host name or IP for the node certificate (repeat; default localhost, 127.0.0.1)",
    )  # fmt: skip
    certs.add_argument("--days", type=int, default=365, help="validity in days (default 365)")
    certs.add_argument("--overwrite", action="store_true", help="replace existing certificates")
    certs.set_defaults(func=_cmd_cluster_certs)


_TABLE_HELP = (
    "CSV with a header and columns path,label[,group] (paths relative to the CSV's folder)"
)


def _add_training_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """--recipe, --level, --estimator, --tile-rule, --aggregate (defaults shown or None)."""

    def default(value: str) -> str | None:
        return value if defaults else None

    parser.add_argument(
        "--recipe", default=None, help="features: a Recipe .toml or .json (default: the "
        "library's default recipe for 2-D or 3-D images)"
    )  # fmt: skip
    parser.add_argument(
        "--level", choices=["image", "tile"], default=default("image"),
        help="one row per image, or one per tile (default: image)",
    )  # fmt: skip
    parser.add_argument(
        "--estimator", type=_estimator_name, default=default("rf"), metavar="NAME",
        help="rf: balanced random forest, hgb: balanced histogram gradient boosting, "
        "logistic: balanced logistic regression (default: rf)",
    )  # fmt: skip
    parser.add_argument(
        "--tile-rule", choices=["majority", "any"], default=default("majority"),
        help="tile label from a label image: most frequent value, or any non-zero pixel "
        "(default: majority)",
    )  # fmt: skip
    parser.add_argument(
        "--aggregate", choices=["mean", "topk", "max"], default=default("mean"),
        help="tile-level models: image probabilities from tile probabilities (default: mean)",
    )  # fmt: skip


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--scheduler", default=None, metavar="ADDRESS|PROFILE",
        help="address of a running Dask scheduler (tcp://host:8786), or a dask-jobqueue "
        "profile: slurm, pbs or a section of Dask's jobqueue config (default: this machine)",
    )  # fmt: skip
    parser.add_argument(
        "--jobs", type=int, default=None, metavar="N",
        help="with a jobqueue profile: how many batch jobs to submit (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--tls", default=None, metavar="CERTS",
        help="require TLS with the certificates in this folder (`tilevision cluster certs`)",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print JSON")


def _add_learn_parsers(sub: Any) -> None:
    fit = sub.add_parser(
        "fit",
        help="train a classifier on a CSV of labelled images and save the model file",
        description="Compute the features of the images in TABLE and fit a scikit-learn "
        "pipeline (imputer, scaler, estimator); save it as a safe model file. For "
        "--level tile, the label column may name one label image (mask, organ map) per "
        "image instead of a class.",
    )
    fit.add_argument("table", metavar="TABLE.csv", help=_TABLE_HELP)
    fit.add_argument(
        "--output", "-o", required=True, metavar="MODEL.tvmodel", help="the model file to write"
    )
    _add_training_options(fit, defaults=True)
    fit.add_argument("--seed", type=int, default=0, help="random seed of the estimator")
    fit.add_argument("--overwrite", action="store_true", help="replace the model file")
    _add_common(fit)
    fit.set_defaults(func=_cmd_fit)

    pred = sub.add_parser(
        "predict",
        help="apply a model file to images; print or write path,label,prob_<class>...",
        description="Predict the class of each image (paths, or .csv tables with a path "
        "column). --tiles writes each image's tile probabilities (tile-level models) as "
        "NAME.tiles.npz: 'probability' (tile grid × class), 'dims', 'classes', 'coord_*'.",
    )
    pred.add_argument("model", metavar="MODEL.tvmodel", help="a model file from `fit`")
    pred.add_argument(
        "images", nargs="+", metavar="IMAGE_OR_TABLE", help="image files or .csv tables"
    )
    pred.add_argument("--output", "-o", metavar="PRED.csv", help="write the predictions here")
    pred.add_argument("--tiles", metavar="DIR", help="write tile probabilities into DIR")
    _add_common(pred)
    pred.set_defaults(func=_cmd_predict)

    ev = sub.add_parser(
        "evaluate",
        help="cross-validate a recipe and estimator, or score a model file on held-out images",
        description="With --model: score the model on the labelled images of TABLE. "
        "Otherwise: stratified cross-validation (grouped by the group column when present) "
        "of the recipe and estimator. Prints the report; --output DIR writes report.json, "
        "roc.png and confusion.png.",
    )
    ev.add_argument("table", metavar="TABLE.csv", help=_TABLE_HELP)
    ev.add_argument("--model", metavar="MODEL.tvmodel", help="score this model file")
    _add_training_options(ev, defaults=False)
    ev.add_argument("--cv", type=int, default=None, help="folds (default: 5)")
    ev.add_argument("--seed", type=int, default=0, help="seed of the folds and estimator")
    ev.add_argument("--output", "-o", metavar="DIR", help="folder for the report and plots")
    _add_common(ev)
    ev.set_defaults(func=_cmd_evaluate)


def _add_analyze_parser(sub: Any) -> None:
    an = sub.add_parser(
        "analyze",
        help="tile features, descriptor and (with --model) the class of one image",
        description="Open SOURCE (OME-Zarr, or any file `ingest` reads: ingested once into "
        "the cache), compute the recipe's tile features and the image descriptor and, with "
        "--model, the class probabilities (and tile probabilities for a tile-level model), "
        "in one computation. --output DIR writes result.zarr and analysis.json; a re-run "
        "with the same inputs re-uses them.",
    )
    an.add_argument("source", help="image file, folder or OME-Zarr store")
    an.add_argument("--model", metavar="MODEL.tvmodel", help="a model file from `fit`")
    an.add_argument("--recipe", metavar="RECIPE.toml", help="recipe (without --model)")
    an.add_argument("--output", "-o", metavar="DIR", help="folder for the results")
    an.add_argument("--level", type=int, default=0, help="pyramid level (default 0)")
    an.add_argument("--overwrite", action="store_true", help="replace other results in DIR")
    an.add_argument(
        "--no-cluster", action="store_true", help="use Dask's threads, no local cluster"
    )
    _add_common(an)
    an.set_defaults(func=_cmd_analyze)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        # a local cluster shuts down after this: its cancelled tasks and progress feed
        # would each log a warning or a traceback that tells the user nothing
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"tilevision {args.command}: error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, UsageError) else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
