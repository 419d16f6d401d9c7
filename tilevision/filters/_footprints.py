"""Footprints for morphology: arrays, named shapes with a size, or the default cross."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["make_footprint"]


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
