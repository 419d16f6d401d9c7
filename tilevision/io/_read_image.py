"""PNG and JPEG: single images, decoded whole once (these formats have no random access).

PNG and JPEG cannot be read by region: a block read decodes the whole image,
which the source then keeps (one decode per process; the cache is dropped on
pickling). Only single images are supported: animated PNGs are refused (of a
multi-picture JPEG, the primary picture is read). Images too large for memory
belong in a tiled TIFF or OME-Zarr, which are read tile by tile.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from ._source import BlockSource

__all__ = ["ImageSource", "read_image"]

#: channel names per Pillow mode (palette images are decoded to their palette's mode)
MODE_CHANNELS = {
    "RGB": ["R", "G", "B"],
    "RGBA": ["R", "G", "B", "A"],
    "LA": ["L", "A"],
    "CMYK": ["C", "M", "Y", "K"],
    "YCbCr": ["Y", "Cb", "Cr"],
    "LAB": ["L", "a", "b"],
    "HSV": ["H", "S", "V"],
}

#: PNG colour type → channels, for 16-bit colour PNGs (Pillow reduces them to 8 bits)
PNG_COLOUR_CHANNELS = {2: ["R", "G", "B"], 4: ["L", "A"], 6: ["R", "G", "B", "A"]}

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _png_header(path: Path) -> tuple[int, int] | None:
    """``(bit depth, colour type)`` from a PNG's IHDR chunk; ``None`` if not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(26)
    if len(head) < 26 or not head.startswith(PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


class ImageSource(BlockSource):
    """A PNG or JPEG file: header read on open, pixels decoded whole on first read."""

    format = "image"

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__(path)
        self._pixels: np.ndarray | None = None
        try:
            mode, info = _pillow_header(self.path)  # first: it closes the file on failure
            props = iio.improps(self.path)
        except FileNotFoundError:
            raise
        except Exception as exc:  # imageio/Pillow raise a variety of types
            raise ValueError(
                f"{self.path}: cannot read this PNG/JPEG file ({exc}). The file may be "
                "truncated, corrupt or not an image; re-export it, or save the image as "
                "TIFF."
            ) from exc
        if props.is_batch or (props.n_images or 1) > 1:
            raise ValueError(
                f"{self.path}: holds {props.n_images} frames (an animated image); "
                "tilevision reads single PNG/JPEG images. Save the "
                "frames as a multi-page TIFF (tifffile.imwrite) and ingest that instead."
            )
        shape = tuple(int(n) for n in props.shape)
        dtype = np.dtype(props.dtype)
        names = MODE_CHANNELS.get(mode)
        png = _png_header(self.path)
        self._codec = "imageio"
        if png is not None and png[0] == 16 and png[1] in PNG_COLOUR_CHANNELS:
            # Pillow decodes 16-bit colour PNGs to 8 bits: decode with imagecodecs
            if importlib.util.find_spec("imagecodecs") is None:
                raise ImportError(
                    f"{self.path} is a 16-bit colour PNG, which needs the 'imagecodecs' "
                    "package to be read without loss. Install it with: "
                    "pip install 'tilevision[formats]'"
                )
            self._codec = "imagecodecs"
            names = PNG_COLOUR_CHANNELS[png[1]]
            shape, dtype = (*shape[:2], len(names)), np.dtype(np.uint16)
        if len(shape) == 2:
            self.dims = ("y", "x")
            self.channel_names = None
        elif len(shape) == 3:
            self.dims = ("c", "y", "x")
            self.channel_names = names if names and len(names) == shape[2] else None
        else:
            raise ValueError(f"{self.path}: unexpected image shape {shape}; save it as TIFF.")
        self._file_shape = shape
        self.shape = shape if len(shape) == 2 else (shape[2], shape[0], shape[1])
        self.dtype = self.original_dtype = dtype
        self.spacing = {"y": 1.0, "x": 1.0}
        self.origin = {"y": 0.0, "x": 0.0}
        self.units = {"y": None, "x": None}
        self.metadata = {
            "mode": mode,
            "file_shape": list(shape),
            "decoder": self._codec,
            **{k: info[k] for k in ("dpi", "jfif_density", "jfif_unit") if k in info},
        }
        if png is not None:
            self.metadata.update(png_bit_depth=png[0], png_colour_type=png[1])

    def _handle_attrs(self) -> tuple[str, ...]:
        return ("_pixels",)

    def _decode(self) -> np.ndarray:
        if self._codec == "imagecodecs":
            import imagecodecs

            pixels = imagecodecs.png_decode(self.path.read_bytes())
        else:
            pixels = iio.imread(self.path)
        pixels = np.asarray(pixels)
        if pixels.shape != self._file_shape:
            raise ValueError(
                f"decoded an image of shape {pixels.shape} where the header says "
                f"{self._file_shape}"
            )
        return pixels.astype(self.dtype, copy=False)

    def _read(self, key: tuple[slice, ...]) -> np.ndarray:
        if self._pixels is None:
            try:
                self._pixels = self._decode()
            except (ImportError, MemoryError):
                raise
            except Exception as exc:  # Pillow: OSError("image file is truncated"), ...
                raise ValueError(f"{type(exc).__name__}: {exc}") from exc
        if len(self.dims) == 2:
            return self._pixels[key].copy()
        c, y, x = key
        return np.moveaxis(self._pixels[y, x, c], -1, 0).copy()


def _pillow_header(path: Path) -> tuple[str, dict]:
    """Pillow mode (a palette image's palette mode) and info, from the header only."""
    from PIL import Image

    with Image.open(path) as im:
        mode = im.palette.mode if im.mode == "P" and im.palette is not None else im.mode
        return mode, dict(im.info)


def read_image(path: str | os.PathLike[str]) -> ImageSource:
    """Open a PNG or JPEG image as a block source.

    Only the header is read here. PNG and JPEG cannot be decoded by region, so
    the first block read decodes the whole image, which the source keeps for
    later reads. This suits single images that fit in memory; store large images
    as tiled TIFF or OME-Zarr instead.

    Parameters
    ----------
    path : str or path-like
        A ``.png``, ``.jpg`` or ``.jpeg`` file holding one image.

    Returns
    -------
    ImageSource
        Greyscale images have dims ``("y", "x")``; colour images ``("c", "y", "x")``
        with channel names ``R, G, B`` (``A``). Palette PNGs are decoded to RGB(A);
        16-bit PNGs stay ``uint16``. Spacing is 1 pixel with no unit: display
        resolutions (PNG ``pHYs``, JPEG density, in ``metadata``) are not physical
        pixel sizes; pass ``spacing=`` and ``units=`` to :func:`tilevision.ingest`.

    Raises
    ------
    ValueError
        For an unreadable file or one holding several frames.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np, imageio.v3 as iio
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rgb.png"
    >>> rgb = np.arange(20 * 30 * 3, dtype=np.uint8).reshape(20, 30, 3)
    >>> iio.imwrite(path, rgb)
    >>> src = read_image(path)
    >>> src.dims, src.shape, src.channel_names
    (('c', 'y', 'x'), (3, 20, 30), ['R', 'G', 'B'])
    >>> bool((src[0:3, 5:10, 0:4] == rgb[5:10, 0:4].transpose(2, 0, 1)).all())
    True
    """
    return ImageSource(path)
