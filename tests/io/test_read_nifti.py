"""NIfTI reader: bundled files and files written by nibabel, against nibabel's own reading."""

from __future__ import annotations

import gzip
import pathlib
import pickle
import random
import time

import numpy as np
import pytest

import tilevision
from tilevision.io._read_nifti import read_nifti
from tilevision.io._source import rescaled_dtype
from tilevision.testing import raise_if_dask_computes

nib = pytest.importorskip("nibabel")

DATA = pathlib.Path(tilevision.__file__).parent / "datasets" / "data" / "ct-organs"
BUNDLED = sorted(DATA.glob("*.nii.gz"))


def _whole(src):
    return src[tuple(slice(None) for _ in src.shape)]


def _reference(path):
    """What nibabel reads, in tilevision's (z, y, x) order."""
    return np.asanyarray(nib.load(path).dataobj).T


def _save(path, data, affine=None, *, units=None, slope=None, inter=None):
    """Write a NIfTI-1 file byte by byte: the header exactly as given, raw data after it."""
    img = nib.Nifti1Image(data, np.eye(4) if affine is None else affine)
    header = img.header
    header.set_data_dtype(data.dtype)
    if units is not None:
        header.set_xyzt_units(units)
    if slope is not None:
        header["scl_slope"] = slope
        header["scl_inter"] = inter
    header.set_data_offset(352)
    blob = header.binaryblock + b"\0" * 4 + np.asarray(data).tobytes(order="F")
    path = pathlib.Path(path)
    path.write_bytes(gzip.compress(blob) if path.suffix == ".gz" else blob)
    return path


def test_bundled_files_exist():
    assert len(BUNDLED) == 5


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_round_trip_through_ingest(path, tmp_path):
    img = nib.load(path)
    ref = _reference(path)
    dest = tilevision.ingest(path, tmp_path / "img.zarr", chunks=(16, 64, 64))
    out = tilevision.open(dest)
    assert out.dims == ("z", "y", "x")
    assert out.dtype == img.get_data_dtype()  # on-disk dtype kept (int32 for the CT)
    np.testing.assert_array_equal(out.values, ref)
    zooms = [float(z) for z in img.header.get_zooms()]
    assert out.attrs["spacing"] == dict(zip("zyx", zooms[::-1], strict=True))
    translation = img.affine[:3, 3][::-1]  # these affines are diagonal
    assert out.attrs["origin"] == pytest.approx(dict(zip("zyx", translation, strict=True)))
    assert out.attrs["units"] == dict.fromkeys("zyx", "millimeter")
    assert out.attrs["source_format"] == "nifti"
    assert out.attrs["original_dtype"] == str(img.get_data_dtype())
    meta = out.attrs["source_metadata"]
    assert meta["affine"] == img.affine.tolist()
    assert meta["axcodes"] == list(nib.aff2axcodes(img.affine))
    assert meta["sform_code"] == 2
    assert meta["qform_code"] == 0
    assert meta["spatial_unit_assumed"] is True  # xyzt_units is 'unknown' in these files


def test_bundled_ct_is_int32_and_ingest_is_quick(tmp_path):
    path = DATA / "example_ct.nii.gz"
    src = read_nifti(path)
    assert src.dtype == np.int32
    assert src.original_dtype == np.int32
    assert src.shape == (112, 101, 122)
    start = time.perf_counter()
    tilevision.ingest(path, tmp_path / "ct.zarr")
    assert time.perf_counter() - start < 10  # measured ≈ 0.2 s; quadratic reading took seconds


def test_gzip_read_in_slabs_never_restarts_and_shuffled_blocks_are_correct():
    path = DATA / "example_ct.nii.gz"
    ref = _reference(path)
    src = read_nifti(path)
    assert src.sequential
    image = src.to_image({"z": 10, "y": 32, "x": 32})
    assert image.data.chunks[1:] == ((101,), (122,))  # whole y/x slabs from the stream
    for z in range(0, 112, 10):
        np.testing.assert_array_equal(src[z : z + 10, :, :], ref[z : z + 10])
    assert src._stream.restarts == 0
    keys = [
        (slice(z, z + 24), slice(y, y + 60), slice(x, x + 70))
        for z in range(0, 112, 24)
        for y in range(0, 101, 60)
        for x in range(0, 122, 70)
    ]
    random.Random(1).shuffle(keys)
    for key in keys:
        np.testing.assert_array_equal(src[key], ref[key])
    src.close()


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_float_rescale(tmp_path, suffix):
    raw = np.random.default_rng(0).integers(-2000, 2000, (9, 8, 7)).astype(np.int16)
    path = _save(tmp_path / f"scaled{suffix}", raw, slope=0.25, inter=-7.5)
    assert nib.load(path).dataobj.slope == 0.25  # nibabel sees the scaling too
    src = read_nifti(path)
    assert src.original_dtype == np.int16
    assert src.dtype == rescaled_dtype(np.dtype("int16"), 0.25, -7.5) == np.float32
    expected = (raw.astype(np.float64) * 0.25 - 7.5).astype(np.float32).T
    np.testing.assert_array_equal(_whole(src), expected)
    np.testing.assert_allclose(_whole(src), _reference(path), rtol=1e-6)
    assert src.metadata["scl_slope"] == 0.25
    assert src.metadata["scl_inter"] == -7.5


def test_integer_rescale_is_exact(tmp_path):
    raw = np.array([0, 1, 4095, 65535], dtype=np.uint16).reshape(4, 1, 1) * np.ones(
        (1, 3, 2), dtype=np.uint16
    )
    path = _save(tmp_path / "hu.nii", raw, slope=2.0, inter=-1024.0)
    src = read_nifti(path)
    assert src.dtype == rescaled_dtype(np.dtype("uint16"), 2, -1024) == np.int32
    block = _whole(src)
    assert block.dtype == np.int32
    np.testing.assert_array_equal(block, (raw.astype(np.int64) * 2 - 1024).T)
    dest = tilevision.ingest(path, tmp_path / "hu.zarr")
    out = tilevision.open(dest)
    assert out.dtype == np.int32
    assert out.attrs["original_dtype"] == "uint16"
    np.testing.assert_array_equal(out.values, (raw.astype(np.int64) * 2 - 1024).T)


def test_unscaled_float64_kept(tmp_path):
    raw = np.linspace(-1, 1, 60).reshape(5, 4, 3)
    src = read_nifti(_save(tmp_path / "f.nii", raw))
    assert src.dtype == np.float64
    np.testing.assert_array_equal(_whole(src), raw.T)


@pytest.mark.parametrize(
    ("units", "expected"),
    [("micron", "micrometer"), ("mm", "millimeter"), ("meter", "meter"),
     ("unknown", "millimeter")],
)  # fmt: skip
def test_units(tmp_path, units, expected):
    path = _save(tmp_path / "u.nii", np.zeros((3, 4, 5), np.uint8), units=units)
    src = read_nifti(path)
    assert src.units == dict.fromkeys("zyx", expected)
    assert src.metadata["spatial_unit_assumed"] == (units == "unknown")


def test_micron_units_survive_ingest(tmp_path):
    affine = np.diag([0.5, 0.25, 2.0, 1.0])
    path = _save(tmp_path / "m.nii.gz", np.ones((4, 6, 8), np.uint16), affine, units="micron")
    out = tilevision.open(tilevision.ingest(path, tmp_path / "m.zarr"))
    assert out.attrs["units"] == dict.fromkeys("zyx", "micrometer")
    assert out.attrs["spacing"] == {"z": 2.0, "y": 0.25, "x": 0.5}


def test_two_d(tmp_path):
    data = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)  # (i, j) = (x, y)
    affine = np.diag([0.5, 0.25, 1.0, 1.0])
    affine[:3, 3] = [10.0, 20.0, 0.0]
    path = _save(tmp_path / "plane.nii", data, affine)
    assert nib.load(path).shape == (20, 30)
    src = read_nifti(path)
    assert src.dims == ("y", "x")
    assert src.shape == (30, 20)
    assert src.spacing == {"y": 0.25, "x": 0.5}
    assert src.origin == {"y": 20.0, "x": 10.0}
    np.testing.assert_array_equal(_whole(src), data.T)
    np.testing.assert_array_equal(src[3:9, 2:5], data.T[3:9, 2:5])


def test_four_d_with_one_volume_is_squeezed(tmp_path):
    data = np.arange(4 * 5 * 6, dtype=np.int16).reshape(4, 5, 6, 1)
    src = read_nifti(_save(tmp_path / "one.nii.gz", data))
    assert src.shape == (6, 5, 4)
    np.testing.assert_array_equal(_whole(src), data[..., 0].T)


def test_four_d_with_several_volumes_is_refused(tmp_path):
    path = _save(tmp_path / "fmri.nii.gz", np.zeros((4, 5, 6, 3), np.int16))
    with pytest.raises(
        ValueError, match=r"4-D NIfTI .* one 2-D or 3-D volume.*slicer\[\.\.\., t\]"
    ):
        read_nifti(path)


def test_origin_follows_permuted_affine(tmp_path):
    # voxel axis i runs along world y, axis j along world x
    affine = np.array(
        [[0.0, 1.5, 0.0, 10.0], [2.0, 0.0, 0.0, 20.0], [0.0, 0.0, 3.0, 30.0], [0, 0, 0, 1]]
    )
    src = read_nifti(_save(tmp_path / "p.nii", np.zeros((3, 4, 5), np.uint8), affine))
    assert src.origin == {"z": 30.0, "y": 10.0, "x": 20.0}
    assert src.metadata["axcodes"] == list(nib.aff2axcodes(affine))


def test_not_a_nifti(tmp_path):
    path = tmp_path / "fake.nii"
    path.write_bytes(b"not a nifti file at all" * 20)
    with pytest.raises(ValueError, match="not a readable NIfTI"):
        read_nifti(path)


def test_truncated_files(tmp_path):
    data = np.random.default_rng(2).integers(0, 100, (40, 50, 30)).astype(np.int16)
    raw_path = _save(tmp_path / "t.nii", data)
    raw_path.write_bytes(raw_path.read_bytes()[:-5000])
    with pytest.raises(ValueError, match="truncated"):
        read_nifti(raw_path)
    gz_path = _save(tmp_path / "t.nii.gz", data)
    gz_path.write_bytes(gz_path.read_bytes()[:-3000])
    src = read_nifti(gz_path)
    np.testing.assert_array_equal(src[0:2, :, :], data.T[0:2])
    with pytest.raises(EOFError, match="truncated"):
        _whole(src)


def test_pickle_drops_open_handles(tmp_path):
    path = DATA / "example_seg.nii.gz"
    ref = _reference(path)
    src = read_nifti(path)
    np.testing.assert_array_equal(src[10:12, :, :], ref[10:12])
    assert src._stream is not None
    clone = pickle.loads(pickle.dumps(src))
    assert clone._stream is None
    np.testing.assert_array_equal(_whole(clone), ref)
    mapped = read_nifti(_save(tmp_path / "r.nii", np.ones((3, 4, 5), np.int16)))
    _whole(mapped)
    assert mapped._mmap is not None
    assert pickle.loads(pickle.dumps(mapped))._mmap is None
    clone.close()
    src.close()


def test_read_source_is_lazy():
    with raise_if_dask_computes():
        img = tilevision.io.read_source(
            DATA / "example_ct.nii.gz", chunks={"z": 16, "y": 101, "x": 122}
        )
    assert img.dtype == np.int32
    assert img.attrs["spacing"] == {"z": 3.0, "y": 3.0, "x": 3.0}
    assert img.chunks[0] == (16,) * 7


def test_bzip2_compressed(tmp_path):
    data = np.random.default_rng(3).integers(0, 1000, (6, 7, 8)).astype(np.uint16)
    path = tmp_path / "b.nii.bz2"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    src = read_nifti(path)
    assert src.metadata["compression"] == "bzip2"
    np.testing.assert_array_equal(_whole(src), _reference(path))
    np.testing.assert_array_equal(src[2:4, 1:5, 3:6], data.T[2:4, 1:5, 3:6])


def test_unstreamable_compression_is_refused(tmp_path, monkeypatch):
    from tilevision.io import _read_nifti

    path = tmp_path / "b.nii.bz2"
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4), np.uint8), np.eye(4)), path)
    monkeypatch.setattr(_read_nifti, "_COMPRESSED", {".gz": "gzip"})
    with pytest.raises(ValueError, match=r"\.bz2-compressed NIfTI cannot be streamed.*Save it"):
        read_nifti(path)


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.zeros(7, np.int16), r"1-D NIfTI .* Save it as a 2-D or 3-D image"),
        (
            np.zeros((3, 4, 5), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")]),
            r"data type .* not supported. Split the colour fields",
        ),
    ],
)
def test_unsupported_shapes_and_types(tmp_path, data, match):
    path = tmp_path / "x.nii"
    nib.save(nib.Nifti1Image(data, np.eye(4)), path)
    with pytest.raises(ValueError, match=match):
        read_nifti(path)


def test_invalid_zoom_becomes_unit_spacing(tmp_path):
    path = _save(tmp_path / "z.nii", np.zeros((3, 4, 5), np.uint8), np.diag([2.0, 2.0, 2.0, 1]))
    blob = bytearray(path.read_bytes())
    pixdim = np.frombuffer(blob, "<f4", count=8, offset=76).copy()
    pixdim[3] = np.nan  # the k (z) zoom (nibabel itself fixes 0 and negative zooms)
    blob[76:108] = pixdim.tobytes()
    path.write_bytes(bytes(blob))
    assert np.isnan(nib.load(path).header.get_zooms()[2])
    src = read_nifti(path)
    assert src.spacing == {"z": 1.0, "y": 2.0, "x": 2.0}
    assert src.metadata["invalid_zooms_set_to_1"] == ["z"]
    out = tilevision.open(tilevision.ingest(path, tmp_path / "z.zarr"))
    assert out.attrs["source_metadata"]["zooms"] == [2.0, 2.0, None]
