"""Lazy, seam-exact filters on images: one fused ``map_overlap`` per chain of local steps.

Every filter takes a tilevision image (DataArray), a Dask array or a NumPy array and
returns the same kind; Dask-backed input stays lazy. Tiled results equal the
whole-array scikit-image/SciPy result at every pixel, seams and borders included.
"""

from . import (
    _canny,
    _chain,
    _edges,
    _footprints,
    _gaussian_derivatives,
    _hessian,
    _intensity,
    _label,
    _morphology,
    _rank,
    _small_objects,
    _smooth,
    _steps,
    _threshold,
)
from ._canny import *  # noqa: F403
from ._chain import chain as chain
from ._edges import *  # noqa: F403
from ._footprints import *  # noqa: F403
from ._gaussian_derivatives import *  # noqa: F403
from ._hessian import *  # noqa: F403
from ._intensity import *  # noqa: F403
from ._label import *  # noqa: F403
from ._morphology import *  # noqa: F403
from ._rank import *  # noqa: F403
from ._small_objects import *  # noqa: F403
from ._smooth import *  # noqa: F403
from ._steps import Step as Step
from ._steps import available_steps as available_steps
from ._steps import step as step
from ._threshold import *  # noqa: F403

__all__ = sorted(
    {
        "Step",
        "available_steps",
        "chain",
        "step",
        *_canny.__all__,
        *_edges.__all__,
        *_footprints.__all__,
        *_gaussian_derivatives.__all__,
        *_hessian.__all__,
        *_intensity.__all__,
        *_label.__all__,
        *_morphology.__all__,
        *_rank.__all__,
        *_small_objects.__all__,
        *_smooth.__all__,
        *_threshold.__all__,
    }
)
del _chain, _steps
