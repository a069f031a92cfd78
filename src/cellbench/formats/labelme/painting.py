"""Drawing LabelMe shapes exactly as LabelMe does, into a small window around each shape.

LabelMe (``labelme.utils.shape_to_mask``) draws every shape with PIL on a canvas the size of the
image: polygons and oriented rectangles with their outline, rectangles with both corners
inclusive, circles from the centre and a rim point, lines and linestrips 10 px wide, points as
discs of radius 5; a mask shape is a PNG patch placed at its first point. We draw the same
primitives on a canvas that only covers the shape, shifted by an even number of pixels: PIL's
rounding (half to even) is unchanged by even shifts, so the pixels are the same and a 300-shape
image costs 300 small canvases instead of 300 full ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

LINE_WIDTH = 10  # LabelMe draws line and linestrip shapes 10 px wide
POINT_RADIUS = 5  # and points as discs of radius 5
_MARGIN = 2  # pixels of slack around the drawn extent


@dataclass(frozen=True)
class Footprint:
    """The pixels of one shape: a boolean window whose corner lies at (top, left) of the image."""

    mask: np.ndarray
    top: int
    left: int

    @property
    def window(self) -> tuple[slice, slice]:
        height, width = self.mask.shape
        return slice(self.top, self.top + height), slice(self.left, self.left + width)

    @property
    def area(self) -> int:
        return int(np.count_nonzero(self.mask))

    def contains(self, y: int, x: int) -> bool:
        y, x = y - self.top, x - self.left
        return 0 <= y < self.mask.shape[0] and 0 <= x < self.mask.shape[1] and bool(self.mask[y, x])

    def centre(self) -> tuple[int, int] | None:
        """Rounded centroid (row, column), or None for an empty footprint."""
        rows, columns = self.mask.sum(axis=1), self.mask.sum(axis=0)  # the mean of the pixels' indices,
        n = int(rows.sum())  # from the counts per row and column (four times faster than np.nonzero)
        if not n:
            return None
        y = int(rows @ np.arange(len(rows))) / n
        x = int(columns @ np.arange(len(columns))) / n
        return int(round(y)) + self.top, int(round(x)) + self.left

    def full(self, height: int, width: int) -> np.ndarray:
        """The footprint on an image-sized canvas."""
        out = np.zeros((height, width), dtype=bool)
        out[self.window] = self.mask
        return out


def _empty() -> Footprint:
    return Footprint(np.zeros((0, 0), dtype=bool), 0, 0)


def _even_floor(value: float) -> int:
    corner = max(math.floor(value), 0)
    return corner - corner % 2


def _window(xs: list[float], ys: list[float], reach: float, height: int, width: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a canvas covering the points plus ``reach``, clipped to the image."""
    left, top = _even_floor(min(xs) - reach - _MARGIN), _even_floor(min(ys) - reach - _MARGIN)
    right = min(max(math.ceil(max(xs) + reach) + _MARGIN + 1, 0), width)
    bottom = min(max(math.ceil(max(ys) + reach) + _MARGIN + 1, 0), height)
    return left, top, right, bottom


def _mask_patch(patch: np.ndarray, corner: tuple[float, float], height: int, width: int) -> Footprint:
    x0, y0 = int(corner[0]), int(corner[1])  # LabelMe truncates the corner to integers
    top, left = max(y0, 0), max(x0, 0)
    bottom, right = min(y0 + patch.shape[0], height), min(x0 + patch.shape[1], width)
    if bottom <= top or right <= left:
        return _empty()
    return Footprint(patch[top - y0: bottom - y0, left - x0: right - x0], top, left)


def rasterise(shape_type: str, points: list[tuple[float, float]], height: int, width: int,
              patch: np.ndarray | None = None) -> Footprint:
    """Pixels of one LabelMe shape on a ``height`` x ``width`` image, as LabelMe draws them."""
    if shape_type == "mask":
        return _mask_patch(patch, points[0], height, width)
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    if shape_type == "circle":
        (cx, cy), (px, py) = points
        reach = math.sqrt((cx - px) ** 2 + (cy - py) ** 2)
        corners = [(cx - reach, cy - reach), (cx + reach, cy + reach)]
    elif shape_type == "point":
        (cx, cy), reach = points[0], POINT_RADIUS
        corners = [(cx - reach, cy - reach), (cx + reach, cy + reach)]
    elif shape_type in ("line", "linestrip"):
        reach = LINE_WIDTH
    else:
        reach = 0.0
    left, top, right, bottom = _window(xs, ys, reach, height, width)
    if right <= left or bottom <= top:
        return _empty()
    canvas = Image.new("L", (right - left, bottom - top), 0)
    draw = ImageDraw.Draw(canvas)
    if shape_type in ("circle", "point"):
        draw.ellipse([(x - left, y - top) for x, y in corners], outline=1, fill=1)
    elif shape_type == "rectangle":
        (x0, y0), (x1, y1) = points
        draw.rectangle([(min(x0, x1) - left, min(y0, y1) - top), (max(x0, x1) - left, max(y0, y1) - top)],
                       outline=1, fill=1)
    else:
        shifted = [(x - left, y - top) for x, y in points]
        if shape_type in ("line", "linestrip"):
            draw.line(xy=shifted, fill=1, width=LINE_WIDTH)
        else:  # polygon, oriented_rectangle
            draw.polygon(xy=shifted, outline=1, fill=1)
    return Footprint(np.asarray(canvas).view(bool), top, left)
