"""NRRD reader: bundled files and files written by pynrrd, against ``nrrd.read``."""

from __future__ import annotations

import bz2
import gzip
import pathlib
import pickle
import random

import numpy as np
import pytest

import tilevision
from tilevision.io import _stream
from tilevision.io._read_nrrd import read_nrrd
from tilevision.io._stream import DecompressedStream
from tilevision.testing import raise_if_dask_computes

nrrd = pytest.importorskip("nrrd")

DATA = pathlib.Path(tilevision.__file__).parent / "datasets" / "data" / "mr-lesions"
BUNDLED = sorted(DATA.glob("*.nrrd"))


def _whole(src):
    return src[tuple(slice(None) for _ in src.shape)]


def _blocks(shape, step):
    return [
        tuple(slice(s, s + c) for s, c in zip(start, step, strict=True))
        for start in np.ndindex(*(-(-n // c) for n, c in zip(shape, step, strict=True)))
        for start in [tuple(i * c for i, c in zip(start, step, strict=True))]
    ]


def _volume(shape=(7, 11, 13), dtype="int16", seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(-500, 3000, size=shape).astype(dtype)


def _write(path, data_c, header=None, **kw):
    """Write a C-ordered (z, y, x) array as NRRD with pynrrd."""
    header = dict(header or {})
    nrrd.write(str(path), data_c, header, index_order="C", **kw)
    return path


def test_bundled_files_exist():
    assert len(BUNDLED) == 6


@pytest.mark.parametrize("path", BUNDLED, ids=lambda p: p.name)
def test_bundled_round_trip_through_ingest(path, tmp_path):
    ref, header = nrrd.read(str(path), index_order="C")
    dest = tilevision.ingest(path, tmp_path / "img.zarr", chunks=(16, 128, 128))
    img = tilevision.open(dest)
    assert img.dims == ("z", "y", "x")
    assert img.dtype == ref.dtype
    np.testing.assert_array_equal(img.values, ref)
    norms = np.linalg.norm(header["space directions"], axis=1)
    assert img.attrs["spacing"] == dict(zip("zyx", norms[::-1].tolist(), strict=True))
    assert img.attrs["origin"] == pytest.approx(
        dict(zip("zyx", header["space origin"][::-1].tolist(), strict=True))
    )
    assert img.attrs["units"] == dict.fromkeys("zyx", "millimeter")
    assert img.attrs["source_format"] == "nrrd"
    assert img.attrs["original_dtype"] == str(ref.dtype)
    meta = img.attrs["source_metadata"]
    assert meta["space"] == "left-posterior-superior"
    assert meta["kinds"] == ["domain"] * 3
    assert meta["encoding"] == "gzip"


def test_gzip_read_block_by_block_in_shuffled_order():
    path = DATA / "brain1_image.nrrd"
    ref, _ = nrrd.read(str(path), index_order="C")
    src = read_nrrd(path)
    assert src.sequential
    blocks = _blocks(src.shape, (6, 100, 100))
    random.Random(0).shuffle(blocks)
    for key in blocks:
        np.testing.assert_array_equal(src[key], ref[key])
    assert src._stream.restarts > 0  # the shuffled order did go backwards
    src.close()


def test_gzip_slabs_in_order_never_restart():
    path = DATA / "brain2_image.nrrd"
    ref, _ = nrrd.read(str(path), index_order="C")
    src = read_nrrd(path)
    image = src.to_image({"z": 3, "y": 64, "x": 64})
    # compressed sources are read in whole y/x slabs: contiguous in the stream
    assert image.data.chunks[1:] == ((256,), (256,))
    for z in range(0, src.shape[0], 3):
        np.testing.assert_array_equal(src[z : z + 3, :, :], ref[z : z + 3])
    assert src._stream.restarts == 0
    src.close()


@pytest.mark.parametrize("encoding", ["raw", "gzip", "bzip2", "ascii"])
def test_written_encodings(tmp_path, encoding):
    data = _volume()
    path = _write(
        tmp_path / "v.nrrd",
        data,
        {"encoding": encoding, "space": "RAS", "space directions": np.diag([0.5, 0.7, 2.0]),
         "space origin": np.array([1.0, 2.0, 3.0])},
    )  # fmt: skip
    ref, _ = nrrd.read(str(path), index_order="C")
    np.testing.assert_array_equal(ref, data)
    src = read_nrrd(path)
    assert src.shape == (7, 11, 13)
    assert src.dtype == np.int16
    assert src.sequential == (encoding in ("gzip", "bzip2"))
    np.testing.assert_array_equal(_whole(src), data)
    np.testing.assert_array_equal(src[2:5, 3:9, 1:12], data[2:5, 3:9, 1:12])
    assert src.spacing == {"z": 2.0, "y": 0.7, "x": 0.5}
    assert src.origin == {"z": 3.0, "y": 2.0, "x": 1.0}
    src.close()


def test_raw_is_memory_mapped(tmp_path):
    data = _volume()
    path = _write(tmp_path / "v.nrrd", data, {"encoding": "raw"})
    src = read_nrrd(path)
    np.testing.assert_array_equal(src[1:3, :, 4:6], data[1:3, :, 4:6])
    from tilevision.io._source import MappedArray

    assert isinstance(src._mmap, MappedArray)


@pytest.mark.parametrize("encoding", ["raw", "gzip"])
def test_detached_header(tmp_path, encoding):
    data = _volume(dtype="float32")
    path = _write(tmp_path / "v.nhdr", data, {"encoding": encoding, "spacings": [0.5, 0.5, 3]})
    ref, header = nrrd.read(str(path), index_order="C")
    assert "data file" in header
    src = read_nrrd(path)
    assert src.metadata["detached"]
    np.testing.assert_array_equal(_whole(src), ref)
    assert src.spacing == {"z": 3.0, "y": 0.5, "x": 0.5}
    assert src.units == dict.fromkeys("zyx")  # no 'space': no physical unit
    dest = tilevision.ingest(path, tmp_path / "v.zarr")
    np.testing.assert_array_equal(tilevision.open(dest).values, ref)


def test_detached_data_file_missing(tmp_path):
    path = _write(tmp_path / "v.nhdr", _volume(), {"encoding": "raw"})
    (tmp_path / "v.raw").unlink()
    with pytest.raises(FileNotFoundError, match=r"data file .* does not exist"):
        read_nrrd(path)


def test_big_endian(tmp_path):
    data = _volume(dtype=">u2") // 2 + 1
    path = _write(tmp_path / "be.nrrd", data.astype(">u2"), {"encoding": "gzip"})
    assert nrrd.read_header(str(path))["endian"] == "big"
    src = read_nrrd(path)
    assert src.dtype == np.dtype("uint16")
    assert src.dtype.isnative
    block = _whole(src)
    assert block.dtype.isnative
    np.testing.assert_array_equal(block, nrrd.read(str(path), index_order="C")[0])


def test_two_d(tmp_path):
    data = _volume(shape=(40, 30), dtype="uint8", seed=2)
    path = _write(tmp_path / "p.nrrd", data, {"encoding": "gzip", "spacings": [0.25, 0.5]})
    src = read_nrrd(path)
    assert src.dims == ("y", "x")
    assert src.whole_extent_dims == ("x",)
    assert src.spacing == {"y": 0.5, "x": 0.25}
    np.testing.assert_array_equal(src[10:20, 5:9], data[10:20, 5:9])
    np.testing.assert_array_equal(src[0:5, 0:30], data[0:5])


def test_rgb_channel_axis(tmp_path):
    rgb = _volume(shape=(20, 30, 3), dtype="uint8", seed=3)  # C order (y, x, c)
    path = _write(
        tmp_path / "rgb.nrrd", rgb,
        {"encoding": "gzip", "kinds": ["RGB-color", "domain", "domain"]},
    )  # fmt: skip
    ref, _ = nrrd.read(str(path), index_order="C")
    src = read_nrrd(path)
    assert src.dims == ("c", "y", "x")
    assert src.shape == (3, 20, 30)
    assert src.channel_names == ["R", "G", "B"]
    expected = np.moveaxis(ref, -1, 0)
    np.testing.assert_array_equal(_whole(src), expected)
    np.testing.assert_array_equal(src[1:3, 4:9, 10:20], expected[1:3, 4:9, 10:20])
    img = tilevision.io.read_source(path)
    assert list(img.c.values) == ["R", "G", "B"]


def test_vector_volume_channel_axis(tmp_path):
    vec = _volume(shape=(4, 5, 6, 2), dtype="float32", seed=4)
    path = _write(
        tmp_path / "vec.nrrd", vec, {"encoding": "raw", "kinds": ["vector", "domain", "domain",
                                                                   "domain"]},
    )  # fmt: skip
    src = read_nrrd(path)
    assert src.dims == ("c", "z", "y", "x")
    assert src.channel_names is None
    np.testing.assert_array_equal(_whole(src), np.moveaxis(vec, -1, 0))


def test_line_skip_and_byte_skip(tmp_path):
    data = _volume(shape=(3, 4, 5))
    header = (
        "NRRD0004\ntype: short\ndimension: 3\nsizes: 5 4 3\nendian: little\n"
        "encoding: raw\nline skip: 1\nbyte skip: 6\n\n"
    )
    path = tmp_path / "skip.nrrd"
    path.write_bytes(header.encode() + b"junk line\n" + b"ABCDEF" + data.tobytes())
    np.testing.assert_array_equal(nrrd.read(str(path), index_order="C")[0], data)
    np.testing.assert_array_equal(_whole(read_nrrd(path)), data)
    # byte skip -1: the data are the last bytes of the file
    path2 = tmp_path / "tail.nrrd"
    header2 = header.replace("line skip: 1\nbyte skip: 6", "byte skip: -1")
    path2.write_bytes(header2.encode() + b"padding" + data.tobytes())
    np.testing.assert_array_equal(_whole(read_nrrd(path2)), data)


def test_origin_follows_permuted_space_directions(tmp_path):
    data = _volume(shape=(3, 4, 5))
    # file axis 0 (x) runs along world axis 1, file axis 1 (y) along world axis 0
    directions = np.array([[0.0, 2.0, 0.0], [1.5, 0.0, 0.0], [0.0, 0.0, 4.0]])
    path = _write(
        tmp_path / "perm.nrrd", data,
        {"encoding": "raw", "space": "LPS", "space directions": directions,
         "space origin": np.array([10.0, 20.0, 30.0]), "space units": ["um", "um", "um"]},
    )  # fmt: skip
    src = read_nrrd(path)
    assert src.spacing == {"z": 4.0, "y": 1.5, "x": 2.0}
    assert src.origin == {"z": 30.0, "y": 10.0, "x": 20.0}
    assert src.units == dict.fromkeys("zyx", "micrometer")
    assert src.metadata["space_directions"] == directions.tolist()


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("type: short\ndimension: 3\nsizes: 2 2 2\nendian: little\nencoding: hex\n",
         "encoding 'hex' is not supported"),
        ("type: short\ndimension: 4\nsizes: 2 2 2 3\nendian: little\nencoding: raw\n"
         "kinds: domain domain domain time\n", "Extract one volume first"),
        ("type: short\ndimension: 1\nsizes: 8\nendian: little\nencoding: raw\n",
         "not a 2-D or 3-D image"),
        ("type: block\ndimension: 2\nsizes: 2 2\nencoding: raw\nblock size: 2\n",
         "type 'block' is not supported"),
        ("type: short\ndimension: 2\nsizes: 2 2\nencoding: raw\n", "'endian' field"),
        ("type: short\ndimension: 2\nsizes: 4 4\nendian: little\nencoding: raw\n",
         "truncated"),
        ("type: short\ndimension: 2\nsizes: 4 4\nendian: little\nencoding: gzip\n"
         "byte skip: -1\n", "cannot be streamed"),
    ],
)  # fmt: skip
def test_bad_headers(tmp_path, header, match):
    path = tmp_path / "bad.nrrd"
    path.write_bytes(f"NRRD0004\n{header}\n".encode() + b"\0" * 8)
    with pytest.raises(ValueError, match=match):
        read_nrrd(path)


def test_not_an_nrrd(tmp_path):
    path = tmp_path / "x.nrrd"
    path.write_bytes(b"hello world\n")
    with pytest.raises(ValueError, match="not a readable NRRD header"):
        read_nrrd(path)


def test_truncated_gzip_data(tmp_path):
    path = _write(tmp_path / "t.nrrd", _volume(shape=(20, 64, 64)), {"encoding": "gzip"})
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) - 2000])
    src = read_nrrd(path)
    np.testing.assert_array_equal(src[0:1, :, :], _volume(shape=(20, 64, 64))[0:1])
    with pytest.raises(EOFError, match="truncated"):
        _whole(src)


def test_pickle_drops_open_stream():
    path = DATA / "breast1_image.nrrd"
    ref, _ = nrrd.read(str(path), index_order="C")
    src = read_nrrd(path)
    np.testing.assert_array_equal(src[5:6, :, :], ref[5:6])
    assert src._stream is not None
    clone = pickle.loads(pickle.dumps(src))
    assert clone._stream is None
    np.testing.assert_array_equal(_whole(clone), ref)
    clone.close()
    src.close()


def test_read_source_is_lazy():
    with raise_if_dask_computes():
        img = tilevision.io.read_source(
            DATA / "brain1_image.nrrd", chunks={"z": 5, "y": 64, "x": 64}
        )
    assert img.attrs["spacing"]["z"] == pytest.approx(6.5)
    assert img.chunks[0] == (5,) * 5


# -- the decompressing stream ---------------------------------------------------------


@pytest.fixture
def small_steps(monkeypatch):
    monkeypatch.setattr(_stream, "_READ_SIZE", 512)
    monkeypatch.setattr(_stream, "_STEP_OUTPUT", 4096)
    monkeypatch.setattr(_stream, "_CHECKPOINT_EVERY", 20_000)


def test_stream_checkpoints_serve_backward_reads(tmp_path, small_steps):
    payload = np.random.default_rng(5).integers(0, 50, 300_000, dtype=np.uint8).tobytes()
    path = tmp_path / "p.gz"
    path.write_bytes(b"HEADER" + gzip.compress(payload))
    stream = DecompressedStream(path, 6, "gzip")
    assert stream.read_at(290_000, 100) == payload[290_000:290_100]
    assert len(stream._checkpoints) >= 10
    for offset in [250_000, 123_456, 7, 299_990, 60_001]:
        assert stream.read_at(offset, 10) == payload[offset : offset + 10]
    assert stream.restarts == 4
    assert stream.rewinds == 1  # only offset 7 lies before the first checkpoint
    stream.close()


def test_stream_multi_member_gzip_and_bzip2(tmp_path, small_steps):
    a, b = bytes(range(256)) * 40, bytes(reversed(range(256))) * 30
    gz = tmp_path / "m.gz"
    gz.write_bytes(gzip.compress(a) + gzip.compress(b))
    bz = tmp_path / "m.bz2"
    bz.write_bytes(bz2.compress(a) + bz2.compress(b))
    for path, codec in [(gz, "gzip"), (bz, "bzip2")]:
        stream = DecompressedStream(path, 0, codec)
        assert stream.read_at(len(a) - 5, 10) == (a + b)[len(a) - 5 : len(a) + 5]
        assert stream.read_at(0, len(a) + len(b)) == a + b
        with pytest.raises(EOFError, match="truncated"):
            stream.read_at(len(a) + len(b) - 1, 2)
        stream.close()


def test_stream_unknown_codec(tmp_path):
    with pytest.raises(ValueError, match="unknown codec"):
        DecompressedStream(tmp_path / "x", 0, "zstd")


def test_corrupt_gzip_data(tmp_path):
    path = _write(tmp_path / "c.nrrd", _volume(), {"encoding": "gzip"})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"\x1f\x8b")
    raw[start + 20 : start + 60] = b"\xff" * 40
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        _whole(read_nrrd(path))


def test_axis_without_space_direction_is_a_channel(tmp_path):
    data = _volume(shape=(5, 6, 3), dtype="uint8", seed=6)  # C order (y, x, c)
    header = (
        "NRRD0004\ntype: uchar\ndimension: 3\nspace: left-posterior-superior\n"
        "sizes: 3 6 5\nspace directions: none (0.5,0,0) (0,0.25,0)\nencoding: raw\n\n"
    )
    path = tmp_path / "vec.nrrd"
    path.write_bytes(header.encode() + data.tobytes())
    np.testing.assert_array_equal(nrrd.read(str(path), index_order="C")[0], data)
    src = read_nrrd(path)
    assert src.dims == ("c", "y", "x")
    assert src.spacing == {"y": 0.25, "x": 0.5}
    np.testing.assert_array_equal(_whole(src), np.moveaxis(data, -1, 0))
    assert src.metadata["space_directions"][0] == [None, None, None]


@pytest.mark.parametrize(
    ("header", "match"),
    [
        ("type: short\ndimension: 2\nendian: little\nencoding: raw\n", "no 'sizes' field"),
        ("type: short\ndimension: 3\nsizes: 2 2\nendian: little\nencoding: raw\n",
         "does not match the 2 sizes"),
    ],
)  # fmt: skip
def test_inconsistent_headers(tmp_path, header, match):
    path = tmp_path / "bad.nrrd"
    path.write_bytes(f"NRRD0004\n{header}\n".encode() + b"\0" * 8)
    with pytest.raises(ValueError, match=match):
        read_nrrd(path)


def test_multi_file_data_is_refused(tmp_path):
    path = tmp_path / "multi.nhdr"
    path.write_text(
        "NRRD0004\ntype: uchar\ndimension: 3\nsizes: 2 2 3\nencoding: raw\n"
        "data file: slice%03d.raw 1 3 1\n\n"
    )
    with pytest.raises(ValueError, match=r"split over several files.*unu join"):
        read_nrrd(path)
