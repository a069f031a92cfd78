"""A finished benchmark in miniature for the app: one tiny trained Unet fold model and a summary."""

import pandas as pd
import pytest
from helpers import make_config

from cellbench.dataset.split import make_splits
from cellbench.training import augment, train


@pytest.fixture(scope="session")
def tiny_results(demo_data, demo_raw, tmp_path_factory):
    """results/<dataset> with models/Unet/fold0/model.pt (2 steps of training) and summary.parquet."""
    root = tmp_path_factory.mktemp("app") / "results" / "t"
    work = root.parent.parent / "work"
    augment.augment(demo_data, work / "augmented", rotations=1, flip=False)
    config = make_config(demo_raw, split={"folds": 2}, train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2,
                                                               "crop_size": 64, "learning_rate": 0.01})
    make_splits(pd.read_parquet(demo_data / "manifest.parquet"), config["split"]).to_parquet(work / "splits.parquet")
    train.train_fold(config, "Unet", 0, demo_data, work / "augmented", work / "splits.parquet",
                     root / "models" / "Unet" / "fold0")
    pd.DataFrame({"arch": ["Unet", "Unet", "FPN"], "class": ["foreground_mean", "nucleus", "foreground_mean"],
                  "cv_dice": [0.812, 0.7, 0.9]}).to_parquet(root / "summary.parquet")
    return root
