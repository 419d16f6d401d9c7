"""Run local steps as ONE ``map_overlap``: the engine under every tiled filter.

Input may be a tilevision image (DataArray), a Dask array or a NumPy array; the
result has the same kind. DataArrays keep their coords and attrs; their ``c`` dim
(if any) is treated as channels and each channel is filtered on its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize

from .._dtype import check_numeric
from .._halo import plan_depth, prepare_chunks
from .._image import SPATIAL_DIMS, image_geometry
from ._steps import BoundStep, Step, StepContext, as_step

__all__ = ["apply_blockwise", "chain", "image_context", "unwrap", "wrap_like"]


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
    token = tokenize(array, [(s.name, repr(sorted(s.params.items()))) for s in steps])
    return da.map_overlap(
        _run_steps,
        array,
        depth=dict(enumerate(depth)),
        boundary=dict(enumerate(boundary_list)),
        trim=True,
        dtype=out_dtype,
        meta=np.empty((0,) * array.ndim, dtype=out_dtype),
        name=f"tilevision-{label}-{token}",
        steps=steps,
        channel_axis=channel_axis,
    )


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
    """
    array, spatial, spacing, cax = unwrap(image, channel_axis)
    ctx = image_context(array, spatial, spacing)
    bound = bind_steps(steps, ctx)
    result = apply_blockwise(array, bound, spatial=spatial, channel_axis=cax, rechunk=rechunk)
    history = " → ".join(str(as_step(s)) for s in steps)
    return wrap_like(image, result, history)
