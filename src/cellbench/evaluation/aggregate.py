"""Cross-validated scores: all out-of-fold images at once, and the spread across folds."""

from __future__ import annotations

import pandas as pd

from cellbench.evaluation.object_metrics import threshold_scores
from cellbench.evaluation.semantic_metrics import FOREGROUND_MEAN, scores

# what identifies a model's scores; `selection` (how the kept epoch was chosen) is carried when recorded
MODEL_KEYS = ("dataset", "arch", "encoder", "selection")


def model_keys(table: pd.DataFrame) -> list[str]:
    return [key for key in MODEL_KEYS if key in table.columns]
OBJECT_METRICS = ("aji", "aji_plus", "segpc_miou", "glas_f1", "object_dice", "object_hausdorff")


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
    """The cross-validated semantic scores.

    Parameters
    ----------
    metrics:
        Every fold's semantic table (one row per out-of-fold image x class or region).

    Returns
    -------
    summary: one row per architecture x class (and the foreground mean). cv_* are computed once
    over all out-of-fold images (nnU-Net's CV score); fold_mean_* and fold_sd_* (ddof=1) describe
    the K per-fold scores; pooled_* come from the summed counts.
    """
    keys = model_keys(metrics)
    overall = _with_foreground_mean(_image_means(metrics, keys), keys)
    per_fold = _with_foreground_mean(_image_means(metrics, keys + ["fold"]), keys + ["fold"])
    spread = per_fold.groupby(keys + ["class"], sort=False).agg(
        n_folds=("fold", "nunique"),
        fold_mean_dice=("dice", "mean"), fold_sd_dice=("dice", lambda v: v.std(ddof=1)),
        fold_mean_iou=("iou", "mean"), fold_sd_iou=("iou", lambda v: v.std(ddof=1))).reset_index()
    summary = overall.rename(columns={"dice": "cv_dice", "iou": "cv_iou"}).merge(
        spread, on=keys + ["class"], how="left")
    columns = keys + ["class", "is_region", "cv_dice", "fold_mean_dice", "fold_sd_dice",
                            "cv_iou", "fold_mean_iou", "fold_sd_iou", "pooled_dice", "pooled_iou",
                            "n_images", "n_valid", "n_folds", "tp", "fp", "fn"]
    summary = summary[columns]
    for column in ("n_valid", "tp", "fp", "fn"):
        summary[column] = summary[column].astype("Int64")
    return summary.sort_values(keys + ["class"], kind="stable").reset_index(drop=True)


def ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Model comparison: one row per architecture, best first, with per-class CV Dice."""
    wide = summary.pivot_table(index=["arch", "encoder"], columns="class", values="cv_dice")
    head = summary[summary["class"] == FOREGROUND_MEAN].set_index(["arch", "encoder"])
    wide["fold_sd_dice"] = head["fold_sd_dice"]
    wide = wide.sort_values(FOREGROUND_MEAN, ascending=False)
    first = [FOREGROUND_MEAN, "fold_sd_dice"]
    return wide[first + [c for c in wide.columns if c not in first]].reset_index()


def _pooled_threshold_scores(table: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    counts = table.groupby(keys, sort=False)[["tp", "fp", "fn", "sum_iou"]].sum().reset_index()
    scored = [threshold_scores(r.tp, r.fp, r.fn, r.sum_iou) for r in counts.itertuples()]
    return pd.concat([counts, pd.DataFrame(scored, index=counts.index)], axis=1)


def summarise_instances(instances: pd.DataFrame, objects: pd.DataFrame) -> pd.DataFrame:
    """instance_summary: one row per architecture x object type x IoU threshold.

    Counts pooled over all out-of-fold images (StarDist's by_image=False: no 0/0 cases) give the
    headline precision, recall, F1, AP, PQ, SQ; ap_fold_mean/_sd describe the K per-fold pooled AP;
    the threshold-free object metrics (AJI, AJI+, SegPC mIoU, GlaS) are image-wise means.
    """
    per_model = model_keys(instances) + ["object_type"]
    keys = per_model + ["threshold"]
    if instances.empty:
        return pd.DataFrame(columns=keys)
    overall = _pooled_threshold_scores(instances, keys)
    per_fold = _pooled_threshold_scores(instances, keys + ["fold"])
    spread = per_fold.groupby(keys, sort=False)["ap"].agg(
        ap_fold_mean="mean", ap_fold_sd=lambda v: v.std(ddof=1), n_folds="size").reset_index()
    images = instances.groupby(keys, sort=False)["ap"].agg(ap_image_mean="mean", n_images="size").reset_index()
    threshold_free = objects.groupby(per_model, sort=False)[list(OBJECT_METRICS)].mean().reset_index()
    summary = overall.merge(spread, on=keys).merge(images, on=keys).merge(threshold_free, on=per_model, how="left")
    return summary.sort_values(keys, kind="stable").reset_index(drop=True)



def instance_ranking(summary: pd.DataFrame) -> pd.DataFrame:
    """Instance comparison: per architecture x object type, AP at 0.5 and 0.75, mean AP over the
    thresholds, PQ at 0.5 and the threshold-free object metrics."""
    if summary.empty:
        return summary
    keys = ["arch", "encoder", "object_type"]
    grouped = summary.groupby(keys, sort=False)
    table = grouped["ap"].mean().rename("mean_ap").to_frame()
    for t, column in ((0.5, "ap_50"), (0.75, "ap_75")):
        at = summary[summary["threshold"].round(2) == t].set_index(keys)
        table[column] = at["ap"]
    table["pq_50"] = summary[summary["threshold"].round(2) == 0.5].set_index(keys)["pq"]
    table = table.join(grouped[list(OBJECT_METRICS)].first())
    return table.reset_index().sort_values(["object_type", "mean_ap"], ascending=[True, False], kind="stable")
