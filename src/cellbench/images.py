"""Reading images of any common kind into normalised 8-bit RGB, and writing PNGs."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff")


@dataclass(frozen=True)
class LoadedImage:
    """An RGB uint8 image plus how it was normalised."""

    rgb: np.ndarray
    source_mode: str
    intensity_scale: float  # 8-bit value = source value * intensity_scale


def to_rgb8(pil: Image.Image) -> LoadedImage:
    """EXIF orientation applied, alpha dropped, grey/palette expanded, 16-bit scaled to 8-bit."""
    pil = ImageOps.exif_transpose(pil)
    mode = pil.mode
    scale = 1.0
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        values = np.asarray(pil, dtype=np.float64)
        top = 65535.0 if mode.startswith("I;16") else max(float(values.max()), 1.0)
        scale = 255.0 / top
        grey = np.clip(np.rint(values * scale), 0, 255).astype(np.uint8)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    else:
        rgb = np.asarray(pil.convert("RGB"), dtype=np.uint8)
    return LoadedImage(np.ascontiguousarray(rgb), mode, scale)


def read_image(source: Path | bytes) -> LoadedImage:
    """Read an image file (or encoded bytes). Raises OSError/ValueError when unreadable."""
    handle = io.BytesIO(source) if isinstance(source, bytes) else source
    with Image.open(handle) as pil:
        pil.load()
        return to_rgb8(pil)


def read_png(path: Path) -> np.ndarray:
    """Read a PNG written by cellbench (class, instance or RGB) as stored."""
    with Image.open(path) as pil:
        return np.asarray(pil)


def write_png(array: np.ndarray, path: Path) -> None:
    """Write uint8 (grey or RGB) or uint16 (grey) arrays losslessly."""
    Image.fromarray(np.ascontiguousarray(array)).save(path, format="PNG", compress_level=1)
