"""Binary and grey morphology with disk/ball/footprint, and remove_small_objects.

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
opening and closing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

import dask.array as da
import numpy as np

from .._dtype import MASK_DTYPE
from .._halo import footprint_radius, plan_depth
from ._chain import chain, wrap_like
from ._label import GraphBuilder, LabelPlan, as_mask_array, check_connectivity
from ._steps import MODES, BoundStep, StepContext, periodic_axes, register_step, step

__all__ = [
    "binary_closing",
    "binary_dilation",
    "binary_erosion",
    "binary_opening",
    "closing",
    "dilation",
    "erosion",
    "make_footprint",
    "opening",
    "remove_small_objects",
]

GreyMode = Literal["reflect", "constant", "nearest", "mirror", "wrap", "max", "min", "ignore"]
BinaryMode = Literal["ignore", "max", "min"]
GREY_MODES: tuple[str, ...] = (*MODES, "max", "min", "ignore")
BINARY_MODES: tuple[str, ...] = ("ignore", "max", "min")


def _rectangle(ndim: int) -> Callable[[int], np.ndarray]:
    from skimage.morphology import footprint_rectangle

    return lambda width: footprint_rectangle((width,) * ndim)


def _named(name: str) -> tuple[int, Callable[[int], np.ndarray]]:
    import skimage.morphology as morph

    table: dict[str, tuple[int, Callable[[int], np.ndarray]]] = {
        "disk": (2, morph.disk),
        "diamond": (2, morph.diamond),
        "square": (2, _rectangle(2)),
        "ball": (3, morph.ball),
        "octahedron": (3, morph.octahedron),
        "cube": (3, _rectangle(3)),
    }
    if name not in table:
        raise ValueError(
            f"unknown footprint {name!r}; named footprints are {', '.join(table)} (e.g. "
            "'disk(3)' or ('ball', 2)), or pass an array of True/False."
        )
    return table[name]


def make_footprint(footprint: Any, ndim: int) -> np.ndarray:
    """A boolean footprint from an array, a name with a size, or None (the cross).

    Names: ``"disk(r)"``, ``"diamond(r)"``, ``"square(w)"`` (2-D), ``"ball(r)"``,
    ``"octahedron(r)"``, ``"cube(w)"`` (3-D), as strings or ``(name, size)`` pairs;
    built with ``skimage.morphology``. None gives scikit-image's default, the
    connectivity-1 cross.

    Examples
    --------
    >>> make_footprint("disk(1)", 2).astype(int)
    array([[0, 1, 0],
           [1, 1, 1],
           [0, 1, 0]])
    >>> make_footprint(("cube", 2), 3).shape
    (2, 2, 2)
    >>> make_footprint("disk(2)", 3)
    Traceback (most recent call last):
    ...
    ValueError: the footprint 'disk(2)' is 2-D but the image has 3 spatial axes; use ...
    """
    import scipy.ndimage as ndi

    if footprint is None:
        return ndi.generate_binary_structure(ndim, 1)
    if isinstance(footprint, str):
        match = re.fullmatch(r"\s*([a-z]+)\s*\(\s*(\d+)\s*\)\s*", footprint)
        if match is None:
            raise ValueError(
                f"cannot read the footprint {footprint!r}; write a name with a size, e.g. "
                "'disk(3)', 'ball(2)', 'square(5)', or pass an array of True/False."
            )
        spec: Any = (match[1], int(match[2]))
    elif (
        isinstance(footprint, (tuple, list))
        and len(footprint) == 2
        and isinstance(footprint[0], str)
    ):
        spec = footprint
    else:
        spec = None
    if spec is not None:
        name, size = spec
        fp_ndim, build = _named(name)
        if fp_ndim != ndim:
            alt = {"disk": "ball", "diamond": "octahedron", "square": "cube"}
            alt.update({v: k for k, v in alt.items()})
            raise ValueError(
                f"the footprint {footprint!r} is {fp_ndim}-D but the image has {ndim} "
                f"spatial axes; use {alt[name]}({size}) or an array with {ndim} axes."
            )
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"the footprint size must be an integer ≥ 1, got {size!r}.")
        return np.asarray(build(int(size))).astype(bool)
    fp = np.asarray(footprint)
    if fp.dtype.kind not in "biuf" or (fp.dtype != bool and not np.isin(fp, (0, 1)).all()):
        raise ValueError(
            "the footprint must hold True/False (or 0/1) values; build it with e.g. "
            "skimage.morphology.disk(2), or name it: 'disk(2)'."
        )
    if fp.ndim != ndim:
        raise ValueError(
            f"the footprint has {fp.ndim} axes but the image has {ndim} spatial axes; give "
            f"a {ndim}-D footprint (e.g. {'ball(2)' if ndim == 3 else 'disk(2)'})."
        )
    if not fp.any():
        raise ValueError("the footprint has no True element; it must select some pixels.")
    return fp.astype(bool)


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


# -- remove_small_objects -----------------------------------------------------------------


def _bincount(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ids, pixel counts) of the labels in a chunk (sparse: only the ids present)."""
    if block.size and block.min() < 0:
        raise ValueError(
            "remove_small_objects got negative labels; label images must be ≥ 0. Relabel "
            "them with tilevision.filters.label, or pass a boolean mask."
        )
    counts = np.bincount(block.ravel())
    ids = np.flatnonzero(counts)
    return ids, counts[ids]


def _add_counts(*parts: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    ids, inverse = np.unique(np.concatenate([p[0] for p in parts]), return_inverse=True)
    counts = np.bincount(inverse, weights=np.concatenate([p[1] for p in parts]))
    return ids, counts.astype(np.int64)


def _dense(part: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    ids, counts = part
    out = np.zeros(int(ids[-1]) + 1 if ids.size else 1, dtype=np.int64)
    out[ids] = counts
    return out


def _object_sizes(labels: da.Array, prefix: str) -> Any:
    """Pixels per label id (a dense table), summed up a tree of tasks (lazy, a Delayed)."""
    g = GraphBuilder(prefix, [labels])
    leaves = [
        g.add(f"{prefix}-bincount-{flat}", _bincount, _ref(labels, idx))
        for flat, idx in enumerate(np.ndindex(*labels.numblocks))
    ]
    total = g.tree(leaves, _add_counts, f"{prefix}-sum")
    return g.delayed(g.add(f"{prefix}-table", _dense, total))


def _ref(array: da.Array, idx: tuple[int, ...]) -> Any:
    from dask._task_spec import TaskRef

    return TaskRef((array.name, *idx))


def _keep_mask(labels: np.ndarray, sizes: np.ndarray, max_size: int) -> np.ndarray:
    return (labels > 0) & (sizes[labels] > max_size)


def _drop_labels(labels: np.ndarray, sizes: np.ndarray, max_size: int) -> np.ndarray:
    return np.where(sizes[labels] > max_size, labels, 0).astype(labels.dtype, copy=False)


def remove_small_objects(mask: Any, max_size: int = 64, *, connectivity: int = 1) -> Any:
    """Remove objects of ``max_size`` pixels or fewer, as scikit-image 0.26 does.

    This follows scikit-image 0.26, where ``max_size`` (inclusive: objects of
    ``max_size`` pixels or fewer go) replaced the deprecated ``min_size`` (exclusive).
    For the old ``min_size=n`` pass ``max_size=n - 1``. Objects are the components of
    :func:`tilevision.filters.label` across all tiles, so an object split by chunk
    borders counts as one; object sizes come from a tree-summed, lazy ``bincount``.

    Parameters
    ----------
    mask : xarray.DataArray, dask.array.Array or numpy.ndarray
        A boolean mask (labelled with ``connectivity``), or an integer label image
        whose ids are the objects (as in scikit-image; ids must be ≥ 0 and the
        per-id count table, one entry per id up to the largest, must fit in memory).
    max_size : int, optional
        Objects with this many pixels or fewer are removed (default 64).
    connectivity : int, optional
        1 = faces only (default, as scikit-image), up to ``ndim`` = every neighbour.

    Returns
    -------
    Same type and dtype as ``mask`` (lazy for Dask and DataArray input).

    Examples
    --------
    >>> import numpy as np, dask.array as da, skimage.morphology as morph
    >>> m = da.random.default_rng(4).random((60, 70), chunks=(16, 25)) > 0.5
    >>> out = remove_small_objects(m, 5, connectivity=2)
    >>> ref = morph.remove_small_objects(m.compute(), max_size=5, connectivity=2)
    >>> bool((out.compute() == ref).all())
    True
    """
    array, _ = as_mask_array(mask, "remove_small_objects")
    if array.dtype.kind not in "biu":
        raise TypeError(
            f"remove_small_objects needs a boolean mask or an integer label image, got "
            f"{array.dtype}; threshold it first (e.g. image > 0.5)."
        )
    if isinstance(max_size, bool) or not isinstance(max_size, (int, np.integer)) or max_size < 0:
        raise ValueError(f"max_size must be an integer ≥ 0 (pixels), got {max_size!r}.")
    conn = check_connectivity(connectivity, array.ndim)
    max_size = int(max_size)
    history = f"remove_small_objects(max_size={max_size}, connectivity={conn})"
    if isinstance(array, np.ndarray):
        return wrap_like(mask, _remove_numpy(array, max_size, conn), history)
    if array.dtype == bool:
        plan = LabelPlan(array, conn)
        sizes = _object_sizes(plan.labels(), f"{plan.prefix}-sizes")
        labels = plan.labels(after=[sizes])
        result = da.map_blocks(
            _keep_mask, labels, sizes=sizes, max_size=max_size, dtype=bool,
            meta=np.empty((0,) * array.ndim, bool),
        )  # fmt: skip
    else:
        from dask.base import tokenize
        from dask.graph_manipulation import bind

        sizes = _object_sizes(array, f"tilevision-sizes-{tokenize(array.name)}")
        result = da.map_blocks(
            _drop_labels, bind(array, [sizes]), sizes=sizes, max_size=max_size,
            dtype=array.dtype, meta=np.empty((0,) * array.ndim, array.dtype),
        )  # fmt: skip
    return wrap_like(mask, result, history)


def _remove_numpy(array: np.ndarray, max_size: int, connectivity: int) -> np.ndarray:
    import scipy.ndimage as ndi

    if array.dtype == bool:
        structure = ndi.generate_binary_structure(array.ndim, connectivity)
        labels, _ = ndi.label(array, structure)
        return _keep_mask(labels, np.bincount(labels.ravel()), max_size)
    return _drop_labels(array, _dense(_bincount(array)), max_size)
