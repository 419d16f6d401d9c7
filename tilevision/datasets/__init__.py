"""Sample data: lazy synthetic phantoms and slides, and loaders for the bundled real data.

The synthetic generators are Dask-backed and built chunk by chunk, so they can be
larger than memory; the loaders read the real CT, MR and MedMNIST files bundled with
the package (or a folder named by ``TILEVISION_DATA``).
"""

from ._phantom import PHANTOM_LABELS, ct_phantom
from ._real import (
    data_dir,
    data_path,
    load_adrenalmnist3d,
    load_ct,
    load_ct_organs,
    load_mr,
    load_mr_lesion,
)
from ._slide import SLIDE_CLASSES, texture_slide

__all__ = [
    "PHANTOM_LABELS",
    "SLIDE_CLASSES",
    "ct_phantom",
    "data_dir",
    "data_path",
    "load_adrenalmnist3d",
    "load_ct",
    "load_ct_organs",
    "load_mr",
    "load_mr_lesion",
    "texture_slide",
]
