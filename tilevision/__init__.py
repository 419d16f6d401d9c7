"""tilevision: tile-by-tile analysis of images too large for memory, on Dask."""

from . import datasets, filters, io
from ._version import __version__
from .io import ingest, open

__all__ = ["__version__", "datasets", "filters", "ingest", "io", "open"]
