"""Scores per stratum (the split's cell type, or any split metadata column): where each architecture
succeeds and fails, with bootstrap intervals over the images of the stratum."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.evaluation.aggregate import FOREGROUND_MEAN
from cellbench.evaluation.stats import bootstrap_interval


def stratum_scores(metrics: pd.DataFrame, splits: pd.DataFrame, resamples: int = 2000, seed: int = 0
                   ) -> pd.DataFrame:
    """One row per architecture x stratum x class (and the per-image foreground mean): images, mean
    Dice and its 95 % bootstrap interval. Empty when the split has no strata (or only one)."""
    columns = ["arch", "stratum", "class", "n", "dice", "ci_low", "ci_high"]
    if "stratum" not in splits.columns or splits["stratum"].nunique() < 2:
        return pd.DataFrame(columns=columns)
    classes = metrics[~metrics["is_region"]]
    headline = (classes.groupby(["arch", "sample_id"])["dice"].mean().reset_index()
                .assign(**{"class": FOREGROUND_MEAN}))
    per_image = pd.concat([metrics[["arch", "sample_id", "class", "dice"]], headline], ignore_index=True)
    per_image = per_image.merge(splits[["sample_id", "stratum"]].astype({"stratum": str}), on="sample_id")
    rng = np.random.default_rng(seed)
    rows = []
    for (arch, stratum, name), group in per_image.groupby(["arch", "stratum", "class"], sort=True):
        values = group["dice"].to_numpy(dtype=float)
        low, high = bootstrap_interval(values, resamples, rng)
        finite = values[np.isfinite(values)]
        rows.append([arch, stratum, name, len(finite), finite.mean() if len(finite) else np.nan, low, high])
    return pd.DataFrame(rows, columns=columns)


def stratum_ap(instances: pd.DataFrame, splits: pd.DataFrame, threshold: float = 0.5, resamples: int = 2000,
               seed: int = 0) -> pd.DataFrame:
    """One row per architecture x stratum x object type: images, objects, AP at IoU ``threshold``
    from the counts pooled over the stratum's images (as the headline AP) and its 95 % bootstrap
    interval (images resampled, their counts pooled again). Empty without strata."""
    columns = ["arch", "stratum", "object_type", "n", "n_true", "ap_50", "ci_low", "ci_high"]
    if "stratum" not in splits.columns or splits["stratum"].nunique() < 2 or instances.empty:
        return pd.DataFrame(columns=columns)
    at = instances[np.isclose(instances["threshold"], threshold)]
    at = at.merge(splits[["sample_id", "stratum"]].astype({"stratum": str}), on="sample_id")
    rng = np.random.default_rng(seed)
    rows = []
    for (arch, stratum, kind), group in at.groupby(["arch", "stratum", "object_type"], sort=True):
        counts = group[["tp", "fp", "fn"]].to_numpy(dtype=np.float64)
        sums = counts[rng.integers(0, len(counts), (resamples, len(counts)))].sum(axis=1)
        total = sums.sum(axis=1)
        resampled = np.divide(sums[:, 0], total, out=np.full(resamples, np.nan), where=total > 0)
        tp, fp, fn = counts.sum(axis=0)
        ap = tp / (tp + fp + fn) if tp + fp + fn else np.nan
        low, high = (np.nanpercentile(resampled, [2.5, 97.5]) if np.isfinite(resampled).any() else (np.nan, np.nan))
        rows.append([arch, stratum, kind, len(counts), int(tp + fn), ap, low, high])
    return pd.DataFrame(rows, columns=columns)
