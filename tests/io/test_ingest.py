from __future__ import annotations

import json
import math

import dask
import dask.array as da
import numpy as np
import pytest
import xarray as xr
import zarr
from ome_zarr_models.v05.image import Image

import tilevision as tv
from tilevision.io._ingest import resolve_chunks
from tilevision.testing import raise_if_dask_computes

from ..conftest import no_leftovers

RNG = np.random.default_rng(0)


def _random(shape, dtype):
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return RNG.random(shape) > 0.5
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        return RNG.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
    return RNG.standard_normal(shape).astype(dtype)


def _reference_halve(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Mean over 2-blocks along ``axes`` using only the pixels each block has (loops)."""
    out_shape = tuple(math.ceil(n / 2) if i in axes else n for i, n in enumerate(a.shape))
    out = np.empty(out_shape, dtype=np.float64)
    for idx in np.ndindex(out_shape):
        block = tuple(slice(j * 2, j * 2 + 2) if i in axes else j for i, j in enumerate(idx))
        out[idx] = a[block].astype(np.float64).mean()
    if a.dtype.kind in "ui":
        return np.rint(out).astype(a.dtype)
    return out.astype(a.dtype)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32", "float64"])
@pytest.mark.parametrize(
    ("shape", "dims", "chunks"),
    [
        ((37, 53), ("y", "x"), 16),
        ((37, 53), ("y", "x"), (5, 53)),
        ((9, 21, 17), ("z", "y", "x"), (4, 7, 5)),
        ((9, 21, 17), ("z", "y", "x"), (1, 21, 17)),
        ((3, 20, 30), ("c", "y", "x"), 8),
    ],
)
def test_array_round_trip(tmp_path, dtype, shape, dims, chunks):
    data = _random(shape, dtype)
    dest = tv.ingest(data, tmp_path / "img.zarr", dims=dims, chunks=chunks, spacing=0.5)
    img = tv.open(dest)
    assert img.dims == dims
    assert img.dtype == data.dtype
    np.testing.assert_array_equal(img.values, data)
    expected = resolve_chunks(chunks, dims, shape)
    assert img.data.chunksize == tuple(expected[d] for d in dims)
    for d in dims:
        if d != "c":
            assert img.attrs["spacing"][d] == 0.5
            np.testing.assert_allclose(np.diff(img[d].values), 0.5)


@pytest.mark.parametrize("method", ["mean", "nearest"])
def test_pyramid_levels_match_reference(tmp_path, method):
    data = _random((7, 45, 33), "uint16")
    dest = tv.ingest(
        data, tmp_path / "p.zarr", chunks=(4, 8, 8), spacing=(1.0, 1.0, 1.0),
        downsample_method=method,
    )  # fmt: skip
    level0 = tv.open(dest)
    expected = data
    for level in range(1, level0.attrs["n_levels"]):
        img = tv.open(dest, level=level)
        factor = {d: img.attrs["spacing"][d] / level0.attrs["spacing"][d] for d in "zyx"}
        prev = tv.open(dest, level=level - 1)
        step = {d: round(factor[d] / (prev.attrs["spacing"][d] / level0.attrs["spacing"][d]))
                for d in "zyx"}  # fmt: skip
        axes = tuple(i for i, d in enumerate("zyx") if step[d] == 2)
        if method == "mean":
            expected = _reference_halve(expected, axes)
        else:
            expected = expected[tuple(slice(None, None, step[d]) for d in "zyx")]
        np.testing.assert_array_equal(img.values, expected)
        # pixel centres stay where they are in physical space
        for d in "zyx":
            f = factor[d]
            assert img[d].values[0] == pytest.approx((f - 1) / 2)
    smallest = tv.open(dest, level=level0.attrs["n_levels"] - 1)
    assert all(n <= c for n, c in zip(smallest.shape, (4, 8, 8)))


def test_metadata_validates_against_ngff_schema(tmp_path):
    dest = tv.ingest(
        _random((3, 40, 50), "uint8"), tmp_path / "rgb.zarr", dims=("c", "y", "x"),
        chunks=16, spacing=0.25, units="micrometer",
    )  # fmt: skip
    model = Image.from_zarr(zarr.open_group(dest, mode="r"))
    ms = model.ome_attributes.multiscales[0]
    assert [a.name for a in ms.axes] == ["c", "y", "x"]
    assert [a.type for a in ms.axes] == ["channel", "space", "space"]
    assert ms.axes[1].unit == "micrometer"
    meta = json.loads((dest / "zarr.json").read_text())
    assert meta["attributes"]["ome"]["version"] == "0.5"
    array_meta = json.loads((dest / "0" / "zarr.json").read_text())
    assert array_meta["zarr_format"] == 3
    assert array_meta["dimension_names"] == ["c", "y", "x"]
    assert any(c["name"] == "blosc" for c in array_meta["codecs"])


def test_anisotropic_volume_halves_z_only_when_near_isotropic(tmp_path):
    data = _random((24, 64, 64), "int16")
    dest = tv.ingest(data, tmp_path / "mr.zarr", chunks=(8, 8, 8), spacing=(6.5, 0.78, 0.78))
    spacings = [
        tv.open(dest, level=i).attrs["spacing"] for i in range(tv.open(dest).attrs["n_levels"])
    ]
    z = [s["z"] for s in spacings]
    y = [s["y"] for s in spacings]
    assert z[:4] == [6.5] * 4  # z kept while much coarser than y/x
    assert y[:4] == pytest.approx([0.78, 1.56, 3.12, 6.24])
    assert z[-1] > 6.5  # halved once in-plane caught up


def test_chunks_larger_than_image_are_clamped(tmp_path):
    dest = tv.ingest(_random((10, 12), "uint8"), tmp_path / "s.zarr", chunks=4096)
    img = tv.open(dest)
    assert img.chunks == ((10,), (12,))
    assert img.attrs["n_levels"] == 1


def test_provenance_attrs(tmp_path):
    src = tmp_path / "vol.npy"
    np.save(src, _random((4, 10, 12), "int16"))
    dest = tv.ingest(src, tmp_path / "vol.zarr", spacing=(2.0, 0.5, 0.5), units="millimeter")
    img = tv.open(dest)
    assert img.attrs["source"] == str(src)
    assert img.attrs["source_format"] == "npy"
    assert img.attrs["original_dtype"] == "int16"
    assert img.attrs["tilevision_version"] == tv.__version__
    assert img.attrs["units"] == {"z": "millimeter", "y": "millimeter", "x": "millimeter"}
    assert img.z.attrs["units"] == "millimeter"


def test_npy_is_read_memory_mapped_in_blocks(tmp_path):
    src = tmp_path / "big.npy"
    data = _random((64, 300), "float32")
    np.save(src, data)
    image = tv.io.read_source(src, chunks={"y": 16, "x": 100})
    assert image.data.chunksize == (16, 100)
    np.testing.assert_array_equal(image.values, data)


def test_ingest_dask_and_dataarray_sources(tmp_path):
    data = da.from_array(_random((20, 30), "float32"), chunks=7)
    with raise_if_dask_computes():
        lazy = data * 2
    dest = tv.ingest(lazy, tmp_path / "d.zarr", chunks=8)
    np.testing.assert_array_equal(tv.open(dest).values, data.compute() * 2)
    image = tv.open(dest)
    again = tv.ingest(image, tmp_path / "again.zarr", chunks=5)
    reopened = tv.open(again)
    np.testing.assert_array_equal(reopened.values, image.values)
    assert reopened.attrs["spacing"] == image.attrs["spacing"]


def test_reingest_zarr_rechunks_and_keeps_geometry(tmp_path):
    first = tv.ingest(
        _random((6, 40, 40), "uint16"), tmp_path / "a.zarr", chunks=(6, 40, 40),
        spacing=(3, 0.5, 0.5), units="millimeter", origin=(10, -5, 2),
    )  # fmt: skip
    second = tv.ingest(first, tmp_path / "b.zarr", chunks=(2, 16, 16))
    a, b = tv.open(first), tv.open(second)
    np.testing.assert_array_equal(a.values, b.values)
    assert b.data.chunksize == (2, 16, 16)
    xr.testing.assert_identical(a.coords.to_dataset(), b.coords.to_dataset())
    assert b.attrs["source_format"] == "zarr"


def test_plain_zarr_array_source_gets_spacing(tmp_path):
    arr = zarr.create_array(tmp_path / "plain.zarr", shape=(30, 40), chunks=(10, 10), dtype="u2")
    arr[:] = np.arange(1200, dtype="u2").reshape(30, 40)
    dest = tv.ingest(tmp_path / "plain.zarr", tmp_path / "ome.zarr", spacing=0.25, units="um")
    img = tv.open(dest)
    assert img.attrs["spacing"] == {"y": 0.25, "x": 0.25}
    assert img.attrs["units"] == {"y": "micrometer", "x": "micrometer"}
    np.testing.assert_array_equal(img.values, arr[:])


# -- bad input ---------------------------------------------------------------------------


def test_missing_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        tv.ingest(tmp_path / "nope.nii.gz", tmp_path / "out.zarr")
    assert not (tmp_path / "out.zarr").exists()


def test_unsupported_format_lists_supported(tmp_path):
    src = tmp_path / "notes.txt"
    src.write_text("hello")
    with pytest.raises(ValueError, match=r"unsupported format.*Supported formats: npy"):
        tv.ingest(src, tmp_path / "out.zarr")


def test_folder_that_is_no_image(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="neither a Zarr store nor a DICOM series"):
        tv.ingest(tmp_path / "folder", tmp_path / "out.zarr")


@pytest.mark.parametrize("shape", [(0, 10), (5, 0), (0, 3, 3)])
def test_zero_size_image(tmp_path, shape):
    with pytest.raises(ValueError, match="empty"):
        tv.ingest(np.zeros(shape, "uint8"), tmp_path / "out.zarr")
    assert no_leftovers(tmp_path) == []
    assert not (tmp_path / "out.zarr").exists()


@pytest.mark.parametrize(
    "data",
    [np.array([["a", "b"], ["c", "d"]]), np.empty((2, 2), dtype=object), np.zeros((2, 2), "c8")],
)
def test_non_numeric_dtype(tmp_path, data):
    with pytest.raises(TypeError, match=r"(non-numeric|complex)"):
        tv.ingest(data, tmp_path / "out.zarr")


def test_destination_exists_without_overwrite(tmp_path):
    dest = tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "out.zarr")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tv.ingest(np.ones((8, 8), "uint8"), dest)
    assert tv.open(dest).values.sum() == 0
    tv.ingest(np.ones((8, 8), "uint8"), dest, overwrite=True)
    assert tv.open(dest).values.sum() == 64
    assert no_leftovers(tmp_path) == []


def test_destination_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist; create it first"):
        tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "missing" / "out.zarr")


def test_remote_destination_refused(tmp_path):
    with pytest.raises(ValueError, match="writes outputs to a local path"):
        tv.ingest(np.zeros((8, 8), "uint8"), "s3://bucket/out.zarr")


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="levels must be"):
        tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "a.zarr", levels=0)
    with pytest.raises(ValueError, match="unknown compressor"):
        tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "b.zarr", compressor="lzma9")
    with pytest.raises(ValueError, match="chunk size along 'y' must be"):
        tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "c.zarr", chunks=(0, 4))
    with pytest.raises(ValueError, match="not in the order"):
        tv.ingest(np.zeros((3, 8, 8), "uint8"), tmp_path / "d.zarr", dims=("y", "x", "c"))
    with pytest.raises(ValueError, match="spacing along 'x' must be a positive"):
        tv.ingest(np.zeros((8, 8), "uint8"), tmp_path / "e.zarr", spacing=(1.0, -2.0))
    with pytest.raises(TypeError, match="cannot ingest a dict"):
        tv.ingest({"a": 1}, tmp_path / "f.zarr")
    assert no_leftovers(tmp_path) == []


class _Explodes(Exception):
    pass


@pytest.mark.parametrize("exc", [_Explodes, KeyboardInterrupt])
def test_interrupted_ingest_leaves_nothing(tmp_path, exc):
    def block(x, block_info=None):
        if block_info[None]["chunk-location"] == (1, 1):
            raise exc("boom")
        return x

    data = da.zeros((64, 64), chunks=16, dtype="uint8").map_blocks(block, dtype="uint8")
    with pytest.raises(exc):
        tv.ingest(data, tmp_path / "out.zarr", chunks=16)
    assert not (tmp_path / "out.zarr").exists()
    assert no_leftovers(tmp_path) == []


def test_interrupted_overwrite_keeps_old_store(tmp_path):
    dest = tv.ingest(np.full((16, 16), 7, "uint8"), tmp_path / "out.zarr")

    def fail(x):
        raise _Explodes("boom")

    data = da.zeros((16, 16), chunks=8, dtype="uint8").map_blocks(fail, dtype="uint8")
    with pytest.raises(_Explodes):
        tv.ingest(data, dest, overwrite=True)
    assert (tv.open(dest).values == 7).all()
    assert no_leftovers(tmp_path) == []


def test_mapped_array_reopens_its_map_past_the_limit(tmp_path):
    from tilevision.io._source import MappedArray

    path = tmp_path / "a.npy"
    data = np.arange(64 * 50, dtype="uint16").reshape(64, 50)
    np.save(path, data)
    opened = []

    def open_map():
        opened.append(1)
        return np.load(path, mmap_mode="r")

    mapped = MappedArray(open_map, limit=20 * 50 * 2)  # about 20 rows
    for start in range(0, 64, 8):
        block = mapped[start : start + 8, 3:40]
        np.testing.assert_array_equal(block, data[start : start + 8, 3:40])
        assert not isinstance(block, np.memmap)
    assert 3 <= len(opened) <= 5  # reopened as the span grew, not per read


def test_failed_ingest_waits_for_running_writes(tmp_path):
    # one block fails early while others are still being computed and written:
    # nothing may be left behind once ingest has raised
    import time

    def block(x, block_info=None):
        if block_info[None]["chunk-location"] == (0, 0):
            time.sleep(0.05)
            raise _Explodes("boom")
        time.sleep(0.5)
        return x

    data = da.zeros((64, 64), chunks=16, dtype="uint8").map_blocks(block, dtype="uint8")
    with pytest.raises(_Explodes), dask.config.set(num_workers=4):
        tv.ingest(data, tmp_path / "out.zarr", chunks=16)
    time.sleep(1.0)
    assert no_leftovers(tmp_path) == []
    assert not (tmp_path / "out.zarr").exists()
