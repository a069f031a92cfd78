"""Cross-validated scores: all out-of-fold images at once, and the spread across folds."""

from __future__ import annotations

import pandas as pd

from cellbench.metrics import scores

FOREGROUND_MEAN = "foreground_mean"


def _image_means(metrics: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Image-wise mean Dice/IoU per class (NaN-aware), pooled scores from summed counts."""
    grouped = metrics.groupby(keys + ["class", "is_region"], sort=False)
    out = grouped.agg(dice=("dice", "mean"), iou=("iou", "mean"), n_images=("dice", "size"),
                      n_valid=("dice", "count"), tp=("tp", "sum"), fp=("fp", "sum"),
                      fn=("fn", "sum")).reset_index()
    pooled = scores(out["tp"], out["fp"], out["fn"])
    out["pooled_dice"], out["pooled_iou"] = pooled["dice"], pooled["iou"]
    return out


def _with_foreground_mean(per_class: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Add the headline row: mean over foreground classes (regions such as `cell` left out)."""
    classes = per_class[~per_class["is_region"]]
    headline = classes.groupby(keys, sort=False)[["dice", "iou", "pooled_dice", "pooled_iou"]].mean()
    headline = headline.reset_index().assign(**{"class": FOREGROUND_MEAN, "is_region": False})
    counts = classes.groupby(keys, sort=False)["n_images"].max().reset_index(drop=True)
    headline["n_images"] = counts.to_numpy()
    return pd.concat([per_class, headline], ignore_index=True)


def summarise(metrics: pd.DataFrame) -> pd.DataFrame:
    """summary table: one row per architecture x class (and the foreground mean).

    cv_* are computed once over all out-of-fold images (nnU-Net's CV score); fold_mean_* and
    fold_sd_* (ddof=1) describe the K per-fold scores.
    """
    model_keys = ["dataset", "arch", "encoder"]
    overall = _with_foreground_mean(_image_means(metrics, model_keys), model_keys)
    per_fold = _with_foreground_mean(_image_means(metrics, model_keys + ["fold"]), model_keys + ["fold"])
    spread = per_fold.groupby(model_keys + ["class"], sort=False).agg(
        n_folds=("fold", "nunique"),
        fold_mean_dice=("dice", "mean"), fold_sd_dice=("dice", lambda v: v.std(ddof=1)),
        fold_mean_iou=("iou", "mean"), fold_sd_iou=("iou", lambda v: v.std(ddof=1))).reset_index()
    summary = overall.rename(columns={"dice": "cv_dice", "iou": "cv_iou"}).merge(
        spread, on=model_keys + ["class"], how="left")
    columns = model_keys + ["class", "is_region", "cv_dice", "fold_mean_dice", "fold_sd_dice",
                            "cv_iou", "fold_mean_iou", "fold_sd_iou", "pooled_dice", "pooled_iou",
                            "n_images", "n_valid", "n_folds", "tp", "fp", "fn"]
    summary = summary[columns]
    for column in ("n_valid", "tp", "fp", "fn"):
        summary[column] = summary[column].astype("Int64")
    return summary.sort_values(model_keys + ["class"], kind="stable").reset_index(drop=True)


def ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Model comparison: one row per architecture, best first, with per-class CV Dice."""
    wide = summary.pivot_table(index=["arch", "encoder"], columns="class", values="cv_dice")
    head = summary[summary["class"] == FOREGROUND_MEAN].set_index(["arch", "encoder"])
    wide["fold_sd_dice"] = head["fold_sd_dice"]
    wide = wide.sort_values(FOREGROUND_MEAN, ascending=False)
    first = [FOREGROUND_MEAN, "fold_sd_dice"]
    return wide[first + [c for c in wide.columns if c not in first]].reset_index()
