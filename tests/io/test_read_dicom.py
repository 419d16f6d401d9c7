"""DICOM series reader: real series written with pydicom, ingested and read back."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

import tilevision
from tilevision.io import _read_dicom
from tilevision.io._atomic import PARTIAL_MARKER
from tilevision.io._formats import read_source
from tilevision.io._read_dicom import DicomSeriesSource, read_dicom
from tilevision.testing import raise_if_dask_computes

from ..conftest import no_leftovers
from .dicom_helpers import (
    PHI_VALUES,
    lps_orientation_from_ras_affine,
    rewrite_without_file_meta,
    write_ct_series,
    write_dicom_image,
)


@pytest.fixture(scope="module")
def ct(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """The bundled CT in Hounsfield units as (z, y, x) int16, and its NIfTI affine."""
    image = nib.load(data_dir / "ct-organs" / "example_ct_sm.nii.gz")
    hu = np.asarray(image.dataobj).transpose(2, 1, 0)
    assert hu.dtype == np.int16
    assert hu.shape == (30, 101, 122)
    return np.ascontiguousarray(hu), image.affine


@pytest.fixture
def ct_series(tmp_path: Path, ct) -> tuple[Path, np.ndarray, dict]:
    """The CT as a real DICOM series: stored int16 = HU + 1024, intercept -1024, slope 1.

    (The volume reaches -1100 HU, below what unsigned storage with intercept -1024
    can hold, so it is stored signed, as GE scanners do.)
    """
    hu, affine = ct
    orientation, origin = lps_orientation_from_ras_affine(affine)
    folder = tmp_path / "series"
    paths = write_ct_series(
        folder,
        (hu.astype(np.int32) + 1024).astype(np.int16),
        spacing=(3.0, 3.0, 3.0),
        origin=origin,
        orientation=orientation,
        slope=1,
        intercept=-1024,
        reverse_instance_numbers=True,
    )
    (folder / "README").write_text("Exported by the tilevision test suite.\n")
    return folder, hu, {"orientation": orientation, "origin": origin, "paths": paths}


def assert_nothing_written(dest: Path) -> None:
    assert not dest.exists()
    assert [p for p in dest.parent.iterdir() if PARTIAL_MARKER in p.name] == []
    assert no_leftovers(dest.parent) == []


# -- round trips ------------------------------------------------------------------------


def test_ingest_ct_series_gives_exact_hounsfield_units(tmp_path, ct_series):
    folder, hu, info = ct_series
    dest = tilevision.ingest(folder, tmp_path / "ct.zarr")
    image = tilevision.open(dest)
    assert image.dims == ("z", "y", "x")
    assert image.dtype == np.int32  # signed 16-bit stored, minus 1024: needs int32
    np.testing.assert_array_equal(image.values, hu)
    assert image.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}
    assert image.attrs["units"] == dict.fromkeys("zyx", "millimeter")
    # origin: first position projected on the normal, the column and the row cosines
    (row, col), origin = np.asarray(info["orientation"]), np.asarray(info["origin"])
    normal = np.cross(row, col)
    expected = {"z": normal @ origin, "y": col @ origin, "x": row @ origin}
    for dim, value in expected.items():
        assert image.attrs["origin"][dim] == pytest.approx(value, abs=1e-4)
    assert image.attrs["source_format"] == "dicom"
    assert image.attrs["original_dtype"] == "int16"


def test_metadata_records_series_facts_and_no_patient_data(ct_series):
    folder, _, info = ct_series
    source = read_dicom(folder)
    meta = source.metadata
    first = pydicom.dcmread(info["paths"][0])
    assert meta["series_instance_uid"] == first.SeriesInstanceUID
    assert meta["series_description"] == "tilevision test CT"
    assert meta["modality"] == "CT"
    assert meta["rescale_slope"] == 1.0
    assert meta["rescale_intercept"] == -1024.0
    assert meta["number_of_slices"] == 30
    assert meta["skipped_files"] == 1  # the README
    assert meta["image_orientation_patient"] == pytest.approx(
        [*info["orientation"][0], *info["orientation"][1]]
    )
    # the affine maps (z, y, x) indices to patient LPS positions of the real files
    affine = np.asarray(meta["affine_zyx_to_lps"])
    for k in (0, 17, 29):
        ds = pydicom.dcmread(info["paths"][k])
        np.testing.assert_allclose(
            affine @ [k, 0, 0, 1], [*map(float, ds.ImagePositionPatient), 1], atol=1e-4
        )
    text = json.dumps(meta)
    for value in PHI_VALUES:
        assert value not in text
    assert first.StudyInstanceUID not in text


def test_slice_and_pixel_spacing_are_not_swapped(tmp_path, ct):
    hu = np.maximum(ct[0][:12, :40, :57], -1024)  # unsigned storage holds ≥ -1024 HU
    stored = (hu + 1024).astype(np.uint16)
    folder = tmp_path / "aniso"
    write_ct_series(
        folder, stored, spacing=(2.5, 0.7, 0.8), origin=(10.0, -20.0, 30.0), bits_stored=12
    )
    image = tilevision.open(tilevision.ingest(folder, tmp_path / "aniso.zarr"))
    assert image.sizes == {"z": 12, "y": 40, "x": 57}
    assert image.dtype == np.int16  # 12 stored bits minus 1024 fit int16
    np.testing.assert_array_equal(image.values, hu)
    assert image.attrs["spacing"] == pytest.approx({"z": 2.5, "y": 0.7, "x": 0.8})
    assert image.attrs["origin"] == pytest.approx({"z": 30.0, "y": -20.0, "x": 10.0})
    np.testing.assert_allclose(image.y.values, -20.0 + 0.7 * np.arange(40))
    np.testing.assert_allclose(image.x.values, 10.0 + 0.8 * np.arange(57))
    np.testing.assert_allclose(image.z.values, 30.0 + 2.5 * np.arange(12))


def test_slices_are_sorted_along_the_normal_not_by_name_or_instance_number(tmp_path, ct):
    # sagittal slices: the normal is -x (patient right), every slice has the same z
    hu = ct[0][:, :20, :25]
    orientation = ((0.0, 1.0, 0.0), (0.0, 0.0, -1.0))
    folder = tmp_path / "sagittal"
    paths = write_ct_series(
        folder,
        hu,
        spacing=(1.5, 1.0, 1.0),
        orientation=orientation,
        intercept=0,
        reverse_instance_numbers=True,
    )
    assert len({pydicom.dcmread(p).ImagePositionPatient[2] for p in paths}) == 1
    source = read_dicom(folder)
    np.testing.assert_array_equal(source[:, :, :], hu)
    assert source.spacing == pytest.approx({"z": 1.5, "y": 1.0, "x": 1.0})


@pytest.mark.parametrize(
    ("slope", "intercept", "dtype"),
    [(2, -1024, np.int16), (0.5, -1024.25, np.float32), (1.25, 0, np.float32)],
)
def test_rescale_slope_and_intercept(tmp_path, ct, slope, intercept, dtype):
    raw = (np.maximum(ct[0][:8], -1024) + 1024).astype(np.uint16)
    folder = tmp_path / "rescaled"
    write_ct_series(folder, raw, slope=slope, intercept=intercept, bits_stored=12)
    image = tilevision.open(tilevision.ingest(folder, tmp_path / "r.zarr"))
    assert image.dtype == dtype
    expected = (raw.astype(np.float64) * slope + intercept).astype(dtype)
    np.testing.assert_array_equal(image.values, expected)


def test_rescale_that_differs_between_slices(tmp_path, ct):
    raw = (np.maximum(ct[0][:6, :30, :30], -1024) + 1024).astype(np.uint16)
    slopes, intercepts = [1, 2, 1, 3, 1, 1], [-1024, -1024, 0, -2000, -1024, -1024]
    folder = tmp_path / "per-slice"
    write_ct_series(folder, raw, slope=slopes, intercept=intercepts, bits_stored=12)
    source = read_dicom(folder)
    assert source.dtype == np.int16
    expected = raw * np.array(slopes)[:, None, None] + np.array(intercepts)[:, None, None]
    np.testing.assert_array_equal(source[:, :, :], expected)
    assert source.metadata["rescale_slope"] == slopes


def test_single_image_is_two_dimensional(tmp_path, ct):
    hu = ct[0][7]
    folder = tmp_path / "one"
    write_ct_series(folder, hu[None], spacing=(3.0, 0.5, 0.6), origin=(5.0, 6.0, 7.0), intercept=0)
    for source in (read_dicom(folder), read_dicom(next(folder.iterdir()))):
        assert source.dims == ("y", "x")
        assert source.spacing == pytest.approx({"y": 0.5, "x": 0.6})
        assert source.origin == pytest.approx({"y": 6.0, "x": 5.0})
        np.testing.assert_array_equal(source[:, :], hu)
    image = tilevision.open(tilevision.ingest(folder, tmp_path / "one.zarr"))
    assert image.dims == ("y", "x")
    np.testing.assert_array_equal(image.values, hu)


def test_dicomdir_file_set_in_subfolders(tmp_path, ct):
    hu = ct[0][:5, :16, :24]
    staging = tmp_path / "staging"
    paths = write_ct_series(staging, hu, intercept=0)
    file_set = FileSet()
    for p in paths:
        file_set.add(pydicom.dcmread(p))
    export = tmp_path / "export"
    file_set.write(export)
    # pydicom stages the files in a TemporaryDirectory that it never cleans up itself
    # (a ResourceWarning at garbage collection); remove it now
    staging_dir = getattr(file_set, "_stage", {}).get("t")
    if staging_dir is not None:
        staging_dir.cleanup()
    assert (export / "DICOMDIR").is_file()
    assert not any(p.is_file() and p.name != "DICOMDIR" for p in export.iterdir())
    image = tilevision.open(tilevision.ingest(export, tmp_path / "fs.zarr"))
    np.testing.assert_array_equal(image.values, hu)


def test_files_without_preamble_or_file_meta(tmp_path, ct):
    hu = ct[0][:4, :16, :24]
    folder = tmp_path / "acr-nema"
    paths = write_ct_series(folder, (hu + 1024).astype(np.int16), intercept=-1024)
    for p in paths[1:]:
        rewrite_without_file_meta(p)
    with open(paths[1], "rb") as fh:
        assert fh.read(2) == b"\x08\x00"
    (folder / "notes.txt").write_text("\x08 not dicom")
    source = read_dicom(folder)
    assert source.metadata["skipped_files"] == 1
    np.testing.assert_array_equal(source[:, :, :], hu)


def test_choosing_a_series_among_several(tmp_path, ct):
    hu = ct[0][:4, :20, :30]
    folder = tmp_path / "mixed"
    uid_a, uid_b = generate_uid(), generate_uid()
    write_ct_series(folder, hu, series_uid=uid_a, description="soft tissue", intercept=0)
    write_ct_series(folder, hu[:3] + 7, series_uid=uid_b, description="bone", intercept=0, seed=1)
    dest = tmp_path / "mixed.zarr"
    with pytest.raises(ValueError, match="holds 2 DICOM series") as excinfo:
        tilevision.ingest(folder, dest)
    message = str(excinfo.value)
    assert f'{uid_a}: "soft tissue" (CT, 4 slice(s))' in message
    assert f'{uid_b}: "bone" (CT, 3 slice(s))' in message
    assert 'series="<SeriesInstanceUID>"' in message
    assert_nothing_written(dest)

    image = tilevision.open(tilevision.ingest(folder, dest, series=uid_b))
    np.testing.assert_array_equal(image.values, hu[:3] + 7)
    with pytest.raises(ValueError, match=r"no DICOM series with SeriesInstanceUID '1\.2\.3'"):
        read_dicom(folder, series="1.2.3")


def test_subfolder_of_each_series_is_named(tmp_path, ct):
    hu = ct[0][:3, :10, :10]
    write_ct_series(tmp_path / "study" / "s1", hu, intercept=0)
    write_ct_series(tmp_path / "study" / "s2", hu, intercept=0, seed=2)
    with pytest.raises(ValueError, match="in subfolder") as excinfo:
        tilevision.ingest(tmp_path / "study", tmp_path / "s.zarr", format="dicom")
    assert str(tmp_path / "study" / "s2") in str(excinfo.value)
    image = tilevision.open(tilevision.ingest(tmp_path / "study" / "s2", tmp_path / "s.zarr"))
    np.testing.assert_array_equal(image.values, hu)


# -- broken series ----------------------------------------------------------------------


def test_missing_slice_names_the_missing_position(tmp_path, ct_series):
    folder, _, info = ct_series
    info["paths"][12].unlink()
    z_missing = 94.3018 + 12 * 3.0  # the original's slice 12, along the normal (+z)
    dest = tmp_path / "ct.zarr"
    with pytest.raises(ValueError, match=r"1 slice\(s\) missing") as excinfo:
        tilevision.ingest(folder, dest)
    assert f"{z_missing:g}" in str(excinfo.value)
    assert "Copy the missing slice files" in str(excinfo.value)
    assert_nothing_written(dest)


def test_uneven_spacing_lists_the_gaps(tmp_path, ct):
    hu = ct[0][:8, :20, :20]
    positions = [(0.0, 0.0, 3.0 * k + (0.5 if k == 4 else 0.0)) for k in range(8)]
    folder = tmp_path / "uneven"
    write_ct_series(folder, hu, intercept=0, positions=positions)
    dest = tmp_path / "uneven.zarr"
    with pytest.raises(ValueError, match="inconsistent slice spacing") as excinfo:
        tilevision.ingest(folder, dest)
    message = str(excinfo.value)
    assert "2.5 mm ×1" in message
    assert "3 mm ×5" in message
    assert "3.5 mm ×1" in message
    assert "spacing_tolerance=" in message
    assert_nothing_written(dest)
    # a large enough tolerance accepts it: the spacing is the mean gap
    source = read_dicom(folder, spacing_tolerance=0.5)
    assert source.spacing["z"] == pytest.approx(3.0)
    np.testing.assert_array_equal(source[:, :, :], hu)


def test_duplicate_position(tmp_path, ct):
    hu = ct[0][:5, :10, :10]
    folder = tmp_path / "dup"
    paths = write_ct_series(folder, hu, intercept=0)
    copy = pydicom.dcmread(paths[2])
    copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    pydicom.dcmwrite(folder / "copy.dcm", copy, enforce_file_format=True)
    dest = tmp_path / "dup.zarr"
    with pytest.raises(ValueError, match="lie at the same position") as excinfo:
        tilevision.ingest(folder, dest)
    assert "copy.dcm" in str(excinfo.value)
    assert "remove the duplicates" in str(excinfo.value)
    assert_nothing_written(dest)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"orientation": ((1.0, 0.0, 0.0), (0.0, 0.0, -1.0))}, "different orientations"),
        ({"pixel_spacing": (0.9, 1.0)}, "different PixelSpacing"),
        ({"pixels": np.zeros((12, 10), np.int16)}, r"differ in size \(Rows×Columns"),
    ],
)
def test_slices_that_do_not_match(tmp_path, ct, change, match):
    hu = ct[0][:4, :10, :10]
    folder = tmp_path / "odd"
    paths = write_ct_series(folder, hu, intercept=0)
    ds = pydicom.dcmread(paths[0])
    options = {
        "series_uid": ds.SeriesInstanceUID,
        "study_uid": ds.StudyInstanceUID,
        "position": (0.0, 0.0, 12.0),
        "intercept": 0,
    }
    pixels = change.pop("pixels", hu[0])
    write_dicom_image(folder / "odd.dcm", pixels, **options, **change)
    dest = tmp_path / "odd.zarr"
    with pytest.raises(ValueError, match=match):
        tilevision.ingest(folder, dest)
    assert_nothing_written(dest)


def test_multi_frame_is_refused(tmp_path):
    folder = tmp_path / "mf"
    folder.mkdir()
    frames = np.arange(2 * 6 * 7, dtype=np.int16).reshape(2, 6, 7)
    write_dicom_image(
        folder / "mf.dcm",
        frames,
        series_uid=generate_uid(),
        study_uid=generate_uid(),
        number_of_frames=2,
    )
    dest = tmp_path / "mf.zarr"
    with pytest.raises(ValueError, match=r"multi-frame DICOM image .*dcm2niix"):
        tilevision.ingest(folder, dest)
    assert_nothing_written(dest)


def test_colour_is_refused(tmp_path):
    folder = tmp_path / "rgb"
    folder.mkdir()
    rgb = np.arange(6 * 7 * 3, dtype=np.uint8).reshape(6, 7, 3)
    write_dicom_image(
        folder / "rgb.dcm",
        rgb,
        series_uid=generate_uid(),
        study_uid=generate_uid(),
        colour=True,
        slope=None,
        intercept=None,
        position=None,
        orientation=None,
    )
    with pytest.raises(ValueError, match=r"colour DICOM image .*RGB.*PNG or TIFF"):
        tilevision.ingest(folder, tmp_path / "rgb.zarr")
    assert_nothing_written(tmp_path / "rgb.zarr")


def test_empty_folder(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    dest = tmp_path / "empty.zarr"
    with pytest.raises(ValueError, match="empty folder"):
        tilevision.ingest(folder, dest)
    assert_nothing_written(dest)
    with pytest.raises(ValueError, match=r"no DICOM image files .*\(0 file\(s\) checked"):
        tilevision.ingest(folder, dest, format="dicom")
    assert_nothing_written(dest)


def test_folder_without_dicom_files(tmp_path):
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "README.txt").write_text("not an image\n")
    np.save(folder / "array.npy", np.zeros(3))
    dest = tmp_path / "notes.zarr"
    with pytest.raises(ValueError, match="neither a Zarr store nor a DICOM series"):
        tilevision.ingest(folder, dest)
    assert_nothing_written(dest)
    with pytest.raises(ValueError, match=r"no DICOM image files .*2 file\(s\) checked.*Point"):
        tilevision.ingest(folder, dest, format="dicom")
    assert_nothing_written(dest)


def test_truncated_pixel_data_fails_cleanly(tmp_path, ct):
    hu = ct[0][:4, :20, :20]
    folder = tmp_path / "cut"
    paths = write_ct_series(folder, hu, intercept=0)
    data = paths[2].read_bytes()
    paths[2].write_bytes(data[: len(data) - 100])
    source = read_dicom(folder)  # the header is intact
    np.testing.assert_array_equal(source[0:2, :, :], hu[:2])
    dest = tmp_path / "cut.zarr"
    with pytest.raises(ValueError, match="failed to read region"):
        tilevision.ingest(folder, dest)
    assert_nothing_written(dest)


# -- laziness, partial reads, pickling -------------------------------------------------


def test_opening_is_lazy_and_reads_only_requested_slices(ct_series, monkeypatch):
    folder, hu, _ = ct_series
    reads: list[Path] = []
    original = _read_dicom._read_pixels

    def counting(path):
        reads.append(path)
        return original(path)

    monkeypatch.setattr(_read_dicom, "_read_pixels", counting)
    with raise_if_dask_computes():
        image = read_source(folder)
    assert reads == []
    assert image.sizes == {"z": 30, "y": 101, "x": 122}
    assert image.dtype == np.int32
    source = read_dicom(folder)
    block = source[10:13, 20:50, 5:90]
    assert len(reads) == 3
    np.testing.assert_array_equal(block, hu[10:13, 20:50, 5:90])
    assert source.read_chunks({"z": 8, "y": 32, "x": 32}) == (8, 101, 122)


def test_pickle_round_trip(ct_series):
    folder, hu, _ = ct_series
    source = read_dicom(folder)
    clone = pickle.loads(pickle.dumps(source))
    assert isinstance(clone, DicomSeriesSource)
    assert (clone.shape, clone.dtype, clone.spacing) == (
        source.shape,
        source.dtype,
        source.spacing,
    )
    np.testing.assert_array_equal(clone[5:9, :, 40:60], hu[5:9, :, 40:60])


def test_two_series_in_one_folder_get_distinct_dask_names(tmp_path, ct):
    hu = ct[0][:3, :10, :10]
    folder = tmp_path / "pair"
    uid_a, uid_b = generate_uid(), generate_uid()
    write_ct_series(folder, hu, series_uid=uid_a, intercept=0)
    write_ct_series(folder, hu + 1, series_uid=uid_b, intercept=0, seed=3)
    a = read_dicom(folder, series=uid_a).to_dask({"z": 3, "y": 10, "x": 10})
    b = read_dicom(folder, series=uid_b).to_dask({"z": 3, "y": 10, "x": 10})
    assert a.name != b.name
    np.testing.assert_array_equal((b - a).compute(), np.ones_like(hu))


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such DICOM folder"):
        read_dicom(tmp_path / "nowhere")


def test_ct_small_from_pydicom_matches_its_own_reader(tmp_path):
    from pydicom.data import get_testdata_file

    path = Path(get_testdata_file("CT_small.dcm"))
    folder = tmp_path / "small"
    folder.mkdir()
    shutil.copy(path, folder / "IM1")
    ds = pydicom.dcmread(path)
    image = tilevision.open(tilevision.ingest(folder, tmp_path / "small.zarr"))
    expected = ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
    np.testing.assert_array_equal(image.values, expected)
    assert image.attrs["spacing"] == pytest.approx(
        dict(zip("yx", map(float, ds.PixelSpacing), strict=True))
    )
