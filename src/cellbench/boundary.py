"""Distances between pixel sets: surface distances (HD95, ASSD) and the Hausdorff distance.

Distances are Euclidean, in pixels, between pixel centres. A mask's surface is its pixels with a
4-neighbour outside the mask (the image border counts as outside). Nearest neighbours come from a
k-d tree over surface pixels, so cost grows with the length of the outlines, not the image size.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree


def surface_mask(mask: np.ndarray) -> np.ndarray:
    """Pixels of a boolean mask with a 4-neighbour outside it (the image border counts as outside)."""
    mask = np.asarray(mask, dtype=bool)
    inner = np.zeros_like(mask)
    inner[1:-1, 1:-1] = mask[1:-1, 1:-1] & mask[:-2, 1:-1] & mask[2:, 1:-1] & mask[1:-1, :-2] & mask[1:-1, 2:]
    return mask & ~inner


def surface(mask: np.ndarray) -> np.ndarray:
    """(N, 2) row, column coordinates of the surface pixels of a boolean mask."""
    return np.argwhere(surface_mask(mask))


def diagonal(shape: tuple[int, ...]) -> float:
    """The cap for a distance when one side is empty: the image diagonal."""
    return float(np.hypot(shape[0], shape[1]))


def surface_distances(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each surface pixel of ``a`` to the surface of ``b``, and the reverse."""
    sa, sb = surface(a), surface(b)
    return cKDTree(sb).query(sa)[0], cKDTree(sa).query(sb)[0]


def hd95_assd(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """HD95 (the larger of the two directed 95th percentiles) and the average symmetric surface
    distance; one mask empty -> both capped at the image diagonal, both empty -> NaN."""
    has_a, has_b = bool(np.any(a)), bool(np.any(b))
    if not has_a and not has_b:
        return float("nan"), float("nan")
    if not has_a or not has_b:
        cap = diagonal(np.shape(a))
        return cap, cap
    d_ab, d_ba = surface_distances(a, b)
    hd95 = max(float(np.percentile(d_ab, 95)), float(np.percentile(d_ba, 95)))
    assd = float((d_ab.sum() + d_ba.sum()) / (len(d_ab) + len(d_ba)))
    return hd95, assd


class PixelSet:
    """One object: its mask inside its bounding box, and a k-d tree over its surface pixels."""

    def __init__(self, local: np.ndarray, top: int, left: int):
        self.local, self.top, self.left = local, top, left
        self.box = np.array([top, left, top + local.shape[0] - 1, left + local.shape[1] - 1])
        self.tree = cKDTree(surface(local) + (top, left))

    @classmethod
    def from_coords(cls, coords: np.ndarray) -> PixelSet:
        top, left = coords.min(0)
        local = np.zeros(tuple(coords.max(0) - (top, left) + 1), dtype=bool)
        local[coords[:, 0] - top, coords[:, 1] - left] = True
        return cls(local, int(top), int(left))

    def directed(self, other: PixelSet) -> float:
        """max over this object's pixels of the distance to ``other`` (0 for pixels inside it)."""
        outside = self.local.copy()
        top, left = max(self.box[0], other.box[0]), max(self.box[1], other.box[1])
        bottom, right = min(self.box[2], other.box[2]), min(self.box[3], other.box[3])
        if top <= bottom and left <= right:  # the boxes overlap: clear the pixels inside ``other``
            mine = np.s_[top - self.top: bottom - self.top + 1, left - self.left: right - self.left + 1]
            theirs = other.local[top - other.top: bottom - other.top + 1, left - other.left: right - other.left + 1]
            outside[mine] &= ~theirs
        if not outside.any():
            return 0.0
        # the farthest pixel is nearly always on this object's outline: find that maximum first, then
        # only pixels farther than it (a bounded query skips the rest) can raise it
        edge = surface_mask(self.local) & outside
        best = float(other.tree.query(np.argwhere(edge) + (self.top, self.left))[0].max()) if edge.any() else 0.0
        inner = np.argwhere(outside & ~edge) + (self.top, self.left)
        if len(inner):
            far = np.isinf(other.tree.query(inner, distance_upper_bound=best + 1e-9)[0])
            if far.any():
                best = max(best, float(other.tree.query(inner[far])[0].max()))
        return best


def pixel_sets(instances: np.ndarray) -> list[PixelSet]:
    """One PixelSet per object of a sequentially labelled instance map (object k at index k - 1)."""
    return [PixelSet(instances[window] == k, window[0].start, window[1].start)
            for k, window in enumerate(ndimage.find_objects(instances), start=1) if window is not None]


def hausdorff(a: PixelSet, b: PixelSet) -> float:
    """Symmetric Hausdorff distance between the pixel sets of two objects."""
    return max(a.directed(b), b.directed(a))


def box_gap(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Lower bound of the Hausdorff distance from one bounding box to many: the gap between them."""
    dy = np.maximum(0, np.maximum(boxes[:, 0] - box[2], box[0] - boxes[:, 2]))
    dx = np.maximum(0, np.maximum(boxes[:, 1] - box[3], box[1] - boxes[:, 3]))
    return np.hypot(dy, dx)
