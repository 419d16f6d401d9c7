"""Classification: fit, predict, evaluate, tile-level models, safe model files.

>>> import tilevision as tv
>>> tv.Model().level
'image'
"""

from ._api import evaluate, fit, load_model
from ._cv import cross_validate_table, grid_search_table
from ._extract import FeatureTable, descriptor_table, tile_rows
from ._incremental import fit_incremental
from ._model import Model, default_estimator, default_pipeline
from ._model_file import ModelFileError, read_model_file, trusted_types, write_model_file
from ._report import Report
from ._tile_labels import tile_labels

__all__ = [
    "FeatureTable",
    "Model",
    "ModelFileError",
    "Report",
    "cross_validate_table",
    "default_estimator",
    "default_pipeline",
    "descriptor_table",
    "evaluate",
    "fit",
    "fit_incremental",
    "grid_search_table",
    "load_model",
    "read_model_file",
    "tile_labels",
    "tile_rows",
    "trusted_types",
    "write_model_file",
]
