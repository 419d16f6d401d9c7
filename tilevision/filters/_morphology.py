"""Binary and grey erosion, dilation, opening and closing with disk/ball/footprint.

Every operation is a registered local step (usable in :func:`tilevision.filters.chain`)
and a thin public function that matches scikit-image on the whole array, border
conventions included:

* grey ``erosion``/``dilation``/``opening``/``closing`` follow
  ``skimage.morphology.erosion`` etc.: ``mode="reflect"`` by default (also the SciPy
  modes, and ``"max"``, ``"min"``, ``"ignore"``), even footprints padded at the
  front, dilation with the footprint not mirrored, opening = erosion then dilation
  with the mirrored footprint. The dtype is kept (integers stay exact integers).
* ``binary_erosion``/... follow ``skimage.morphology.binary_erosion`` etc.
  (deprecated there since 0.26 in favour of the grey ones, which differ from them at
  the border, for even footprints and for asymmetric ones): ``mode="ignore"`` (pixels
  outside are True for erosion, False for dilation), even footprints padded at the
  end, SciPy's mirrored binary dilation. The result is bool.

The halo is the footprint radius (``tilevision._halo.footprint_radius``), twice it for
opening and closing. Footprints are built by ``_footprints.make_footprint``;
``remove_small_objects`` is in ``_small_objects``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from .._dtype import MASK_DTYPE
from .._halo import footprint_radius, plan_depth
from ._chain import chain
from ._footprints import make_footprint
from ._steps import MODES, BoundStep, StepContext, periodic_axes, register_step, step

__all__ = [
    "binary_closing",
    "binary_dilation",
    "binary_erosion",
    "binary_opening",
    "closing",
    "dilation",
    "erosion",
    "opening",
]


GreyMode = Literal["reflect", "constant", "nearest", "mirror", "wrap", "max", "min", "ignore"]
BinaryMode = Literal["ignore", "max", "min"]
GREY_MODES: tuple[str, ...] = (*MODES, "max", "min", "ignore")
BINARY_MODES: tuple[str, ...] = ("ignore", "max", "min")


def _pad(fp: np.ndarray, at_end: bool) -> np.ndarray:
    """Pad even axes to odd sizes (``skimage.morphology.pad_footprint``)."""
    pad = [((0, 1) if at_end else (1, 0)) if n % 2 == 0 else (0, 0) for n in fp.shape]
    return np.pad(fp, pad)


def _mirror(fp: np.ndarray) -> np.ndarray:
    return fp[(slice(None, None, -1),) * fp.ndim]


def _grey_mode(mode: str, op: str, dtype: np.dtype, cval: float) -> tuple[str, Any]:
    """scikit-image's 'max'/'min'/'ignore' as SciPy's constant mode with a cval."""
    if mode not in GREY_MODES:
        raise ValueError(
            f"unknown mode {mode!r}; modes are {', '.join(repr(m) for m in GREY_MODES)} "
            "(as in skimage.morphology.erosion). For 'edge' use 'nearest', for 'symmetric' "
            "use 'reflect'."
        )
    if mode == "ignore":
        mode = "max" if op == "erosion" else "min"
    if mode in ("max", "min"):
        if dtype.kind == "b":
            cval = mode == "max"
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            cval = info.max if mode == "max" else info.min
        else:
            cval = np.inf if mode == "max" else -np.inf
        mode = "constant"
    return mode, cval


def _grey_step(
    ctx: StepContext, name: str, ops: tuple[str, ...], footprint: Any, mode: str, cval: float
) -> BoundStep:
    fp = _pad(make_footprint(footprint, ctx.ndim), at_end=False)
    ndi = ctx.ndi
    dtype = ctx.dtype
    stages: list[tuple[Callable[..., Any], np.ndarray, str, Any]] = []
    for i, op in enumerate(ops):
        f = fp if i == 0 else _mirror(fp)  # opening/closing: padded, then mirrored (skimage)
        m, c = _grey_mode(mode, op, dtype, cval)
        if op == "erosion":
            stages.append((ndi.grey_erosion, f, m, c))
        else:  # ndi.grey_dilation mirrors; skimage mirrors first to undo it
            stages.append((ndi.grey_dilation, _mirror(f), m, c))

    def func(block: Any) -> Any:
        for fn, f, m, c in stages:
            block = fn(block, footprint=f, mode=m, cval=c)
        return block

    radius = plan_depth([footprint_radius(s[1]) for s in stages], ctx.ndim)
    return BoundStep(name, func, radius, dtype, periodic=periodic_axes(mode, ctx.ndim))


def _binary_step(
    ctx: StepContext, name: str, ops: tuple[str, ...], footprint: Any, mode: str
) -> BoundStep:
    if ctx.dtype.kind == "f":
        raise TypeError(
            f"{name} needs a binary mask (bool, or integers where nonzero is True), got "
            f"{ctx.dtype}; threshold it first (e.g. image > 0.5) or use the grey "
            f"{name.removeprefix('binary_')}()."
        )
    if mode not in BINARY_MODES:
        raise ValueError(
            f"unknown mode {mode!r} for {name}; binary modes are 'ignore', 'max', 'min' "
            "(as in skimage.morphology.binary_erosion). For SciPy's modes use the grey "
            "operations."
        )
    fp = _pad(make_footprint(footprint, ctx.ndim), at_end=True)
    ndi = ctx.ndi
    stages = []
    for op in ops:
        if op == "erosion":
            stages.append((ndi.binary_erosion, mode != "min"))
        else:
            stages.append((ndi.binary_dilation, mode == "max"))

    def func(block: Any) -> Any:
        for fn, border in stages:
            block = fn(block, structure=fp, border_value=border)
        return block

    radius = plan_depth([footprint_radius(fp)] * len(ops), ctx.ndim)
    return BoundStep(name, func, radius, MASK_DTYPE, periodic=(False,) * ctx.ndim)


_OPS = {
    "erosion": ("erosion",),
    "dilation": ("dilation",),
    "opening": ("erosion", "dilation"),
    "closing": ("dilation", "erosion"),
}


def _register(name: str, ops: tuple[str, ...]) -> None:
    def grey(
        ctx: StepContext, footprint: Any = None, mode: GreyMode = "reflect", cval: float = 0.0
    ) -> BoundStep:
        return _grey_step(ctx, name, ops, footprint, mode, cval)

    def binary(ctx: StepContext, footprint: Any = None, mode: BinaryMode = "ignore") -> BoundStep:
        return _binary_step(ctx, f"binary_{name}", ops, footprint, mode)

    grey.__doc__ = f"Grey {name} (skimage.morphology.{name})."
    binary.__doc__ = f"Binary {name} of a mask (skimage.morphology.binary_{name})."
    register_step(name)(grey)
    register_step(f"binary_{name}")(binary)


for _name, _ops in _OPS.items():
    _register(_name, _ops)


def _grey(
    name: str, image: Any, footprint: Any, mode: str, cval: float, cax: int | None, rechunk: bool
) -> Any:
    s = step(name, footprint=footprint, mode=mode, cval=cval)
    return chain(image, [s], channel_axis=cax, rechunk=rechunk)


def _binary(
    name: str, image: Any, footprint: Any, mode: str, cax: int | None, rechunk: bool
) -> Any:
    s = step(name, footprint=footprint, mode=mode)
    return chain(image, [s], channel_axis=cax, rechunk=rechunk)


_GREY_DOC = """Grey {name}, tile by tile, identical to ``skimage.morphology.{name}``.

    {what}

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image of any real dtype (a DataArray's ``c`` dim is filtered channel
        by channel).
    footprint : array, str or (str, int), optional
        True/False array with one axis per spatial axis, or a name with a size:
        ``"disk(r)"``, ``"square(w)"``, ``"diamond(r)"`` (2-D), ``"ball(r)"``,
        ``"cube(w)"``, ``"octahedron(r)"`` (3-D). Default: the connectivity-1 cross.
    mode : str, optional
        The border as in scikit-image: a SciPy mode (``"reflect"`` default,
        ``"constant"``, ``"nearest"``, ``"mirror"``, ``"wrap"``), ``"max"``/``"min"``
        (outside = the dtype's largest/smallest value) or ``"ignore"`` (outside does
        not count).
    cval : float, optional
        Value outside the image for ``mode="constant"``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type and dtype as ``image`` (lazy for Dask and DataArray input).

    Examples
    --------
    >>> import numpy as np, dask.array as da, skimage.morphology as morph
    >>> x = da.random.default_rng(2).integers(0, 255, (50, 60), chunks=(13, 17),
    ...                                       dtype="uint8")
    >>> y = {name}(x, "disk(2)")
    >>> y.dtype, bool((y.compute() == morph.{name}(x.compute(), morph.disk(2))).all())
    (dtype('uint8'), True)
    """

_BINARY_DOC = """Binary {name} of a mask, tile by tile, identical to
    ``skimage.morphology.binary_{name}``.

    {what} scikit-image 0.26 deprecates ``binary_{name}`` in favour of ``{name}``,
    which differs from it at the image border (``mode``), for even-sized footprints
    (padded at the end here, at the front there) and, for dilation, for asymmetric
    footprints (mirrored here as in SciPy); use :func:`{name}` for that behaviour.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D mask: bool, or integers (nonzero is True). Floats raise a TypeError
        (threshold them first).
    footprint : array, str or (str, int), optional
        As in :func:`{name}`; default the connectivity-1 cross.
    mode : {{"ignore", "max", "min"}}, optional
        Outside the image: ``"ignore"`` = does not count (True for erosion, False for
        dilation), ``"max"`` = True, ``"min"`` = False.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type as ``image``, bool.

    Examples
    --------
    >>> import warnings, numpy as np, dask.array as da, skimage.morphology as morph
    >>> x = da.random.default_rng(3).random((50, 60), chunks=(13, 17)) > 0.4
    >>> y = binary_{name}(x, "square(3)")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", FutureWarning)   # deprecated in skimage 0.26
    ...     ref = morph.binary_{name}(x.compute(), np.ones((3, 3), bool))
    >>> y.dtype, bool((y.compute() == ref).all())
    (dtype('bool'), True)
    """

_WHAT = {
    "erosion": "Each pixel becomes the minimum over the footprint centred on it.",
    "dilation": "Each pixel becomes the maximum over the footprint centred on it.",
    "opening": "Erosion then dilation (halo: twice the footprint radius).",
    "closing": "Dilation then erosion (halo: twice the footprint radius).",
}


def erosion(
    image: Any,
    footprint: Any = None,
    *,
    mode: GreyMode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _grey("erosion", image, footprint, mode, cval, channel_axis, rechunk)


def dilation(
    image: Any,
    footprint: Any = None,
    *,
    mode: GreyMode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _grey("dilation", image, footprint, mode, cval, channel_axis, rechunk)


def opening(
    image: Any,
    footprint: Any = None,
    *,
    mode: GreyMode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _grey("opening", image, footprint, mode, cval, channel_axis, rechunk)


def closing(
    image: Any,
    footprint: Any = None,
    *,
    mode: GreyMode = "reflect",
    cval: float = 0.0,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _grey("closing", image, footprint, mode, cval, channel_axis, rechunk)


def binary_erosion(
    image: Any,
    footprint: Any = None,
    *,
    mode: BinaryMode = "ignore",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _binary("binary_erosion", image, footprint, mode, channel_axis, rechunk)


def binary_dilation(
    image: Any,
    footprint: Any = None,
    *,
    mode: BinaryMode = "ignore",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _binary("binary_dilation", image, footprint, mode, channel_axis, rechunk)


def binary_opening(
    image: Any,
    footprint: Any = None,
    *,
    mode: BinaryMode = "ignore",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _binary("binary_opening", image, footprint, mode, channel_axis, rechunk)


def binary_closing(
    image: Any,
    footprint: Any = None,
    *,
    mode: BinaryMode = "ignore",
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    return _binary("binary_closing", image, footprint, mode, channel_axis, rechunk)


for _name, _what in _WHAT.items():
    globals()[_name].__doc__ = _GREY_DOC.format(name=_name, what=_what)
    globals()[f"binary_{_name}"].__doc__ = _BINARY_DOC.format(name=_name, what=_what)
