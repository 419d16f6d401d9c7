"""The dtype policy, written once.

* Filtering: float32 stays float32, float64 stays float64; integers and booleans
  become float32. Values are **not** rescaled (unlike ``skimage.img_as_float``):
  Hounsfield units stay Hounsfield units.
* Features are float64.
* Masks are bool; labels are int32 (int64 when a volume could hold more objects).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import DTypeLike

__all__ = ["FEATURE_DTYPE", "LABEL_DTYPE", "MASK_DTYPE", "check_numeric", "filter_dtype"]

FEATURE_DTYPE = np.dtype(np.float64)
MASK_DTYPE = np.dtype(np.bool_)
LABEL_DTYPE = np.dtype(np.int32)


def check_numeric(dtype: DTypeLike, what: str = "image") -> np.dtype:
    """Raise a clear ``TypeError`` unless ``dtype`` is a real numeric or bool dtype.

    Examples
    --------
    >>> check_numeric("uint16")
    dtype('uint16')
    >>> check_numeric("U3")
    Traceback (most recent call last):
    ...
    TypeError: the image has the non-numeric dtype <U3; convert it first, e.g. ...
    """
    dtype = np.dtype(dtype)
    if dtype.kind not in "biuf":
        kind = "complex" if dtype.kind == "c" else "non-numeric"
        raise TypeError(
            f"the {what} has the {kind} dtype {dtype}; convert it first, e.g. "
            f"{what}.astype('float32')."
        )
    return dtype


def filter_dtype(dtype: DTypeLike) -> np.dtype:
    """The floating dtype a filter computes and returns for an input ``dtype``.

    Examples
    --------
    >>> filter_dtype("uint16"), filter_dtype("float32"), filter_dtype("float64")
    (dtype('float32'), dtype('float32'), dtype('float64'))
    >>> filter_dtype("float16")
    dtype('float32')
    """
    dtype = check_numeric(dtype)
    if dtype == np.float64:
        return np.dtype(np.float64)
    return np.dtype(np.float32)
