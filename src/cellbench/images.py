"""Reading images into normalised 8-bit RGB, and writing PNGs.

Every image cellbench decodes (image files, LabelMe's embedded imageData and mask patches, mask
PNGs, its own outputs) goes through ``opened``: the one place that decides which formats are
decoded (PNG, JPEG, BMP, TIFF: never EPS/PDF, which Pillow would hand to Ghostscript, nor the
other formats Pillow knows, whose parsers annotation data has no reason to reach) and how large
an image may be (``max_pixels``, checked from the header before any pixel is decoded).
"""

from __future__ import annotations

import io
import logging
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")
READ_FORMATS = ("PNG", "JPEG", "BMP", "TIFF")
MAX_PIXELS = 100_000_000  # data.max_pixels' default in config.schema.yaml, for callers without a config

# Leading bytes of formats people plausibly save by mistake: named in the message, never decoded.
_SIGNATURES = ((b"GIF8", "GIF"), (b"%PDF", "PDF"), (b"%!PS", "PostScript/EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"),
               (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"), (b"\x00\x00\x01\x00", "ICO"),
               (b"8BPS", "Photoshop PSD"), (b"<svg", "SVG"), (b"<?xml", "XML/SVG"), (b"{", "JSON"), (b"DICM", "DICOM"))
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, IndexError, TypeError, KeyError,
                  ZeroDivisionError, MemoryError, Image.DecompressionBombError)


class ImageReadError(ValueError):
    """An image that is not decoded (format not read, too large, or damaged); ``hint`` says what to do."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True)
class LoadedImage:
    """An RGB uint8 image plus how it was normalised."""

    rgb: np.ndarray
    source_mode: str
    intensity_scale: float  # 8-bit value = source value * intensity_scale


# Pillow's own decompression-bomb limit (a warning, then DecompressionBombError at twice its
# MAX_IMAGE_PIXELS) would pre-empt data.max_pixels: it is switched off while any of our decodes
# runs, and put back when the last one ends (a count, so that threads do not restore each other's None).
_pillow_limit_lock = threading.Lock()
_pillow_limit_users = 0
_pillow_limit_saved: int | None = None


@contextmanager
def _pillow_limit_off() -> Iterator[None]:
    global _pillow_limit_users, _pillow_limit_saved
    with _pillow_limit_lock:
        if _pillow_limit_users == 0:
            _pillow_limit_saved = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None
        _pillow_limit_users += 1
    try:
        yield
    finally:
        with _pillow_limit_lock:
            _pillow_limit_users -= 1
            if _pillow_limit_users == 0:
                Image.MAX_IMAGE_PIXELS = _pillow_limit_saved


def _looks_like(head: bytes) -> str:
    for signature, name in _SIGNATURES:
        if head.startswith(signature):
            return f" (it looks like {name})"
    return ""


def _unsupported(what: str, head: bytes, formats: tuple[str, ...]) -> ImageReadError:
    names = formats[0] if len(formats) == 1 else f"{', '.join(formats[:-1])} or {formats[-1]}"
    return ImageReadError(f"{what} cannot be read: it is not a {names} image{_looks_like(head)}",
                          f"cellbench reads only {names.replace(' or ', ' and ')}; convert it, e.g. to PNG")


def _reason(err: BaseException) -> str:
    """The error's text, with its type where the text alone is cryptic (a KeyError's is just the key)."""
    text = str(err)
    text = text if len(text) <= 200 else text[:200] + "..."
    return text if isinstance(err, (OSError, ValueError)) and text else f"{type(err).__name__}: {text}"


@contextmanager
def opened(source: Path | bytes, max_pixels: int | None = MAX_PIXELS, what: str = "image",
           formats: tuple[str, ...] = READ_FORMATS) -> Iterator[Image.Image]:
    """The opened (not yet decoded) image, after its format and header size are checked.

    Pixels are decoded when the caller first touches them (load, convert, asarray), inside this
    context: any decoding failure there becomes an ImageReadError too. ``max_pixels`` None: no
    limit (cellbench's own outputs). Raises ImageReadError (a ValueError) naming ``what``.
    """
    if isinstance(source, bytes):
        handle, head = io.BytesIO(source), source[:16]
    else:
        handle, head = source, b""
    with _pillow_limit_off():
        try:
            pil = Image.open(handle, formats=list(formats))
        except UnidentifiedImageError:
            if not head:
                try:
                    with open(source, "rb") as file:
                        head = file.read(16)
                except OSError:
                    pass
            raise _unsupported(what, head, formats) from None
        except _DECODE_ERRORS as err:
            raise ImageReadError(f"{what} cannot be read ({_reason(err)})") from None
        with pil:
            # Pillow's JPEG opener returns camera JPEGs with a second picture as MPO: still JPEG
            if pil.format not in formats and not (pil.format == "MPO" and "JPEG" in formats):
                raise _unsupported(what, head, formats)
            width, height = pil.size
            if max_pixels is not None and width * height > max_pixels:
                raise ImageReadError(
                    f"{what} is {width} x {height} = {width * height} pixels, more than data.max_pixels = {max_pixels}",
                    "raise data.max_pixels if the image is genuine; a small file that declares a huge size is a "
                    "decompression bomb")
            try:
                yield pil
            except ImageReadError:
                raise
            except _DECODE_ERRORS as err:
                raise ImageReadError(f"{what} cannot be read ({_reason(err)})") from None


def to_rgb8(pil: Image.Image, what: str = "image") -> LoadedImage:
    """EXIF orientation applied, alpha dropped, grey/palette expanded, 16-bit scaled to 8-bit."""
    pil = ImageOps.exif_transpose(pil)
    mode = pil.mode
    scale = 1.0
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(pil, dtype=np.float64)
        if mode == "F" and values.size and not np.isfinite(values).any():
            log.warning("%s holds no finite value (every pixel NaN or infinite): it is read as black", what)
        values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
        top = 65535.0 if mode.startswith("I;16") else max(float(values.max(initial=0.0)), 1.0)
        scale = 255.0 / top
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    else:
        rgb = np.asarray(pil.convert("RGB"), dtype=np.uint8)
    return LoadedImage(np.ascontiguousarray(rgb), mode, scale)


def read_image(source: Path | bytes, max_pixels: int | None = MAX_PIXELS, what: str = "image") -> LoadedImage:
    """Read an image file (or encoded bytes) as 8-bit RGB. Raises ImageReadError (a ValueError)."""
    with opened(source, max_pixels, what) as pil:
        return to_rgb8(pil, what)


def image_size(source: Path | bytes, max_pixels: int | None = MAX_PIXELS, what: str = "image") -> tuple[int, int]:
    """(width, height) from the header, without decoding the pixels."""
    with opened(source, max_pixels, what) as pil:
        return pil.size


def read_png(path: Path) -> np.ndarray:
    """Read a PNG written by cellbench (class, instance or RGB) as stored."""
    with opened(path, None, f"PNG {path}", formats=("PNG",)) as pil:
        return np.asarray(pil)


def write_png(array: np.ndarray, path: Path) -> None:
    """Write uint8 (grey or RGB) or uint16 (grey) arrays losslessly."""
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", compress_level=1)


def read_labels(path: Path, max_pixels: int | None = MAX_PIXELS, what: str = "label image") -> np.ndarray:
    """A single-channel integer image (8, 16 or 32-bit PNG or TIFF) as stored, e.g. object ids.
    Raises ImageReadError for colour, floating-point or negative values."""
    with opened(path, max_pixels, what) as pil:
        mode = pil.mode
        if mode == "P":
            pil = pil.convert("L")  # a palette index is the value stored
        values = np.asarray(pil)
    if values.ndim != 2:
        raise ImageReadError(f"{what} has {values.shape[2]} channels ({mode}), expected one value per pixel",
                             "save it as a single-channel 8- or 16-bit PNG or TIFF")
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.dtype.kind not in "iu":
        raise ImageReadError(f"{what} holds {values.dtype} values ({mode}), expected whole numbers",
                             "object ids are integers: save it as 8- or 16-bit")
    if values.dtype.kind == "i" and values.size and values.min() < 0:
        raise ImageReadError(f"{what} holds negative values ({int(values.min())})", "object ids are 0 or more")
    return values
