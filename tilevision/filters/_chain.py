"""Run local steps as ONE ``map_overlap``: the engine under every tiled filter.

The halo is exchanged by Dask's ``map_overlap`` or, for inputs larger than
:data:`tilevision._halo_read.BOUNDED_EXCHANGE_BYTES` (1 GiB), by
:func:`tilevision._halo_read.map_overlap_read` (each block reads its own chunk; no
chunk is held for its neighbours, so memory does not grow with the image) — unless a
step wraps around (``mode="wrap"``).

Input may be a tilevision image (DataArray), a Dask array or a NumPy array; the
result has the same kind. DataArrays keep their coords and attrs; their ``c`` dim
(if any) is treated as channels and each channel is filtered on its own.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from .._dtype import check_numeric
from .._halo import plan_depth, prepare_chunks
from .._halo_read import bounded_exchange_pays, map_overlap_read
from .._image import SPATIAL_DIMS, image_geometry
from ._steps import BoundStep, Step, StepContext, as_step

__all__ = [
    "apply_blockwise",
    "chain",
    "image_context",
    "map_overlap_new_axis",
    "unwrap",
    "wrap_like",
]


def unwrap(
    image: Any, channel_axis: int | None = None
) -> tuple[Any, tuple[str, ...], tuple[float, ...], int | None]:
    """Split an input into (array, spatial axis names, spacing, channel axis)."""
    if isinstance(image, xr.DataArray):
        unknown = [d for d in image.dims if d not in ("c", *SPATIAL_DIMS)]
        if unknown:
            raise ValueError(
                f"the image has dims {image.dims}; filters work on dims among "
                "('c', 'z', 'y', 'x'). Rename or select the others first."
            )
        spatial = tuple(str(d) for d in image.dims if d != "c")
        spacing, _, _ = image_geometry(image)
        cax = image.dims.index("c") if "c" in image.dims else None
        return image.data, spatial, tuple(spacing[d] for d in spatial), cax
    if not isinstance(image, (np.ndarray, da.Array)):
        image = np.asarray(image)
    ndim = image.ndim - (channel_axis is not None)
    if channel_axis is not None:
        if not -image.ndim <= channel_axis < image.ndim:
            raise ValueError(
                f"channel_axis={channel_axis} is out of range for {image.ndim}-D data"
            )
        channel_axis %= image.ndim
    if ndim < 1:
        raise ValueError("filters need at least one spatial axis")
    names = ("z", "y", "x")[-ndim:] if ndim <= 3 else tuple(f"axis{i}" for i in range(ndim))
    return image, names, (1.0,) * ndim, channel_axis


def image_context(
    array: Any, spatial: tuple[str, ...], spacing: tuple[float, ...], backend: str = "numpy"
) -> StepContext:
    """The :class:`StepContext` of an array."""
    dtype = check_numeric(array.dtype)
    if 0 in array.shape:
        raise ValueError(f"the image is empty (shape {array.shape}); there is nothing to filter.")
    return StepContext(
        ndim=len(spatial), spacing=spacing, axis_names=spatial, dtype=dtype, backend=backend
    )


def bind_steps(steps: Iterable[Any], ctx: StepContext) -> list[BoundStep]:
    """Bind each step to the context it will see (dtype flows from step to step)."""
    bound: list[BoundStep] = []
    for item in steps:
        s = as_step(item)
        b = s.bind(ctx)
        bound.append(b)
        ctx = StepContext(ctx.ndim, ctx.spacing, ctx.axis_names, b.out_dtype, ctx.backend)
    if not bound:
        raise ValueError("a chain needs at least one step")
    return bound


def _run_steps(block: Any, steps: Sequence[BoundStep], channel_axis: int | None) -> Any:
    if channel_axis is not None:
        planes = [
            _run_steps(np.take(block, i, axis=channel_axis), steps, None)
            for i in range(block.shape[channel_axis])
        ]
        return np.stack(planes, axis=channel_axis)
    for s in steps:
        block = s.func(block)
    return block


def _boundaries(
    steps: Sequence[BoundStep], ndim: int, spatial: tuple[str, ...]
) -> tuple[str, ...]:
    """Dask boundary per spatial axis: "none" (each step's own mode at the true edge),
    or "periodic" where every step wraps around (mode "wrap")."""
    out = []
    for axis in range(ndim):
        flags = {s.periodic[axis] if s.periodic else False for s in steps}
        if flags == {True, False}:
            raise ValueError(
                f"mode='wrap' along {spatial[axis]!r} cannot be combined with other modes in "
                "one chain (the halo is either periodic or not); use mode='wrap' in every "
                "step, or run the wrapping step as its own chain."
            )
        out.append("periodic" if flags == {True} else "none")
    return tuple(out)


#: results of chains that nobody has computed yet, by Dask name: applying another
#: filter to one of them re-plans the whole sequence as ONE map_overlap over the
#: original input (so ``sobel(gaussian(img))`` costs one overlap exchange, not two)
_PENDING: weakref.WeakValueDictionary[str, da.Array] = weakref.WeakValueDictionary()
_PENDING_PLAN: dict[str, tuple[Any, tuple[Step, ...], int | None, tuple[str, ...]]] = {}


def _remember(result: da.Array, source: Any, steps: Sequence[Step], cax: int | None,
              spatial: tuple[str, ...]) -> None:  # fmt: skip
    _PENDING[result.name] = result
    _PENDING_PLAN[result.name] = (source, tuple(steps), cax, spatial)
    weakref.finalize(result, _PENDING_PLAN.pop, result.name, None)


def _pending_plan(array: Any) -> tuple[Any, tuple[Step, ...], int | None, tuple[str, ...]] | None:
    if isinstance(array, da.Array) and _PENDING.get(array.name) is array:
        return _PENDING_PLAN.get(array.name)
    return None


def apply_blockwise(
    array: Any,
    steps: Sequence[BoundStep],
    *,
    spatial: tuple[str, ...],
    channel_axis: int | None,
    rechunk: bool = True,
    name: str | None = None,
) -> Any:
    """Run bound steps over ``array`` with one ``map_overlap`` (NumPy input: directly)."""
    out_dtype = steps[-1].out_dtype
    if isinstance(array, np.ndarray):
        return np.asarray(_run_steps(array, steps, channel_axis)).astype(out_dtype, copy=False)
    ndim_spatial = len(spatial)
    radius = plan_depth([s.radius for s in steps], ndim_spatial)
    depth_list = list(radius)
    if channel_axis is not None:
        depth_list.insert(channel_axis, 0)
    axis_names = list(spatial)
    if channel_axis is not None:
        axis_names.insert(channel_axis, "c")
    boundary = _boundaries(steps, ndim_spatial, spatial)
    boundary_list: list[str] = list(boundary)
    if channel_axis is not None:
        boundary_list.insert(channel_axis, "none")
    array, depth = prepare_chunks(array, depth_list, rechunk=rechunk, axis_names=axis_names)
    label = name or "-".join(s.name for s in steps)
    token = tokenize(array, [(s.name, dict(s.params)) for s in steps])
    # halo each later step still needs, per array axis (channels: 0)
    remaining = []
    for i in range(len(steps)):
        rest = list(plan_depth([s.radius for s in steps[i + 1 :]], ndim_spatial))
        if channel_axis is not None:
            rest.insert(channel_axis, 0)
        remaining.append(tuple(rest))
    out = {
        "chunks": array.chunks,
        "dtype": out_dtype,
        "meta": np.empty((0,) * array.ndim, dtype=out_dtype),
        "name": f"tilevision-{label}-{token}",
    }
    kwargs = {
        "steps": steps,
        "channel_axis": channel_axis,
        "halo": depth,
        "periodic": tuple(b == "periodic" for b in boundary_list),
        "remaining": tuple(remaining),
    }
    if "periodic" not in boundary_list and bounded_exchange_pays(array):
        # each block reads its own halo: memory does not grow with the image
        return map_overlap_read(_run_steps_cropping, [array], depth, kwargs=kwargs, **out)
    return da.map_overlap(
        _run_steps_cropping,
        array,
        depth=dict(enumerate(depth)),
        boundary=dict(enumerate(boundary_list)),
        trim=False,  # each block crops its own halo as the steps consume it
        **out,
        **kwargs,
    )


def _run_steps_cropping(
    block: Any,
    *,
    steps: Sequence[BoundStep],
    channel_axis: int | None,
    halo: Sequence[int],
    periodic: Sequence[bool],
    remaining: Sequence[Sequence[int]],
    block_info: dict[Any, Any] | None = None,
) -> Any:
    """Run the steps on an overlapped block, dropping halo as soon as it is used up.

    After step ``i`` only ``remaining[i]`` pixels of halo are still needed (the
    radii of the later steps), so the rest is cropped before the next step runs:
    a chain never filters more of the halo than it must, and the last step leaves
    exactly the block's own pixels (the blocks are not trimmed afterwards).
    Sides at the true image edge carry no halo (``boundary="none"``) unless the
    axis is periodic.
    """
    if block_info is None:  # dask probing the function
        return _run_steps(block, steps, channel_axis)
    info = block_info[0]
    where = zip(halo, periodic, info["chunk-location"], info["num-chunks"])
    low, high = [], []
    for d, p, loc, n in where:
        low.append(d if (p or loc > 0) else 0)
        high.append(d if (p or loc < n - 1) else 0)
    for s, rest in zip(steps, remaining):
        block = _run_steps(block, [s], channel_axis)
        index = []
        for axis, need in enumerate(rest):
            cut_low, cut_high = max(0, low[axis] - need), max(0, high[axis] - need)
            index.append(slice(cut_low, block.shape[axis] - cut_high))
            low[axis] -= cut_low
            high[axis] -= cut_high
        block = block[tuple(index)]
    return block


def map_overlap_new_axis(
    array: Any,
    func: Callable[..., Any],
    radius: Sequence[int],
    *,
    size: int,
    dtype: Any,
    spatial: tuple[str, ...],
    channel_axis: int | None = None,
    periodic: Sequence[bool] | None = None,
    rechunk: bool = True,
    name: str = "new-axis",
    token: Any = None,
    edge_crop: bool = False,
) -> Any:
    """One overlap → ``func`` per block, adding a leading axis of ``size`` → trim.

    For block functions that return several values per pixel (Hessian or
    structure-tensor eigenvalues, gradient components): ``func(block)`` gets a
    block with its halo and returns an array of shape ``(size, *block.shape)``.
    The halo is exchanged once; the new axis is one chunk.

    Parameters
    ----------
    array : dask.array.Array or numpy.ndarray
        The image; NumPy input is passed to ``func`` whole (no halo needed).
    func : callable
        ``func(block) -> array`` of shape ``(size, *block.shape)`` and dtype
        ``dtype``, or ``func(block, crop)`` with ``edge_crop``. It applies its own
        boundary mode at the true image edge (the halo there is ``"none"``).
    radius : sequence of int
        Halo per spatial axis (from :mod:`tilevision._halo`).
    size : int
        Length of the new leading axis.
    dtype : numpy.dtype
        Output dtype (passed to Dask with a matching ``meta``).
    spatial : tuple of str
        Spatial axis names, for messages about chunks narrower than the halo.
    channel_axis : int, optional
        Axis of ``array`` holding channels (no halo; ``func`` sees the channels).
    periodic : sequence of bool, optional
        Spatial axes whose halo wraps around the image (``mode="wrap"``).
    rechunk : bool, optional
        Merge chunks narrower than the halo (default); ``False`` raises instead.
    name : str, optional
        Label of the Dask task names.
    token : object, optional
        Parameters that ``func``'s result depends on (hashed into the task names,
        with ``array`` and ``name``).
    edge_crop : bool, optional
        Call ``func(block, crop)``, where ``crop`` gives per block axis the
        ``(before, after)`` widths of periodic halo lying beyond the TRUE image
        edge (0 elsewhere), for computations that must see the real edge there
        even though the halo wraps (e.g. one-sided differences after a wrapping
        Gaussian). NumPy input gets ``func(array)``.

    Returns
    -------
    dask.array.Array or numpy.ndarray
        Shape ``(size, *array.shape)``, lazy for Dask input.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> x = da.random.default_rng(0).random((40, 50), chunks=(15, 20))
    >>> def gradients(block):
    ...     return np.stack(np.gradient(block))
    >>> g = map_overlap_new_axis(x, gradients, (1, 1), size=2, dtype=x.dtype, spatial=("y", "x"))
    >>> g.shape, g.chunks[0]
    ((2, 40, 50), (2,))
    >>> bool((g.compute() == np.stack(np.gradient(x.compute()))).all())
    True
    """
    if isinstance(array, np.ndarray):
        return np.asarray(func(array)).astype(dtype, copy=False)
    ndim = len(spatial)
    depth = list(plan_depth([radius], ndim))
    wraps = tuple(periodic) if periodic is not None else (False,) * ndim
    if len(wraps) != ndim:
        raise ValueError(f"periodic has {len(wraps)} values for {ndim} spatial axes")
    boundary = ["periodic" if p else "none" for p in wraps]
    names = list(spatial)
    if channel_axis is not None:
        depth.insert(channel_axis, 0)
        boundary.insert(channel_axis, "none")
        names.insert(channel_axis, "c")
    array, eff = prepare_chunks(array, depth, rechunk=rechunk, axis_names=names)
    overlapped = da.overlap.overlap(
        array, depth=dict(enumerate(eff)), boundary=dict(enumerate(boundary))
    )
    graph_token = tokenize(array, name, token, channel_axis)
    block_func = func
    if edge_crop:
        block_func = functools.partial(
            _call_with_edge_crop,
            func=func,
            depth=eff,
            periodic=[b == "periodic" for b in boundary],
        )
    out = overlapped.map_blocks(
        block_func,
        new_axis=0,
        chunks=((size,), *overlapped.chunks),
        dtype=dtype,
        meta=np.empty((0,) * (array.ndim + 1), dtype=dtype),
        name=f"tilevision-{name}-{graph_token}",
    )
    return da.overlap.trim_internal(
        out,
        {0: 0, **{i + 1: d for i, d in enumerate(eff)}},
        boundary={0: "none", **{i + 1: b for i, b in enumerate(boundary)}},
    )


def _call_with_edge_crop(
    block: Any,
    *,
    func: Callable[..., Any],
    depth: Sequence[int],
    periodic: Sequence[bool],
    block_info: dict[Any, Any] | None = None,
) -> Any:
    """Call ``func(block, crop)`` with the periodic halo widths beyond the true edges."""
    if block_info is None:  # dask probing the function on a meta array
        return func(block)
    info = block_info[0]
    crop = [
        (d if p and loc == 0 else 0, d if p and loc == n - 1 else 0)
        for d, p, loc, n in zip(depth, periodic, info["chunk-location"], info["num-chunks"])
    ]
    return func(block, crop)


def wrap_like(image: Any, result: Any, history: str) -> Any:
    """Give ``result`` the coords/attrs of ``image`` when it is a DataArray."""
    if not isinstance(image, xr.DataArray):
        return result
    attrs = dict(image.attrs)
    attrs["filters"] = [*list(attrs.get("filters", [])), history]
    return xr.DataArray(result, dims=image.dims, coords=image.coords, name=image.name, attrs=attrs)


def chain(
    image: Any,
    steps: Sequence[Step | str | dict[str, Any] | tuple[str, dict[str, Any]]],
    *,
    channel_axis: int | None = None,
    rechunk: bool = True,
    fuse: bool = True,
) -> Any:
    """Run a sequence of local steps as one fused ``map_overlap``.

    The halo is the sum of the steps' own halos (planned by ``tilevision._halo``);
    intermediates are never materialised as Dask arrays. Each step applies its
    own boundary ``mode`` at the true image edge (``boundary="none"`` for Dask), so
    the result equals applying the same steps one after another to the whole
    image in memory, at every pixel.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        A DataArray's ``c`` dim holds channels, each filtered on its own.
    steps : sequence
        Steps from :func:`tilevision.filters.step`, names, ``{"name": ..., **params}``
        dicts or ``(name, params)`` tuples.
    channel_axis : int, optional
        For NumPy/Dask input: the axis that holds channels (default: none).
    rechunk : bool, optional
        Merge chunks narrower than the halo (default); ``False`` raises instead.
    fuse : bool, optional
        When ``image`` is the uncomputed result of another chain (e.g. of
        :func:`~tilevision.filters.gaussian`), plan both as one ``map_overlap`` over
        the original input (default). The result is the same either way.

    Returns
    -------
    Same type as ``image``
        Lazy for Dask and DataArray input.

    Examples
    --------
    >>> import numpy as np, dask.array as da, scipy.ndimage as ndi
    >>> from tilevision.filters import chain, step
    >>> x = da.random.default_rng(0).random((64, 64), chunks=20).astype("float32")
    >>> y = chain(x, [step("gaussian", sigma=2), step("gaussian", sigma=1)])
    >>> ref = ndi.gaussian_filter(ndi.gaussian_filter(x.compute(), 2, mode="nearest"), 1,
    ...                           mode="nearest")
    >>> bool((y.compute() == ref).all())
    True

    Filters applied one after another fuse the same way:

    >>> from tilevision.filters import gaussian
    >>> z = gaussian(gaussian(x, 2), 1)
    >>> sum(name.startswith("overlap") for name in z.dask.layers)
    1
    """
    array, spatial, spacing, cax = unwrap(image, channel_axis)
    requested = [as_step(s) for s in steps]
    all_steps = requested
    plan = _pending_plan(array)
    if plan is not None and plan[2] == cax and plan[3] == spatial and fuse:
        # the input is itself an uncomputed chain: run both as one overlap
        array, previous, _, _ = plan
        all_steps = [*previous, *requested]
    ctx = image_context(array, spatial, spacing)
    bound = bind_steps(all_steps, ctx)
    result = apply_blockwise(array, bound, spatial=spatial, channel_axis=cax, rechunk=rechunk)
    if isinstance(result, da.Array):
        _remember(result, array, all_steps, cax, spatial)
    history = " → ".join(str(s) for s in requested)
    return wrap_like(image, result, history)
