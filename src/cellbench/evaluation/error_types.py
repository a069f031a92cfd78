"""What went wrong with each object: merges, splits, misses, false detections (DeepCell's
ObjectAccuracy categories, defined in docs/metrics.md).

Reference and predicted objects are the nodes of one graph. Two are linked when they are matched
one to one at IoU >= ``MATCH_IOU`` or when their overlap covers at least ``COVERED`` of the smaller
of the two (a cell inside a merged prediction, a fragment inside a split cell). Each connected
group of objects is one outcome, named by how many reference and predicted objects it holds.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from cellbench.evaluation.matching import Overlaps

MATCH_IOU = 0.5
COVERED = 0.5
OUTCOMES = ("correct", "loose", "missed", "false", "merge", "split", "catastrophe")
ERRORS = OUTCOMES[1:]


def error_counts(overlaps: Overlaps, match_iou: float = MATCH_IOU, covered: float = COVERED) -> dict[str, int]:
    """Counts of each outcome in one image, as columns ``n_<outcome>``.

    correct: one reference and one predicted object matched at IoU >= ``match_iou``, nothing else
    linked; loose: one and one linked only by coverage (found, drawn poorly); missed: a reference
    object linked to nothing; false: a predicted object linked to nothing; merge: one predicted
    object over several reference objects; split: one reference object in several predicted pieces;
    catastrophe: several of each in one linked group. A merge or split counts once per group.
    """
    n_true, n_pred = overlaps.n_true, overlaps.n_pred
    matched = np.zeros(len(overlaps.iou), dtype=bool)
    matched[overlaps.match(match_iou)] = True
    smaller = np.minimum(overlaps.area_true[overlaps.pairs_true], overlaps.area_pred[overlaps.pairs_pred])
    linked = matched | (overlaps.intersection >= covered * smaller)
    rows, cols = overlaps.pairs_true[linked], overlaps.pairs_pred[linked] + n_true
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_true + n_pred,) * 2)
    n_groups, group = connected_components(graph, directed=False)
    truths = np.bincount(group[:n_true], minlength=n_groups)
    preds = np.bincount(group[n_true:], minlength=n_groups)
    with_match = np.zeros(n_groups, dtype=bool)
    with_match[group[overlaps.pairs_true[matched]]] = True
    one_one = (truths == 1) & (preds == 1)
    counts = {"correct": one_one & with_match, "loose": one_one & ~with_match,
              "missed": (truths == 1) & (preds == 0), "false": (truths == 0) & (preds == 1),
              "merge": (truths > 1) & (preds == 1), "split": (truths == 1) & (preds > 1),
              "catastrophe": (truths > 1) & (preds > 1)}
    return {f"n_{name}": int(counts[name].sum()) for name in OUTCOMES}
