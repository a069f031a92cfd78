"""The annotation budget (train.fractions): cross-validated Dice against the number of annotated
training images, from models trained on nested shares of each fold's training groups and scored on
the same out-of-fold images as the main run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cellbench.evaluation.stats import bootstrap_interval
from cellbench.settings import TrainSettings
from cellbench.training.train import plan_fold

COLUMNS = ["arch", "fraction", "n_train_images", "n_train_images_min", "n_train_images_max", "n_images", "cv_dice",
           "ci_low", "ci_high", "fold_sd_dice"]


def training_images(splits: pd.DataFrame, train: TrainSettings, fraction: float) -> pd.Series:
    """How many images each fold's model trains on at ``fraction`` (the plan training uses)."""
    folds = sorted(splits["fold"].unique())
    return pd.Series({int(k): len(plan_fold(splits, int(k), train.selection, train.inner_fraction, train.seed + int(k),
                                            fraction).train_ids) for k in folds})


def learning_curve(metrics: dict[float, pd.DataFrame], splits: pd.DataFrame, train: TrainSettings,
                   resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per architecture x fraction: training images per fold (mean, min, max), the CV
    foreground Dice (mean over all out-of-fold images of the per-image mean over the foreground
    classes) with a 95 % bootstrap interval over images, and the SD of the fold scores.

    ``metrics``: fraction -> the semantic metrics of that budget's folds (fraction 1: the main run's)."""
    rng = np.random.default_rng(seed)
    rows = []
    for fraction in sorted(metrics):
        table = metrics[fraction]
        per_image = table[~table["is_region"]].groupby(["arch", "fold", "sample_id"])["dice"].mean().reset_index()
        counts = training_images(splits, train, fraction)
        for arch, images in per_image.groupby("arch", sort=False):
            values = images["dice"].to_numpy(dtype=float)
            low, high = bootstrap_interval(values, resamples, rng)
            folds = images.groupby("fold")["dice"].mean()
            used = counts.reindex(folds.index)
            rows.append([arch, float(fraction), float(used.mean()), int(used.min()), int(used.max()),
                         int(np.isfinite(values).sum()), float(np.nanmean(values)), low, high,
                         float(folds.std(ddof=1)) if len(folds) > 1 else np.nan])
    return pd.DataFrame(rows, columns=COLUMNS)
