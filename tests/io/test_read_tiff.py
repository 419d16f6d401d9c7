"""TIFF reader: pixels, dims and geometry against tifffile's own writer and reader."""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import dask.array as da
import nibabel
import numpy as np
import pytest
import skimage.data
import tifffile
import tifffile.zarr

import tilevision as tv
from tilevision.io import read_source
from tilevision.io._read_tiff import TiffSource, _level_factor, read_tiff
from tilevision.testing import raise_if_dask_computes

DATA = Path(tv.__file__).parent / "datasets" / "data"
CHUNK_KEY = re.compile(r"^(\d+/)?\d+(\.\d+)*$")


@pytest.fixture(scope="module")
def ct() -> np.ndarray:
    """The bundled CT volume as (z, y, x) int16 (NIfTI stores (x, y, z))."""
    image = nibabel.load(DATA / "ct-organs" / "example_ct_sm.nii.gz")
    volume = np.asarray(image.dataobj).transpose(2, 1, 0)
    assert volume.dtype == np.int16
    return np.ascontiguousarray(volume)


def roundtrip(path: Path, tmp_path: Path, **kwargs) -> tuple:
    """Ingest ``path`` and open the result; also open it directly as a source."""
    dest = tv.ingest(path, tmp_path / "out.zarr", **kwargs)
    opts = {k: v for k, v in kwargs.items() if k in ("series", "level")}
    return tv.open(dest), read_source(path, **opts)


def check(images, expected: np.ndarray, dims, spacing=None, units=None) -> None:
    for img in images:
        assert img.dims == tuple(dims)
        assert img.dtype == expected.dtype
        np.testing.assert_array_equal(img.values, expected)
        spatial = [d for d in dims if d != "c"]
        assert img.attrs["spacing"] == (spacing or dict.fromkeys(spatial, 1.0))
        assert img.attrs["units"] == (units or dict.fromkeys(spatial))


# -- layouts ----------------------------------------------------------------------------
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiled_2d(tmp_path, compression):
    camera = skimage.data.camera()
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, camera, tile=(64, 128), compression=compression)
    images = roundtrip(path, tmp_path, chunks=200)
    check(images, camera, ("y", "x"))
    assert images[0].attrs["source_format"] == "tiff"
    assert images[0].attrs["source_metadata"]["read_mode"] == "tiles"
    # blocks that straddle tiles
    odd = read_source(path, chunks={"y": 100, "x": 70})
    assert odd.data.chunks[1][0] == 70
    np.testing.assert_array_equal(odd.values, camera)


@pytest.mark.parametrize(("compression", "mode"), [(None, "memmap"), ("zlib", "strips")])
def test_strips_2d(tmp_path, compression, mode):
    brick = skimage.data.brick()
    path = tmp_path / "brick.tif"
    tifffile.imwrite(path, brick, rowsperstrip=16, compression=compression)
    src = read_tiff(path)
    assert src.metadata["read_mode"] == mode
    # strips span the width: ingest reads whole rows
    assert src.whole_extent_dims == (() if mode == "memmap" else ("x",))
    check(roundtrip(path, tmp_path, chunks=100), brick, ("y", "x"))
    np.testing.assert_array_equal(src[37:141, 250:511], brick[37:141, 250:511])


@pytest.mark.parametrize("planarconfig", ["contig", "separate"])
@pytest.mark.parametrize("tile", [None, (128, 128)])
def test_rgb(tmp_path, planarconfig, tile):
    astronaut = skimage.data.astronaut()
    data = astronaut if planarconfig == "contig" else astronaut.transpose(2, 0, 1)
    path = tmp_path / "astronaut.tif"
    tifffile.imwrite(path, data, photometric="rgb", planarconfig=planarconfig, tile=tile)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == ("YXS" if planarconfig == "contig" else "SYX")
    images = roundtrip(path, tmp_path, chunks=200)
    check(images, astronaut.transpose(2, 0, 1), ("c", "y", "x"))
    for img in images:
        assert list(img.c.values) == ["R", "G", "B"]


def test_rgba_channel_names(tmp_path):
    astronaut = skimage.data.astronaut()
    rgba = np.dstack([astronaut, skimage.data.camera()])
    path = tmp_path / "rgba.tif"
    tifffile.imwrite(path, rgba, photometric="rgb", extrasamples=["unassalpha"])
    src = read_tiff(path)
    assert src.channel_names == ["R", "G", "B", "A"]
    np.testing.assert_array_equal(read_source(path).values, rgba.transpose(2, 0, 1))


@pytest.mark.parametrize(
    ("kwargs", "axes"),
    [
        ({}, "QYX"),  # tifffile's shaped series, contiguous: memory-mapped
        ({"metadata": None}, "IYX"),  # plain pages, no shape metadata
        ({"compression": "zlib", "rowsperstrip": 32}, "QYX"),  # compressed strips
        ({"tile": (48, 64), "compression": "zlib"}, "QYX"),  # tiled pages
    ],
)
def test_multipage_zyx(tmp_path, ct, kwargs, axes):
    path = tmp_path / "ct.tif"
    tifffile.imwrite(path, ct, photometric="minisblack", **kwargs)
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == axes
        assert len(tif.pages) == ct.shape[0]
    images = roundtrip(path, tmp_path, chunks=(16, 48, 64))
    check(images, ct, ("z", "y", "x"))
    src = read_tiff(path)
    np.testing.assert_array_equal(src[3:17, 20:90, 1:121], ct[3:17, 20:90, 1:121])


# -- geometry ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("unit", "expected"),
    [(None, "micrometer"), ("µm", "micrometer"), ("nm", "nanometer"), ("mm", "millimeter")],
)
def test_ome_physical_sizes(tmp_path, ct, unit, expected):
    metadata = {"axes": "ZYX", "PhysicalSizeZ": 2.5, "PhysicalSizeY": 0.75, "PhysicalSizeX": 0.5}
    if unit is not None:  # no unit: the OME default, micrometre
        metadata.update({f"PhysicalSize{a}Unit": unit for a in "ZYX"})
    path = tmp_path / "ct.ome.tif"
    tifffile.imwrite(path, ct, metadata=metadata, tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_ome
        assert ("PhysicalSizeXUnit" in tif.ome_metadata) == (unit is not None)
    images = roundtrip(path, tmp_path, chunks=32)
    check(
        images,
        ct,
        ("z", "y", "x"),
        spacing={"z": 2.5, "y": 0.75, "x": 0.5},
        units=dict.fromkeys("zyx", expected),
    )
    assert images[0].attrs["source_metadata"]["spacing_from"] == "ome"


def test_ome_channels_and_names(tmp_path, ct):
    data = np.stack([ct, ct[::-1]])  # (c, z, y, x)
    path = tmp_path / "two.ome.tif"
    metadata = {
        "axes": "CZYX",
        "Channel": {"Name": ["CT", "flipped"]},
        "PhysicalSizeX": 1.5,
        "PhysicalSizeY": 1.5,
    }
    tifffile.imwrite(path, data, metadata=metadata)
    images = roundtrip(path, tmp_path, chunks=64)
    check(
        images,
        data,
        ("c", "z", "y", "x"),
        spacing={"z": 1.0, "y": 1.5, "x": 1.5},
        units={"z": None, "y": "micrometer", "x": "micrometer"},
    )
    for img in images:
        assert list(img.c.values) == ["CT", "flipped"]


@pytest.mark.parametrize("unit", ["um", "micron", "\\u00B5m"])
def test_imagej_hyperstack(tmp_path, ct, unit):
    data = np.stack([ct, ct // 2], axis=1)  # ImageJ order (z, c, y, x)
    path = tmp_path / "stack.tif"
    tifffile.imwrite(
        path,
        data,
        imagej=True,
        resolution=(1 / 0.25, 1 / 0.5),  # pixels per unit in x, y
        metadata={"axes": "ZCYX", "spacing": 2.0, "unit": unit},
    )
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej
        assert tif.series[0].axes == "ZCYX"
    images = roundtrip(path, tmp_path, chunks=32)
    check(
        images,
        data.transpose(1, 0, 2, 3),
        ("c", "z", "y", "x"),
        spacing={"z": 2.0, "y": 0.5, "x": 0.25},
        units=dict.fromkeys("zyx", "micrometer"),
    )


@pytest.mark.parametrize(("resolution", "unit"), [(100, "CENTIMETER"), (254, "INCH")])
def test_resolution_tags(tmp_path, resolution, unit):
    camera = skimage.data.camera()
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, camera, resolution=(resolution, resolution), resolutionunit=unit)
    # 100 px/cm and 254 px/inch are both 100 µm pixels
    check(
        roundtrip(path, tmp_path),
        camera,
        ("y", "x"),
        spacing={"y": 100.0, "x": 100.0},
        units={"y": "micrometer", "x": "micrometer"},
    )


def test_resolution_without_unit_is_ignored(tmp_path):
    camera = skimage.data.camera()
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, camera, resolution=(4, 4), resolutionunit="NONE")
    src = read_tiff(path)
    assert src.spacing == {"y": 1.0, "x": 1.0}
    assert src.units == {"y": None, "x": None}


def test_aperio_mpp(tmp_path):
    astronaut = skimage.data.astronaut()
    path = tmp_path / "slide.svs"
    description = (
        "Aperio Image Library v12.0.15 \n512x512 [0,0 512x512] (256x256) JPEG/RGB Q=70"
        "|AppMag = 20|MPP = 0.4990"
    )
    tifffile.imwrite(path, astronaut, photometric="rgb", tile=(256, 256),
                     description=description, metadata=None)  # fmt: skip
    with tifffile.TiffFile(path) as tif:
        assert tif.is_svs
    check(
        roundtrip(path, tmp_path),
        astronaut.transpose(2, 0, 1),
        ("c", "y", "x"),
        spacing={"y": 0.499, "x": 0.499},
        units={"y": "micrometer", "x": "micrometer"},
    )


@pytest.mark.parametrize(
    ("base", "size", "factor"), [(512, 256, 2.0), (513, 256, 2.0), (513, 257, 2.0), (10, 4, 2.5)]
)
def test_level_factor(base, size, factor):
    assert _level_factor(base, size) == factor


def test_bigtiff(tmp_path, ct):
    path = tmp_path / "ct.btf"
    tifffile.imwrite(path, ct, bigtiff=True, tile=(32, 32), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_bigtiff
    images = roundtrip(path, tmp_path, chunks=64)
    check(images, ct, ("z", "y", "x"))
    assert images[0].attrs["source_metadata"]["bigtiff"] is True


def pyramid_ome(path: Path) -> list[np.ndarray]:
    """An OME-TIFF holding an RGB pyramid (series 0) and a greyscale image (series 1)."""
    astronaut = skimage.data.astronaut()
    levels = [astronaut, astronaut[::2, ::2], astronaut[::4, ::4]]
    opts = {"tile": (64, 64), "photometric": "rgb", "compression": "zlib"}
    with tifffile.TiffWriter(path) as tw:
        meta = {"axes": "YXS", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5}
        tw.write(levels[0], subifds=2, metadata=meta, **opts)
        for level in levels[1:]:
            tw.write(level, subfiletype=1, **opts)
        meta = {"axes": "YX", "PhysicalSizeX": 2.0, "PhysicalSizeY": 2.0}
        tw.write(skimage.data.camera(), metadata=meta, tile=(64, 64))
    return levels


@pytest.mark.parametrize("level", [0, 1, 2])
def test_pyramid_level(tmp_path, level):
    path = tmp_path / "slide.ome.tif"
    levels = pyramid_ome(path)
    factor = 2**level
    images = roundtrip(path, tmp_path, level=level)
    check(
        images,
        levels[level].transpose(2, 0, 1),
        ("c", "y", "x"),
        spacing={"y": 0.5 * factor, "x": 0.5 * factor},
        units={"y": "micrometer", "x": "micrometer"},
    )
    # pixel centres of level L sit (L-1)/2 level-0 pixels in (as in NGFF pyramids)
    assert images[0].attrs["origin"] == dict.fromkeys("yx", (factor - 1) * 0.5 / 2)


def test_second_series(tmp_path):
    path = tmp_path / "slide.ome.tif"
    pyramid_ome(path)
    camera = skimage.data.camera()
    images = roundtrip(path, tmp_path, series=1)
    check(
        images,
        camera,
        ("y", "x"),
        spacing={"y": 2.0, "x": 2.0},
        units={"y": "micrometer", "x": "micrometer"},
    )
    with pytest.raises(ValueError, match=r"series=2 does not exist.*2 image series.*series="):
        read_tiff(path, series=2)
    with pytest.raises(ValueError, match=r"level=3 does not exist.*3 pyramid level.*level="):
        read_tiff(path, level=3)


# -- bad input --------------------------------------------------------------------------
def test_time_series_is_refused(tmp_path):
    path = tmp_path / "movie.tif"
    tifffile.imwrite(path, np.zeros((3, 4, 16, 16), np.uint8), imagej=True,
                     metadata={"axes": "TZYX"})  # fmt: skip
    with pytest.raises(ValueError, match=r"'TZYX'.*3 time points.*single time point"):
        read_tiff(path)
    with pytest.raises(ValueError, match="time points"):
        tv.ingest(path, tmp_path / "movie.zarr")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["movie.tif"]


def test_single_time_point_is_squeezed(tmp_path, ct):
    path = tmp_path / "one.tif"
    tifffile.imwrite(path, ct[None], imagej=True, metadata={"axes": "TZYX"})
    check([read_source(path)], ct, ("z", "y", "x"))


def test_ambiguous_axes_are_refused(tmp_path):
    path = tmp_path / "qq.tif"
    tifffile.imwrite(path, np.zeros((2, 3, 16, 16), np.uint8), photometric="minisblack")
    with tifffile.TiffFile(path) as tif:
        assert tif.series[0].axes == "QQYX"
    with pytest.raises(ValueError, match=r"'QQYX'.*become dim 'z'.*metadata=\{'axes'"):
        read_tiff(path)


def truncate(path: Path) -> None:
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size // 2)


@pytest.mark.parametrize(
    ("ndim", "kwargs", "why"),
    [
        (2, {"tile": (64, 64), "compression": "zlib"}, "image data up to byte"),
        (2, {"rowsperstrip": 16, "compression": "zlib"}, "image data up to byte"),
        (2, {}, "image data should end at byte"),  # contiguous, memory-mapped
        (3, {"tile": (64, 64), "compression": "zlib"}, "pages are incomplete"),
        (3, {"rowsperstrip": 16}, "pages are incomplete"),
        (3, {}, "pages are incomplete"),
        (3, {"metadata": None}, "pages are incomplete"),  # plain pages: the later ones are gone
    ],
)
def test_truncated_file(tmp_path, ct, ndim, kwargs, why):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, ct if ndim == 3 else ct[12], photometric="minisblack", **kwargs)
    truncate(path)
    with pytest.raises(ValueError, match=rf"cut\.tif.*{why}.*truncated or corrupt.*re-export"):
        tv.ingest(path, tmp_path / "cut.zarr")
    # nothing left behind: no destination, no partial folder
    assert [p.name for p in tmp_path.iterdir()] == ["cut.tif"]


def test_corrupt_tile_fails_while_reading(tmp_path):
    camera = skimage.data.camera()
    path = tmp_path / "bad.tif"
    tifffile.imwrite(path, camera, tile=(64, 64), compression="zlib")
    with tifffile.TiffFile(path) as tif:
        offset = tif.pages[0].dataoffsets[10]
    with open(path, "r+b") as fh:  # overwrite one tile's zlib stream with junk
        fh.seek(offset)
        fh.write(b"\xff" * 32)
    src = read_tiff(path)  # the header is fine
    np.testing.assert_array_equal(src[0:64, 0:128], camera[0:64, 0:128])  # tiles 0, 1
    with pytest.raises(ValueError, match=r"bad\.tif.*truncated or corrupt.*re-export"):
        src[64:128, 128:192]  # tile 10
    with pytest.raises(ValueError, match=r"bad\.tif.*truncated or corrupt"):
        tv.ingest(path, tmp_path / "bad.zarr", chunks=128)
    assert [p.name for p in tmp_path.iterdir()] == ["bad.tif"]


def test_not_a_tiff(tmp_path):
    path = tmp_path / "fake.tif"
    path.write_bytes(b"this is not a TIFF file at all")
    with pytest.raises(ValueError, match=r"fake\.tif.*cannot read this TIFF.*re-export"):
        read_tiff(path)


# -- tile-wise reading, laziness, pickling ----------------------------------------------
@pytest.fixture
def count_chunk_reads(monkeypatch):
    """Record the chunk keys (tiles/strips) that tifffile's Zarr store decodes."""
    keys: list[str] = []
    original = tifffile.zarr.ZarrTiffStore.get

    async def get(self, key, *args, **kwargs):
        if CHUNK_KEY.match(key):
            keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(tifffile.zarr.ZarrTiffStore, "get", get)
    return keys


def test_region_decodes_only_its_tiles(tmp_path, count_chunk_reads):
    image = (np.arange(4096 * 4096, dtype=np.uint32) % 65521).astype(np.uint16)
    image = image.reshape(4096, 4096)
    path = tmp_path / "large.tif"
    tifffile.imwrite(path, image, tile=(256, 256))  # 16 x 16 tiles
    src = read_tiff(path)
    assert count_chunk_reads == []  # opening decodes nothing
    block = src[1000:1100, 2000:2100]
    np.testing.assert_array_equal(block, image[1000:1100, 2000:2100])
    # rows 1000-1099 → tile rows 3, 4; columns 2000-2099 → tile columns 7, 8
    assert sorted(count_chunk_reads) == ["3.7", "3.8", "4.7", "4.8"]
    count_chunk_reads.clear()
    np.testing.assert_array_equal(src[0:10, 4000:4096], image[0:10, 4000:4096])
    assert count_chunk_reads == ["0.15"]


def test_region_decodes_only_its_strips(tmp_path, count_chunk_reads):
    brick = skimage.data.brick()
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, brick, rowsperstrip=8, compression="zlib")  # 64 strips
    src = read_tiff(path)
    np.testing.assert_array_equal(src[100:120, 10:20], brick[100:120, 10:20])
    assert sorted(count_chunk_reads) == ["12.0", "13.0", "14.0"]


def test_opening_is_lazy(tmp_path, count_chunk_reads):
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, skimage.data.camera(), tile=(64, 64), compression="zlib")
    with raise_if_dask_computes():
        image = read_source(path, chunks={"y": 128, "x": 128})
        sub = image[:, 100:200] + 1
    assert isinstance(image.data, da.Array)
    assert isinstance(sub.data, da.Array)
    assert count_chunk_reads == []


@pytest.mark.parametrize("compression", [None, "zlib"])  # memory map, tiles
def test_pickle_roundtrip(tmp_path, compression):
    camera = skimage.data.camera()
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, camera, tile=None if compression is None else (64, 64),
                     compression=compression)  # fmt: skip
    src = read_tiff(path)
    before = src[10:200, 300:500]  # opens the file
    clone = pickle.loads(pickle.dumps(src))
    assert isinstance(clone, TiffSource)
    assert clone._array is None  # handles were dropped
    assert clone._mmap is None
    np.testing.assert_array_equal(clone[10:200, 300:500], before)
    np.testing.assert_array_equal(before, camera[10:200, 300:500])
    src.close()  # reopened lazily
    np.testing.assert_array_equal(src[0:5, 0:5], camera[0:5, 0:5])
    src.close()
    clone.close()


def test_blocks_are_copies(tmp_path):
    camera = skimage.data.camera()
    path = tmp_path / "camera.tif"
    tifffile.imwrite(path, camera)
    src = read_tiff(path)
    assert src.metadata["read_mode"] == "memmap"
    block = src[0:10, 0:10]
    assert not isinstance(block, np.memmap)
    assert not np.shares_memory(block, src._mmap)


def test_default_display_dpi_is_not_a_pixel_size(tmp_path):
    path = tmp_path / "screen.tif"
    tifffile.imwrite(path, np.zeros((8, 8), "uint8"), resolution=(72, 72), resolutionunit="INCH")
    image = tv.io.read_source(path)
    assert image.attrs["spacing"] == {"y": 1.0, "x": 1.0}
    assert image.attrs["units"] == {"y": None, "x": None}
