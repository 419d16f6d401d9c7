"""Windows of the rank and uniform filters: ``size`` or ``footprint``, and the step.

The window is a box of ``size`` pixels per axis (or physical lengths rounded to
odd pixel counts) or a boolean ``footprint``; its halo comes from
``tilevision._halo`` (``size_radius`` / ``footprint_radius``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from .._halo import as_per_axis, footprint_radius, odd_pixels, size_radius, to_pixels
from ._steps import BoundStep, Mode, StepContext, check_mode, periodic_axes

__all__ = ["DEFAULT_SIZE", "Size", "Units", "rank_step", "window_params"]


Units = Literal["pixel", "physical"]
Size = int | float | Sequence[int | float]

#: SciPy's default window when neither ``size`` nor ``footprint`` is given (as
#: ``skimage.filters.median``: 3 pixels along every axis)
DEFAULT_SIZE = 3


def _check_size(size: Size, ctx: StepContext, units: Units) -> tuple[int, ...]:
    """Validate ``size`` (pixels, or physical lengths) and return pixels per axis."""
    values = as_per_axis(size, ctx.ndim, "size")
    if any(not np.isfinite(v) or v <= 0 for v in values):
        raise ValueError(
            f"size must be > 0 along every axis, got {size!r}; give the window width in "
            "pixels (e.g. size=3), or in millimetres/micrometres with units='physical'."
        )
    if units == "physical":
        return tuple(odd_pixels(v) for v in to_pixels(values, ctx.spacing, units, "size"))
    if units != "pixel":
        raise ValueError(f"units must be 'pixel' or 'physical', got {units!r}.")
    if any(not float(v).is_integer() for v in values):
        raise ValueError(
            f"size must be a whole number of pixels, got {size!r}; round it, or pass "
            "units='physical' to give it in the image's physical units."
        )
    return tuple(int(v) for v in values)


def _check_footprint(footprint: Any, ndim: int) -> np.ndarray:
    """Validate a footprint: ``ndim`` axes of True/False (or 0/1), at least one True."""
    fp = np.asarray(footprint)
    if fp.dtype != bool:
        if fp.dtype.kind not in "biuf" or not np.isin(fp, (0, 1)).all():
            raise ValueError(
                "footprint must be boolean (True/False or 0/1 values), got values of dtype "
                f"{fp.dtype}; build it with e.g. skimage.morphology.disk(2) or "
                "numpy.ones((3, 3), bool)."
            )
        fp = fp.astype(bool)
    if fp.ndim != ndim:
        raise ValueError(
            f"footprint has {fp.ndim} axes but the image has {ndim} spatial axes; give a "
            f"{ndim}-D footprint (e.g. skimage.morphology.{'ball' if ndim == 3 else 'disk'}(1))."
        )
    if not fp.any():
        raise ValueError("footprint has no True element; it must select at least one pixel.")
    return fp


def _window(
    ctx: StepContext, size: Size | None, footprint: Any, units: Units
) -> tuple[tuple[int, ...] | None, np.ndarray | None, tuple[int, ...]]:
    """Resolve (size, footprint) into SciPy arguments and the halo radius."""
    if footprint is not None:
        if size is not None:
            raise ValueError(
                "give either size or footprint, not both (a footprint sets the window)."
            )
        if units != "pixel":
            raise ValueError(
                "units='physical' applies to size; a footprint is given in pixels. Pass "
                "size= in physical units instead, or drop units."
            )
        fp = _check_footprint(footprint, ctx.ndim)
        return None, fp, footprint_radius(fp)
    sizes = _check_size(DEFAULT_SIZE if size is None else size, ctx, units)
    return sizes, None, size_radius(sizes, ctx.ndim)


def rank_step(
    name: str,
    ctx: StepContext,
    size: Size | None,
    footprint: Any,
    mode: Mode | Sequence[Mode],
    cval: float,
    units: Units,
    run: Any,
) -> BoundStep:
    """A BoundStep that casts to the working dtype and runs ``run(block, size, fp)``."""
    sizes, fp, radius = _window(ctx, size, footprint, units)
    check_mode(mode, ctx.ndim)
    dtype = ctx.float_dtype

    def func(block: Any) -> Any:
        return run(block.astype(dtype, copy=False), sizes, fp, mode, cval)

    return BoundStep(name, func, radius, dtype, periodic=periodic_axes(mode, ctx.ndim))


def window_params(size: Any, footprint: Any) -> dict[str, Any]:
    """Step parameters for the window given (a footprint as nested lists of bools).

    Lists are serialisable, and tokenised in full (NumPy's repr elides big arrays).
    """
    params: dict[str, Any] = {}
    if size is not None:
        params["size"] = size
    if footprint is not None:
        params["footprint"] = _footprint_param(footprint)
    return params


def _footprint_param(footprint: Any) -> Any:
    """A footprint as nested lists of bools when it is one (else as given, to be refused)."""
    fp = np.asarray(footprint)
    return (
        fp.astype(bool).tolist() if fp.dtype.kind in "biuf" and np.isin(fp, (0, 1)).all() else fp
    )
