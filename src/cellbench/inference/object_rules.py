"""Object post-processing learned from a model's training annotations (never from scored images), so
that what a prediction counts as an object is what the annotations count as one.

- Smallest object: a predicted object smaller than ``evaluate.min_size_fraction`` of the 1st
  percentile of the annotated objects' areas of its type is dropped (a short training leaves
  hundreds of 1-3 px specks, which are no cells). An explicit ``evaluate.objects.<type>.min_size`` wins.
- Objects in pieces: a reference object is an annotated instance, whatever its shape: a lobed
  nucleus drawn in three pieces inside one cell is one nucleus, and that cell is one cell. Where the
  training annotations show such pieces (at least MIN_PIECE_SHARE of the objects), predicted pieces
  closer than the gap the annotations show between the pieces of one object (GAP_QUANTILE of those
  gaps) are one object too: ``join_gap`` for the type's own pieces, ``seed_gap`` for the pieces of its
  seed class inside one object (so a lobed nucleus seeds one cell, not three). With
  ``evaluate.join_pieces: false`` both sides count pieces as they are.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

import numpy as np
from scipy import ndimage

from cellbench.classmaps import in_classes
from cellbench.inference.objects import truth_objects

SMALLEST_QUANTILE = 0.01  # "the smallest annotated objects": the 1st percentile of their areas
GAP_QUANTILE = 0.9
MIN_PIECE_SHARE = 0.05  # fewer objects in pieces than this: stray pixels, not anatomy; nothing is joined
MAX_PIECES = 16  # the largest pieces of an object that its gap is measured between


def piece_gap(mask: np.ndarray) -> float | None:
    """The distance over which the pieces of one object (a boolean crop) must be joined to make it
    one: the longest edge of the shortest tree joining its pieces, each edge the shortest distance
    between two pieces (pixel centres). None for an object in one piece."""
    pieces, n = ndimage.label(mask)
    if n < 2:
        return None
    if n > MAX_PIECES:
        sizes = np.bincount(pieces.ravel())[1:]
        keep = np.argsort(sizes)[::-1][:MAX_PIECES] + 1
        pieces = np.where(np.isin(pieces, keep), np.searchsorted(np.sort(keep), pieces) + 1, 0)
        n = MAX_PIECES
    distance = np.full((n, n), np.inf)
    for i in range(1, n + 1):
        away = ndimage.distance_transform_edt(pieces != i)
        for j in range(1, n + 1):
            if j != i:
                distance[i - 1, j - 1] = away[pieces == j].min()
    joined, longest = {0}, 0.0  # Prim's tree: its longest edge joins everything
    while len(joined) < n:
        edge, nearest = min((distance[i, j], j) for i in joined for j in range(n) if j not in joined)
        longest = max(longest, float(edge))
        joined.add(nearest)
    return longest


def learn(samples: Iterable[tuple[np.ndarray, np.ndarray]], types: Mapping[str, dict], min_size_fraction: float,
          join_pieces: bool = True) -> dict[str, dict]:
    """The rules of each object type from annotated (class map, instance map) pairs: name ->
    {min_size, join_gap, seed_gap, n_objects, smallest_area, pieces_share} (see the module)."""
    areas = {name: [] for name in types}
    gaps = {name: [] for name in types}
    seed_gaps = {name: [] for name in types}
    for class_map, instance_map in samples:
        for name, kind in types.items():
            truth = truth_objects(class_map, instance_map, kind["classes"])
            seeds = kind.get("seeds") or []
            for index, box in enumerate(ndimage.find_objects(truth), start=1):
                if box is None:
                    continue
                mine = truth[box] == index
                areas[name].append(int(np.count_nonzero(mine)))
                gaps[name].append(piece_gap(mine) if join_pieces else None)
                if seeds and join_pieces:
                    seed_pixels = mine & in_classes(class_map[box], seeds)
                    if seed_pixels.any():
                        seed_gaps[name].append(piece_gap(seed_pixels))
    return {name: {"min_size": _min_size(areas[name], min_size_fraction), "join_gap": _gap(gaps[name]),
                   "seed_gap": _gap(seed_gaps[name]), "n_objects": len(areas[name]),
                   "smallest_area": int(min(areas[name], default=0)),
                   "pieces_share": _share(gaps[name])} for name in types}


def _min_size(areas: list[int], fraction: float) -> int:
    if not areas or fraction <= 0:
        return 0
    return int(math.floor(fraction * float(np.quantile(areas, SMALLEST_QUANTILE))))


def _share(gaps: list[float | None]) -> float:
    return sum(g is not None for g in gaps) / len(gaps) if gaps else 0.0


def _gap(gaps: list[float | None]) -> float:
    """GAP_QUANTILE of the gaps of the objects in pieces, where enough objects are (else 0: no joining)."""
    found = [g for g in gaps if g is not None]
    if not found or _share(gaps) < MIN_PIECE_SHARE:
        return 0.0
    return round(float(np.quantile(found, GAP_QUANTILE)), 2)


def applied(types: Mapping[str, dict], rules: Mapping[str, dict]) -> dict[str, dict]:
    """``types`` (scope's object_indices) with the learned rules: min_size where the type does not set
    its own, join_gap and seed_gap."""
    out = {}
    for name, kind in types.items():
        rule = rules.get(name, {})
        out[name] = {**kind, "join_gap": rule.get("join_gap", 0.0), "seed_gap": rule.get("seed_gap", 0.0)}
        if not kind.get("min_size_set"):
            out[name]["min_size"] = rule.get("min_size", 0)
    return out


def learn_from(data, sample_ids: list[str], types: Mapping[str, dict], evaluate: Mapping) -> dict[str, dict]:
    """learn() over the annotated images ``sample_ids`` of a cellbench.dataset.Dataset, with the
    evaluate section's min_size_fraction and join_pieces."""
    pairs = ((data.class_map(s), data.instances(s)) for s in sample_ids)
    return learn(pairs, types, evaluate["min_size_fraction"], evaluate["join_pieces"])
