"""tilevision: tile-by-tile analysis of images too large for memory, on Dask."""

from . import cluster, datasets, features, filters, io
from ._analyze import analyze, analyze_many
from ._version import __version__
from .features import Recipe, describe, tile_features
from .io import ingest, open

__all__ = [
    "Model",
    "Recipe",
    "Report",
    "__version__",
    "analyze",
    "analyze_many",
    "cluster",
    "datasets",
    "describe",
    "evaluate",
    "features",
    "filters",
    "fit",
    "ingest",
    "io",
    "learn",
    "load_model",
    "open",
    "plot",
    "tile_features",
]

#: names served from ``tilevision.learn``, imported on first use (scikit-learn is slow to import)
_LEARN = ("Model", "Report", "evaluate", "fit", "load_model")


def __getattr__(name: str) -> object:
    if name == "plot":  # matplotlib's pyplot is slow to import too
        import importlib

        value = importlib.import_module(f"{__name__}.plot")
        globals()[name] = value
        return value
    if name == "learn" or name in _LEARN:
        import importlib

        learn = importlib.import_module(f"{__name__}.learn")
        value = learn if name == "learn" else getattr(learn, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
