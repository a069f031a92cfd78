import numpy as np
import pandas as pd
import pytest

from cellbench.aggregate import FOREGROUND_MEAN, ranking, summarise


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
