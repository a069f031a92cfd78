"""Instance (object) metrics of one image, as docs/metrics.md defines them.

Per IoU threshold: tp, fp, fn, precision, recall, F1, AP (DSB-2018 / Cellpose), PQ, SQ, RQ.
Threshold-free: AJI (Kumar) and AJI+ (one-to-one), SegPC-2021 mIoU, and the GlaS object F1,
object Dice and object Hausdorff; the error types of error_types.py. Empty cases: no reference and
no predicted object -> NaN (left out of means); one side empty -> 0, and distances capped at the
image diagonal.
"""

from __future__ import annotations

import numpy as np

from cellbench.evaluation.boundary import diagonal
from cellbench.evaluation.error_types import error_counts
from cellbench.evaluation.hausdorff import Outlines, hausdorff, nearest
from cellbench.evaluation.matching import Overlaps

THRESHOLDS = tuple(np.round(np.arange(0.50, 0.951, 0.05), 2))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 0 else float("nan")


def threshold_counts(overlaps: Overlaps, thresholds=THRESHOLDS) -> list[dict]:
    """tp, fp, fn and the summed IoU of the matched pairs at each threshold."""
    rows = []
    for t in thresholds:
        matched = overlaps.match(t)
        tp = len(matched)
        rows.append({"threshold": float(t), "tp": tp, "fp": overlaps.n_pred - tp, "fn": overlaps.n_true - tp,
                     "sum_iou": float(overlaps.iou[matched].sum())})
    return rows


def threshold_scores(tp, fp, fn, sum_iou) -> dict[str, float]:
    """Scores from (possibly pooled) counts; nothing on either side -> NaN."""
    if tp + fp + fn == 0:
        return dict.fromkeys(("precision", "recall", "f1", "ap", "pq", "sq", "rq"), float("nan"))
    rq = tp / (tp + fp / 2 + fn / 2)
    return {"precision": _ratio(tp, tp + fp) if tp + fp else 0.0, "recall": _ratio(tp, tp + fn) if tp + fn else 0.0,
            "f1": rq, "ap": tp / (tp + fp + fn), "pq": sum_iou / (tp + fp / 2 + fn / 2),
            "sq": _ratio(sum_iou, tp), "rq": rq}


def aji(overlaps: Overlaps) -> float:
    """Aggregated Jaccard Index (Kumar et al. 2017): each reference object with its best-IoU
    prediction (a prediction may serve several); unused predictions add to the union."""
    if overlaps.n_true + overlaps.n_pred == 0:
        return float("nan")
    best = _best_per(overlaps.pairs_true, overlaps.iou, overlaps.n_true)
    paired = best >= 0
    intersection = overlaps.intersection[best[paired]].sum()
    union = (overlaps.area_true[paired] + overlaps.area_pred[overlaps.pairs_pred[best[paired]]]).sum() - intersection
    union += overlaps.area_true[~paired].sum()
    used = np.zeros(overlaps.n_pred, dtype=bool)
    used[overlaps.pairs_pred[best[paired]]] = True
    union += overlaps.area_pred[~used].sum()
    return float(intersection / union)


def aji_plus(overlaps: Overlaps) -> float:
    """AJI+ (Graham et al. 2019): like AJI, with a one-to-one pairing of largest total IoU."""
    if overlaps.n_true + overlaps.n_pred == 0:
        return float("nan")
    intersection = overlaps.intersection[overlaps.best_pairing()].sum()
    # paired unions + unpaired reference areas + unpaired predicted areas
    union = overlaps.area_true.sum() + overlaps.area_pred.sum() - intersection
    return float(intersection / union)


def segpc_miou(overlaps: Overlaps) -> float:
    """SegPC-2021: each reference object's best IoU with any prediction, averaged over references."""
    if overlaps.n_true == 0:
        return float("nan")
    best = np.zeros(overlaps.n_true)
    np.maximum.at(best, overlaps.pairs_true, overlaps.iou)
    return float(best.mean())


def _best_per(owner: np.ndarray, value: np.ndarray, n: int) -> np.ndarray:
    """For each of n objects, the position of its pair with the largest value (first on ties), or -1."""
    best = np.full(n, -1)
    if len(owner):
        order = np.lexsort((-value, owner))  # by owner, then value descending, then position
        first = np.ones(len(order), dtype=bool)
        first[1:] = owner[order][1:] != owner[order][:-1]
        best[owner[order][first]] = order[first]
    return best


def _most_overlapping(owner: np.ndarray, partner: np.ndarray, intersection: np.ndarray, n: int) -> np.ndarray:
    """For each of n objects, the position of its pair with the largest overlap (the partner with the
    smallest id on ties: pairs are listed by id), or -1 when it overlaps nothing."""
    return _best_per(owner, intersection.astype(np.float64), n)


def glas_f1(overlaps: Overlaps) -> float:
    """GlaS object F1: a prediction is a true positive when it covers more than half of the
    reference object it overlaps most."""
    if overlaps.n_true + overlaps.n_pred == 0:
        return float("nan")
    best = _most_overlapping(overlaps.pairs_pred, overlaps.pairs_true, overlaps.intersection, overlaps.n_pred)
    best = best[best >= 0]
    tp = int(np.sum(overlaps.intersection[best] > 0.5 * overlaps.area_true[overlaps.pairs_true[best]]))
    fp, fn = overlaps.n_pred - tp, overlaps.n_true - tp
    return float(2 * tp / (2 * tp + fp + fn))


def object_dice(overlaps: Overlaps) -> float:
    """GlaS object Dice: area-weighted Dice of every object with its most-overlapping partner,
    averaged over the two directions (no partner -> 0)."""
    if overlaps.n_true + overlaps.n_pred == 0:
        return float("nan")
    if overlaps.n_true == 0 or overlaps.n_pred == 0:
        return 0.0
    pair_dice = 2 * overlaps.intersection / (overlaps.area_true[overlaps.pairs_true]
                                             + overlaps.area_pred[overlaps.pairs_pred])
    sides = []
    for owner, partner, area in ((overlaps.pairs_pred, overlaps.pairs_true, overlaps.area_pred),
                                 (overlaps.pairs_true, overlaps.pairs_pred, overlaps.area_true)):
        best = _most_overlapping(owner, partner, overlaps.intersection, len(area))
        dice = np.zeros(len(area))
        dice[best >= 0] = pair_dice[best[best >= 0]]
        sides.append(float((area * dice).sum() / area.sum()))
    return (sides[0] + sides[1]) / 2


def _partner_pairs(owner: np.ndarray, partner: np.ndarray, overlaps: Overlaps, n: int) -> np.ndarray:
    """(n, 2) rows (object, its most-overlapping partner), 0-based; the partner is -1 without overlap."""
    best = _most_overlapping(owner, partner, overlaps.intersection, n)
    pairs = np.column_stack([np.arange(n), np.full(n, -1)])
    pairs[best >= 0, 1] = partner[best[best >= 0]]
    return pairs


def object_hausdorff(truth: np.ndarray, prediction: np.ndarray, overlaps: Overlaps) -> float:
    """GlaS object Hausdorff: area-weighted Hausdorff distance of every object to its most-overlapping
    partner (or, without overlap, the partner at the smallest Hausdorff distance), both directions.
    ``truth`` and ``prediction`` are labelled 1..n, as ``overlaps`` was made from them."""
    if overlaps.n_true + overlaps.n_pred == 0:
        return float("nan")
    if overlaps.n_true == 0 or overlaps.n_pred == 0:
        return diagonal(np.shape(truth))
    true_objects, pred_objects = Outlines(truth, overlaps.n_true), Outlines(prediction, overlaps.n_pred)
    # each object's most-overlapping partner as a (true, pred) pair of 0-based ids, or -1 without overlap
    pred_pairs = _partner_pairs(overlaps.pairs_pred, overlaps.pairs_true, overlaps, overlaps.n_pred)[:, ::-1]
    true_pairs = _partner_pairs(overlaps.pairs_true, overlaps.pairs_pred, overlaps, overlaps.n_true)
    paired = [pairs[(pairs >= 0).all(axis=1)] for pairs in (pred_pairs, true_pairs)]
    pairs = np.unique(np.concatenate(paired), axis=0)  # every pair either side needs, once
    key = pairs[:, 0] * overlaps.n_pred + pairs[:, 1]
    pair_distance = hausdorff(true_objects, pred_objects, pairs[:, 0] + 1, pairs[:, 1] + 1)
    sides = []
    for own, other, side_pairs, area in ((pred_objects, true_objects, pred_pairs, overlaps.area_pred),
                                         (true_objects, pred_objects, true_pairs, overlaps.area_true)):
        has_partner = (side_pairs >= 0).all(axis=1)
        distances = np.empty(len(side_pairs))
        found = side_pairs[has_partner]
        distances[has_partner] = pair_distance[np.searchsorted(key, found[:, 0] * overlaps.n_pred + found[:, 1])]
        distances[~has_partner] = nearest(own, other, np.flatnonzero(~has_partner) + 1)
        sides.append(float((area * distances).sum() / area.sum()))
    return (sides[0] + sides[1]) / 2


def image_scores(truth: np.ndarray, prediction: np.ndarray, thresholds=THRESHOLDS,
                 hausdorff_distance: bool = True) -> tuple[list[dict], dict]:
    """(one row per threshold with counts and scores, the threshold-free metrics) of one image."""
    truth, prediction, overlaps = Overlaps.relabelled(truth, prediction)  # once, for all metrics
    rows = [{**row, **threshold_scores(row["tp"], row["fp"], row["fn"], row["sum_iou"])}
            for row in threshold_counts(overlaps, thresholds)]
    summary = {"n_true": overlaps.n_true, "n_pred": overlaps.n_pred, "aji": aji(overlaps),
               "aji_plus": aji_plus(overlaps), "segpc_miou": segpc_miou(overlaps), "glas_f1": glas_f1(overlaps),
               "object_dice": object_dice(overlaps),
               "object_hausdorff": object_hausdorff(truth, prediction, overlaps) if hausdorff_distance
               else float("nan"), **error_counts(overlaps)}
    return rows, summary
