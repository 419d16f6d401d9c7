"""PNG/JPEG reader: pixels against the decoders' own output, dims, channels, laziness."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import dask.array as da
import imagecodecs
import imageio.v3 as iio
import nibabel
import numpy as np
import pytest
import skimage.data
from PIL import Image

import tilevision as tv
from tilevision.io import read_source
from tilevision.io._read_image import ImageSource, read_image
from tilevision.testing import raise_if_dask_computes

DATA = Path(tv.__file__).parent / "datasets" / "data"


@pytest.fixture(scope="module")
def ct_slice_uint16() -> np.ndarray:
    """A real CT slice shifted into uint16 (values well above 255)."""
    image = nibabel.load(DATA / "ct-organs" / "example_ct_sm.nii.gz")
    plane = np.asarray(image.dataobj)[:, :, 15].T.astype(np.int32)
    plane -= plane.min()
    assert plane.max() > 1000
    return plane.astype(np.uint16)


def roundtrip(path: Path, tmp_path: Path, **kwargs) -> tuple:
    dest = tv.ingest(path, tmp_path / "out.zarr", **kwargs)
    return tv.open(dest), read_source(path, chunks={"c": 4, "y": 200, "x": 150})


def check(images, expected: np.ndarray, dims, channel_names=None) -> None:
    """``expected`` in the file's (y, x[, c]) order."""
    if expected.ndim == 3:
        expected = expected.transpose(2, 0, 1)
    for img in images:
        assert img.dims == tuple(dims)
        assert img.dtype == expected.dtype
        np.testing.assert_array_equal(img.values, expected)
        assert img.attrs["spacing"] == {"y": 1.0, "x": 1.0}
        assert img.attrs["units"] == {"y": None, "x": None}
        if channel_names is not None:
            assert list(img.c.values) == channel_names


def test_grey_png(tmp_path):
    camera = skimage.data.camera()
    path = tmp_path / "camera.png"
    iio.imwrite(path, camera)
    images = roundtrip(path, tmp_path, chunks=128)
    check(images, camera, ("y", "x"))
    assert images[0].attrs["source_format"] == "image"


def test_rgb_png(tmp_path):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "astronaut.png"
    iio.imwrite(path, astronaut)
    check(roundtrip(path, tmp_path, chunks=200), astronaut, ("c", "y", "x"), ["R", "G", "B"])


def test_rgba_png(tmp_path):
    rgba = np.dstack([skimage.data.astronaut(), skimage.data.camera()])
    path = tmp_path / "rgba.png"
    iio.imwrite(path, rgba)
    check(roundtrip(path, tmp_path), rgba, ("c", "y", "x"), ["R", "G", "B", "A"])


def test_16bit_grey_png(tmp_path, ct_slice_uint16):
    path = tmp_path / "ct.png"
    iio.imwrite(path, ct_slice_uint16)
    images = roundtrip(path, tmp_path)
    check(images, ct_slice_uint16, ("y", "x"))
    assert images[0].attrs["original_dtype"] == "uint16"


def test_16bit_rgb_png_keeps_all_bits(tmp_path, ct_slice_uint16):
    rgb = np.dstack([ct_slice_uint16, ct_slice_uint16 // 2, 65535 - ct_slice_uint16])
    path = tmp_path / "rgb16.png"
    path.write_bytes(imagecodecs.png_encode(rgb))
    # Pillow (imageio's default plugin) would reduce this file to 8 bits
    assert iio.imread(path).dtype == np.uint8
    src = read_image(path)
    assert src.metadata["decoder"] == "imagecodecs"
    check(roundtrip(path, tmp_path), rgb, ("c", "y", "x"), ["R", "G", "B"])


def test_16bit_rgb_png_without_imagecodecs(tmp_path, monkeypatch):
    path = tmp_path / "rgb16.png"
    path.write_bytes(imagecodecs.png_encode(np.zeros((8, 8, 3), np.uint16)))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "imagecodecs" else
        find_spec(name, *a)
    )  # fmt: skip
    with pytest.raises(ImportError, match=r"16-bit colour PNG.*pip install"):
        read_image(path)


def test_palette_png_becomes_rgb(tmp_path):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "palette.png"
    Image.fromarray(astronaut).quantize(colors=32).save(path)
    with Image.open(path) as im:
        assert im.mode == "P"
        expected = np.asarray(im.convert("RGB"))
    check(roundtrip(path, tmp_path), expected, ("c", "y", "x"), ["R", "G", "B"])


@pytest.mark.parametrize(
    ("image", "dims", "names"),
    [
        (skimage.data.astronaut(), ("c", "y", "x"), ["R", "G", "B"]),
        (skimage.data.brick(), ("y", "x"), None),
    ],
)
def test_jpeg_matches_decoder(tmp_path, image, dims, names):
    path = tmp_path / "photo.jpg"
    iio.imwrite(path, image, quality=85)
    decoded = iio.imread(path)  # lossy: the decoder's own output is the reference
    assert not np.array_equal(decoded, image)
    check(roundtrip(path, tmp_path, chunks=100), decoded, dims, names)


def test_spacing_can_be_given_at_ingest(tmp_path):
    path = tmp_path / "camera.png"
    iio.imwrite(path, skimage.data.camera())
    dest = tv.ingest(path, tmp_path / "out.zarr", spacing=0.5, units="micrometer")
    image = tv.open(dest)
    assert image.attrs["spacing"] == {"y": 0.5, "x": 0.5}
    assert image.attrs["units"] == {"y": "micrometer", "x": "micrometer"}


# -- laziness, single decode, pickling -----------------------------------------------------
@pytest.fixture
def count_decodes(monkeypatch):
    calls: list[str] = []
    original = iio.imread

    def imread(uri, *args, **kwargs):
        calls.append(str(uri))
        return original(uri, *args, **kwargs)

    monkeypatch.setattr(iio, "imread", imread)
    return calls


def test_open_is_lazy_and_decodes_once(tmp_path, count_decodes):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "astronaut.png"
    iio.imwrite(path, astronaut)
    with raise_if_dask_computes():
        image = read_source(path, chunks={"c": 3, "y": 100, "x": 100})
        shifted = image + 1
    assert isinstance(image.data, da.Array)
    assert isinstance(shifted.data, da.Array)
    assert count_decodes == []
    assert image.data.npartitions > 1
    # many blocks, one decode: the decoded image is kept by the source
    np.testing.assert_array_equal(image.values, astronaut.transpose(2, 0, 1))
    assert count_decodes == [str(path)]


def test_pickle_roundtrip(tmp_path, count_decodes):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "astronaut.png"
    iio.imwrite(path, astronaut)
    src = read_image(path)
    block = src[0:3, 100:300, 50:60]
    np.testing.assert_array_equal(block, astronaut[100:300, 50:60].transpose(2, 0, 1))
    clone = pickle.loads(pickle.dumps(src))
    assert isinstance(clone, ImageSource)
    assert clone._pixels is None  # the decoded image is not pickled
    assert len(pickle.dumps(src)) < 10_000
    np.testing.assert_array_equal(clone[0:3, 100:300, 50:60], block)
    assert len(count_decodes) == 2


def test_blocks_do_not_alias_the_cache(tmp_path):
    path = tmp_path / "camera.png"
    iio.imwrite(path, skimage.data.camera())
    src = read_image(path)
    block = src[0:10, 0:10]
    block[:] = 0
    np.testing.assert_array_equal(src[0:10, 0:10], skimage.data.camera()[0:10, 0:10])


# -- bad input ------------------------------------------------------------------------------
def test_animated_png_is_refused(tmp_path):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "anim.png"
    frames = [Image.fromarray(astronaut), Image.fromarray(astronaut[::-1].copy())]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"anim\.png.*2 frames.*multi-page TIFF"):
        read_image(path)


def test_truncated_png(tmp_path):
    path = tmp_path / "cut.png"
    iio.imwrite(path, skimage.data.astronaut())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut\.png.*truncated or corrupt.*re-export"):
        tv.ingest(path, tmp_path / "cut.zarr")
    assert [p.name for p in tmp_path.iterdir()] == ["cut.png"]


def test_not_an_image(tmp_path):
    path = tmp_path / "fake.jpg"
    path.write_bytes(b"not a JPEG")
    with pytest.raises(ValueError, match=r"fake\.jpg.*cannot read this PNG/JPEG.*TIFF"):
        read_image(path)
