import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellbench.evaluation.learning_curve import learning_curve, training_images
from cellbench.report.learning_curve import plot_learning_curve
from cellbench.settings import TrainSettings

SPLITS = pd.DataFrame({"sample_id": [f"s{i}" for i in range(12)], "fold": [i % 3 for i in range(12)],
                       "group": [f"g{i}" for i in range(12)]})


def _train(**values) -> TrainSettings:
    from cellbench.config import complete
    return TrainSettings.build(complete({"dataset": "t", "data": {"demo": True}, "train": values})["train"])


def _metrics(dice_by_arch: dict[str, float]) -> pd.DataFrame:
    rows = [{"arch": arch, "fold": k % 3, "sample_id": f"s{k}", "class": name, "is_region": False,
             "dice": dice + (0.02 if name == "nucleus" else -0.02) + 0.01 * (k % 5 - 2)}
            for arch, dice in dice_by_arch.items() for k in range(12) for name in ("cytoplasm", "nucleus")]
    return pd.DataFrame(rows)


def test_training_images_shrink_with_the_fraction_and_follow_the_selection():
    full, half = training_images(SPLITS, _train(), 1.0), training_images(SPLITS, _train(), 0.5)
    assert full.tolist() == [8, 8, 8] and half.tolist() == [4, 4, 4]
    inner = training_images(SPLITS, _train(selection="inner", inner_fraction=0.25), 1.0)
    assert inner.tolist() == [6, 6, 6]  # the inner hold-out is never trained on


def test_learning_curve_rows_per_architecture_and_fraction(tmp_path):
    table = learning_curve({0.5: _metrics({"Unet": 0.6, "FPN": 0.5}), 1.0: _metrics({"Unet": 0.8, "FPN": 0.7})},
                           SPLITS, _train(), resamples=200)
    row = table.set_index(["arch", "fraction"]).loc[("Unet", 0.5)]
    assert row["cv_dice"] == pytest.approx(0.5975) and row["n_train_images"] == 4 and row["n_images"] == 12
    assert row["ci_low"] < 0.5975 < row["ci_high"] and row["fold_sd_dice"] > 0
    assert len(table) == 4 and table["n_train_images"].max() == 8
    plot_learning_curve(table, tmp_path / "curve.png")
    with Image.open(tmp_path / "curve.png") as picture:
        assert picture.size[0] > 500
    plot_learning_curve(pd.DataFrame(), tmp_path / "none.png")
    assert (tmp_path / "none.png").stat().st_size > 0
    assert np.isfinite(table["ci_high"]).all()
