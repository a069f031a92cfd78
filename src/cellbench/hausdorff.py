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
away from B: inside B's octagon hull, shrunk by half a step. Only those pixels are looked at.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
from scipy.spatial import cKDTree

from cellbench.boundary import coordinates, diagonal

STEPS = np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (1, 1), (-1, -1), (1, -1), (-1, 1)])
SQUARED_LENGTH = (STEPS ** 2).sum(1)  # |s|^2: a pixel stays when 2 s.x + |s|^2 <= 2 max s.q
BOTTOM, TOP, RIGHT, LEFT = 0, 1, 2, 3  # which support value bounds which side of the box


def outline_masks(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(surface, rim) of every object: pixels with a 4-neighbour, and with an 8-neighbour, of
    another label (the image border counts as another label)."""
    surface = np.zeros(labels.shape, dtype=bool)
    surface[[0, -1], :] = surface[:, [0, -1]] = True
    for differs, here, there in ((labels[:, 1:] != labels[:, :-1], np.s_[:, 1:], np.s_[:, :-1]),
                                 (labels[1:, :] != labels[:-1, :], np.s_[1:, :], np.s_[:-1, :])):
        surface[here] |= differs
        surface[there] |= differs
    rim = surface.copy()
    for differs, here, there in ((labels[1:, 1:] != labels[:-1, :-1], np.s_[1:, 1:], np.s_[:-1, :-1]),
                                 (labels[1:, :-1] != labels[:-1, 1:], np.s_[1:, :-1], np.s_[:-1, 1:])):
        rim[here] |= differs
        rim[there] |= differs
    foreground = labels > 0
    return surface & foreground, rim & foreground


def _by_object(points: np.ndarray, owner: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Points grouped by their object (1..n): (points, owners, start), object k at start[k-1]:start[k]."""
    order = np.argsort(owner.astype(np.uint16) if n < 1 << 16 else owner, kind="stable")
    owner = owner[order]
    return points[order], owner, _starts(owner, n)


def _starts(owner: np.ndarray, n: int) -> np.ndarray:
    """Where each object's run begins in a list sorted by object (1..n), plus the end."""
    return np.searchsorted(owner, np.arange(1, n + 2))


class Outlines:
    """The objects of one instance map (labelled 1..n): rims, surfaces, octagon hulls, and one k-d
    tree over all surfaces with each object shifted to its own place."""

    def __init__(self, labels: np.ndarray, n: int):
        self.labels, self.n = labels, n
        surface, self.rim = outline_masks(labels)
        points = coordinates(self.rim)
        self.rim_points, rim_owner, self.rim_start = _by_object(points, labels[points[:, 0], points[:, 1]], n)
        on_surface = surface[self.rim_points[:, 0], self.rim_points[:, 1]]  # the surface is part of the rim
        points, owner = self.rim_points[on_surface], rim_owner[on_surface]
        start = _starts(owner, n)
        # largest projection on each step, per object (it lies on the surface)
        self.support = np.maximum.reduceat(points @ STEPS.T, start[:-1], axis=0) if n else \
            np.zeros((0, len(STEPS)), dtype=np.int64)
        self.stride = labels.shape[1] + int(diagonal(labels.shape)) + 2
        self.tree = cKDTree(np.column_stack([points[:, 0], points[:, 1] + owner.astype(np.int64) * self.stride]),
                            balanced_tree=False, compact_nodes=False) if n else None
        self._surface = points, owner

    @cached_property
    def hull_gaps(self) -> tuple[np.ndarray, np.ndarray]:
        """Pixels of each object's octagon hull, shrunk by half a step, that are not in the object:
        (points grouped by object, where each object's group starts)."""
        points, owner = _hull_gaps(self.labels, *self._surface, self.support)
        return points, _starts(owner, self.n)

    @property
    def boxes(self) -> np.ndarray:
        """(n, 4) top, left, bottom, right of each object."""
        s = self.support
        return np.column_stack([-s[:, TOP], -s[:, LEFT], s[:, BOTTOM], s[:, RIGHT]])

    def distance_to(self, points: np.ndarray, objects: np.ndarray) -> np.ndarray:
        """Distance from each point to the nearest pixel of its object (1-based), for points outside it."""
        if not len(points):
            return np.zeros(0)
        shifted = np.column_stack([points[:, 0], points[:, 1] + objects.astype(np.int64) * self.stride])
        return self.tree.query(shifted, workers=-1)[0]


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
    low = np.maximum.reduce([1 - s[:, LEFT], 1 - s[:, 5] - rows, rows + 1 - s[:, 6]])
    high = np.minimum.reduce([s[:, RIGHT] - 1, s[:, 4] - 1 - rows, s[:, 7] - 1 + rows])
    span_key = span_owner * height + rows  # span_owner is 0-based
    r, c = points[:, 0], points[:, 1]
    begins = labels[r, np.maximum(c - 1, 0)] != owner
    begins[c == 0] = True
    ends = labels[r, np.minimum(c + 1, width - 1)] != owner
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
    empty = ~np.isin(span_key, run_key)
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
    keep = a.labels[points[:, 0], points[:, 1]] == a_ids[pair]
    keep &= ~a.rim[points[:, 0], points[:, 1]]
    return points[keep], pair[keep]


def directed(a: Outlines, b: Outlines, a_ids: np.ndarray, b_ids: np.ndarray) -> np.ndarray:
    """h(a_k, b_k) for each pair of objects (1-based ids; an object may appear in several pairs)."""
    result = np.zeros(len(a_ids))
    if not len(a_ids):
        return result
    index, pair = _ranges(a.rim_start, a_ids)
    points = a.rim_points[index]
    outside = b.labels[points[:, 0], points[:, 1]] != b_ids[pair]
    points, pair = points[outside], pair[outside]
    hull_points, hull_pair = _hull_candidates(a, b, a_ids, b_ids)
    points, pair = np.concatenate([points, hull_points]), np.concatenate([pair, hull_pair])
    np.maximum.at(result, pair, b.distance_to(points, b_ids[pair]))
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
