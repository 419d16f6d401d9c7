"""Plots of images and tile results with matplotlib, in physical units.

Each function computes only what it shows (a slice, a pyramid level, a slab of
tiles), in one Dask call, and returns the matplotlib Axes or Figure:

- :func:`thumbnail`: a 2-D view of an image (a coarse pyramid level, a slice of a volume);
- :func:`heatmap`: per-tile values (features, class probabilities) as tiles over the image;
- :func:`feature_maps`: several tile features side by side;
- :func:`orthogonal_slices`: axial, coronal and sagittal planes of a volume, with an overlay.
"""

from ._common import THUMBNAIL_SIZE, WINDOWS
from ._heatmap import feature_maps, heatmap
from ._slices import orthogonal_slices
from ._thumbnail import thumbnail

__all__ = [
    "THUMBNAIL_SIZE",
    "WINDOWS",
    "feature_maps",
    "heatmap",
    "orthogonal_slices",
    "thumbnail",
]
