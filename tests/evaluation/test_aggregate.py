import numpy as np
import pandas as pd
import pytest

from cellbench.evaluation.aggregate import FOREGROUND_MEAN, OBJECT_METRICS, ranking, summarise, summarise_instances


def metric_rows():
    """Two folds, fold 0 with two images, fold 1 with one; nucleus empty in one image."""
    rows = []
    for fold, sample, cyto, nucleus in [(0, "a", 0.8, 0.6), (0, "b", 0.6, np.nan), (1, "c", 1.0, 0.9)]:
        for name, dice in (("cytoplasm", cyto), ("nucleus", nucleus), ("cell", cyto)):
            rows.append({"dataset": "d", "arch": "Unet", "encoder": "r", "fold": fold, "sample_id": sample,
                         "class": name, "is_region": name == "cell", "tp": 1, "fp": 1, "fn": 0,
                         "dice": dice, "iou": dice})
    return pd.DataFrame(rows)


def test_cv_score_is_over_all_images_and_fold_spread_beside_it():
    summary = summarise(metric_rows()).set_index("class")
    assert summary.at["cytoplasm", "cv_dice"] == pytest.approx((0.8 + 0.6 + 1.0) / 3)
    assert summary.at["cytoplasm", "fold_mean_dice"] == pytest.approx((0.7 + 1.0) / 2)
    assert summary.at["cytoplasm", "fold_sd_dice"] == pytest.approx(np.std([0.7, 1.0], ddof=1))
    assert summary.at["nucleus", "cv_dice"] == pytest.approx(0.75)
    assert summary.at["nucleus", "n_valid"] == 2 and summary.at["nucleus", "n_images"] == 3
    headline = (summary.at["cytoplasm", "cv_dice"] + summary.at["nucleus", "cv_dice"]) / 2
    assert summary.at[FOREGROUND_MEAN, "cv_dice"] == pytest.approx(headline)  # the cell region is not in it
    assert summary.at[FOREGROUND_MEAN, "fold_mean_dice"] == pytest.approx(((0.7 + 0.6) / 2 + (1.0 + 0.9) / 2) / 2)
    assert summary.at["cytoplasm", "pooled_dice"] == pytest.approx(2 * 3 / (2 * 3 + 3))


def test_ranking_orders_by_headline():
    other = metric_rows().assign(arch="FPN", dice=lambda t: t["dice"] / 2)
    table = ranking(summarise(pd.concat([metric_rows(), other])))
    assert table["arch"].tolist() == ["Unet", "FPN"]
    assert table.columns[:4].tolist() == ["arch", "encoder", FOREGROUND_MEAN, "fold_sd_dice"]


# ---- instances: counts pooled over every out-of-fold image, fold spread and image means beside ----

# fold, image, threshold: tp, fp, fn, summed IoU of the matched pairs (image d has one false positive
# at 0.5 and nothing at all at 0.75, where its AP is NaN)
COUNTS = {(0, "a", 0.5): (3, 1, 0, 2.4), (0, "b", 0.5): (1, 0, 2, 0.6),
          (1, "c", 0.5): (4, 2, 1, 3.0), (1, "d", 0.5): (0, 1, 0, 0.0),
          (0, "a", 0.75): (2, 2, 1, 1.7), (0, "b", 0.75): (0, 1, 3, 0.0),
          (1, "c", 0.75): (3, 3, 2, 2.4), (1, "d", 0.75): (0, 0, 0, 0.0)}
OBJECTS = {"a": (0.7, 0.6, 0.8, 0.75, 0.82, 3.0), "b": (0.5, 0.4, 0.55, 0.5, 0.6, 7.0),
           "c": (0.9, 0.85, 0.95, 1.0, 0.93, 1.5), "d": (np.nan, np.nan, np.nan, 0.0, 0.0, 10.0)}


def instance_tables(arch="Unet", finds_nothing=False):
    """The instance and object tables of one model (``finds_nothing``: a model predicting no object)."""
    lead = {"dataset": "d", "arch": arch, "encoder": "r", "object_type": "cell"}
    rows = []
    for (fold, sample, threshold), (tp, fp, fn, sum_iou) in COUNTS.items():
        if finds_nothing:
            tp, fp, fn, sum_iou = 0, 0, tp + fn, 0.0
        rows.append({**lead, "fold": fold, "sample_id": sample, "threshold": threshold, "tp": tp, "fp": fp,
                     "fn": fn, "sum_iou": sum_iou, "ap": tp / (tp + fp + fn) if tp + fp + fn else np.nan})
    objects = pd.DataFrame([{**lead, "fold": 0 if sample in "ab" else 1, "sample_id": sample,
                             **dict(zip(OBJECT_METRICS, values, strict=True))} for sample, values in OBJECTS.items()])
    return pd.DataFrame(rows), objects


def expect(row, **values):
    for name, value in values.items():
        assert row[name] == pytest.approx(value, rel=1e-12), name


def test_instance_summary_pools_counts_over_all_folds_by_hand():
    summary = summarise_instances(*instance_tables()).set_index("threshold")
    assert summary.index.tolist() == [0.5, 0.75] and (summary["arch"] == "Unet").all()
    # pooled at 0.5: tp 3+1+4+0 = 8, fp 1+0+2+1 = 4, fn 0+2+1+0 = 3, summed IoU 6.0
    expect(summary.loc[0.5], tp=8, fp=4, fn=3, precision=8 / 12, recall=8 / 11, f1=16 / 23, ap=8 / 15,
           pq=6.0 / (8 + 4 / 2 + 3 / 2), sq=6.0 / 8,
           ap_fold_mean=(4 / 7 + 4 / 8) / 2,  # fold 0: 4 / (4 + 1 + 2), fold 1: 4 / (4 + 3 + 1)
           ap_fold_sd=abs(4 / 7 - 4 / 8) / np.sqrt(2),
           ap_image_mean=(3 / 4 + 1 / 3 + 4 / 7 + 0) / 4, n_folds=2, n_images=4)
    # pooled at 0.75: tp 5, fp 6, fn 6, summed IoU 4.1
    expect(summary.loc[0.75], tp=5, fp=6, fn=6, precision=5 / 11, recall=5 / 11, f1=10 / 22, ap=5 / 17,
           pq=4.1 / (5 + 3 + 3), sq=4.1 / 5,
           ap_fold_mean=(2 / 9 + 3 / 8) / 2,  # fold 0: 2 / (2 + 3 + 4), fold 1: 3 / (3 + 3 + 2)
           ap_fold_sd=abs(2 / 9 - 3 / 8) / np.sqrt(2),
           ap_image_mean=(2 / 5 + 0 + 3 / 8) / 3,  # image d's NaN left out
           n_folds=2, n_images=4)
    for threshold in (0.5, 0.75):  # threshold-free metrics: image-wise means over both folds, NaN left out
        expect(summary.loc[threshold], aji=(0.7 + 0.5 + 0.9) / 3, aji_plus=(0.6 + 0.4 + 0.85) / 3,
               segpc_miou=(0.8 + 0.55 + 0.95) / 3, glas_f1=(0.75 + 0.5 + 1.0 + 0.0) / 4,
               object_dice=(0.82 + 0.6 + 0.93 + 0.0) / 4, object_hausdorff=(3.0 + 7.0 + 1.5 + 10.0) / 4)


def test_instance_summary_keeps_models_apart():
    unet, fpn = instance_tables(), instance_tables("FPN", finds_nothing=True)
    both = summarise_instances(pd.concat([unet[0], fpn[0]]), pd.concat([unet[1], fpn[1].assign(aji=0.0)]))
    alone = summarise_instances(*unet)
    pd.testing.assert_frame_equal(both[both["arch"] == "Unet"].reset_index(drop=True), alone)
    other = both[both["arch"] == "FPN"].set_index("threshold")
    assert (other["ap"] == 0).all() and (other["aji"] == 0).all()
    assert other.at[0.5, "fn"] == 11
    assert other.at[0.5, "ap_fold_sd"] == 0
