import numpy as np
import pandas as pd
import pytest

from cellbench.evaluate import evaluate_predictions
from cellbench.images import read_png, write_png


def test_scores_only_the_folds_images_with_keys(demo_data, tmp_path):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    splits = pd.DataFrame({"sample_id": manifest["sample_id"], "fold": np.arange(len(manifest)) % 3})
    fold_ids = splits.loc[splits["fold"] == 1, "sample_id"].tolist()
    for sample_id in fold_ids:  # perfect predictions
        write_png(read_png(demo_data / "masks" / f"{sample_id}.png"), tmp_path / f"{sample_id}.png")
    table = evaluate_predictions(demo_data, tmp_path, splits, 1, ["background", "cytoplasm", "nucleus"],
                                 {"cell": ["cytoplasm", "nucleus"]}, {"dataset": "demo", "arch": "Unet"})
    assert table.columns[:4].tolist() == ["dataset", "arch", "fold", "sample_id"]
    assert sorted(table["sample_id"].unique()) == sorted(fold_ids) and (table["fold"] == 1).all()
    assert len(table) == 3 * len(fold_ids)
    assert table["dice"].dropna().eq(1.0).all() and (table["fp"] == 0).all()


def test_missing_prediction_is_an_error(demo_data, tmp_path):
    splits = pd.DataFrame({"sample_id": ["demo_00"], "fold": [0]})
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_predictions(demo_data, tmp_path, splits, 0, ["background", "cytoplasm", "nucleus"], None, {})
