"""What ``fit``/``predict``/``evaluate`` accept as images and labels, normalised."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

__all__ = [
    "as_image_list",
    "as_labels",
    "check_groups",
    "describe_source",
    "image_ndim",
    "load_image",
    "split_label_images",
]

PathLike = (str, os.PathLike)


def as_image_list(images: Any, *, what: str = "images") -> list[Any]:
    """The images as a list, one entry per image (nothing is read).

    A sequence (list, tuple, pandas Series) gives its items: paths, DataArrays, NumPy
    or Dask arrays, tile-feature Datasets, descriptors. A NumPy/Dask array is a stack
    with the images along its first axis (scikit-learn's convention: ``(N, H, W)`` is
    N 2-D images, ``(N, D, H, W)`` N 3-D volumes). One path or one DataArray is refused:
    pass a list.

    Examples
    --------
    >>> import numpy as np
    >>> len(as_image_list(np.zeros((5, 8, 8, 8))))
    5
    """
    if isinstance(images, (*PathLike, xr.DataArray, xr.Dataset)):
        raise TypeError(
            f"{what} must be a collection of images (a list of paths or arrays, or an array "
            f"stacked along its first axis), got one {type(images).__name__}; wrap it in a "
            "list: [image]."
        )
    if isinstance(images, (np.ndarray, da.Array)):
        if images.ndim == 2:
            raise TypeError(
                f"{what} must be a collection of images, got one array of shape "
                f"{images.shape}; for a single image wrap it in a list: [image]."
            )
        if images.ndim not in (3, 4):
            raise ValueError(
                f"a stacked array of {what} must be (N, H, W) or (N, D, H, W), got shape "
                f"{images.shape}; pass a list for images of different shapes."
            )
        return [images[i] for i in range(images.shape[0])]
    try:
        items = list(images)
    except TypeError:
        raise TypeError(
            f"{what} must be a list of paths or arrays, got {type(images).__name__}."
        ) from None
    if not items:
        raise ValueError(f"no {what} given: pass at least one image.")
    return items


def load_image(item: Any) -> Any:
    """One image entry as an image: a path is opened lazily, anything else is returned.

    OME-Zarr stores open with :func:`tilevision.open`, other files with
    :func:`tilevision.io.read_source` (NIfTI, NRRD, DICOM, TIFF, …).

    Examples
    --------
    >>> from tilevision import datasets
    >>> load_image(datasets.data_path("mr-lesions/breast1_image.nrrd")).dims
    ('z', 'y', 'x')
    """
    if not isinstance(item, PathLike):
        return item
    from ..io import detect_format, open, read_source

    path = os.fspath(item)
    if detect_format(path) == "zarr":
        return open(path)
    return read_source(path)


def image_ndim(item: Any) -> int:
    """Spatial dimensionality of an image entry (opens paths lazily; reads no pixels)."""
    image = load_image(item)
    if isinstance(image, xr.Dataset) or (
        isinstance(image, xr.DataArray) and "feature" in image.dims
    ):
        return len(image.attrs.get("image_dims", ()))  # tile features or a descriptor
    if isinstance(image, xr.DataArray):
        return sum(1 for d in image.dims if d != "c")
    return int(np.ndim(image))


def split_label_images(labels: Any, n_images: int) -> tuple[np.ndarray | None, list[Any] | None]:
    """Image labels (1-D array) or label images (a list), checked against ``n_images``.

    Label images (masks, organ maps) are paths (``Path`` objects, or strings naming
    existing files), DataArrays or arrays with at least two dimensions, one per image;
    anything else is one label per image.

    Examples
    --------
    >>> import numpy as np
    >>> split_label_images(["a", "b"], 2)[0].tolist()
    ['a', 'b']
    >>> split_label_images([np.zeros((4, 4)), np.ones((4, 4))], 2)[1][1].shape
    (4, 4)
    """
    if isinstance(labels, (np.ndarray, da.Array)) and labels.ndim >= 3:
        items = [labels[i] for i in range(labels.shape[0])]
    elif isinstance(labels, (np.ndarray, da.Array)):
        items = None
    else:
        items = list(labels)
    if items is not None and items and all(_is_label_image(x) for x in items):
        _check_length(len(items), n_images, "label images")
        return None, items
    return as_labels(labels, n_images), None


def _is_label_image(item: Any) -> bool:
    if isinstance(item, str):
        return os.path.exists(item)  # a class name, unless it names an existing file
    if isinstance(item, (os.PathLike, xr.DataArray)):
        return True
    return isinstance(item, (np.ndarray, da.Array)) and item.ndim >= 2


def as_labels(labels: Any, n: int, *, what: str = "labels") -> np.ndarray:
    """One label per image as a 1-D NumPy array, checked: length ``n``, no missing values."""
    if isinstance(labels, da.Array):
        raise TypeError(f"{what} must be in memory (a list or NumPy array), not a Dask array.")
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]  # MedMNIST-style (N, 1)
    if array.ndim != 1:
        raise ValueError(
            f"{what} must be one value per image (1-D), got shape {array.shape}; for "
            "tile labels pass one label image (mask) per image instead."
        )
    _check_length(len(array), n, what)
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{what} contain NaN; drop the unlabelled images first.")
    if array.dtype.kind == "O" and any(v is None for v in array):
        raise ValueError(f"{what} contain None; drop the unlabelled images first.")
    return array


def _check_length(n_labels: int, n_images: int, what: str) -> None:
    if n_labels != n_images:
        raise ValueError(
            f"got {n_images} images but {n_labels} {what}: give exactly one per image, in the "
            "same order."
        )


def check_groups(groups: Any, n: int) -> np.ndarray | None:
    """``groups`` (patient/volume ids, one per image) as a 1-D array, or None."""
    if groups is None:
        return None
    return as_labels(groups, n, what="groups")


def describe_source(item: Any) -> str:
    """A short name of an image entry for messages and tables."""
    if isinstance(item, PathLike):
        return Path(item).name
    if isinstance(item, xr.DataArray) and "source" in item.attrs:
        return str(item.attrs["source"])
    shape = getattr(item, "shape", None)
    return f"{type(item).__name__}{tuple(shape) if shape is not None else ''}"
