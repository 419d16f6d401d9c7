"""tilevision: tile-by-tile analysis of images too large for memory, on Dask."""

from . import filters, io
from ._analyze import analyze, analyze_many
from ._version import __version__
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

#: names served from a submodule, imported on first use: ``import tilevision`` stays quick
#: (scikit-learn, matplotlib, networkx and the feature families are slow to import)
_LAZY = {
    "Model": "learn",
    "Report": "learn",
    "evaluate": "learn",
    "fit": "learn",
    "load_model": "learn",
    "Recipe": "features",
    "describe": "features",
    "tile_features": "features",
}
_SUBMODULES = ("cluster", "datasets", "features", "learn", "plot")


def __getattr__(name: str) -> object:
    import importlib

    if name in _SUBMODULES:
        value = importlib.import_module(f"{__name__}.{name}")
    elif name in _LAZY:
        value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
