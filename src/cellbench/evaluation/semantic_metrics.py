"""Semantic segmentation metrics per image and class, as docs/metrics.md defines them.

Hard (argmax) counts from one confusion matrix per image. Empty cases follow nnU-Net: reference
and prediction both empty -> NaN (left out of means); one of them empty -> 0. Optional boundary
metrics (HD95, ASSD; cellbench.boundary): one side empty -> the image diagonal, both -> NaN.
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

from cellbench.classmaps import IGNORE_INDEX, in_classes
from cellbench.evaluation.boundary import hd95_assd
from cellbench.evaluation.scope import Scope, applicable_regions
from cellbench.pool import submit

FEW_CLASSES = 5
FOREGROUND_MEAN = "foreground_mean"  # the headline row: the mean over the foreground classes


def confusion(truth: np.ndarray, prediction: np.ndarray, n_classes: int) -> np.ndarray:
    """C x C pixel counts, rows = truth, columns = prediction; ignored truth pixels are left out."""
    if truth.shape != prediction.shape:
        raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in shape")
    scored = truth != IGNORE_INDEX
    if not scored.all():
        truth, prediction = truth[scored], prediction[scored]
    # small key types keep the temporaries small: uint8 keys hold up to 16 classes
    key_type = np.uint8 if n_classes <= 16 and truth.dtype == prediction.dtype == np.uint8 else np.int64
    flat = truth.astype(key_type).ravel() * key_type(n_classes)
    flat += prediction.astype(key_type).ravel()
    if n_classes <= FEW_CLASSES:  # one comparison per cell of the matrix beats a bincount of every pixel
        counts = [np.count_nonzero(flat == key) for key in range(n_classes * n_classes)]
        return np.array(counts, dtype=np.int64).reshape(n_classes, n_classes)
    return np.bincount(flat, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def region_counts(matrix: np.ndarray, members: list[int]) -> tuple[int, int, int, int]:
    """tp, fp, fn, tn of the union of some classes, from a confusion matrix."""
    inside = np.zeros(len(matrix), dtype=bool)
    inside[members] = True
    tp = matrix[np.ix_(inside, inside)].sum()
    fp = matrix[np.ix_(~inside, inside)].sum()
    fn = matrix[np.ix_(inside, ~inside)].sum()
    tn = matrix.sum() - tp - fp - fn
    return int(tp), int(fp), int(fn), int(tn)


def _ratio(numerator, denominator):
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), np.nan)


def scores(tp, fp, fn) -> dict[str, np.ndarray]:
    """Dice, IoU, precision, recall with the empty-case rules (works on arrays of counts)."""
    tp, fp, fn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn))
    both_empty = (tp + fp + fn) == 0
    out = {
        "dice": _ratio(2 * tp, 2 * tp + fp + fn),
        "iou": _ratio(tp, tp + fp + fn),
        # reference present but nothing predicted -> precision 0; nothing to find -> recall NaN
        "precision": np.where(tp + fp > 0, _ratio(tp, tp + fp), np.where(tp + fn > 0, 0.0, np.nan)),
        "recall": np.where(tp + fn > 0, _ratio(tp, tp + fn), np.where(tp + fp > 0, 0.0, np.nan)),
    }
    out["dice"] = np.where(both_empty, np.nan, out["dice"])
    out["iou"] = np.where(both_empty, np.nan, out["iou"])
    return out


def regions_of(classes: list[str], regions: dict[str, list[str]] | None) -> dict[str, list[int]]:
    """Scored regions: every foreground class, plus the unions of classes (e.g. cell) that apply
    (cellbench.scope: a default that does not fit is skipped, a chosen one is a ConfigError)."""
    applied, _ = applicable_regions(classes, regions)
    return Scope(list(classes), applied, {}, [], []).region_indices()


def image_rows(truth: np.ndarray, prediction: np.ndarray, classes: list[str],
               regions: dict[str, list[str]] | None = None, boundary: bool = False,
               pool: Executor | None = None) -> list[dict]:
    """One row per scored class/region of one image: counts and scores (and, with ``boundary``,
    HD95 and ASSD in pixels, ignored truth pixels left out of both masks; each region's on the
    thread ``pool`` when one is given)."""
    scored = truth != IGNORE_INDEX
    scored = None if scored.all() else scored
    chosen = regions_of(classes, regions)
    distances = {name: submit(pool, _distances, truth, prediction, members, scored)
                 for name, members in chosen.items()} if boundary else {}
    matrix = confusion(truth, prediction, len(classes))
    rows = []
    for name, members in chosen.items():
        tp, fp, fn, tn = region_counts(matrix, members)
        row = {"class": name, "is_region": len(members) > 1 or name not in classes,
               "tp": tp, "fp": fp, "fn": fn, "tn": tn, "n_ref": tp + fn, "n_pred": tp + fp}
        row.update({k: float(v) for k, v in scores(tp, fp, fn).items()})
        if boundary:
            row["hd95"], row["assd"] = distances[name].result()
        rows.append(row)
    return rows


def _distances(truth: np.ndarray, prediction: np.ndarray, members: list[int],
               scored: np.ndarray | None) -> tuple[float, float]:
    """HD95 and ASSD of one class/region, ignored pixels (``scored`` False) left out of both masks."""
    a, b = in_classes(truth, members), in_classes(prediction, members)
    if scored is not None:
        a &= scored
        b &= scored
    return hd95_assd(a, b)


def foreground_dice(truth_and_predictions, classes: list[str]) -> tuple[float, dict[str, float]]:
    """Image-wise mean Dice per foreground class (NaN-aware) and their mean (the headline)."""
    per_class: dict[str, list[float]] = {name: [] for name in classes[1:]}
    for truth, prediction in truth_and_predictions:
        for row in image_rows(truth, prediction, classes):
            per_class[row["class"]].append(row["dice"])
    means = {name: _nanmean(values) for name, values in per_class.items()}
    return _nanmean(list(means.values())), means


def _nanmean(values) -> float:
    values = np.asarray(values, dtype=np.float64)
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
