"""Exact Hausdorff distances between many pairs of objects of two instance maps (GlaS object Hausdorff).

Objects are pixel sets of a map labelled 1..n; distances are Euclidean between pixel centres. The
directed distance h(A, B) is the largest distance from a pixel of A to the nearest pixel of B. For
a pixel outside B, the nearest pixel of B lies on B's surface (a pixel of B with a 4-neighbour
outside B), so one k-d tree over the surfaces of all objects of a map answers every query; each
object's copy is shifted far to the right of the others, so a query for object b only finds b.

Which pixels of A can be the farthest from B? Let x be a pixel of A outside B whose 8 neighbours
all lie in A, and s one of the 8 steps with s.x + |s|^2/2 > max over B of s.q. Then for every
pixel q of B, |x + s - q|^2 = |x - q|^2 + 2 s.(x - q) + |s|^2 > |x - q|^2: the neighbour x + s is
farther from B than x and, for the same reason, outside B. Walking on along s, each pixel is
farther still, until the walk leaves A; its last pixel has a neighbour outside A. So the maximum
is reached on A's rim (pixels with an 8-neighbour outside A), or at a pixel that no step moves
away from B: inside B's octagon hull, shrunk by half a step (for integer x: x.s <= max s.q - 1
for all 8 steps). Only those pixels are looked at: A's rim outside B, and the pixels of the
"hull gaps" of B (its shrunk octagon less B itself) that lie inside A and off A's rim.

Most of them need no query either. The distance to B is 1-Lipschitz and bounded by the distance
to any pixel of B, so the points of one pair are taken in runs of one 8 x 8 tile: the first of a
run is measured, and the others only when they lie farther from its nearest pixel of B than the
largest distance measured for the pair. The others cannot exceed that largest distance.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from cellbench.evaluation.boundary import coordinates, diagonal

STEPS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)])
# which support value (max s.q over an object) bounds which side of its box and octagon
BOTTOM, TOP, RIGHT, LEFT, BOTTOM_RIGHT, TOP_LEFT, BOTTOM_LEFT, TOP_RIGHT = range(8)
TILE = 8  # pixels measured together: the first of a tile bounds the others' distances


def outline_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(surface, rim) of every object: pixels with a 4-neighbour, and with an 8-neighbour, of
    another label (the image border counts as another label)."""
    height, width = np.shape(labels)
    flat = np.asarray(labels).ravel()
    surface = np.zeros(flat.size, dtype=bool)
    rim = np.zeros(flat.size, dtype=bool)
    # neighbours along the flat array: right, below, below right, below left; a pair that wraps
    # around a row end joins two border pixels, which are outline pixels anyway
    for shift, marked in ((1, surface), (width, surface), (width + 1, rim), (width - 1, rim)):
        if 0 < shift < flat.size:
            differs = flat[shift:] != flat[:-shift]
            marked[shift:] |= differs
            marked[:-shift] |= differs
    rim |= surface
    foreground = flat != 0
    for mask in (surface, rim):
        grid = mask.reshape(height, width)
        grid[[0, -1], :] = grid[:, [0, -1]] = True
        mask &= foreground
    return surface.reshape(height, width), rim.reshape(height, width)


def _at(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The values of a 2-D image at (N, 2) row, column points (a flat gather: quicker than 2-D)."""
    return image.ravel().take(points[:, 0] * image.shape[1] + points[:, 1])


def _by_object(points: np.ndarray, owner: np.ndarray, n: int,
               tiles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points grouped by their object (1..n), keeping their order within it, or ordering them by
    ``tiles`` first: (points, owners, start), object k at start[k-1]:start[k]."""
    order = np.argsort(tiles, kind="stable") if tiles is not None else np.arange(len(owner))
    key = owner[order].astype(np.uint16) if n < 1 << 16 else owner[order]
    order = order[np.argsort(key, kind="stable")]  # radix sorts for 16-bit keys
    owner = owner[order]
    return points[order], owner, _starts(owner, n)


def _starts(owner: np.ndarray, n: int) -> np.ndarray:
    """Where each object's run begins in a list sorted by object (1..n), plus the end."""
    return np.searchsorted(owner, np.arange(1, n + 2))


def _tiles(points: np.ndarray, width: int) -> np.ndarray:
    """Which TILE x TILE square each point lies in, as a 16-bit number (a wrapped number only makes
    two far squares share one, which costs time, not exactness)."""
    return ((points[:, 0] // TILE) * (width // TILE + 1) + points[:, 1] // TILE).astype(np.uint16)


class Outlines:
    """The objects of one instance map (labelled 1..n): rims (grouped by tile), surfaces, octagon
    hulls, and one k-d tree over all surfaces with each object shifted to its own place."""

    def __init__(self, labels: np.ndarray, n: int):
        self.labels, self.n = labels, n
        surface, self.rim = outline_masks(labels.astype(np.uint16) if n < 1 << 16 else labels)
        points = coordinates(self.rim)
        owner = _at(labels, points)
        self.rim_points, _, self.rim_start = _by_object(points, owner, n, _tiles(points, labels.shape[1]))
        self.rim_tiles = _tiles(self.rim_points, labels.shape[1])
        on_surface = _at(surface, points)  # the surface is part of the rim
        self.surface_points, owner, start = _by_object(points[on_surface], owner[on_surface], n)
        # largest projection on each step, per object (it lies on the surface)
        self.support = np.maximum.reduceat(self.surface_points @ STEPS.T, start[:-1], axis=0) if n else \
            np.zeros((0, len(STEPS)), dtype=np.int64)
        self.stride = labels.shape[1] + int(diagonal(labels.shape)) + 2
        self.tree = cKDTree(self._shifted(self.surface_points, owner), balanced_tree=False,
                            compact_nodes=False) if n else None
        self._surface_owner = owner

    @cached_property
    def hull_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of each object's octagon hull, shrunk by half a step, that are not in the object:
        (points grouped by object, where each object's group starts)."""
        points, owner = _hull_gaps(self.labels, self.surface_points, self._surface_owner, self.support)
        return points, _starts(owner, self.n)

    @property
    def boxes(self) -> np.ndarray:
        """(n, 4) top, left, bottom, right of each object."""
        s = self.support
        return np.column_stack([-s[:, TOP], -s[:, LEFT], s[:, BOTTOM], s[:, RIGHT]])

    def _shifted(self, points: np.ndarray, objects: np.ndarray) -> np.ndarray:
        return np.column_stack([points[:, 0], points[:, 1] + objects.astype(np.int64) * self.stride])

    def distance_to(self, points: np.ndarray, objects: np.ndarray) -> np.ndarray:
        """Distance from each point to the nearest pixel of its object (1-based), for points outside it."""
        return self.nearest_pixels(points, objects)[0]

    def nearest_pixels(self, points: np.ndarray, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distances, (N, 2) nearest surface pixels) of points outside their objects (1-based)."""
        if not len(points):
            return np.zeros(0), np.zeros((0, 2), dtype=np.int64)
        distance, index = self.tree.query(self._shifted(points, objects))
        return distance, self.surface_points[index]


def _expand(first: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """first[k], first[k] + 1, ..., first[k] + lengths[k] - 1 for each k in turn, and the k of each."""
    owner = np.repeat(np.arange(len(first)), lengths)
    offsets = np.arange(len(owner)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(first, lengths) + offsets, owner


def _ranges(start: np.ndarray, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the grouped rows of each object (1-based) in turn, and the position of its pair."""
    return _expand(start[objects - 1], start[objects] - start[objects - 1])


def _hull_gaps(labels: np.ndarray, points: np.ndarray, owner: np.ndarray,
               support: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixels x with x.s <= support_s - 1 for all 8 steps s (the shrunk octagon hull) outside their
    object, as (points, owners) sorted by owner. Row by row, the hull's span of columns less the
    object's runs; a run begins and ends on the surface (``points`` of ``owner``, raster order)."""
    height, width = labels.shape
    if not len(points):
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0, dtype=owner.dtype)
    top, bottom = 1 - support[:, TOP], support[:, BOTTOM] - 1
    rows, span_owner = _expand(top, np.maximum(bottom - top + 1, 0))
    s = support[span_owner]
    low = np.maximum.reduce([1 - s[:, LEFT], 1 - s[:, TOP_LEFT] - rows, rows + 1 - s[:, BOTTOM_LEFT]])
    high = np.minimum.reduce([s[:, RIGHT] - 1, s[:, BOTTOM_RIGHT] - 1 - rows, s[:, TOP_RIGHT] - 1 + rows])
    span_key = span_owner * height + rows  # span_owner is 0-based
    r, c = points[:, 0], points[:, 1]
    flat = r * width + c
    begins = labels.ravel().take(flat - 1, mode="clip") != owner
    begins[c == 0] = True
    ends = labels.ravel().take(flat + 1, mode="clip") != owner
    ends[c == width - 1] = True
    run_key = ((owner.astype(np.int64) - 1) * height + r)[begins]
    run_begin, run_end = c[begins], c[ends]  # the k-th run of the object's rows begins and ends here
    last_in_row = np.append(run_key[1:] != run_key[:-1], True)
    first_in_row = np.insert(last_in_row[:-1], 0, True)
    # outside the runs: before a row's first run, and after each run up to the next one in its row
    gap_key = np.concatenate([run_key[first_in_row], run_key])
    gap_from = np.concatenate([np.full(int(first_in_row.sum()), -1), run_end + 1])
    gap_to = np.concatenate([run_begin[first_in_row] - 1,
                             np.where(last_in_row, width, np.append(run_begin[1:], width) - 1)])
    # rows of a span without runs keep the whole span
    empty = run_key[np.minimum(np.searchsorted(run_key, span_key), len(run_key) - 1)] != span_key
    gap_key = np.concatenate([gap_key, span_key[empty]])
    gap_from = np.concatenate([gap_from, low[empty]])
    gap_to = np.concatenate([gap_to, high[empty]])
    span = np.minimum(np.searchsorted(span_key, gap_key), max(len(span_key) - 1, 0))
    inside = span_key[span] == gap_key if len(span_key) else np.zeros(len(gap_key), dtype=bool)
    span, gap_from, gap_to = span[inside], np.maximum(gap_from[inside], low[span[inside]]), \
        np.minimum(gap_to[inside], high[span[inside]])
    cols, which = _expand(gap_from, np.maximum(gap_to - gap_from + 1, 0))
    found_owner = span_owner[span[which]] + 1
    order = np.argsort(found_owner, kind="stable")
    return np.column_stack([rows[span[which]], cols])[order], found_owner[order]


def _hull_candidates(a: Outlines, b: Outlines, a_ids: np.ndarray, b_ids: np.ndarray):
    """Pixels of each a object, off its rim and outside its b partner, that no step moves away from b."""
    gap_points, gap_start = b.hull_gaps
    index, pair = _ranges(gap_start, b_ids)
    points = gap_points[index]
    keep = _at(a.labels, points) == a_ids[pair]
    keep &= ~_at(a.rim, points)
    return points[keep], pair[keep]


def directed(a: Outlines, b: Outlines, a_ids: np.ndarray, b_ids: np.ndarray) -> np.ndarray:
    """h(a_k, b_k) for each pair of objects (1-based ids; an object may appear in several pairs)."""
    if not len(a_ids):
        return np.zeros(0)
    index, pair = _ranges(a.rim_start, a_ids)
    points, tiles = a.rim_points[index], a.rim_tiles[index]
    outside = _at(b.labels, points) != b_ids[pair]
    hull_points, hull_pair = _hull_candidates(a, b, a_ids, b_ids)
    hull_tiles = _tiles(hull_points, a.labels.shape[1])
    order = np.lexsort((hull_tiles, hull_pair))
    return _farthest(b, b_ids, len(a_ids), np.concatenate([points[outside], hull_points[order]]),
                     np.concatenate([pair[outside], hull_pair[order]]),
                     np.concatenate([tiles[outside], hull_tiles[order]]))


def _farthest(b: Outlines, b_ids: np.ndarray, n_pairs: int, points: np.ndarray, pair: np.ndarray,
              tiles: np.ndarray) -> np.ndarray:
    """The largest distance of each pair's points (outside its b object) to that object. Points come
    in runs of one pair and tile; the first of each run is measured. The others are measured only
    where the first one's nearest pixel of b is farther than the largest distance found: that
    pixel bounds their distance from above, so the rest cannot change the largest."""
    result = np.zeros(n_pairs)
    if not len(points):
        return result
    first = np.ones(len(points), dtype=bool)
    first[1:] = (pair[1:] != pair[:-1]) | (tiles[1:] != tiles[:-1])
    heads = np.flatnonzero(first)
    distance, nearest = b.nearest_pixels(points[heads], b_ids[pair[heads]])
    np.maximum.at(result, pair[heads], distance)
    bound = ((points - nearest[np.cumsum(first) - 1]) ** 2).sum(1)  # squared: integers, compared exactly
    open_ = (bound > np.rint(result ** 2)[pair]) & ~first
    np.maximum.at(result, pair[open_], b.distance_to(points[open_], b_ids[pair[open_]]))
    return result


def hausdorff(a: Outlines, b: Outlines, a_ids, b_ids) -> np.ndarray:
    """Symmetric Hausdorff distance of each pair (a_ids[k] of map a, b_ids[k] of map b; 1-based)."""
    a_ids, b_ids = np.asarray(a_ids, dtype=np.int64), np.asarray(b_ids, dtype=np.int64)
    return np.maximum(directed(a, b, a_ids, b_ids), directed(b, a, b_ids, a_ids))


def box_gap(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(len(boxes), len(others)) gaps between bounding boxes: lower bounds of Hausdorff distances."""
    b, o = boxes[:, None, :], others[None, :, :]
    dy = np.maximum(0, np.maximum(o[..., 0] - b[..., 2], b[..., 0] - o[..., 2]))
    dx = np.maximum(0, np.maximum(o[..., 1] - b[..., 3], b[..., 1] - o[..., 3]))
    return np.hypot(dy, dx)


def nearest(a: Outlines, b: Outlines, a_ids) -> np.ndarray:
    """For each listed object of a, the smallest Hausdorff distance to any object of b, visiting
    b's objects by increasing bounding-box gap and stopping when the gap reaches the best so far."""
    a_ids = np.asarray(a_ids, dtype=np.int64)
    best = np.full(len(a_ids), np.inf)
    if not len(a_ids) or not b.n:
        return best
    gaps = box_gap(a.boxes[a_ids - 1], b.boxes)
    order = np.argsort(gaps, axis=1, kind="stable")
    for step in range(b.n):
        candidate = order[:, step]
        open_ = gaps[np.arange(len(a_ids)), candidate] < best
        if not open_.any():
            break
        distances = hausdorff(a, b, a_ids[open_], candidate[open_] + 1)
        best[open_] = np.minimum(best[open_], distances)
    return best
