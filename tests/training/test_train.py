"""Training: the leakage proof, and a tiny real training run on the demo data."""

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import make_config

from cellbench.dataset.split import make_splits
from cellbench.errors import ConfigError
from cellbench.settings import TrainSettings
from cellbench.training import augment, models, train
from cellbench.training.batches import CropBatches
from cellbench.training.variants import VariantStore


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
    assert {"train_loss", "selection_dice_fg", "monitor_dice_fg", "monitor_dice_cytoplasm", "monitor_dice_nucleus",
            "selected", "selection"} <= set(history.columns)
    assert history["selection"].eq("last").all() and history["selected"].tolist() == [False, True]
    assert history["selection_dice_fg"].isna().all() and history["monitor_dice_fg"].notna().all()
    assert np.isfinite(history["train_loss"]).all()
    assert pd.read_parquet(tmp_path / "model" / "history.parquet").equals(history)
    raw = torch.load(tmp_path / "model" / "model.pt", weights_only=True)  # plain data only
    for key in ("state_dict", "arch", "encoder", "classes", "in_channels", "mean", "std", "crop_size",
                "size_divisor", "config_hash", "versions", "git_commit", "seed", "fold", "epoch"):
        assert key in raw
    model, meta = models.load_checkpoint(tmp_path / "model" / "model.pt")
    assert meta["fold"] == 1 and meta["classes"] == ["background", "cytoplasm", "nucleus"]
    assert meta["epoch"] == 2 and meta["selection"] == "last"


def test_crop_size_must_fit_the_architecture(prepared, demo_data, demo_raw, tmp_path):
    root, _ = prepared
    config = make_config(demo_raw, train={"epochs": 1, "crop_size": 48})
    with pytest.raises(ConfigError, match="not a multiple of 32"):
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


def unet_step(train_overrides: dict, total_steps: int = 4) -> train.TrainingStep:
    from cellbench.settings import Settings
    settings = Settings.build(make_config(None, train=train_overrides))
    return train.build_trainer("Unet", settings, [0.5] * 3, [0.2] * 3, torch.device("cpu"), total_steps)[0]


def test_cosine_schedule_anneals_to_the_floor_over_all_steps():
    step = unet_step({"learning_rate": 0.01, "lr_min_ratio": 0.1})
    x, y = torch.randint(0, 256, (2, 64, 64, 3), dtype=torch.uint8), torch.randint(0, 3, (2, 64, 64))
    rates = []
    for _ in range(4):
        step(x, y)
        rates.append(step.learning_rate)
    assert rates[0] < 0.01 and rates == sorted(rates, reverse=True) and rates[-1] == pytest.approx(0.001)


def test_plateau_schedule_lowers_the_rate_without_progress():
    step = unet_step({"learning_rate": 0.01, "lr_schedule": "plateau", "plateau_patience": 0, "plateau_factor": 0.5})
    step.end_epoch(0.5)
    step.end_epoch(0.5)
    assert step.learning_rate == pytest.approx(0.005)


@pytest.mark.parametrize("patience, stops", [(None, False), (1, True), (2, True), (3, False)])
def test_early_stopping_counts_epochs_since_the_best(patience, stops):
    progress = train._Progress()
    progress.history = [{"epoch": e} for e in (1, 2, 3)]
    progress.best_epoch = 1
    assert train._stopped_early(progress, TrainSettings.build({"early_stopping_patience": patience})) is stops


# ---- model selection never looks at the scored fold ----

TINY = {"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "crop_size": 64, "encoder": "resnet18",
        "deterministic": True, "lr_schedule": "constant"}


def _weights(path):
    return torch.load(path, weights_only=True)["state_dict"]


def _corrupt_scored_fold(demo_data, augmented, splits, fold, root):
    """Copies of the data and variants where every mask of the scored fold is scrambled."""
    import shutil

    from cellbench.images import read_png, write_png
    data, variants = root / "data", root / "augmented"
    shutil.copytree(demo_data, data)
    shutil.copytree(augmented, variants)
    rng = np.random.default_rng(7)
    scored = splits.loc[splits["fold"] == fold, "sample_id"].tolist()
    for sample in scored:
        mask = read_png(data / "masks" / f"{sample}.png")
        write_png(rng.permutation(mask.ravel()).reshape(mask.shape).astype(np.uint8), data / "masks" / f"{sample}.png")
    store = VariantStore(variants)
    flat = np.memmap(variants / "masks.u8", dtype=np.uint8, mode="r+")
    for row in store.variants_of(scored):
        height, width = store.shape(int(row))
        at = int(store.manifest["mask_offset"].iat[int(row)])
        flat[at:at + height * width] = rng.integers(0, 3, height * width, dtype=np.uint8)
    flat.flush()
    return data, variants


@pytest.mark.parametrize("selection", ["last", "inner"])
def test_scored_fold_masks_never_change_the_kept_weights(prepared, demo_data, demo_raw, tmp_path, selection):
    root, splits = prepared
    config = make_config(demo_raw, train={**TINY, "selection": selection, "monitor_scored_fold": True})
    clean = train.train_fold(config, "Unet", 0, demo_data, root / "augmented", root / "splits.parquet",
                             tmp_path / "clean", threads=1)
    data, variants = _corrupt_scored_fold(demo_data, root / "augmented", splits, 0, tmp_path / "scrambled")
    scrambled = train.train_fold(config, "Unet", 0, data, variants, root / "splits.parquet", tmp_path / "dirty",
                                 threads=1)
    # the monitor saw the scrambled masks ...
    assert not np.allclose(clean["monitor_dice_fg"], scrambled["monitor_dice_fg"])
    # ... and nothing it saw reached the weights, the kept epoch or the decisions
    a, b = _weights(tmp_path / "clean" / "model.pt"), _weights(tmp_path / "dirty" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    for column in ("train_loss", "selection_dice_fg", "selected", "learning_rate"):
        pd.testing.assert_series_equal(clean[column], scrambled[column])


def _spy_on_training(monkeypatch):
    """Record what train_fold itself reads: the variant rows it trains on, the images it scores after
    each epoch (deciding and monitored), and the images its channel statistics come from."""
    seen = {"rows": [], "scoring": [], "channel_stats": []}

    class Recording(CropBatches):
        def epoch(self, *args, **kwargs):
            for images, masks, rows in super().epoch(*args, **kwargs):
                seen["rows"] += [int(r) for r in rows]
                yield images, masks, rows

    real_scoring, real_stats = train.scoring_set, train.channel_stats
    monkeypatch.setattr(train, "CropBatches", Recording)
    monkeypatch.setattr(train, "scoring_set", lambda data, ids: seen["scoring"].append(list(ids)) or
                        real_scoring(data, ids))
    monkeypatch.setattr(train, "channel_stats", lambda data, ids: seen["channel_stats"].append(list(ids)) or
                        real_stats(data, ids))
    return seen


@pytest.fixture(scope="module")
def two_variants(demo_data, prepared, tmp_path_factory):
    """Two variants per image: a full training epoch stays short."""
    out = tmp_path_factory.mktemp("two") / "augmented"
    augment.augment(demo_data, out, rotations=2, flip=False)
    return out


@pytest.mark.parametrize("selection", ["last", "inner", "scored_fold_best"])
def test_train_fold_trains_decides_and_normalises_only_on_what_it_may(prepared, two_variants, demo_data, demo_raw,
                                                                      monkeypatch, tmp_path, selection):
    root, splits = prepared
    seen = _spy_on_training(monkeypatch)
    fold = 2
    config = make_config(demo_raw, train={**TINY, "epochs": 1, "steps_per_epoch": None, "batch_size": 8,
                                          "selection": selection})
    train.train_fold(config, "Unet", fold, demo_data, two_variants, root / "splits.parquet", tmp_path / "m",
                     threads=1)
    scored = set(splits.loc[splits["fold"] == fold, "sample_id"])
    others = set(splits["sample_id"]) - scored
    store = VariantStore(two_variants)
    trained = {store.sample_of(r) for r in seen["rows"]}
    deciding, *rest = seen["scoring"]
    monitored = rest[0] if rest else []
    assert len(seen["scoring"]) == (1 if selection == "scored_fold_best" else 2)
    assert trained and trained <= others and not trained & scored
    assert len(seen["rows"]) == len(set(seen["rows"])) == 2 * len(trained)  # one full pass, each variant once
    assert seen["channel_stats"] == [sorted(trained, key=list(splits["sample_id"]).index)]
    if selection == "last":
        assert deciding == [] and set(monitored) == scored
        assert trained == others
    elif selection == "inner":
        assert set(monitored) == scored
        assert deciding and set(deciding) <= others and not set(deciding) & trained
        assert trained | set(deciding) == others
        group = splits.set_index("sample_id")["group"]
        assert not set(group[list(deciding)]) & set(group[list(trained)])  # grouped hold-out
    else:
        assert set(deciding) == scored and monitored == []


def test_each_fold_starts_from_its_own_seed(prepared, demo_data, demo_raw, tmp_path):
    """With a vanishing learning rate the kept weights are the initial ones: fold k's must be those of
    a model built after torch.manual_seed(train.seed + k)."""
    root, _ = prepared
    config = make_config(demo_raw, train={**TINY, "epochs": 1, "steps_per_epoch": 1, "learning_rate": 1e-30,
                                          "seed": 5})
    initial = {}
    for fold in (0, 1, 2):
        torch.manual_seed(5 + fold)
        initial[fold] = models.build("Unet", "resnet18", 3).state_dict()
    for fold in (0, 1):
        train.train_fold(config, "Unet", fold, demo_data, root / "augmented", root / "splits.parquet",
                         tmp_path / str(fold), threads=1)
        kept = _weights(tmp_path / str(fold) / "model.pt")
        convs = [k for k in kept if k.endswith("conv1.weight")]
        assert convs
        for other in (0, 1, 2):
            same = all(torch.allclose(kept[k], initial[other][k], rtol=0, atol=1e-20) for k in convs)
            assert same is (other == fold), (fold, other)


def test_the_selected_epoch_is_the_one_saved(prepared, demo_data, demo_raw, monkeypatch, tmp_path):
    """Selection inner keeps the best inner-hold-out epoch: its weights equal those of a run stopped
    after that epoch (constant learning rate, deterministic CPU), not the last epoch's."""
    root, _ = prepared
    scores = iter([0.2, 0.9, 0.5, 0.1, 0.2])  # three epochs of the first run, two of the second
    monkeypatch.setattr(train.semantic_metrics, "foreground_dice", lambda pairs, classes: (next(scores), {}))
    base = {**TINY, "selection": "inner", "monitor_scored_fold": False}
    history = train.train_fold(make_config(demo_raw, train={**base, "epochs": 3}), "Unet", 1, demo_data,
                               root / "augmented", root / "splits.parquet", tmp_path / "three", threads=1)
    assert history["selected"].tolist() == [False, True, False]
    train.train_fold(make_config(demo_raw, train={**base, "epochs": 2}), "Unet", 1, demo_data, root / "augmented",
                     root / "splits.parquet", tmp_path / "two", threads=1)
    kept, after_two = _weights(tmp_path / "three" / "model.pt"), _weights(tmp_path / "two" / "model.pt")
    assert all(torch.equal(kept[k], after_two[k]) for k in kept)
    assert torch.load(tmp_path / "three" / "model.pt", weights_only=True)["epoch"] == 2


def test_early_stopping_needs_an_honest_signal(prepared, demo_data, demo_raw, tmp_path):
    root, _ = prepared
    config = make_config(demo_raw, train={**TINY, "early_stopping_patience": 2})
    with pytest.raises(ConfigError, match="selection: inner"):
        train.train_fold(config, "Unet", 0, demo_data, root / "augmented", root / "splits.parquet", tmp_path / "m")


def test_boundary_target_trains_one_more_output_and_predicts_the_dataset_classes(prepared, demo_data, demo_raw,
                                                                                  tmp_path):
    from cellbench.dataset import Dataset
    from cellbench.inference.ensemble import FoldModel, Windows
    from cellbench.inference.objects import object_types
    from cellbench.inference.segment import segment

    root, splits = prepared
    config = make_config(demo_raw, classes=["background", "cytoplasm", "nucleus"],
                         train={"epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "crop_size": 64,
                                "target": "boundary", "monitor_scored_fold": False})
    train.train_fold(config, "Unet", 0, demo_data, root / "augmented", root / "splits.parquet", tmp_path / "m")
    model = FoldModel.load(tmp_path / "m" / "model.pt", torch.device("cpu"))
    assert model.meta["target"] == "boundary" and model.outputs[-1] == "border"
    assert model.net.segmentation_head[0].out_channels == 4
    sample = Dataset.fold_ids(splits, 0)[0]
    types = object_types(model.classes, {"nucleus": {"classes": ["nucleus"]}})
    result = segment(Dataset(demo_data).image(sample), [model], Windows(tile_size=None), types,
                     keep_probabilities=True)
    assert result.class_map.max() < 3 and result.probabilities.shape[0] == 4
    assert result.instances["nucleus"].shape == result.class_map.shape


def test_budget_plans_nest_inside_the_fold_and_keep_its_inner_and_scored_images(prepared):
    _, splits = prepared
    plans = {f: train.plan_fold(splits, 1, "inner", 0.2, seed=5, fraction=f) for f in (0.25, 0.5, 1.0)}
    assert set(plans[0.25].train_ids) < set(plans[0.5].train_ids) < set(plans[1.0].train_ids)
    assert all(p.inner_ids == plans[1.0].inner_ids and p.scored_ids == plans[1.0].scored_ids for p in plans.values())
    assert not set(plans[0.5].train_ids) & (set(plans[0.5].inner_ids) | set(plans[0.5].scored_ids))
    assert plans[0.5].fraction == 0.5


def test_a_budget_model_trains_on_its_share_only(prepared, two_variants, demo_data, demo_raw, monkeypatch, tmp_path):
    root, splits = prepared
    seen = _spy_on_training(monkeypatch)
    config = make_config(demo_raw, train={**TINY, "epochs": 1, "steps_per_epoch": None, "batch_size": 8})
    train.train_fold(config, "Unet", 0, demo_data, two_variants, root / "splits.parquet", tmp_path / "m", fraction=0.5)
    store = VariantStore(two_variants)
    trained = {store.sample_of(r) for r in seen["rows"]}
    plan = train.plan_fold(splits, 0, "last", 0.2, config["train"]["seed"] + 0, 0.5)
    assert trained == set(plan.train_ids) and len(trained) < (splits["fold"] != 0).sum()
    _, meta = models.load_checkpoint(tmp_path / "m" / "model.pt")
    assert meta["fraction"] == 0.5 and sorted(meta["train_samples"]) == sorted(plan.train_ids)
