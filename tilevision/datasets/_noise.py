"""Helpers for the synthetic datasets: counter-based random numbers and argument checks.

Counter-based random numbers are a pure function of (seed, stream, integer coordinates).

The synthetic datasets must give the same value for a pixel whatever the chunking,
without any block knowing about its neighbours. A stateful generator cannot do that;
a hash of the pixel's global coordinates can. We chain the SplitMix64 finaliser
(Steele, Lea & Flood 2014) over the coordinates, one axis at a time, so that the
mixing of the outer axes is done on small arrays and only the last axis is mixed on
the full block. Values are identical on every platform: only unsigned 64-bit
integer arithmetic (which wraps) is involved until the final conversion to floats.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "check_chunks",
    "check_seed",
    "check_shape",
    "hash_coords",
    "hash_normal",
    "hash_uniform",
    "seed_key",
]

_MASK = (1 << 64) - 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31 = np.uint64(30), np.uint64(27), np.uint64(31)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (never a NumPy scalar: no overflow warning)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


def seed_key(seed: int, stream: int = 0) -> int:
    """Return a 64-bit key for ``(seed, stream)``, computed with Python integers.

    Examples
    --------
    >>> seed_key(0, 1) != seed_key(0, 2) != seed_key(1, 1)
    True
    """
    out = np.array([(int(seed) * 0x9E3779B97F4A7C15) & _MASK], dtype=np.uint64)
    out = _mix(_mix(out) + np.uint64((int(stream) * 0xD1B54A32D192ED03 + 1) & _MASK))
    return int(out[0])


def hash_coords(key: int, coords: Sequence[np.ndarray]) -> np.ndarray:
    """Hash broadcastable integer coordinate arrays into uint64 values.

    Parameters
    ----------
    key : int
        A key from :func:`seed_key`.
    coords : sequence of array-like of int
        Non-negative (or any) integer coordinates, one array per axis, broadcastable
        against each other (typically open grids as made by ``np.ix_``).

    Returns
    -------
    numpy.ndarray of uint64
        One hash per point of the broadcast shape.

    Examples
    --------
    >>> h = hash_coords(seed_key(3), np.ix_(np.arange(2), np.arange(3)))
    >>> h.shape, h.dtype
    ((2, 3), dtype('uint64'))
    >>> bool(h[1, 2] == hash_coords(seed_key(3), [np.array([1]), np.array([2])])[0])
    True
    """
    h = np.full((1,) * max(len(coords), 1), key, dtype=np.uint64)
    for c in coords:
        c = np.asarray(c).astype(np.int64).view(np.uint64)
        h = _mix(h + (c + np.uint64(1)) * _GOLDEN)
    return h


def hash_uniform(key: int, coords: Sequence[np.ndarray], dtype: type = np.float64) -> np.ndarray:
    """Uniform numbers in the open interval (0, 1), one per coordinate point.

    Examples
    --------
    >>> u = hash_uniform(seed_key(0), np.ix_(np.arange(100), np.arange(100)))
    >>> bool((u > 0).all() and (u < 1).all()), round(float(u.mean()), 1)
    (True, 0.5)
    """
    h = hash_coords(key, coords)
    return (((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53).astype(dtype, copy=False)


def hash_normal(key: int, coords: Sequence[np.ndarray], dtype: type = np.float32) -> np.ndarray:
    """Standard normal numbers, one per coordinate point (Box–Muller on one 64-bit hash).

    Two 24-bit uniforms are taken from the upper and middle bits of the hash; the
    arithmetic is done in float32 (the tails are cut at about 5.9 standard deviations).

    Examples
    --------
    >>> g = hash_normal(seed_key(0), np.ix_(np.arange(200), np.arange(200)))
    >>> g.dtype, round(float(g.mean()), 1), round(float(g.std()), 1)
    (dtype('float32'), 0.0, 1.0)
    """
    h = hash_coords(key, coords)
    scale = np.float32(2.0**-24)
    u1 = ((h >> np.uint64(40)).astype(np.float32) + np.float32(0.5)) * scale
    u2 = ((h >> np.uint64(8)) & np.uint64(0xFFFFFF)).astype(np.float32) * scale
    out = np.sqrt(np.float32(-2.0) * np.log(u1)) * np.cos(np.float32(2.0 * np.pi) * u2)
    return out.astype(dtype, copy=False)


# --- argument checks shared by the synthetic generators --------------------------------


def check_shape(shape: object, ndim: int, example: str) -> tuple[int, ...]:
    """Return ``shape`` as a tuple of ``ndim`` positive ints, or raise a clear error.

    Examples
    --------
    >>> check_shape([4, 5], 2, "(512, 512)")
    (4, 5)
    """
    try:
        values = tuple(shape)  # type: ignore[call-overload]
    except TypeError:
        raise TypeError(
            f"shape must be a tuple of {ndim} ints, got {shape!r}; pass e.g. shape={example}."
        ) from None
    if len(values) != ndim:
        raise ValueError(
            f"shape must have {ndim} entries, got {len(values)} ({shape!r}); "
            f"pass e.g. shape={example}."
        )
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(
                f"shape entries must be ints, got {shape!r}; pass e.g. shape={example}."
            )
        if v < 1:
            raise ValueError(
                f"shape entries must be positive, got {shape!r}; pass e.g. shape={example}."
            )
        out.append(int(v))
    return tuple(out)


def check_seed(seed: object) -> int:
    """Return ``seed`` as a non-negative int, or raise a clear error.

    Examples
    --------
    >>> check_seed(7)
    7
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int (e.g. seed=0), got {seed!r}.")
    return int(seed)


def check_chunks(
    chunks: object, shape: tuple[int, ...], dtype: type
) -> tuple[tuple[int, ...], ...]:
    """Normalise ``chunks`` like Dask does, refusing zero or negative chunk sizes.

    Accepts an int (the same size along every axis), ``-1`` or ``None`` for whole axes,
    ``"auto"``, or one entry per axis (an int or explicit block sizes).

    Examples
    --------
    >>> check_chunks(3, (4, 5), np.uint8)
    ((3, 1), (3, 2))
    """
    import dask.array as da

    def bad(why: str) -> ValueError:
        return ValueError(
            f"invalid chunks={chunks!r} for shape {shape}: {why}. Pass a positive int "
            f"(e.g. chunks=128), -1 for whole axes, or one entry per axis."
        )

    flat: list[object] = []
    if isinstance(chunks, (tuple, list)):
        if len(chunks) != len(shape):
            raise bad(f"{len(chunks)} entries for {len(shape)} axes")
        for c in chunks:
            flat.extend(c if isinstance(c, (tuple, list)) else [c])
    else:
        flat.append(chunks)
    for c in flat:
        if c is None or c == -1 or c == "auto":
            continue
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1:
            raise bad(f"chunk sizes must be positive ints, got {c!r}")
    try:
        normal = da.core.normalize_chunks(chunks, shape, dtype=np.dtype(dtype))
    except (ValueError, TypeError, ZeroDivisionError) as exc:
        raise bad(str(exc)) from None
    return tuple(tuple(int(b) for b in axis) for axis in normal)
