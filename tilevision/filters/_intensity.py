"""Intensity transforms: linear and percentile normalisation (global percentiles), CT windowing.

Global statistics are exact and lazy. :func:`histogram` sums per-chunk NumPy
histograms; :func:`global_percentiles` finds the exact order statistics NumPy's
``np.percentile`` would use by a radix selection over the whole image (a few
histogram passes over the bits of the values), then interpolates as NumPy does.
Both return Dask arrays for Dask input; transforms receive them as 0-d Dask
arrays through ``map_blocks``, so nothing is computed until the caller asks.

Memory: every pass after the first, and the transform that uses the result,
reads the image again from a copy of its graph that waits for the statistic
(:func:`tilevision._graph.reread_after`), so no chunk is held from one pass to
the next: memory stays about a few chunks, whatever the image size, at the
price of one more read of the image per pass.
"""

from __future__ import annotations

import builtins
import math
from collections.abc import Sequence
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from .._dtype import check_numeric, filter_dtype
from .._graph import reread_after
from ..io._source import rescaled_dtype
from ._chain import chain, unwrap, wrap_like
from ._steps import BoundStep, StepContext, register_step, step

__all__ = [
    "WINDOW_PRESETS",
    "global_percentiles",
    "histogram",
    "normalize",
    "rescale_hu",
    "window",
]

NanPolicy = Literal["propagate", "omit", "raise"]
Method = Literal["linear", "lower", "higher", "nearest", "midpoint"]
_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")
_NAN_POLICIES = ("propagate", "omit", "raise")

#: CT display windows as (level, width) in Hounsfield units
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "lung": (-600.0, 1500.0),
    "mediastinum": (40.0, 400.0),
    "soft_tissue": (40.0, 400.0),
    "bone": (400.0, 1800.0),
    "brain": (40.0, 80.0),
}


def _data(image: Any) -> Any:
    """The array under an image (DataArray → its data; lists → NumPy)."""
    if isinstance(image, xr.DataArray):
        return image.data
    if isinstance(image, (np.ndarray, da.Array)):
        return image
    return np.asarray(image)


def _block_counts(block: np.ndarray, lo: Any, hi: Any, bins: Any, range_: Any) -> np.ndarray:
    """``np.histogram`` of one block, as a (1, ..., 1, nbins) array."""
    if lo is not None:  # the whole image's range, as np.histogram would find it
        range_ = (lo[()], hi[()])
    counts = np.histogram(block, bins=bins, range=range_)[0]
    return counts.reshape((1,) * block.ndim + counts.shape)


def histogram(
    image: Any, bins: int | Sequence[float] = 256, range: tuple[float, float] | None = None
) -> tuple[Any, Any]:
    """Histogram of a whole image, summed lazily over its chunks.

    Equal to ``np.histogram(image, bins, range)`` on the whole array, bin for bin:
    each block is binned with the same edges (with ``range=None``, the image's
    global minimum and maximum, found lazily), so the counts add up exactly.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element (every channel) is counted. Booleans count
        as 0/1.
    bins : int or sequence of float, optional
        Number of equal-width bins, or the bin edges (increasing).
    range : (float, float), optional
        Lower and upper edge; default the image's minimum and maximum. As in
        NumPy, values outside the range and NaNs are not counted when a range
        is given; without one, an image holding NaN or inf raises when the
        result is computed.

    Returns
    -------
    counts : dask.array.Array or numpy.ndarray
        int64 counts per bin (NumPy for NumPy input).
    edges : numpy.ndarray or dask.array.Array
        The ``nbins + 1`` edges: NumPy when they do not depend on the data
        (``range`` or edges given), a lazy Dask array otherwise.

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> x = da.random.default_rng(0).integers(0, 100, (40, 50), chunks=(13, 17))
    >>> counts, edges = histogram(x, bins=10, range=(0, 100))
    >>> ref_counts, ref_edges = np.histogram(x.compute(), bins=10, range=(0, 100))
    >>> bool((counts.compute() == ref_counts).all()), bool((edges == ref_edges).all())
    (True, True)
    """
    array = _data(image)
    dtype = check_numeric(array.dtype)
    if isinstance(bins, str):
        raise ValueError(
            f"bins={bins!r}: NumPy's bin estimators need the data in memory; give a number "
            "of bins or the bin edges."
        )
    if np.ndim(bins) == 0 and (int(bins) != bins or bins < 1):  # type: ignore[operator]
        raise ValueError(f"bins must be a positive whole number, got {bins!r}.")
    if array.size == 0:
        raise ValueError("the image is empty; there is nothing to count.")
    if dtype.kind == "b":  # as NumPy does (it warns)
        array, dtype = array.astype(np.uint8), np.dtype(np.uint8)
    if isinstance(array, np.ndarray):
        return np.histogram(array, bins=bins, range=range)
    lazy_range = range is None and np.ndim(bins) == 0
    dummy = np.zeros(1, dtype)
    if lazy_range:
        lo, hi = array.min(), array.max()
        nbins = int(bins)  # type: ignore[arg-type]
        edge_dtype = np.histogram_bin_edges(dummy, nbins).dtype
        edges: Any = da.map_blocks(
            _edges_from_range,
            lo,
            hi,
            nbins,
            dtype,
            new_axis=[0],
            chunks=((nbins + 1,),),
            dtype=edge_dtype,
            meta=np.empty((0,), edge_dtype),
        )
    else:
        lo = hi = None
        edges = np.histogram_bin_edges(np.empty(0, dtype), bins, range)
        nbins = len(edges) - 1
    ndim = array.ndim
    per_block = da.map_blocks(
        _block_counts,
        reread_after(array, lo, hi),  # read again once the range is known
        lo,
        hi,
        bins=bins,
        range_=range,
        new_axis=[ndim],
        chunks=(*((1,) * len(c) for c in array.chunks), (nbins,)),
        dtype=np.int64,
        meta=np.empty((0,) * (ndim + 1), np.int64),
    )
    return per_block.sum(axis=tuple(builtins.range(ndim))), edges


def _edges_from_range(lo: Any, hi: Any, bins: int, image_dtype: np.dtype) -> np.ndarray:
    """The edges ``np.histogram`` finds for an image of ``image_dtype`` spanning [lo, hi]."""
    return np.histogram_bin_edges(np.empty(0, image_dtype), bins, (lo[()], hi[()]))


# -- exact global percentiles: radix selection of order statistics -------------------


def _digits(dtype: np.dtype, block_size: float) -> tuple[int, int]:
    """(bits per value, bits per histogram pass) for a dtype and typical block size.

    Passes take 16 bits (65,536 bins) when blocks hold at least 2**18 values: the
    fewest passes over the data. Smaller blocks take 8 bits (256 bins) per pass,
    so that each block's histogram stays small next to the block itself.
    """
    bits = dtype.itemsize * 8
    return bits, 16 if bits >= 16 and block_size >= 2**18 else 8


def _keys(block: np.ndarray) -> tuple[np.ndarray, int]:
    """Order-preserving unsigned integer keys of the non-NaN values, and the NaN count."""
    values = np.ascontiguousarray(block).reshape(-1)
    n_nan = 0
    if values.dtype.kind == "f":
        nan = np.isnan(values)
        n_nan = int(np.count_nonzero(nan))
        if n_nan:
            values = values[~nan]
    key_dtype = np.dtype(f"u{values.dtype.itemsize}")
    bits = values.view(key_dtype)
    if values.dtype.kind == "u":
        return bits, n_nan
    sign = key_dtype.type(1 << (8 * key_dtype.itemsize - 1))
    if values.dtype.kind == "i":
        return bits ^ sign, n_nan
    # floats: flip every bit of negatives (all ones from an arithmetic shift), the sign
    # bit of the others
    flip = (values.view(f"i{values.dtype.itemsize}") >> (8 * key_dtype.itemsize - 1)).view(
        key_dtype
    )
    flip |= sign
    flip ^= bits
    return flip, n_nan


def _from_keys(keys: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Invert :func:`_keys`."""
    key_dtype = np.dtype(f"u{dtype.itemsize}")
    keys = keys.astype(key_dtype)
    sign = key_dtype.type(1 << (8 * key_dtype.itemsize - 1))
    if dtype.kind == "i":
        keys = keys ^ sign
    elif dtype.kind == "f":
        keys = np.where(keys & sign, keys ^ sign, ~keys)
    return keys.view(dtype)


def _block_radix_hist(
    block: np.ndarray, state: dict[str, Any] | None, pass_: int, rows: int, bits: int, digit: int
) -> np.ndarray:
    """Counts of the next ``digit`` bits among keys that match each rank's prefix.

    Returns (1, ..., 1, rows, 2**digit + 1); the last column holds the NaN count.
    """
    if _is_state(state):
        state = state[()]
    keys, n_nan = _keys(block)
    nbins = 1 << digit
    shift = bits - digit * (pass_ + 1)
    out = np.zeros((rows, nbins + 1), np.int64)
    if state is None:
        out[0, :nbins] = np.bincount(_digit(keys, shift, nbins), minlength=nbins)
        out[0, nbins] = n_nan
    elif state["n"] > 0:
        high = keys >> (shift + digit)
        prefixes = state["prefix"]
        for prefix in np.unique(prefixes):
            digits = _digit(keys[high == prefix], shift, nbins)
            out[prefixes == prefix, :nbins] = np.bincount(digits, minlength=nbins)
    return out.reshape((1,) * block.ndim + out.shape)


def _digit(keys: np.ndarray, shift: int, nbins: int) -> np.ndarray:
    """``(keys >> shift) % nbins`` as intp (what ``np.bincount`` counts fastest)."""
    out = np.empty(keys.shape, np.intp)
    np.right_shift(keys, shift, out=out, casting="unsafe")
    out &= nbins - 1
    return out


def _virtual_indexes(n: int, q: np.ndarray, method: str) -> np.ndarray:
    """NumPy's virtual indexes into the ``n`` sorted values (``np.percentile``)."""
    if method == "linear":
        return np.asanyarray((n - 1) * q)
    if method == "midpoint":
        return np.asanyarray(0.5 * (np.floor((n - 1) * q) + np.ceil((n - 1) * q)))
    rounding = {"lower": np.floor, "higher": np.ceil, "nearest": np.around}[method]
    return np.asanyarray(rounding((n - 1) * q).astype(np.intp))


def _indexes(n: int, q: np.ndarray, method: str) -> tuple[np.ndarray, np.ndarray, Any]:
    """(previous, next) indexes into the sorted values and NumPy's gamma (None: no lerp)."""
    virtual = _virtual_indexes(n, q, method)
    if np.issubdtype(virtual.dtype, np.integer):
        return virtual, virtual, None
    previous = np.floor(virtual)
    following = previous + 1
    above = virtual >= n - 1
    previous = np.where(above, -1, np.where(virtual < 0, 0, previous))
    following = np.where(above, -1, np.where(virtual < 0, 0, following))
    gamma = np.asanyarray(virtual - previous)
    if method == "midpoint":
        gamma = np.where(virtual % 1 == 0, 0.0, 0.5)
    gamma = np.asanyarray(gamma, dtype=virtual.dtype)
    return previous.astype(np.intp), following.astype(np.intp), gamma


def _advance(
    hist: np.ndarray,
    state: dict[str, Any] | None,
    pass_: int,
    size: int,
    q: np.ndarray,
    method: str,
    digit: int,
) -> dict[str, Any]:
    """Pick each wanted rank's next digit from a (summed) radix histogram."""
    nbins = 1 << digit
    if state is None:
        n_nan = int(hist[0, nbins])
        n = size - n_nan
        previous, following, _ = _indexes(max(n, 1), q, method)
        ranks = np.concatenate([np.ravel(previous), np.ravel(following)])
        ranks = np.where(ranks < 0, max(n, 1) - 1, ranks)
        state = {
            "n": n,
            "n_nan": n_nan,
            "rank": [int(r) for r in ranks],
            "prefix": np.zeros(len(ranks), np.uint64),
        }
        rows = [0] * len(ranks)
    else:
        rows = list(range(len(state["rank"])))
    if state["n"] == 0:
        return state
    cumulative = np.cumsum(hist[:, :nbins], axis=1)
    prefixes, ranks = [], []
    for i, rank in enumerate(state["rank"]):
        counts = cumulative[rows[i]]
        d = int(np.searchsorted(counts, rank, side="right"))
        ranks.append(rank - (int(counts[d - 1]) if d else 0))
        prefixes.append((int(state["prefix"][i]) << digit) | d)
    return {**state, "rank": ranks, "prefix": np.array(prefixes, np.uint64)}


def _lerp(a: np.ndarray, b: np.ndarray, t: Any) -> np.ndarray:
    """NumPy's percentile interpolation (``numpy.lib._function_base_impl._lerp``).

    Integer differences are taken in int64 (NumPy takes them in the input dtype,
    which overflows for int8/int16 values far apart); ``inf - inf`` gives NaN
    quietly.
    """
    with np.errstate(invalid="ignore", over="ignore"):
        if a.dtype.kind in "iu" and a.dtype.itemsize < 8:
            diff = b.astype(np.int64) - a.astype(np.int64)
        else:
            diff = b - a
        out = np.asarray(np.add(a, diff * t))
        np.subtract(
            b,
            diff * (1 - t),
            out=out,
            where=np.asarray(t >= 0.5),
            casting="unsafe",
            dtype=out.dtype,
        )
    return out


def _finish(
    state: dict[str, Any],
    q: np.ndarray,
    method: str,
    nan_policy: str,
    weak: bool,
    dtype: np.dtype,
    out_dtype: np.dtype,
) -> np.ndarray:
    """Turn the selected order statistics into NumPy's percentiles."""
    n, n_nan = state["n"], state["n_nan"]
    if n_nan and nan_policy == "raise":
        raise ValueError(
            f"the image holds {n_nan} NaN value(s) and nan_policy='raise'; use "
            "nan_policy='omit' to ignore them or 'propagate' to get NaN percentiles."
        )
    if n == 0 or (n_nan and nan_policy == "propagate"):
        return np.full(q.shape, np.nan, out_dtype)
    values = _from_keys(state["prefix"], dtype)
    m = q.size
    a, b = values[:m].reshape(q.shape), values[m:].reshape(q.shape)
    _, _, gamma = _indexes(n, q, method)
    if gamma is None:
        return a.astype(out_dtype)
    return _lerp(a, b, float(gamma) if weak else gamma).astype(out_dtype, copy=False)


def _check_q(q: Any) -> np.ndarray:
    arr = np.asanyarray(q)
    if arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0:
        raise ValueError(
            f"q must be a number or a 1-D sequence of numbers in [0, 100], got {q!r}."
        )
    if not np.isfinite(arr).all() or (arr < 0).any() or (arr > 100).any():
        raise ValueError(f"percentiles must be in [0, 100], got {q!r}.")
    return np.true_divide(arr, 100)


def global_percentiles(
    image: Any,
    q: float | Sequence[float],
    *,
    method: Method = "linear",
    nan_policy: NanPolicy = "propagate",
) -> Any:
    """Exact percentiles of a whole image, computed lazily over its chunks.

    The result equals ``np.percentile(image, q, method=method)`` on the whole
    array (``np.nanpercentile`` with ``nan_policy="omit"``), value and dtype. The
    order statistics it needs are found exactly by a radix selection: one
    histogram pass over the image per 16 bits of the dtype for blocks of at
    least 2**18 values (8-bit and 16-bit images: one pass; float32/int32: two;
    float64/int64: four), per 8 bits for smaller blocks, each a Dask reduction
    with one task per block; then NumPy's interpolation (integer differences in
    int64, which avoids NumPy's int8/int16 overflow).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; all elements (all channels) together. Booleans count as 0/1.
    q : float or sequence of float
        Percentiles in [0, 100].
    method : {"linear", "lower", "higher", "nearest", "midpoint"}, optional
        NumPy's method of the same name; "linear" (NumPy's default)
        interpolates between the two neighbouring order statistics.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN in the image: "propagate" gives NaN percentiles (as ``np.percentile``),
        "omit" ignores NaNs (as ``np.nanpercentile``; all-NaN gives NaN), "raise"
        raises a ``ValueError`` — when the result is computed, since finding a
        NaN needs the data.

    Returns
    -------
    dask.array.Array or numpy.ndarray
        Shape of ``q``; lazy (Dask) unless the image is in memory.

    Notes
    -----
    Each pass after the first reads the image again once the previous pass's
    result is known, instead of keeping it in memory: memory stays bounded by
    a few chunks, and a lazy input is computed once per pass.

    See Also
    --------
    histogram, normalize, numpy.percentile

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> x = da.random.default_rng(0).random((40, 50), chunks=(13, 17))
    >>> p = global_percentiles(x, [1, 50, 99])
    >>> bool((p.compute() == np.percentile(x.compute(), [1, 50, 99])).all())
    True
    """
    array = _data(image)
    dtype = check_numeric(array.dtype)
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; methods are {', '.join(_METHODS)}.")
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(
            f"nan_policy must be one of {', '.join(_NAN_POLICIES)}, got {nan_policy!r}."
        )
    if array.size == 0:
        raise ValueError("the image is empty; it has no percentiles.")
    qf = _check_q(q)
    weak = type(q) in (int, float)
    if dtype.kind == "b":
        array, dtype = array.astype(np.uint8), np.dtype(np.uint8)
    out_dtype = np.asarray(np.percentile(np.zeros(1, dtype), q, method=method)).dtype
    block_size = array.size / max(1, math.prod(len(c) for c in getattr(array, "chunks", ())))
    bits, digit = _digits(dtype, block_size)
    n_ranks = 2 * qf.size
    size = int(array.size)
    finish_args = (qf, method, nan_policy, weak, dtype, out_dtype)
    if isinstance(array, np.ndarray):
        state = None
        for pass_ in range(bits // digit):
            rows = 1 if state is None else n_ranks
            hist = _block_radix_hist(array, state, pass_, rows, bits, digit)
            hist = hist.reshape(rows, -1)
            state = _advance(hist, state, pass_, size, qf, method, digit)
        return _finish(state, *finish_args)  # type: ignore[arg-type]
    ndim = array.ndim
    lazy_state: Any = None  # a 0-d object Dask array holding the selection state
    for pass_ in range(bits // digit):
        rows = 1 if pass_ == 0 else n_ranks
        per_block = da.map_blocks(
            _block_radix_hist,
            reread_after(array, lazy_state),  # passes after the first read again
            lazy_state,
            pass_,
            rows,
            bits,
            digit,
            new_axis=[ndim, ndim + 1],
            chunks=(*((1,) * len(c) for c in array.chunks), (rows,), ((1 << digit) + 1,)),
            dtype=np.int64,
            meta=np.empty((0,) * (ndim + 2), np.int64),
        )
        hist = per_block.sum(axis=tuple(range(ndim)))
        lazy_state = da.map_blocks(
            _advance_task,
            hist,
            lazy_state,
            pass_,
            size,
            qf,
            method,
            digit,
            drop_axis=[0, 1],
            chunks=(),
            dtype=object,
            meta=np.empty((), object),
        )
    return da.map_blocks(
        _finish_task,
        lazy_state,
        *finish_args,
        new_axis=list(range(qf.ndim)),
        chunks=tuple((n,) for n in qf.shape),
        dtype=out_dtype,
        meta=np.empty((0,) * qf.ndim, out_dtype),
    )


def _advance_task(hist: np.ndarray, state: Any, *args: Any) -> np.ndarray:
    """:func:`_advance` on Dask's 0-d object arrays (state in, state out)."""
    out = np.empty((), object)
    out[()] = _advance(hist, state[()] if _is_state(state) else state, *args)
    return out


def _finish_task(state: np.ndarray, *args: Any) -> np.ndarray:
    """:func:`_finish` on Dask's 0-d object array state."""
    return _finish(state[()], *args)


def _is_state(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype == object and value.ndim == 0


# -- elementwise transforms ------------------------------------------------------------


def _rescale(
    block: np.ndarray,
    imin: float,
    imax: float,
    out_range: tuple[float, float],
    clip: bool,
    work_dtype: np.dtype,
) -> np.ndarray:
    """``skimage.exposure.rescale_intensity(block, (imin, imax), out_range)`` in a dtype."""
    image = block.astype(work_dtype, copy=False)
    imin, imax = float(imin), float(imax)
    omin, omax = (float(v) for v in out_range)
    if clip:
        image = np.clip(image, imin, imax)
    if imin != imax:
        image = (image - imin) / (imax - imin)
        return (image * (omax - omin) + omin).astype(work_dtype)
    return np.clip(image, omin, omax).astype(work_dtype)


def _check_range(value: Any, name: str) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair of numbers (low, high), got {value!r}.") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
        raise ValueError(f"{name} must be two different finite numbers, got {value!r}.")
    return lo, hi


def _window_range(
    level: float | None, width: float | None, preset: str | None
) -> tuple[float, float]:
    """(low, high) intensity of a window given by level/width or a preset name."""
    if preset is not None:
        if level is not None or width is not None:
            raise ValueError("give either preset or level and width, not both.")
        if preset not in WINDOW_PRESETS:
            raise ValueError(
                f"unknown window preset {preset!r}; presets are {', '.join(WINDOW_PRESETS)} "
                "(or give level= and width= in Hounsfield units)."
            )
        level, width = WINDOW_PRESETS[preset]
    if level is None or width is None:
        raise ValueError(
            "a window needs level= and width= (e.g. level=40, width=400), or preset= "
            f"(one of {', '.join(WINDOW_PRESETS)})."
        )
    level, width = float(level), float(width)
    if not (math.isfinite(level) and math.isfinite(width)) or width <= 0:
        raise ValueError(
            f"window width must be > 0 and level finite, got level={level}, width={width}."
        )
    return level - width / 2, level + width / 2


@register_step("window")
def _window_step(
    ctx: StepContext,
    level: float | None = None,
    width: float | None = None,
    preset: str | None = None,
    out_range: Sequence[float] = (0.0, 1.0),
) -> BoundStep:
    """CT windowing: clip to [level - width/2, level + width/2] and rescale to out_range."""
    imin, imax = _window_range(level, width, preset)
    orange = _check_range(out_range, "out_range")
    dtype = ctx.float_dtype

    def func(block: Any) -> Any:
        return _rescale(block, imin, imax, orange, True, dtype)

    return BoundStep("window", func, (0,) * ctx.ndim, dtype)


@register_step("rescale_hu")
def _rescale_hu_step(ctx: StepContext, slope: float, intercept: float) -> BoundStep:
    """Stored values to Hounsfield units: ``slope * image + intercept``."""
    slope, intercept = float(slope), float(intercept)
    if not (math.isfinite(slope) and math.isfinite(intercept)) or slope == 0:
        raise ValueError(
            f"slope must be finite and non-zero and intercept finite, got slope={slope}, "
            f"intercept={intercept} (DICOM RescaleSlope/RescaleIntercept)."
        )
    if ctx.dtype.kind == "b":
        raise TypeError("rescale_hu needs stored integer or float values, not booleans.")
    dtype = rescaled_dtype(ctx.dtype, slope, intercept)

    def func(block: Any) -> Any:
        if dtype.kind == "f":
            return (block.astype(np.float64) * slope + intercept).astype(dtype)
        return (block.astype(np.int64) * int(slope) + int(intercept)).astype(dtype)

    return BoundStep("rescale_hu", func, (0,) * ctx.ndim, dtype)


@register_step("linear")
def _linear_step(ctx: StepContext, alpha: float = 1.0, beta: float = 0.0) -> BoundStep:
    """Linear intensity map ``alpha * image + beta`` in the filter dtype."""
    alpha, beta = float(alpha), float(beta)
    if not (math.isfinite(alpha) and math.isfinite(beta)):
        raise ValueError(f"alpha and beta must be finite, got alpha={alpha}, beta={beta}.")
    dtype = ctx.float_dtype

    def func(block: Any) -> Any:
        return block.astype(dtype, copy=False) * alpha + beta

    return BoundStep("linear", func, (0,) * ctx.ndim, dtype)


def window(
    image: Any,
    level: float | None = None,
    width: float | None = None,
    *,
    preset: str | None = None,
    out_range: tuple[float, float] = (0.0, 1.0),
    channel_axis: int | None = None,
) -> Any:
    """CT windowing: clip to ``[level - width/2, level + width/2]``, rescale to ``out_range``.

    Equal to ``skimage.exposure.rescale_intensity(image.astype(float32),
    in_range=(level - width / 2, level + width / 2), out_range=out_range)``.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Image in Hounsfield units (see :func:`rescale_hu` for stored values).
    level, width : float, optional
        Window centre and width (> 0), in the image's intensity units.
    preset : str, optional
        A named window instead of ``level``/``width``: one of
        :data:`WINDOW_PRESETS` — "lung" (-600, 1500), "mediastinum" and
        "soft_tissue" (40, 400), "bone" (400, 1800), "brain" (40, 80).
    out_range : (float, float), optional
        Output intensity of the window's lower and upper end.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input.

    See Also
    --------
    skimage.exposure.rescale_intensity, normalize

    Examples
    --------
    >>> import numpy as np
    >>> window(np.array([[-1000, 0, 40, 240, 1000]], "int16"), preset="soft_tissue")
    array([[0. , 0.4, 0.5, 1. , 1. ]], dtype=float32)
    """
    given = {"level": level, "width": width, "preset": preset}
    s = step("window", **{k: v for k, v in given.items() if v is not None}, out_range=out_range)
    return chain(image, [s], channel_axis=channel_axis)


def rescale_hu(
    image: Any, slope: float, intercept: float, *, channel_axis: int | None = None
) -> Any:
    """Stored pixel values to Hounsfield units: ``image * slope + intercept``.

    The output dtype is the DICOM/NIfTI rescale rule
    (:func:`tilevision.io._source.rescaled_dtype`): integer input with whole
    slope and intercept stays integer (the smallest signed type that holds the
    rescaled range of the input dtype), anything else becomes float32 (float64
    stays float64), computed in float64 first.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Stored values (e.g. DICOM pixel data).
    slope, intercept : float
        DICOM RescaleSlope (finite, non-zero) and RescaleIntercept.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.

    Returns
    -------
    Same type as ``image``; lazy for Dask-backed input.

    Examples
    --------
    >>> import numpy as np
    >>> rescale_hu(np.array([[0, 1024, 2048]], "uint16"), 1, -1024)
    array([[-1024,     0,  1024]], dtype=int32)
    """
    s = step("rescale_hu", slope=slope, intercept=intercept)
    return chain(image, [s], channel_axis=channel_axis)


def _per_channel(array: Any, channel_axis: int | None, func: Any) -> Any:
    """Apply ``func`` to each channel of ``array`` (or to all of it) and restack."""
    if channel_axis is None:
        return func(array)
    index = (slice(None),) * channel_axis
    parts = [func(array[(*index, i)]) for i in range(array.shape[channel_axis])]
    if isinstance(array, np.ndarray):
        return np.stack(parts, axis=channel_axis)
    stacked = da.stack(parts, axis=channel_axis)
    return stacked.rechunk({channel_axis: array.chunks[channel_axis]})


def normalize(
    image: Any,
    percentiles: tuple[float, float] | None = None,
    *,
    out_range: tuple[float, float] | None = None,
    clip: bool = True,
    alpha: float | None = None,
    beta: float | None = None,
    nan_policy: NanPolicy = "propagate",
    channel_axis: int | None = None,
) -> Any:
    """Normalise intensities: by global percentiles (default), or linearly.

    *Percentile mode* (the default, ``percentiles=(1, 99)``): the two
    percentiles of the WHOLE image (per channel), computed exactly and lazily by
    :func:`global_percentiles` (NumPy's "linear" method), are mapped to
    ``out_range``, and with ``clip`` values beyond them are clipped — equal to
    ``skimage.exposure.rescale_intensity(image.astype(float32), in_range=(p_low,
    p_high), out_range=out_range)``. When both percentiles are equal the image is
    clipped to ``out_range`` (as scikit-image does).

    *Linear mode* (``alpha`` and/or ``beta`` given): ``alpha * image + beta``.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        A DataArray's ``c`` dim holds channels, normalised one by one.
    percentiles : (float, float), optional
        Low and high percentile in [0, 100], low < high. Default (1, 99).
    out_range : (float, float), optional
        Output values of the low and high percentile. Default (0, 1).
    clip : bool, optional
        Clip values beyond the percentiles (percentile mode).
    alpha, beta : float, optional
        Gain and offset of linear mode (defaults 1 and 0 once either is given).
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN in the image (percentile mode): "propagate" makes the percentiles,
        hence the whole result, NaN; "omit" ignores NaNs in the percentiles (NaN
        pixels stay NaN); "raise" raises a ``ValueError`` when the result is
        computed (finding NaNs needs the data, and nothing is computed early).
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.

    Returns
    -------
    Same type as ``image``
        float32 (float64 for float64 input); lazy for Dask-backed input.

    Notes
    -----
    Memory stays bounded by a few chunks: each radix pass and the transform
    read the image again instead of keeping it (see
    :func:`tilevision._graph.reread_after`). A lazy input is therefore
    computed once per pass (float32: 3 times for chunks of at least 2**18
    values); persist or store an expensive one first.

    See Also
    --------
    global_percentiles, window, skimage.exposure.rescale_intensity

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from skimage.exposure import rescale_intensity
    >>> x = da.random.default_rng(0).normal(100, 20, (40, 50), chunks=(13, 17))
    >>> y = normalize(x, (2, 98))
    >>> whole = x.compute()
    >>> ref = rescale_intensity(whole, in_range=tuple(np.percentile(whole, (2, 98))),
    ...                         out_range=(0.0, 1.0))
    >>> bool((y.compute() == ref).all())
    True
    >>> normalize(np.array([1, 2, 3], "uint8"), alpha=2, beta=-1)
    array([1., 3., 5.], dtype=float32)
    """
    if alpha is not None or beta is not None:
        if percentiles is not None or out_range is not None:
            raise ValueError(
                "give percentiles/out_range (percentile normalisation) or alpha/beta "
                "(linear normalisation), not both."
            )
        s = step("linear", alpha=1.0 if alpha is None else alpha, beta=beta or 0.0)
        return chain(image, [s], channel_axis=channel_axis)
    plow, phigh = _check_range((1, 99) if percentiles is None else percentiles, "percentiles")
    if not 0 <= plow < phigh <= 100:
        raise ValueError(
            f"percentiles must be (low, high) with 0 <= low < high <= 100, got {percentiles!r}."
        )
    orange = _check_range((0.0, 1.0) if out_range is None else out_range, "out_range")
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(
            f"nan_policy must be one of {', '.join(_NAN_POLICIES)}, got {nan_policy!r}."
        )
    array, _, _, cax = unwrap(image, channel_axis)
    dtype = filter_dtype(array.dtype)
    if array.size == 0:
        raise ValueError(f"the image is empty (shape {array.shape}); there is nothing to scale.")

    def one(channel: Any) -> Any:
        bounds = global_percentiles(channel, (plow, phigh), nan_policy=nan_policy)
        if isinstance(channel, np.ndarray):
            return _rescale(channel, bounds[0], bounds[1], orange, clip, dtype)
        return da.map_blocks(
            _rescale,
            reread_after(channel, bounds),  # read again once the percentiles are known
            bounds[0],
            bounds[1],
            out_range=orange,
            clip=clip,
            work_dtype=dtype,
            dtype=dtype,
            meta=np.empty((0,) * channel.ndim, dtype),
        )

    result = _per_channel(array, cax, one)
    history = (
        f"normalize(percentiles={(plow, phigh)}, out_range={orange}, clip={clip}, "
        f"nan_policy={nan_policy!r})"
    )
    return wrap_like(image, result, history)
