"""Can the predicted probabilities be trusted? Reliability bins and the expected calibration error
(ECE) of out-of-fold softmax probabilities, as docs/metrics.md defines them.

Each class is scored one against the rest: every pixel's probability of the class falls in one of
``BINS`` equal-width bins, and the bin records how many pixels it holds, their summed probability
and how many of them truly are the class. ``top-label`` does the same with each pixel's highest
probability and whether its argmax class is right. Beside these (scope ``one_vs_rest``), each class
is also binned over the pixels where it is predicted or true (scope ``predicted_or_true``): the
class-conditional ECE, which the many sure background pixels cannot dilute (a class covering 2 % of
an image has a one-vs-rest ECE near 0 whatever its own pixels do). Counts add up over images and
folds, so the ECE of a whole cross-validation comes from summed bins, not from averaged per-image ECEs.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.classmaps import IGNORE_INDEX

BINS = 15
TOP_LABEL = "top-label"
ONE_VS_REST, PREDICTED_OR_TRUE = "one_vs_rest", "predicted_or_true"
COLUMNS = ["class", "scope", "bin", "low", "high", "n", "sum_confidence", "n_true"]


def _binned(confidence: np.ndarray, hits: np.ndarray, name: str, scope: str = ONE_VS_REST) -> pd.DataFrame:
    index = np.minimum((confidence * BINS).astype(np.int64), BINS - 1)
    edges = np.linspace(0.0, 1.0, BINS + 1)
    return pd.DataFrame({"class": name, "scope": scope, "bin": np.arange(BINS), "low": edges[:-1], "high": edges[1:],
                         "n": np.bincount(index, minlength=BINS),
                         "sum_confidence": np.bincount(index, weights=confidence, minlength=BINS),
                         "n_true": np.bincount(index, weights=hits, minlength=BINS).astype(np.int64)})


def reliability_bins(probabilities: np.ndarray, truth: np.ndarray, classes: list[str],
                     ignore: int | None = IGNORE_INDEX) -> pd.DataFrame:
    """The bins of one image: ``probabilities`` (C', H, W) whose first len(classes) channels are the
    classes (a touching-border channel after them is dropped and the rest renormalised), ``truth``
    (H, W) class indices; pixels whose truth is ``ignore`` are left out."""
    n = len(classes)
    kept = truth != ignore if ignore is not None else np.ones(truth.shape, bool)
    p = probabilities[:n, kept].astype(np.float32)
    p /= np.maximum(p.sum(0, keepdims=True), 1e-12)
    labels = truth[kept]
    predicted = p.argmax(0)
    tables = [_binned(p[c], labels == c, name) for c, name in enumerate(classes)]
    tables.append(_binned(p.max(0), predicted == labels, TOP_LABEL))
    for c, name in enumerate(classes):
        concerned = (predicted == c) | (labels == c)
        tables.append(_binned(p[c][concerned], labels[concerned] == c, name, PREDICTED_OR_TRUE))
    return pd.concat(tables, ignore_index=True)


def _with_scope(bins: pd.DataFrame) -> pd.DataFrame:
    """Bins written before the scope column existed are one against the rest."""
    return bins if "scope" in bins.columns else bins.assign(scope=ONE_VS_REST)


def summed(bins: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Bins added up over images (and folds): one row per ``keys`` x class x scope x bin."""
    return _with_scope(bins).groupby([*keys, "class", "scope", "bin", "low", "high"], sort=False)[
        ["n", "sum_confidence", "n_true"]].sum().reset_index()


def expected_calibration_error(bins: pd.DataFrame, keys: list[str], scope: str = ONE_VS_REST) -> pd.DataFrame:
    """ECE = sum over bins of (n_b / N) * |observed frequency_b - mean confidence_b| (each bin weighted
    by its share of the N pixels, not the mean over bins), one row per ``keys`` x class of ``scope``,
    with N (pixels) and the mean confidence and frequency over all bins."""
    table = summed(bins, keys)
    table = table[table["scope"] == scope]
    gap = (table["n_true"] - table["sum_confidence"]).abs()
    table = table.assign(gap=gap)
    grouped = table.groupby([*keys, "class"], sort=False)
    out = grouped[["n", "gap", "sum_confidence", "n_true"]].sum().reset_index()
    total = out["n"].where(out["n"] > 0)
    return pd.DataFrame({**{k: out[k] for k in [*keys, "class"]}, "pixels": out["n"], "ece": out["gap"] / total,
                         "mean_confidence": out["sum_confidence"] / total, "frequency": out["n_true"] / total})
