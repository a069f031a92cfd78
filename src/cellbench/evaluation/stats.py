"""Cross-validation statistics: how sure is "architecture A beats B"?

Per architecture and target (a class's Dice, the per-image foreground mean, an object type's AP at
IoU 0.5 or AJI): the mean over all out-of-fold images with a seeded bootstrap 95 % confidence
interval over images. For every pair of architectures, a paired comparison on the same images:
the median and mean difference, the Wilcoxon signed-rank test, and Holm's correction over all
pairs of the same target. NaN values (nothing to score in an image) are left out pairwise.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd
from scipy.stats import wilcoxon

from cellbench.evaluation.semantic_metrics import FOREGROUND_MEAN


def per_image_values(metrics: pd.DataFrame, instances: pd.DataFrame | None = None,
                     objects: pd.DataFrame | None = None) -> pd.DataFrame:
    """Long table arch x metric x target x sample_id -> value, for every compared quantity."""
    parts = []
    classes = metrics[~metrics["is_region"]]
    dice = metrics[["arch", "sample_id", "class", "dice"]].rename(columns={"class": "target", "dice": "value"})
    parts.append(dice.assign(metric="dice"))
    fg = classes.groupby(["arch", "sample_id"])["dice"].mean().rename("value").reset_index()
    parts.append(fg.assign(metric="dice", target=FOREGROUND_MEAN))
    if instances is not None and not instances.empty:
        at_half = instances[instances["threshold"].round(2) == 0.5]
        parts.append(at_half[["arch", "sample_id", "object_type", "ap"]]
                     .rename(columns={"object_type": "target", "ap": "value"}).assign(metric="ap_50"))
    if objects is not None and not objects.empty:
        parts.append(objects[["arch", "sample_id", "object_type", "aji"]]
                     .rename(columns={"object_type": "target", "aji": "value"}).assign(metric="aji"))
    return pd.concat(parts, ignore_index=True)[["arch", "metric", "target", "sample_id", "value"]]


def bootstrap_interval(values: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[float, float]:
    """Percentile 95 % interval of the mean, resampling the (finite) values with replacement."""
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return float("nan"), float("nan")
    means = values[rng.integers(0, len(values), (resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN)."""
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(len(p), np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        out[index] = running
    return out


def _paired(a: pd.Series, b: pd.Series) -> dict:
    both = pd.concat([a, b], axis=1, join="inner").dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy()
    row = {"n": len(diff), "mean_difference": float(diff.mean()) if len(diff) else float("nan"),
           "median_difference": float(np.median(diff)) if len(diff) else float("nan"),
           "statistic": float("nan"), "p_value": float("nan")}
    if len(diff) and np.any(diff != 0):
        result = wilcoxon(diff)
        row["statistic"], row["p_value"] = float(result.statistic), float(result.pvalue)
    elif len(diff):
        row["p_value"] = 1.0  # identical on every image
    return row


def compare(values: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """stats table: `interval` rows (one per arch x metric x target) and `paired` rows (one per pair)."""
    rng = np.random.default_rng(seed)
    rows = []
    for (metric, target), group in values.groupby(["metric", "target"], sort=True):
        by_arch = {arch: g.set_index("sample_id")["value"] for arch, g in group.groupby("arch", sort=True)}
        for arch, series in by_arch.items():
            finite = series.to_numpy(dtype=np.float64)
            low, high = bootstrap_interval(finite, resamples, rng)
            rows.append({"kind": "interval", "metric": metric, "target": target, "arch": arch, "arch_b": None,
                         "n": int(np.isfinite(finite).sum()), "estimate": float(np.nanmean(finite))
                         if np.isfinite(finite).any() else float("nan"), "ci_low": low, "ci_high": high})
        pairs = [{"kind": "paired", "metric": metric, "target": target, "arch": a, "arch_b": b,
                  **_paired(by_arch[a], by_arch[b])} for a, b in combinations(sorted(by_arch), 2)]
        adjusted = holm(np.array([p["p_value"] for p in pairs]))
        for pair, p_holm in zip(pairs, adjusted, strict=True):
            pair["estimate"], pair["p_holm"] = pair["mean_difference"], float(p_holm)
        rows += pairs
    columns = ["kind", "metric", "target", "arch", "arch_b", "n", "estimate", "ci_low", "ci_high",
               "mean_difference", "median_difference", "statistic", "p_value", "p_holm"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    return table.astype({"arch_b": "string", "n": "int64"})  # typed even when every row is an interval
