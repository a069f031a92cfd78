"""Which predicted object is which reference object: overlaps, IoU and one-to-one matching.

Both instance maps are relabelled 1..N as int32 first (classmaps.sequential; uint8 maps wrap above
255 objects). The
overlaps of all object pairs come from one bincount over the pixels, and are kept as a sparse list
of overlapping pairs, so 10,000 objects cost no more memory than their pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cellbench.classmaps import renumbered, sequential

DENSE_TABLE = 1 << 22  # id pairs counted in a dense table (32 MB) rather than by sorting


@dataclass(frozen=True)
class Overlaps:
    """Areas of the reference (true) and predicted objects and every overlapping pair.

    Object k of either side is index k - 1. ``pairs_true``, ``pairs_pred``, ``intersection`` and
    ``iou`` list the pairs that share at least one pixel.
    """

    area_true: np.ndarray
    area_pred: np.ndarray
    pairs_true: np.ndarray
    pairs_pred: np.ndarray
    intersection: np.ndarray
    iou: np.ndarray

    @property
    def n_true(self) -> int:
        return len(self.area_true)

    @property
    def n_pred(self) -> int:
        return len(self.area_pred)

    @classmethod
    def of(cls, truth: np.ndarray, prediction: np.ndarray) -> Overlaps:
        """Overlaps of any two instance maps (relabelled here)."""
        return cls.relabelled(truth, prediction)[2]

    @classmethod
    def relabelled(cls, truth: np.ndarray, prediction: np.ndarray) -> tuple[np.ndarray, np.ndarray, Overlaps]:
        """Both maps relabelled 1..n (int32, classmaps.sequential) and their overlaps, from one
        count of the pixels of every (truth id, predicted id) pair."""
        truth, prediction = np.asarray(truth), np.asarray(prediction)
        _same_shape(truth, prediction)
        if not truth.size:
            return truth.astype(np.int32), prediction.astype(np.int32), cls.of_sequential(truth, 0, prediction, 0)
        for labels in (truth, prediction):
            if labels.min() < 0:
                raise ValueError("instance maps must not hold negative ids")
        rows, cols = int(truth.max()) + 1, int(prediction.max()) + 1
        if rows * cols > DENSE_TABLE:  # large ids: relabel first
            (truth, n_true), (prediction, n_pred) = sequential(truth), sequential(prediction)
            return truth, prediction, cls.of_sequential(truth, n_true, prediction, n_pred)
        key = np.multiply(truth, cols, dtype=np.int64)
        key += prediction
        table = np.bincount(key.ravel(), minlength=rows * cols).reshape(rows, cols)
        true_ids, pred_ids = np.flatnonzero(table[1:].any(1)) + 1, np.flatnonzero(table[:, 1:].any(0)) + 1
        pairs_true, pairs_pred = np.nonzero(table[1:, 1:])
        counts = table[pairs_true + 1, pairs_pred + 1]
        area_true, area_pred = table[true_ids].sum(1), table[:, pred_ids].sum(0)
        # 0-based positions of the paired ids among the ids present
        pairs_true, pairs_pred = np.searchsorted(true_ids, pairs_true + 1), np.searchsorted(pred_ids, pairs_pred + 1)
        overlaps = cls(area_true, area_pred, pairs_true, pairs_pred, counts,
                       counts / (area_true[pairs_true] + area_pred[pairs_pred] - counts))
        return renumbered(truth, true_ids), renumbered(prediction, pred_ids), overlaps

    @classmethod
    def of_sequential(cls, truth: np.ndarray, n_true: int, prediction: np.ndarray, n_pred: int) -> Overlaps:
        """Overlaps of two maps already labelled 1..n (classmaps.sequential)."""
        _same_shape(truth, prediction)
        area_true = np.bincount(truth.ravel(), minlength=n_true + 1)[1:]
        area_pred = np.bincount(prediction.ravel(), minlength=n_pred + 1)[1:]
        both = (truth > 0) & (prediction > 0)
        key = truth[both].astype(np.int64) * (n_pred + 1) + prediction[both]
        if (n_true + 1) * (n_pred + 1) <= 1 << 24:  # a dense count table is cheaper than sorting
            table = np.bincount(key, minlength=(n_true + 1) * (n_pred + 1))
            keys = np.flatnonzero(table)
            counts = table[keys]
        else:
            keys, counts = np.unique(key, return_counts=True)
        pairs_true, pairs_pred = keys // (n_pred + 1) - 1, keys % (n_pred + 1) - 1
        union = area_true[pairs_true] + area_pred[pairs_pred] - counts
        return cls(area_true, area_pred, pairs_true, pairs_pred, counts, counts / union)

    def match(self, threshold: float) -> np.ndarray:
        """Indices into the pair list of a one-to-one matching with IoU >= ``threshold`` that has the
        most pairs (StarDist's rule; ties go to the higher total IoU). Unique for thresholds > 0.5."""
        candidates = np.flatnonzero(self.iou >= threshold)
        rows, cols = self.pairs_true[candidates], self.pairs_pred[candidates]
        if len(np.unique(rows)) == len(rows) and len(np.unique(cols)) == len(cols):
            return candidates  # no object has two candidates: the matching is the candidate set
        return candidates[_assign(rows, cols, self.iou[candidates], self.n_true, self.n_pred, count_first=True)]

    def best_pairing(self) -> np.ndarray:
        """Indices of a one-to-one pairing of overlapping objects with the largest total IoU (AJI+)."""
        return _assign(self.pairs_true, self.pairs_pred, self.iou, self.n_true, self.n_pred, count_first=False)


def _same_shape(truth: np.ndarray, prediction: np.ndarray) -> None:
    if np.shape(truth) != np.shape(prediction):
        raise ValueError(f"instance maps differ in shape: {np.shape(truth)} and {np.shape(prediction)}")


def _assign(rows: np.ndarray, cols: np.ndarray, weights: np.ndarray, n_rows: int, n_cols: int,
            count_first: bool) -> np.ndarray:
    """Positions (into rows/cols) of an optimal assignment, solved per connected group of pairs."""
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    graph = coo_matrix((np.ones(len(rows)), (rows, cols + n_rows)), shape=(n_rows + n_cols,) * 2)
    _, component = connected_components(graph, directed=False)
    group = component[rows]
    chosen = []
    for g in np.unique(group):
        members = np.flatnonzero(group == g)
        if len(members) == 1:
            chosen.append(members)
            continue
        r_ids, r = np.unique(rows[members], return_inverse=True)
        c_ids, c = np.unique(cols[members], return_inverse=True)
        cost = np.zeros((len(r_ids), len(c_ids)))
        # maximise the number of pairs first (each pair is worth more than any total IoU), then IoU
        cost[r, c] = -(1.0 + weights[members] / (2 * min(cost.shape))) if count_first else -weights[members]
        lookup = np.full(cost.shape, -1)
        lookup[r, c] = members
        picked_r, picked_c = linear_sum_assignment(cost)
        found = lookup[picked_r, picked_c]
        chosen.append(found[found >= 0])
    return np.sort(np.concatenate(chosen))
