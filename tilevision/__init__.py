"""tilevision: tile-by-tile analysis of images too large for memory, on Dask."""

from . import cluster, datasets, filters, io
from ._version import __version__
from .io import ingest, open

__all__ = ["__version__", "cluster", "datasets", "filters", "ingest", "io", "open"]
