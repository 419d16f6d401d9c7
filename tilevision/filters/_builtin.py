"""Import the modules that register the built-in local steps."""

from . import _edges, _intensity, _morphology, _rank, _smooth, _threshold  # noqa: F401
