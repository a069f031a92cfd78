"""Training: the leakage proof, and a tiny real training run on the demo data."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import make_config

from cellbench import augment, models, train
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
    crops = train.TrainingCrops(store, store.variants_of(train_ids), 64, seed=0)
    loader = torch.utils.data.DataLoader(crops, batch_size=7, shuffle=True,
                                         generator=torch.Generator().manual_seed(0))
    drawn = [int(r) for _, _, rows in loader for r in rows]  # everything one epoch trains on
    sources = {store.sample_of(r) for r in drawn}
    assert sources.isdisjoint(val_ids)
    assert sources == set(train_ids) and len(drawn) == 16 * len(train_ids)
    # the held-out images' variants exist in the store, they are just never drawn
    assert len(store.variants_of(val_ids)) == 16 * len(val_ids)


def test_crops_are_seeded_and_padded(prepared):
    root, splits = prepared
    store = VariantStore(root / "augmented")
    crops = train.TrainingCrops(store, store.variants_of(["demo_00"]), 160, seed=3)
    image, mask, _ = crops[0]
    assert image.shape == (160, 160, 3) and mask.shape == (160, 160)  # 128px images mirror-padded
    small = train.TrainingCrops(store, store.variants_of(["demo_00"]), 64, seed=3)
    assert torch.equal(small[1][0], small[1][0])
    small.epoch = 1
    first = small[1][0]
    small.epoch = 2
    assert not torch.equal(first, small[1][0])


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


def test_pad_to_handles_tiny_images():
    image, mask = train._pad_to(np.zeros((5, 3, 3), np.uint8), np.zeros((5, 3), np.uint8), 32)
    assert image.shape[:2] == mask.shape and min(mask.shape) >= 32


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
