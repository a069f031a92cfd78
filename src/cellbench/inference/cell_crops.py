"""Square crops centred on one nucleus, resized to a network's input, and their way back.

The two-stage nucleus-guided method sees every cell through crops whose side is a multiple of its
nucleus's size. Training and inference cut them with the same functions, and a prediction made on a
crop is pasted back exactly where the crop came from (parts outside the image are dropped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CropBox:
    """A square of ``side`` pixels whose top-left corner is (top, left) in image coordinates; it may
    reach outside the image."""

    top: int
    left: int
    side: int

    @classmethod
    def around(cls, centre: tuple[float, float], nucleus_area: float, scale: float) -> CropBox:
        """The crop of side ``scale`` x the nucleus's size (the square root of its area), centred on
        ``centre`` (row, column)."""
        side = max(4, int(round(scale * math.sqrt(max(nucleus_area, 1.0)))))
        return cls(int(round(centre[0])) - side // 2, int(round(centre[1])) - side // 2, side)

    def overlap(self, height: int, width: int) -> tuple[slice, slice, slice, slice] | None:
        """(image rows, image columns, crop rows, crop columns) of the part inside the image, or None."""
        top, bottom = max(self.top, 0), min(self.top + self.side, height)
        left, right = max(self.left, 0), min(self.left + self.side, width)
        if top >= bottom or left >= right:
            return None
        return (slice(top, bottom), slice(left, right),
                slice(top - self.top, bottom - self.top), slice(left - self.left, right - self.left))


def cut(array: np.ndarray, box: CropBox, fill=0) -> np.ndarray:
    """The crop of an (H, W) or (H, W, C) array; outside the image it is ``fill``."""
    out = np.full((box.side, box.side, *array.shape[2:]), fill, dtype=array.dtype)
    parts = box.overlap(*array.shape[:2])
    if parts is not None:
        rows, cols, crop_rows, crop_cols = parts
        out[crop_rows, crop_cols] = array[rows, cols]
    return out


def resize(crop: torch.Tensor, size: int, mode: str = "bilinear") -> torch.Tensor:
    """(C, s, s) to (C, size, size): bilinear (antialiased when shrinking) for pictures and soft
    masks, nearest for labels."""
    if crop.shape[-1] == size:
        return crop
    if mode == "nearest":
        return F.interpolate(crop[None].float(), size=(size, size), mode="nearest-exact")[0].to(crop.dtype)
    shrink = crop.shape[-1] > size
    return F.interpolate(crop[None].float(), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=shrink)[0]


def paste(values: torch.Tensor, box: CropBox, height: int, width: int
          ) -> tuple[tuple[slice, slice], torch.Tensor] | None:
    """A (size, size) prediction made on ``box``'s crop, brought back to the crop's side: (image rows,
    image columns) it covers and the values there; None when the crop lies outside the image."""
    parts = box.overlap(height, width)
    if parts is None:
        return None
    rows, cols, crop_rows, crop_cols = parts
    full = resize(values[None], box.side)[0] if values.shape[-1] != box.side else values
    return (rows, cols), full[crop_rows, crop_cols]
