"""Loaders for the real data bundled with tilevision (CT, MR, MedMNIST).

The files live in ``tilevision/datasets/data`` (see its ``README.md`` for the
licences and citations). Set the environment variable ``TILEVISION_DATA`` to a
folder with the same layout, or pass ``root=``, to read them from elsewhere.
The images are small: the loaders return in-memory (NumPy-backed) DataArrays
with their physical spacing, read through the same readers as
:func:`tilevision.ingest`.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Literal

import numpy as np
import xarray as xr

from ..io._formats import read_source

__all__ = [
    "data_dir",
    "data_path",
    "load_adrenalmnist3d",
    "load_ct",
    "load_ct_organs",
    "load_mr",
    "load_mr_lesion",
]

#: environment variable naming a folder that replaces the bundled data folder
DATA_ENV = "TILEVISION_DATA"
MR_LESION_CASES = ("brain1", "brain2", "breast1")
ADRENAL_SIZES = (28, 64)
ADRENAL_SPLITS = ("train", "val")

Root = str | os.PathLike[str] | None


def data_dir(root: Root = None) -> Path:
    """The folder the real-data loaders read from.

    In order of precedence: ``root`` if given, the folder named by the
    environment variable ``TILEVISION_DATA`` if set, else the data bundled with
    the package (``tilevision/datasets/data``). The folder is not checked here;
    each loader names the file it misses.

    Parameters
    ----------
    root : str or path, optional
        An explicit data folder (same layout as the bundled one).

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> data_dir().name
    'data'
    >>> sorted(p.name for p in data_dir().iterdir() if p.is_dir())
    ['adrenalmnist3d', 'ct-organs', 'mr-lesions']
    """
    if root is not None:
        return Path(root)
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env)
    return Path(__file__).parent / "data"


def data_path(relative: str, root: Root = None) -> Path:
    """Path of one real-data file, e.g. ``"ct-organs/example_ct.nii.gz"``.

    Raises a ``FileNotFoundError`` that names the file and how to point tilevision
    at a data folder when it is missing.

    Examples
    --------
    >>> data_path("ct-organs/example_ct.nii.gz").name
    'example_ct.nii.gz'
    """
    return _data_file(relative, root)


def _data_file(relative: str, root: Root) -> Path:
    folder = data_dir(root)
    path = folder / relative
    if not path.is_file():
        if root is not None:
            where = f"the folder passed as root={os.fspath(root)!r}"
        elif os.environ.get(DATA_ENV):
            where = f"the folder named by the environment variable {DATA_ENV}"
        else:
            where = "the data bundled with tilevision"
        raise FileNotFoundError(
            f"missing data file {relative!r}: {path} does not exist in {where}. Point "
            f"{DATA_ENV} (or root=) at a folder with the layout of the bundled "
            "'tilevision/datasets/data', or unset it to use the bundled data; reinstall "
            "tilevision if the bundled file itself is missing."
        )
    return path


def _load(relative: str, root: Root) -> xr.DataArray:
    return read_source(_data_file(relative, root)).compute()


def _check_choice(name: str, value: object, valid: tuple[object, ...]) -> None:
    if value not in valid:
        raise ValueError(f"unknown {name} {value!r}; valid values are {list(valid)}.")


def load_ct(*, small: bool = False, root: Root = None) -> xr.DataArray:
    """A real abdominal/thoracic CT in Hounsfield units, 3 mm isotropic.

    From the test files of TotalSegmentator (Apache-2.0). Cite: Wasserthal et al.,
    *TotalSegmentator: robust segmentation of 104 anatomic structures in CT
    images*, Radiology: Artificial Intelligence 2023, doi:10.1148/ryai.230024.

    Parameters
    ----------
    small : bool, optional
        Load the 30-slice crop ``example_ct_sm.nii.gz`` (int16) instead of the
        whole ``example_ct.nii.gz`` (112 slices, int32 on disk).
    root : str or path, optional
        Data folder (default :func:`data_dir`).

    Returns
    -------
    xarray.DataArray
        Dims ``("z", "y", "x")`` in NIfTI voxel order (not reoriented),
        spacing in millimetres, NumPy-backed.

    Examples
    --------
    >>> ct = load_ct(small=True)
    >>> ct.dims, ct.shape, ct.dtype, ct.attrs["spacing"]
    (('z', 'y', 'x'), (30, 101, 122), dtype('int16'), {'z': 3.0, 'y': 3.0, 'x': 3.0})
    """
    name = "example_ct_sm.nii.gz" if small else "example_ct.nii.gz"
    return _load(f"ct-organs/{name}", root)


def _label_names(root: Root) -> dict[int, str]:
    path = _data_file("ct-organs/label_names_total_v2.csv", root)
    with open(path, newline="", encoding="utf-8") as fh:
        return {int(row["label_id"]): row["name"] for row in csv.DictReader(fh)}


def load_ct_organs(*, root: Root = None) -> tuple[xr.DataArray, xr.DataArray, dict[int, str]]:
    """The 30-slice CT crop with its voxel-wise organ map and the organ names.

    The organ map was produced by the TotalSegmentator model (task ``total``,
    117 classes, 41 present), not drawn by hand. Apache-2.0. Cite: Wasserthal
    et al., *TotalSegmentator: robust segmentation of 104 anatomic structures in
    CT images*, Radiology: Artificial Intelligence 2023, doi:10.1148/ryai.230024.

    Parameters
    ----------
    root : str or path, optional
        Data folder (default :func:`data_dir`).

    Returns
    -------
    image : xarray.DataArray
        The CT crop (int16, Hounsfield units), dims ``("z", "y", "x")``.
    labels : xarray.DataArray
        Organ label per voxel (uint8, 0 = background), same grid.
    names : dict of int to str
        Label id → organ name (``0: "background"``, ``1: "spleen"``, ...).

    Examples
    --------
    >>> image, labels, names = load_ct_organs()
    >>> image.shape == labels.shape, labels.dtype, names[1], len(names)
    (True, dtype('uint8'), 'spleen', 118)
    """
    image = load_ct(small=True, root=root)
    labels = _load("ct-organs/example_seg.nii.gz", root)
    return image, labels, _label_names(root)


def load_mr(*, root: Root = None) -> tuple[xr.DataArray, xr.DataArray]:
    """A real abdominal MR crop (3 mm) with its voxel-wise organ map.

    From the test files of TotalSegmentator (Apache-2.0); the organ map was
    produced by its MR model (task ``total_mr``), not drawn by hand. Cite:
    Wasserthal et al., *TotalSegmentator: robust segmentation of 104 anatomic
    structures in CT images*, Radiology: Artificial Intelligence 2023,
    doi:10.1148/ryai.230024.

    Parameters
    ----------
    root : str or path, optional
        Data folder (default :func:`data_dir`).

    Returns
    -------
    image : xarray.DataArray
        The MR crop (int16), dims ``("z", "y", "x")``.
    labels : xarray.DataArray
        Organ label per voxel (uint8, 0 = background), same grid.

    Examples
    --------
    >>> image, labels = load_mr()
    >>> image.shape, labels.dtype
    ((20, 91, 117), dtype('uint8'))
    """
    image = _load("ct-organs/example_mr_sm.nii.gz", root)
    labels = _load("ct-organs/example_seg_mr.nii.gz", root)
    return image, labels


def load_mr_lesion(
    case: Literal["brain1", "brain2", "breast1"] = "brain1", *, root: Root = None
) -> tuple[xr.DataArray, xr.DataArray]:
    """A small MR volume and its binary lesion mask (NRRD, from PyRadiomics).

    BSD-3-Clause, from the PyRadiomics test data. Cite: van Griethuysen et al.,
    *Computational Radiomics System to Decode the Radiographic Phenotype*,
    Cancer Research 77(21) e104–e107 (2017), doi:10.1158/0008-5472.CAN-17-0339.

    Parameters
    ----------
    case : {"brain1", "brain2", "breast1"}, optional
        Which volume: brain1 (25×256×256, 6.5×0.78×0.78 mm), brain2
        (23×256×256), breast1 (21×120×45).
    root : str or path, optional
        Data folder (default :func:`data_dir`).

    Returns
    -------
    image : xarray.DataArray
        The MR volume (int16), dims ``("z", "y", "x")``.
    mask : xarray.DataArray
        The lesion mask as uint8 {0, 1}, same grid.

    Examples
    --------
    >>> image, mask = load_mr_lesion("breast1")
    >>> image.shape, mask.dtype, int(mask.sum())
    ((21, 120, 45), dtype('uint8'), 143)
    """
    _check_choice("case", case, MR_LESION_CASES)
    image = _load(f"mr-lesions/{case}_image.nrrd", root)
    mask = _load(f"mr-lesions/{case}_label.nrrd", root)
    return image, (mask != 0).astype(np.uint8)


def load_adrenalmnist3d(
    size: Literal[28, 64] = 28,
    split: Literal["train", "val"] = "train",
    *,
    root: Root = None,
) -> tuple[np.ndarray, np.ndarray]:
    """AdrenalMNIST3D: 3-D adrenal-gland shapes from CT, labelled normal/hyperplasia.

    From MedMNIST v2 (CC BY 4.0); only the train and val splits are bundled (the
    published test split is held back on purpose: report validation figures).
    Labels: 0 normal, 1 hyperplasia (train 929/259, val 76/22). Cite: Yang et
    al., *MedMNIST v2 — A large-scale lightweight benchmark for 2D and 3D
    biomedical image classification*, Scientific Data 10:41 (2023),
    doi:10.1038/s41597-022-01721-8.

    Parameters
    ----------
    size : {28, 64}, optional
        Edge length of the cubic volumes.
    split : {"train", "val"}, optional
        Which split.
    root : str or path, optional
        Data folder (default :func:`data_dir`).

    Returns
    -------
    images : numpy.ndarray
        uint8 volumes {0, 255} of shape ``(N, D, H, W)``.
    labels : numpy.ndarray
        int64 class per volume, shape ``(N,)``.

    Examples
    --------
    >>> images, labels = load_adrenalmnist3d(28, "val")
    >>> images.shape, images.dtype, np.bincount(labels).tolist()
    ((98, 28, 28, 28), dtype('uint8'), [76, 22])
    """
    _check_choice("size", size, ADRENAL_SIZES)
    _check_choice("split", split, ADRENAL_SPLITS)
    path = _data_file(f"adrenalmnist3d/adrenalmnist3d_{size}.npz", root)
    with np.load(path, allow_pickle=False) as npz:
        images = np.asarray(npz[f"{split}_images"])
        labels = np.asarray(npz[f"{split}_labels"]).reshape(-1).astype(np.int64)
    return images, labels
