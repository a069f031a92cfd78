"""Training: the leakage proof, and a tiny real training run on the demo data."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_config

from cellbench import augment, models, train
from cellbench.batches import CropBatches
from cellbench.split import make_splits
from cellbench.variants import VariantStore


@pytest.fixture(scope="module")
def prepared(demo_data, demo_raw, tmp_path_factory):
    root = tmp_path_factory.mktemp("prepared")
    augment.augment(demo_data, root / "augmented", rotations=8, flip=True)
    config = make_config(demo_raw, split={"folds": 3})
    splits = make_splits(pd.read_parquet(demo_data / "manifest.parquet"), config["split"])
    splits.to_parquet(root / "splits.parquet", index=False)
    return root, splits


@pytest.mark.parametrize("fold", [0, 1, 2])
def test_no_variant_of_a_validation_sample_reaches_training(prepared, fold):
    root, splits = prepared
    store = VariantStore(root / "augmented")
    train_ids, val_ids = train.fold_members(splits, fold)
    assert set(train_ids).isdisjoint(val_ids) and len(val_ids) == 8
    batches = CropBatches(store, store.variants_of(train_ids), 64, 7, seed=0, device=torch.device("cpu"))
    drawn = [int(r) for _, _, rows in batches.epoch(1) for r in rows]  # everything one epoch trains on
    sources = {store.sample_of(r) for r in drawn}
    assert sources.isdisjoint(val_ids)
    assert sources == set(train_ids) and len(drawn) == 16 * len(train_ids) == len(set(drawn))
    # the held-out images' variants exist in the store, they are just never drawn
    assert len(store.variants_of(val_ids)) == 16 * len(val_ids)


def test_unknown_fold():
    with pytest.raises(ValueError, match="fold 7"):
        train.fold_members(pd.DataFrame({"sample_id": ["a"], "fold": [0]}), 7)


def test_tiny_training_run_writes_checkpoint_and_history(prepared, demo_data, demo_raw, tmp_path):
    root, _ = prepared
    config = make_config(demo_raw, train={"epochs": 2, "steps_per_epoch": 2, "batch_size": 2,
                                          "crop_size": 64, "encoder": "resnet18"})
    history = train.train_fold(config, "Unet", 1, demo_data, root / "augmented", root / "splits.parquet",
                               tmp_path / "model", threads=1)
    assert history["epoch"].tolist() == [1, 2]
    assert {"train_loss", "val_dice_fg", "val_dice_cytoplasm", "val_dice_nucleus", "best"} <= set(history.columns)
    assert np.isfinite(history["train_loss"]).all()
    assert pd.read_parquet(tmp_path / "model" / "history.parquet").equals(history)
    raw = torch.load(tmp_path / "model" / "model.pt", weights_only=True)  # plain data only
    for key in ("state_dict", "arch", "encoder", "classes", "in_channels", "mean", "std", "crop_size",
                "size_divisor", "config_hash", "versions", "git_commit", "seed", "fold", "epoch"):
        assert key in raw
    model, meta = models.load_checkpoint(tmp_path / "model" / "model.pt")
    assert meta["fold"] == 1 and meta["classes"] == ["background", "cytoplasm", "nucleus"]
    assert meta["epoch"] == int(history.loc[history["best"], "epoch"].iloc[-1])


def test_crop_size_must_fit_the_architecture(prepared, demo_data, demo_raw, tmp_path):
    root, _ = prepared
    config = make_config(demo_raw, train={"epochs": 1, "crop_size": 48})
    with pytest.raises(ValueError, match="not a multiple of 32"):
        train.train_fold(config, "Unet", 0, demo_data, root / "augmented", root / "splits.parquet",
                         tmp_path / "m")


def test_loss_ignores_ignored_pixels():
    from cellbench.classmaps import IGNORE_INDEX
    loss = train.segmentation_loss(dice_weight=1.0)
    target = torch.tensor([[[1, 2], [0, IGNORE_INDEX]]])
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    value = loss(logits, target)
    value.backward()
    assert torch.isfinite(value) and logits.grad[0, :, 1, 1].abs().sum() == 0
    other = logits.detach().clone()
    other[0, :, 1, 1] = torch.tensor([9.0, -9.0, 3.0])
    assert torch.allclose(loss(other, target), value.detach())


def test_cosine_schedule_anneals_to_the_floor_over_all_steps():
    settings = make_config(None, train={"learning_rate": 0.01, "lr_min_ratio": 0.1})["train"]
    step = train.TrainingStep("Unet", settings, 3, torch.device("cpu"), total_steps=4)
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, 3, (2, 64, 64))
    rates = []
    for _ in range(4):
        step(x, y)
        rates.append(step.learning_rate)
    assert rates[0] < 0.01 and rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.001)


def test_plateau_schedule_lowers_the_rate_without_progress():
    settings = make_config(None, train={"learning_rate": 0.01, "lr_schedule": "plateau", "plateau_patience": 0,
                                        "plateau_factor": 0.5})["train"]
    step = train.TrainingStep("Unet", settings, 3, torch.device("cpu"), total_steps=4)
    step.end_epoch(0.5)
    step.end_epoch(0.5)
    assert step.learning_rate == pytest.approx(0.005)


@pytest.mark.parametrize("patience, stops", [(None, False), (1, True), (2, True), (3, False)])
def test_early_stopping_counts_epochs_since_the_best(patience, stops):
    progress = train._Progress()
    progress.history = [{"epoch": e} for e in (1, 2, 3)]
    progress.best_epoch = 1
    assert train._stopped_early(progress, {"early_stopping_patience": patience}) is stops
