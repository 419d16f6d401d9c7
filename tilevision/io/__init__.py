"""Image input/output: any supported source → OME-Zarr (``ingest``) → lazy DataArray (``open``)."""

from ._formats import detect_format, read_source, supported_formats
from ._info import format_info, info
from ._ingest import ingest
from ._ngff import MetadataError
from ._open import MissingMetadataWarning, open

__all__ = [
    "MetadataError",
    "MissingMetadataWarning",
    "detect_format",
    "format_info",
    "info",
    "ingest",
    "open",
    "read_source",
    "supported_formats",
]
