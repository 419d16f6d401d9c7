"""Global-then-local thresholds from a distributed histogram, and ``threshold_local``.

Global thresholds (Otsu, Yen, Li, triangle, mean, quantile) are computed from the
WHOLE image, never per tile: each is a Dask reduction (the image's range, then its
histogram) followed by the scikit-image algorithm on that histogram, all kept lazy
as a 0-d Dask array. The mask ``image > t`` is then applied tile by tile with the
0-d threshold passed to ``map_blocks``, so nothing is computed until asked.
Each pass after the first (the histogram after the range, Li's second histogram,
the mask after the threshold) reads the image again from a copy of its graph that
waits for what it needs (:func:`tilevision._graph.reread_after`), so no chunk is
held in memory from one pass to the next.

The histogram is the one scikit-image builds: for integer images one bin per
integer value over ``[min, max]`` (``nbins`` is ignored, as in scikit-image); for
float images ``nbins`` equal bins over ``[min, max]`` with bin centres. The same
histogram gives the same threshold, bit for bit.

``threshold_local`` is a local step (a registered ``map_overlap`` step with its halo
from ``tilevision._halo``), equal to ``skimage.filters.threshold_local`` on the
whole array.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from .._dtype import MASK_DTYPE, check_numeric
from .._graph import reread_after
from .._halo import as_per_axis, gaussian_radius, size_radius
from ._chain import chain, unwrap, wrap_like
from ._intensity import (
    _block_counts,
    _data,
    _edges_from_range,
    _per_channel,
    global_percentiles,
)
from ._steps import (
    BoundStep,
    Mode,
    StepContext,
    check_mode,
    periodic_axes,
    register_step,
    step,
)

__all__ = [
    "THRESHOLD_METHODS",
    "apply_threshold",
    "threshold",
    "threshold_li",
    "threshold_local",
    "threshold_mean",
    "threshold_otsu",
    "threshold_quantile",
    "threshold_triangle",
    "threshold_yen",
]

NanPolicy = Literal["propagate", "omit", "raise"]
ThresholdMethod = Literal["otsu", "yen", "li", "triangle", "mean", "quantile"]
LocalMethod = Literal["gaussian", "mean", "median"]
QuantileMethod = Literal["linear", "lower", "higher", "nearest", "midpoint"]

#: the global methods of :func:`threshold`
THRESHOLD_METHODS: tuple[str, ...] = ("otsu", "yen", "li", "triangle", "mean", "quantile")
_NAN_POLICIES = ("propagate", "omit", "raise")
_LOCAL_METHODS = ("gaussian", "mean", "median")
_QUANTILE_METHODS = ("linear", "lower", "higher", "nearest", "midpoint")
#: bins of the histogram Li's method iterates on for float images
LI_FLOAT_BINS = 2**12
#: the widest integer range (max - min + 1) histogrammed one bin per value
MAX_INTEGER_BINS = 2**24


# -- input checks ---------------------------------------------------------------------


def _check_policy(nan_policy: str) -> None:
    if nan_policy not in _NAN_POLICIES:
        raise ValueError(
            f"nan_policy must be one of {', '.join(map(repr, _NAN_POLICIES))}, got {nan_policy!r}."
        )


def _check_nbins(nbins: Any) -> int:
    if isinstance(nbins, bool) or not isinstance(nbins, (int, np.integer)) or nbins < 2:
        raise ValueError(f"nbins must be a whole number ≥ 2, got {nbins!r}; e.g. nbins=256.")
    return int(nbins)


def _values(image: Any, nan_policy: str) -> tuple[da.Array, bool]:
    """The image's array as Dask (NumPy input wrapped in one chunk), and whether it was NumPy."""
    _check_policy(nan_policy)
    array = _data(image)
    dtype = check_numeric(array.dtype)
    if array.size == 0:
        raise ValueError(f"the image is empty (shape {array.shape}); it has no threshold.")
    if dtype.kind == "b":
        array = array.astype(np.uint8)
    eager = isinstance(array, np.ndarray)
    if eager:
        array = da.from_array(array, chunks=array.shape, name=False)
    return array, eager


def _result(value: da.Array, eager: bool) -> Any:
    """A lazy 0-d threshold, or a NumPy scalar for NumPy input (computed here, in-process)."""
    if eager:
        return np.float64(value.compute(scheduler="sync"))
    return value


def _lazy(
    func: Callable[..., Any],
    *args: Any,
    out: tuple[str, ...] = (),
    new_axes: dict[str, int] | None = None,
    dtype: Any = np.float64,
) -> da.Array:
    """``func(*args)`` as a lazy array (0-d float64 by default); Dask arguments arrive whole.

    ``blockwise`` keeps one array graph, so chunks shared with other arguments
    are read once (``dask.delayed`` would optimise each argument on its own).
    """
    pairs: list[Any] = []
    for i, arg in enumerate(args):
        is_array = isinstance(arg, da.Array)
        pairs += [arg, tuple(f"a{i}_{d}" for d in range(arg.ndim)) if is_array else None]
    return da.blockwise(
        func,
        out,
        *pairs,
        new_axes=new_axes,
        concatenate=True,
        dtype=dtype,
        meta=np.empty((0,) * len(out), dtype),
    )


# -- lazy summaries of the whole image ---------------------------------------------------


def _finite_range(array: da.Array) -> tuple[da.Array, da.Array, da.Array | None]:
    """Lazy (min, max) of the finite values and the count of non-finite ones (None: ints)."""
    if array.dtype.kind in "iu":
        return array.min(), array.max(), None
    finite = da.isfinite(array)
    lo = da.where(finite, array, np.inf).min()
    hi = da.where(finite, array, -np.inf).max()
    return lo, hi, (~finite).sum()


def _block_bincount(block: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Counts of each integer value in ``[lo, hi]`` in one block, as (1, ..., 1, n)."""
    low, high = int(lo[()]), int(hi[()])
    n = high - low + 1
    if n > MAX_INTEGER_BINS:
        raise ValueError(
            f"the integer image spans {n} values ({low} to {high}); an exact per-value "
            f"histogram is limited to {MAX_INTEGER_BINS} values. Cast the image to float "
            "(e.g. image.astype('float64')) to use nbins equal bins instead."
        )
    flat = block.reshape(-1)
    if flat.dtype.itemsize < 8:
        offsets = flat.astype(np.int64) - low
    else:  # modular arithmetic in uint64 cannot overflow
        offsets = (flat.astype(np.uint64) - np.uint64(low % 2**64)).astype(np.intp)
    counts = np.bincount(offsets, minlength=n)
    return counts.reshape((1,) * block.ndim + counts.shape)


def _block_float_counts(block: np.ndarray, lo: np.ndarray, hi: np.ndarray, nbins: int) -> Any:
    """``np.histogram`` of a block's finite values over the image's finite range."""
    if not (np.isfinite(lo[()]) and np.isfinite(hi[()])):  # no finite value anywhere
        return np.zeros((1,) * block.ndim + (nbins,), np.int64)
    return _block_counts(block, lo, hi, nbins, None)


def _counts(array: da.Array, lo: da.Array, hi: da.Array, nbins: int) -> da.Array:
    """Lazy histogram of the finite values: per integer value, or ``nbins`` float bins."""
    ndim = array.ndim
    if array.dtype.kind in "iu":
        func, kwargs, length = _block_bincount, {}, math.nan  # length known when computed
    else:
        func, kwargs, length = _block_float_counts, {"nbins": nbins}, nbins
    per_block = da.map_blocks(
        func,
        array,
        lo,
        hi,
        **kwargs,
        new_axis=[ndim],
        chunks=(*((1,) * len(c) for c in array.chunks), (length,)),
        dtype=np.int64,
        meta=np.empty((0,) * (ndim + 1), np.int64),
    )
    return per_block.sum(axis=tuple(range(ndim)))


def _early(n_bad: Any, n_finite: int, nan_policy: str) -> float | None:
    """The NaN/inf policy: NaN (propagate / nothing left), an error (raise), or None."""
    n_bad = 0 if n_bad is None else int(n_bad)
    if n_bad and nan_policy == "raise":
        raise ValueError(
            f"the image holds {n_bad} NaN or infinite value(s) and nan_policy='raise'; use "
            "nan_policy='omit' to threshold the finite values, or 'propagate' to get NaN."
        )
    if (n_bad and nan_policy == "propagate") or n_finite == 0:
        return math.nan
    return None


# -- the algorithms on a whole-image histogram ----------------------------------------


def _centers(lo: Any, hi: Any, nbins: int, dtype: np.dtype) -> np.ndarray:
    """scikit-image's bin centres: integer values, or float bin midpoints."""
    if dtype.kind in "iu":
        return np.arange(int(lo), int(hi) + 1)
    edges = _edges_from_range(np.asarray(lo), np.asarray(hi), nbins, dtype)
    return (edges[:-1] + edges[1:]) / 2.0


def _otsu(counts: np.ndarray, centers: np.ndarray) -> Any:
    from skimage.filters import threshold_otsu as otsu

    return otsu(hist=(counts, centers))


def _yen(counts: np.ndarray, centers: np.ndarray) -> Any:
    from skimage.filters import threshold_yen as yen

    with np.errstate(divide="ignore"):  # log(0) where float32 P1 rounds to 1: never the max
        return yen(hist=(counts, centers))


def _triangle(hist: np.ndarray, bin_centers: np.ndarray) -> Any:
    """``skimage.filters.threshold_triangle`` after its histogram, line for line."""
    nbins = len(hist)
    arg_peak_height = np.argmax(hist)
    peak_height = hist[arg_peak_height]
    arg_low_level, arg_high_level = np.flatnonzero(hist)[[0, -1]]
    flip = arg_peak_height - arg_low_level < arg_high_level - arg_peak_height
    if flip:
        hist = hist[::-1]
        arg_low_level = nbins - arg_high_level - 1
        arg_peak_height = nbins - arg_peak_height - 1
    width = arg_peak_height - arg_low_level
    x1 = np.arange(width)
    y1 = hist[x1 + arg_low_level]
    norm = np.sqrt(peak_height**2 + width**2)
    peak_height = peak_height / norm
    width = width / norm
    length = peak_height * x1 - width * y1
    arg_level = np.argmax(length) + arg_low_level
    if flip:
        arg_level = nbins - arg_level - 1
    return bin_centers[arg_level]


def _li_start(
    initial_guess: float | None, image_min: Any, top: Any, dtype: np.dtype, mean: Any
) -> Any:
    """scikit-image's first Li estimate on ``image - min``: the mean, or the checked guess."""
    if initial_guess is None:
        return mean
    t_next = initial_guess - float(image_min)
    if not 0 < t_next < top:
        raise ValueError(
            f"The initial guess for threshold_li must be within the range of the image. "
            f"Got {initial_guess} for image min {image_min} and max {top + image_min}."
        )
    return dtype.type(t_next)


def _li_integer(
    counts: np.ndarray,
    image_min: Any,
    dtype: np.dtype,
    tolerance: float | None,
    initial_guess: float | None,
) -> Any:
    """``skimage.filters.threshold_li``'s integer branch, line for line, on its histogram."""
    hist = counts.astype(np.float32)
    bin_centers = np.arange(counts.size)  # the values of ``image - min``
    tolerance = tolerance or 0.5
    # np.mean(image - min): an exact integer sum over the count, as NumPy's float64 sum is
    mean = np.float64(int((counts * bin_centers).sum())) / int(counts.sum())
    t_next = _li_start(initial_guess, image_min, bin_centers[-1], dtype, mean)
    t_curr = -2 * tolerance
    while abs(t_next - t_curr) > tolerance:
        t_curr = t_next
        foreground = bin_centers > t_curr
        background = ~foreground
        mean_fore = np.average(bin_centers[foreground], weights=hist[foreground])
        mean_back = np.average(bin_centers[background], weights=hist[background])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next + image_min


def _bin_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The bin of each value in ``[edges[0], edges[-1]]`` (last bin closed), as NumPy bins."""
    n = len(edges) - 1
    index = ((values - edges[0]) * (n / (edges[-1] - edges[0]))).astype(np.intp)
    np.clip(index, 0, n - 1, out=index)
    index -= values < edges[index]
    index += (values >= edges[index + 1]) & (index != n - 1)
    return index


def _block_li_sums(
    block: np.ndarray, lo: np.ndarray, hi: np.ndarray, window: Any, nbins: int
) -> np.ndarray:
    """Counts and sums of ``value - min`` per bin, as (1, ..., 1, 2, nbins) float64.

    ``window=None``: ``nbins`` bins over the finite range; else ``(a, b)``: ``nbins``
    bins over first-pass bins ``a`` to ``b - 1`` (the values those bins hold).
    """
    out = np.zeros((2, nbins))
    low, high = float(lo[()]), float(hi[()])
    if math.isfinite(low) and math.isfinite(high) and (window is None or window[0] < window[1]):
        values = block.reshape(-1).astype(np.float64, copy=False)
        edges = np.histogram_bin_edges(np.empty(0), nbins, (low, high))
        if window is None:
            values = values[(values >= low) & (values <= high)]  # the finite ones
        else:
            a, b = window
            inside = (values >= edges[a]) & (values < edges[b])
            if b == nbins:
                inside |= values == high
            values = values[inside]
            edges = np.linspace(edges[a], edges[b], nbins + 1)
        if values.size:
            index = _bin_index(values, edges)
            out[0] = np.bincount(index, minlength=nbins)
            out[1] = np.bincount(index, weights=values - low, minlength=nbins)
    return out.reshape((1,) * block.ndim + out.shape)


def _li_bins(
    sums: np.ndarray, image_min: Any, top: float, dtype: np.dtype, options: dict[str, Any]
) -> Any:
    """Li's iteration with each bin's pixels at their mean (exact where a bin holds one value)."""
    counts, totals = sums[:, sums[0] > 0]
    position = totals / counts  # increasing: each mean lies inside its bin
    below_n = np.concatenate([[0.0], np.cumsum(counts)])
    below_s = np.concatenate([[0.0], np.cumsum(totals)])
    n, total = below_n[-1], below_s[-1]
    tolerance = options["tolerance"] or 0.0
    t_next = _li_start(options["initial_guess"], image_min, top, dtype, total / n)
    t_curr = -2 * tolerance - 1.0
    for _ in range(10_000):  # a histogram can make the iteration cycle between two bins
        if not abs(t_next - t_curr) > tolerance:
            break
        t_curr = t_next
        k = np.searchsorted(position, t_curr, side="right")  # bins 0..k-1: background
        if k == 0 or k == len(position):
            break
        mean_back = below_s[k] / below_n[k]
        mean_fore = (total - below_s[k]) / (n - below_n[k])
        if mean_back == 0:
            break
        t_next = (mean_back - mean_fore) / (np.log(mean_back) - np.log(mean_fore))
    return t_next


#: first-pass bins on each side of the first Li estimate that the second pass refines
_LI_WINDOW = 16


def _li_window(
    sums: np.ndarray, lo: np.ndarray, hi: np.ndarray, n_bad: Any, nbins: int,
    dtype: np.dtype, nan_policy: str, options: dict[str, Any],
) -> np.ndarray:  # fmt: skip
    """First-pass bins [a, b) around the first Li estimate; [0, 0) when nothing is refined."""
    low, high = lo[()], hi[()]
    if (n_bad and nan_policy != "omit") or not sums[0].sum() or low == high:
        return np.zeros(2, np.intp)
    try:
        t = _li_bins(sums, low, float(high) - float(low), dtype, options)
    except ValueError:  # a bad initial guess: reported by the final step
        return np.zeros(2, np.intp)
    edges = np.histogram_bin_edges(np.empty(0), nbins, (float(low), float(high))) - float(low)
    j = int(np.clip(np.searchsorted(edges, t, side="right") - 1, 0, nbins - 1))
    return np.array([max(j - _LI_WINDOW, 0), min(j + _LI_WINDOW + 1, nbins)], np.intp)


def _li_float(
    coarse: np.ndarray, fine: np.ndarray, window: np.ndarray, lo: np.ndarray,
    hi: np.ndarray, n_bad: Any, dtype: np.dtype, nan_policy: str, options: dict[str, Any],
) -> np.float64:  # fmt: skip
    early = _early(n_bad, int(coarse[0].sum()), nan_policy)
    if early is not None:
        return np.float64(early)
    low, high = lo[()], hi[()]
    if low == high:
        return np.float64(low)
    a, b = window
    sums = np.concatenate([coarse[:, :a], fine, coarse[:, b:]], axis=1) if a < b else coarse
    top = float(high) - float(low)
    return np.float64(_li_bins(sums, low, top, dtype, options) + low)


def _li_float_lazy(array: da.Array, nbins: int, nan_policy: str, options: dict[str, Any]) -> Any:
    """Two histogram passes: ``nbins`` bins over the range, then ``nbins`` over the bins
    around the first estimate; Li iterates on bin means (counts and sums of values)."""
    lo, hi, n_bad = _finite_range(array)
    index = tuple(f"i{d}" for d in range(array.ndim))

    def pass_(window: da.Array | None) -> da.Array:
        # each pass reads the image again, once what it needs is known
        if window is None:
            source = reread_after(array, lo, hi, n_bad)
        else:
            source = reread_after(array, window)
        per_block = da.blockwise(
            _block_li_sums,
            (*index, "p", "q"),
            source,
            index,
            lo,
            (),
            hi,
            (),
            window,
            None if window is None else ("w",),
            nbins,
            None,
            new_axes={"p": 2, "q": nbins},
            adjust_chunks=dict.fromkeys(index, 1),
            concatenate=True,
            dtype=np.float64,
            meta=np.empty((0,) * (array.ndim + 2), np.float64),
        )
        return per_block.sum(axis=tuple(range(array.ndim)))

    coarse = pass_(None)
    args = (lo, hi, n_bad, nbins, array.dtype, nan_policy, options)
    window = _lazy(_li_window, coarse, *args, out=("w",), new_axes={"w": 2}, dtype=np.intp)
    fine = pass_(window)
    return _lazy(_li_float, coarse, fine, window, lo, hi, n_bad, array.dtype, nan_policy, options)


def _from_histogram(
    counts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    n_bad: Any,
    method: str,
    nbins: int,
    dtype: np.dtype,
    nan_policy: str,
    options: dict[str, Any],
) -> np.float64:
    early = _early(n_bad, int(counts.sum()), nan_policy)
    if early is not None:
        return np.float64(early)
    low, high = lo[()], hi[()]
    if low == high:  # a constant image: its value (scikit-image's otsu, li, triangle)
        return np.float64(low)
    if method == "li":
        return np.float64(_li_integer(counts, low, dtype, **options))
    centers = _centers(low, high, nbins, dtype)
    if method == "otsu":
        value = _otsu(counts, centers)
    elif method == "yen":
        value = _yen(counts, centers)
    else:
        value = _triangle(counts, centers)
    return np.float64(value)


def _histogram_threshold(
    image: Any, method: str, nbins: int, nan_policy: str, **options: Any
) -> Any:
    array, eager = _values(image, nan_policy)
    if method == "li" and array.dtype.kind == "f":
        return _result(_li_float_lazy(array, nbins, nan_policy, options), eager)
    lo, hi, n_bad = _finite_range(array)
    counts = _counts(reread_after(array, lo, hi, n_bad), lo, hi, nbins)  # read again
    args = (counts, lo, hi, n_bad, method, nbins, array.dtype, nan_policy, options)
    return _result(_lazy(_from_histogram, *args), eager)


# -- public global thresholds -------------------------------------------------------------


def threshold_otsu(image: Any, nbins: int = 256, *, nan_policy: NanPolicy = "propagate") -> Any:
    """Otsu's threshold of the whole image, from a lazy distributed histogram.

    Equal to ``skimage.filters.threshold_otsu(image)`` on the whole array: the
    histogram is scikit-image's (integer images: one bin per value between the
    minimum and maximum, ``nbins`` ignored; float images: ``nbins`` bins over
    ``[min, max]``), summed over the chunks, and scikit-image's Otsu runs on it.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts (select a channel first for one per
        channel, or use :func:`threshold`). Booleans count as 0/1.
    nbins : int, optional
        Number of bins (≥ 2) for float images; ignored for integer images.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling (see Notes).

    Returns
    -------
    dask.array.Array or numpy.float64
        A lazy 0-d float64 Dask array (a NumPy scalar for NumPy input): pixels
        above it are foreground.

    Notes
    -----
    NaN and ±inf: with ``nan_policy="propagate"`` (default) the threshold is NaN
    when the image holds any (so the mask ``image > t`` is all False);
    ``"omit"`` thresholds the finite values only (as scikit-image on
    ``image[np.isfinite(image)]``; NaN if none is finite); ``"raise"`` raises a
    ``ValueError`` when the threshold is computed (finding them needs the data).
    A constant image's threshold is its value, so its mask is empty.

    See Also
    --------
    threshold, skimage.filters.threshold_otsu

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage import filters
    >>> x = da.random.default_rng(0).integers(0, 4000, (60, 70), chunks=(16, 23))
    >>> t = threshold_otsu(x)
    >>> t.shape, bool(t.compute() == filters.threshold_otsu(x.compute()))
    ((), True)
    """
    return _histogram_threshold(image, "otsu", _check_nbins(nbins), nan_policy)


def threshold_yen(image: Any, nbins: int = 256, *, nan_policy: NanPolicy = "propagate") -> Any:
    """Yen's threshold of the whole image, from a lazy distributed histogram.

    Equal to ``skimage.filters.threshold_yen(image)`` on the whole array (same
    histogram, scikit-image's algorithm on it); for a constant float image the
    threshold is the value itself (scikit-image returns the centre of its one
    non-empty bin, a little above it; the mask is empty either way).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts.
    nbins : int, optional
        Number of bins (≥ 2) for float images; ignored for integer images.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling, as in :func:`threshold_otsu`.

    Returns
    -------
    dask.array.Array or numpy.float64
        Lazy 0-d float64 threshold (NumPy scalar for NumPy input).

    See Also
    --------
    threshold, skimage.filters.threshold_yen

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage import filters
    >>> x = da.random.default_rng(0).gamma(2.0, 10.0, (60, 70), chunks=(16, 23))
    >>> bool(threshold_yen(x).compute() == filters.threshold_yen(x.compute()))
    True
    """
    return _histogram_threshold(image, "yen", _check_nbins(nbins), nan_policy)


def threshold_triangle(
    image: Any, nbins: int = 256, *, nan_policy: NanPolicy = "propagate"
) -> Any:
    """The triangle threshold of the whole image, from a lazy distributed histogram.

    Equal to ``skimage.filters.threshold_triangle(image)`` on the whole array:
    its histogram part, ported line for line, runs on the same histogram.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts.
    nbins : int, optional
        Number of bins (≥ 2) for float images; ignored for integer images.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling, as in :func:`threshold_otsu`.

    Returns
    -------
    dask.array.Array or numpy.float64
        Lazy 0-d float64 threshold (NumPy scalar for NumPy input).

    See Also
    --------
    threshold, skimage.filters.threshold_triangle

    Examples
    --------
    >>> import numpy as np
    >>> from skimage import filters
    >>> x = np.random.default_rng(0).poisson(30, (60, 70)).astype("uint16")
    >>> bool(threshold_triangle(x) == filters.threshold_triangle(x))
    True
    """
    return _histogram_threshold(image, "triangle", _check_nbins(nbins), nan_policy)


def threshold_li(
    image: Any,
    *,
    tolerance: float | None = None,
    initial_guess: float | None = None,
    nbins: int = LI_FLOAT_BINS,
    nan_policy: NanPolicy = "propagate",
) -> Any:
    """Li's minimum cross-entropy threshold of the whole image, lazily.

    Integer images: identical to ``skimage.filters.threshold_li(image)``, whose
    integer branch iterates on the per-value histogram (float32 counts, tolerance
    0.5, initial guess the image mean) — the same histogram, built over the
    chunks, gives the same iterations. (scikit-image computes ``image - min`` in
    the image dtype, which wraps around for int16/int8 ranges wider than the
    dtype; tilevision does not.)

    Float images: scikit-image iterates on the pixel values themselves. Here two
    lazy histogram passes give the count and the sum of the values in each bin —
    ``nbins`` (4096) bins over ``[min, max]``, then ``nbins`` finer bins over
    the 33 bins around the first estimate (a resolution of about
    ``(max - min) / 500000``) — and Li's iteration runs with each bin's pixels at
    their mean, which is exact wherever a bin holds a single value. The result
    agrees with scikit-image's to well within ``(max - min) / 2**16`` (tested),
    except where the iteration has several nearly equal fixed points and the two
    settle on different ones; bin sums are float64, so the last digits may
    differ between chunkings.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts.
    tolerance : float, optional
        Stop when the threshold changes by less; default 0.5 for integer images
        (scikit-image's), and for float images 0 (until the threshold repeats,
        which on a histogram it does).
    initial_guess : float, optional
        Starting threshold, inside the image's range (checked when computed);
        default the image mean. (scikit-image's callables need the data in
        memory and are not accepted.)
    nbins : int, optional
        Bins (≥ 2) of each float histogram pass; ignored for integer images.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling, as in :func:`threshold_otsu`.

    Returns
    -------
    dask.array.Array or numpy.float64
        Lazy 0-d float64 threshold (NumPy scalar for NumPy input).

    See Also
    --------
    threshold, skimage.filters.threshold_li

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage import filters
    >>> x = da.random.default_rng(0).integers(0, 255, (60, 70), chunks=(16, 23))
    >>> bool(threshold_li(x).compute() == filters.threshold_li(x.compute()))
    True
    """
    if initial_guess is not None and (
        callable(initial_guess) or not math.isfinite(float(initial_guess))
    ):
        raise ValueError(
            f"initial_guess must be a finite number, got {initial_guess!r}; a function of "
            "the pixel values would need the whole image in memory."
        )
    if tolerance is not None and not (math.isfinite(tolerance) and tolerance >= 0):
        raise ValueError(f"tolerance must be a finite number ≥ 0, got {tolerance!r}.")
    options = {"tolerance": tolerance, "initial_guess": initial_guess}
    return _histogram_threshold(image, "li", _check_nbins(nbins), nan_policy, **options)


def _mean_value(total: Any, n: Any, n_bad: Any, nan_policy: str) -> np.float64:
    n = int(n)
    early = _early(n_bad, n, nan_policy)
    return np.float64(early if early is not None else np.float64(total) / n)


def threshold_mean(image: Any, *, nan_policy: NanPolicy = "propagate") -> Any:
    """The mean of the whole image as a threshold, summed lazily in float64.

    ``skimage.filters.threshold_mean`` is ``np.mean(image)``; for integer images
    the float64 chunk sums are exact, so the result is identical; float32 images
    are summed in float64 (NumPy sums float32 in float32), which is more
    accurate and may differ from NumPy's in the last digits.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling, as in :func:`threshold_otsu`.

    Returns
    -------
    dask.array.Array or numpy.float64
        Lazy 0-d float64 threshold (NumPy scalar for NumPy input).

    See Also
    --------
    threshold, skimage.filters.threshold_mean

    Examples
    --------
    >>> import numpy as np
    >>> threshold_mean(np.array([[1, 2], [3, 10]], "uint8"))
    np.float64(4.0)
    """
    array, eager = _values(image, nan_policy)
    if array.dtype.kind in "iu":
        total, n, n_bad = array.sum(dtype=np.float64), array.size, None
    else:
        finite = da.isfinite(array)
        total = da.where(finite, array, 0).sum(dtype=np.float64)
        n, n_bad = finite.sum(), (~finite).sum()
    return _result(_lazy(_mean_value, total, n, n_bad, nan_policy), eager)


def _quantile_value(value: np.ndarray, n_bad: Any, nan_policy: str, n: int) -> np.float64:
    early = _early(n_bad, n - (0 if n_bad is None else int(n_bad)), nan_policy)
    return np.float64(early if early is not None else value[()])


def threshold_quantile(
    image: Any,
    q: float,
    *,
    method: QuantileMethod = "linear",
    nan_policy: NanPolicy = "propagate",
) -> Any:
    """A quantile of the whole image as a threshold, exact and lazy.

    The exact order statistics of the whole image, from
    :func:`~tilevision.filters.global_percentiles` (a radix selection over the
    chunks), interpolated as NumPy does: equal to ``np.percentile(image, 100 *
    q, method=method)`` on the whole array, which is ``np.quantile(image, q,
    method=method)`` whenever ``100 * q / 100 == q`` in floating point (every
    ``q`` with two decimals and most others) and otherwise differs from it only
    through the rounding of ``q`` (about 1e-16 relative).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape; every element counts.
    q : float
        The quantile, a fraction in [0, 1] (as ``np.quantile``; 0.95, not 95).
    method : {"linear", "lower", "higher", "nearest", "midpoint"}, optional
        NumPy's interpolation method.
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling, as in :func:`threshold_otsu`.

    Returns
    -------
    dask.array.Array or numpy.float64
        Lazy 0-d float64 threshold (NumPy scalar for NumPy input).

    See Also
    --------
    threshold, global_percentiles, numpy.quantile

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> x = da.random.default_rng(0).normal(0, 1, (60, 70), chunks=(16, 23))
    >>> bool(threshold_quantile(x, 0.95).compute() == np.quantile(x.compute(), 0.95))
    True
    """
    if isinstance(q, bool) or np.ndim(q) != 0 or not isinstance(q, (int, float, np.number)):
        raise ValueError(f"q must be one number in [0, 1], got {q!r}.")
    if not 0 <= q <= 1:
        raise ValueError(
            f"q must be a fraction in [0, 1], got {q!r}; for a percentile p use q = p / 100."
        )
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"unknown method {method!r}; methods are {', '.join(_QUANTILE_METHODS)}.")
    array, eager = _values(image, nan_policy)
    n_bad = None
    if array.dtype.kind == "f":  # ±inf counts and is left out like NaN
        finite = da.isfinite(array)
        n_bad = (~finite).sum()
        array = da.where(finite, array, np.nan)
    policy = "omit" if nan_policy == "omit" else "propagate"
    value = global_percentiles(array, float(q) * 100, method=method, nan_policy=policy)
    return _result(_lazy(_quantile_value, value, n_bad, nan_policy, array.size), eager)


# -- masks ------------------------------------------------------------------------------


def _above(block: np.ndarray, value: Any) -> np.ndarray:
    return np.greater(block, value)


def _mask(array: Any, value: Any) -> Any:
    """``array > value`` tile by tile (``value`` may be a lazy 0-d array).

    A lazy ``value`` computed from ``array`` is a pass of its own: the mask reads
    ``array`` again once ``value`` is known instead of holding it meanwhile.
    """
    if isinstance(array, np.ndarray) and not isinstance(value, da.Array):
        return _above(array, value)
    if isinstance(array, np.ndarray):
        array = da.from_array(array, chunks=array.shape, name=False)
    array = reread_after(array, value)
    return da.map_blocks(
        _above, array, value, dtype=MASK_DTYPE, meta=np.empty((0,) * array.ndim, MASK_DTYPE)
    )


def apply_threshold(image: Any, value: Any) -> Any:
    """The mask ``image > value``, tile by tile, with a (lazy) global threshold.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        Any shape.
    value : float or 0-d array
        The threshold: a number or a 0-d NumPy/Dask array (e.g. from
        :func:`threshold_otsu`), passed to every tile by ``map_blocks`` without
        being computed. A NaN threshold gives an all-False mask. For a lazy
        ``value`` the image is read again once ``value`` is known, so that a
        threshold computed from the same image does not make Dask hold it.

    Returns
    -------
    Same type as ``image``
        Boolean mask; lazy for Dask-backed input (and for a lazy ``value``).

    See Also
    --------
    threshold

    Examples
    --------
    >>> import dask.array as da
    >>> x = da.random.default_rng(0).integers(0, 255, (60, 70), chunks=(16, 23))
    >>> mask = apply_threshold(x, threshold_otsu(x))
    >>> mask.dtype, bool((mask.compute() == (x > threshold_otsu(x)).compute()).all())
    (dtype('bool'), True)
    """
    if np.ndim(value) != 0:
        raise ValueError(
            f"value must be one threshold (a number or a 0-d array), got shape "
            f"{np.shape(value)}; use threshold(image, ...) for one threshold per channel."
        )
    array = _data(image)
    check_numeric(array.dtype)
    shown = "<lazy>" if isinstance(value, da.Array) else repr(float(value))
    return wrap_like(image, _mask(array, value), f"apply_threshold(value={shown})")


def threshold(
    image: Any,
    method: ThresholdMethod = "otsu",
    *,
    q: float | None = None,
    nbins: int | None = None,
    nan_policy: NanPolicy = "propagate",
    channel_axis: int | None = None,
) -> Any:
    """Foreground mask ``image > t`` with ``t`` a global threshold of the whole image.

    ``t`` comes from the whole image (per channel), never from a tile: it is
    computed lazily by :func:`threshold_otsu`, :func:`threshold_yen`,
    :func:`threshold_li`, :func:`threshold_triangle`, :func:`threshold_mean` or
    :func:`threshold_quantile` and handed to every tile as a 0-d Dask array.

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        A DataArray's ``c`` dim holds channels, each with its own threshold.
    method : {"otsu", "yen", "li", "triangle", "mean", "quantile"}, optional
        The global method.
    q : float, optional
        The quantile in [0, 1] for ``method="quantile"`` (required there only).
    nbins : int, optional
        Bins for float images (default: the method's own, 256; Li 4096);
        not used by "mean" and "quantile".
    nan_policy : {"propagate", "omit", "raise"}, optional
        NaN/inf handling of the threshold (see :func:`threshold_otsu`); NaN
        pixels are never foreground.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.

    Returns
    -------
    Same type as ``image``
        Boolean mask, lazy for Dask-backed input. A DataArray keeps its
        coords and attrs, and ``attrs["threshold"]`` records the method and
        its parameters.

    Notes
    -----
    Memory stays bounded by a few chunks: every pass (the range, the
    histogram, the mask) reads the image again once what it needs is known,
    instead of keeping it (see :func:`tilevision._graph.reread_after`). A lazy
    input is therefore computed once per pass (e.g. 3 times for Otsu); persist
    or store an expensive one first.

    See Also
    --------
    apply_threshold, threshold_local

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage import filters
    >>> x = da.random.default_rng(0).integers(0, 255, (60, 70), chunks=(16, 23))
    >>> mask = threshold(x, "otsu")
    >>> whole = x.compute()
    >>> bool((mask.compute() == (whole > filters.threshold_otsu(whole))).all())
    True
    """
    if method not in THRESHOLD_METHODS:
        raise ValueError(
            f"unknown threshold method {method!r}; methods are "
            f"{', '.join(THRESHOLD_METHODS)} (for a local threshold use threshold_local)."
        )
    if (method == "quantile") != (q is not None):
        raise ValueError(
            "q (a fraction in [0, 1]) is required for method='quantile' and applies to it "
            f"only; got method={method!r}, q={q!r}."
        )
    if nbins is not None and method in ("mean", "quantile"):
        raise ValueError(f"nbins does not apply to method={method!r}; leave it out.")
    _check_policy(nan_policy)
    options: dict[str, Any] = {"nan_policy": nan_policy}
    if nbins is not None:
        options["nbins"] = _check_nbins(nbins)
    funcs: dict[str, Callable[..., Any]] = {
        "otsu": threshold_otsu,
        "yen": threshold_yen,
        "li": threshold_li,
        "triangle": threshold_triangle,
        "mean": threshold_mean,
    }
    array, _, _, cax = unwrap(image, channel_axis)

    def one(channel: Any) -> Any:
        if method == "quantile":
            value = threshold_quantile(channel, q, nan_policy=nan_policy)  # type: ignore[arg-type]
        else:
            value = funcs[method](channel, **options)
        return _mask(channel, value)

    described = {"method": method, **options, **({"q": q} if q is not None else {})}
    args = ", ".join(f"{k}={v!r}" for k, v in described.items() if k != "method")
    result = wrap_like(image, _per_channel(array, cax, one), f"threshold({method!r}, {args})")
    if isinstance(result, xr.DataArray):
        result.attrs["threshold"] = {**described, "per_channel": cax is not None}
    return result


# -- local threshold ----------------------------------------------------------------------


def _check_block_size(block_size: Any, ndim: int) -> tuple[int, ...]:
    sizes = as_per_axis(block_size, ndim, "block_size")
    if any(not float(b).is_integer() or b < 1 for b in sizes):
        raise ValueError(
            f"block_size must be a whole number of pixels ≥ 1 per axis, got {block_size!r}."
        )
    if any(int(b) % 2 == 0 for b in sizes):
        raise ValueError(
            f"block_size must be odd (the window is centred on its pixel), got "
            f"{block_size!r}; use e.g. {tuple(int(b) | 1 for b in sizes)}."
        )
    return tuple(int(b) for b in sizes)


@register_step("threshold_local")
def _threshold_local_step(
    ctx: StepContext,
    block_size: int | Sequence[int],
    method: LocalMethod = "gaussian",
    offset: float = 0.0,
    mode: Mode | Sequence[Mode] = "reflect",
    param: float | Sequence[float] | None = None,
    cval: float = 0.0,
) -> BoundStep:
    """Local threshold image: the neighbourhood's weighted mean minus offset."""
    sizes = _check_block_size(block_size, ctx.ndim)
    check_mode(mode, ctx.ndim)
    if method not in _LOCAL_METHODS:
        raise ValueError(
            f"unknown method {method!r}; methods are {', '.join(_LOCAL_METHODS)} "
            "(scikit-image's 'generic' takes a Python function per pixel and is not offered)."
        )
    if not (math.isfinite(float(offset)) and math.isfinite(float(cval))):
        raise ValueError(f"offset and cval must be finite, got offset={offset}, cval={cval}.")
    dtype, ndi, ndim = ctx.float_dtype, ctx.ndi, ctx.ndim
    offset = float(offset)
    if method == "gaussian":
        sigma = tuple((b - 1) / 6.0 for b in sizes) if param is None else param
        sigmas = as_per_axis(sigma, ndim, "param (sigma)")
        if any(not math.isfinite(s) or s < 0 for s in sigmas):
            raise ValueError(f"param is the Gaussian sigma and must be ≥ 0, got {param!r}.")
        radius = gaussian_radius(sigmas, 4.0, ndim)

        def local(x: Any) -> Any:
            return ndi.gaussian_filter(x, sigma, mode=mode, cval=cval, truncate=4.0)

    elif param is not None:
        raise ValueError(f"param is the Gaussian sigma; it does not apply to method={method!r}.")
    else:
        radius = size_radius(sizes, ndim)
        filt = ndi.uniform_filter if method == "mean" else ndi.median_filter

        def local(x: Any) -> Any:
            return filt(x, sizes, mode=mode, cval=cval)

    def func(block: Any) -> Any:
        return local(block.astype(dtype, copy=False)) - offset

    return BoundStep("threshold_local", func, radius, dtype, periodic=periodic_axes(mode, ndim))


def threshold_local(
    image: Any,
    block_size: int | Sequence[int],
    method: LocalMethod = "gaussian",
    offset: float = 0.0,
    mode: Mode | Sequence[Mode] = "reflect",
    param: float | Sequence[float] | None = None,
    cval: float = 0.0,
    *,
    channel_axis: int | None = None,
    rechunk: bool = True,
) -> Any:
    """Local (adaptive) threshold image, tile by tile, equal to scikit-image's.

    Equal to ``skimage.filters.threshold_local(image.astype(float32), ...)`` on
    the whole array at every pixel (float64 stays float64; scikit-image itself
    turns integer images into float64 — tilevision's dtype policy keeps
    float32). Pixels above the result are foreground: ``image > t``. One
    exception to bit-for-bit equality: ``method="mean"`` is SciPy's running-sum
    box mean, whose float64 results agree to rounding only (see
    :func:`~tilevision.filters.uniform`).

    Parameters
    ----------
    image : xarray.DataArray, dask.array.Array or numpy.ndarray
        2-D or 3-D image (a DataArray's ``c`` dim is handled channel by channel).
    block_size : int or sequence of int
        Odd neighbourhood size in pixels, per axis or one for all.
    method : {"gaussian", "mean", "median"}, optional
        Gaussian-weighted mean (sigma ``(block_size - 1) / 6`` unless ``param``
        gives it; kernel truncated at 4 sigma), box mean
        (``scipy.ndimage.uniform_filter``) or median of the neighbourhood.
    offset : float, optional
        Subtracted from the local mean.
    mode : {"reflect", "nearest", "mirror", "constant", "wrap"}, optional
        Image extension beyond its edge (SciPy's meaning).
    param : float or sequence of float, optional
        Gaussian sigma for ``method="gaussian"``.
    cval : float, optional
        Value beyond the edge for ``mode="constant"``.
    channel_axis : int, optional
        Channel axis of NumPy/Dask input.
    rechunk : bool, optional
        Merge chunks smaller than the halo instead of raising.

    Returns
    -------
    Same type as ``image``
        The threshold image, float32 (float64 for float64 input).

    See Also
    --------
    skimage.filters.threshold_local, threshold

    Examples
    --------
    >>> import dask.array as da
    >>> from skimage import filters
    >>> x = da.random.default_rng(0).random((60, 70), chunks=(16, 23)).astype("float32")
    >>> t = threshold_local(x, 15, offset=0.01)
    >>> bool((t.compute() == filters.threshold_local(x.compute(), 15, offset=0.01)).all())
    True
    """
    s = step(
        "threshold_local",
        block_size=block_size,
        method=method,
        offset=offset,
        mode=mode,
        param=param,
        cval=cval,
    )
    return chain(image, [s], channel_axis=channel_axis, rechunk=rechunk)
