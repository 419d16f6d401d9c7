"""Import the modules that register the built-in local steps."""

from . import (  # noqa: F401
    _edges,
    _gaussian_derivatives,
    _intensity,
    _morphology,
    _rank,
    _smooth,
    _threshold,
)
