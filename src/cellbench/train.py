"""Training one architecture on one fold: a fresh model, augmented training variants, original
validation images, best checkpoint by validation foreground Dice."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from segmentation_models_pytorch.losses import DiceLoss

from cellbench import config as configuration
from cellbench import metrics, models, provenance
from cellbench.classmaps import IGNORE_INDEX
from cellbench.fsutil import write_parquet
from cellbench.images import read_png
from cellbench.predict import autocast, normalise, predict_image, resolve_device
from cellbench.variants import VariantStore

log = logging.getLogger(__name__)


def fold_members(splits: pd.DataFrame, fold: int) -> tuple[list[str], list[str]]:
    """(training sample ids, validation sample ids) of one fold."""
    if fold not in set(splits["fold"]):
        raise ValueError(f"fold {fold} is not in the splits (folds: {sorted(set(splits['fold']))})")
    in_fold = splits["fold"] == fold
    return splits.loc[~in_fold, "sample_id"].tolist(), splits.loc[in_fold, "sample_id"].tolist()


class TrainingCrops(torch.utils.data.Dataset):
    """Random square crops of the augmented variants of the training samples only."""

    def __init__(self, store: VariantStore, rows: np.ndarray, crop_size: int, seed: int):
        self.store, self.rows, self.crop_size, self.seed = store, np.asarray(rows), crop_size, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int):
        row = int(self.rows[index])
        image, mask = self.store.get(row)
        rng = np.random.default_rng([self.seed, self.epoch, row])
        image, mask = _pad_to(image, mask, self.crop_size)
        top = rng.integers(0, image.shape[0] - self.crop_size + 1)
        left = rng.integers(0, image.shape[1] - self.crop_size + 1)
        window = np.s_[top:top + self.crop_size, left:left + self.crop_size]
        return (torch.from_numpy(np.array(image[window])),
                torch.from_numpy(mask[window].astype(np.int64)), row)


def _pad_to(image: np.ndarray, mask: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Mirror-pad image and mask until both sides are at least ``size``."""
    while image.shape[0] < size or image.shape[1] < size:
        pad_h = min(max(size - image.shape[0], 0), image.shape[0])
        pad_w = min(max(size - image.shape[1], 0), image.shape[1])
        image = np.pad(image, ((0, pad_h), (0, pad_w), (0, 0)), mode="symmetric")
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)), mode="symmetric")
    return image, mask


def channel_stats(images: list[np.ndarray]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation in [0, 1] over the given images."""
    pixels = np.concatenate([im.reshape(-1, 3) for im in images]).astype(np.float64) / 255.0
    return pixels.mean(0).tolist(), np.maximum(pixels.std(0), 1e-3).tolist()


def segmentation_loss(dice_weight: float):
    """Cross-entropy + dice_weight x soft multiclass Dice; ignored pixels count in neither."""
    cross_entropy = torch.nn.CrossEntropyLoss(ignore_index=IGNORE_INDEX)
    dice = DiceLoss("multiclass", from_logits=True, ignore_index=IGNORE_INDEX)

    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return cross_entropy(logits, target) + dice_weight * dice(logits, target)

    return loss


def configure_threads(threads: int) -> None:
    torch.set_num_threads(max(1, threads))
    try:
        torch.set_num_interop_threads(max(1, threads))
    except RuntimeError:  # can only be set once per process
        pass


def train_fold(config: dict, arch: str, fold: int, data_dir: Path, augmented_dir: Path,
               splits_path: Path, out_dir: Path, threads: int = 1) -> pd.DataFrame:
    """Train a fresh ``arch`` model on the training variants of ``fold``; write model.pt and
    history.parquet to ``out_dir`` and return the history."""
    settings = config["train"]
    classes = config["classes"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    configure_threads(threads)
    device = resolve_device(settings["device"])
    seed = settings["seed"] + fold
    torch.manual_seed(seed)  # weights; crops and batch order have their own seeded generators

    splits = pd.read_parquet(splits_path)
    train_ids, val_ids = fold_members(splits, fold)
    store = VariantStore(augmented_dir)
    rows = store.variants_of(train_ids)
    manifest = pd.read_parquet(Path(data_dir) / "manifest.parquet").set_index("sample_id")
    validation = [(sid, read_png(Path(data_dir) / manifest.at[sid, "image"]),
                   read_png(Path(data_dir) / manifest.at[sid, "mask"])) for sid in val_ids]
    mean, std = channel_stats([read_png(Path(data_dir) / manifest.at[s, "image"]) for s in train_ids])

    model = models.build(arch, settings["encoder"], len(classes), settings["encoder_weights"])
    divisor = models.size_divisor(model)
    if settings["crop_size"] % divisor:
        raise ValueError(f"train.crop_size {settings['crop_size']} is not a multiple of {divisor} "
                         f"(required by {arch})")
    model = model.to(device).to(memory_format=torch.channels_last)
    optimiser = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"],
                                 weight_decay=settings["weight_decay"])
    use_amp = settings["amp"] and device.type == "cuda"
    fp16 = use_amp and not torch.cuda.is_bf16_supported()
    scaler = torch.amp.GradScaler("cuda", enabled=fp16)
    loss_fn = segmentation_loss(settings["dice_weight"])
    mean_t = torch.tensor(mean, device=device)
    std_t = torch.tensor(std, device=device)

    crops = TrainingCrops(store, rows, settings["crop_size"], seed)
    workers = settings["loader_workers"]
    if workers is None:
        workers = 0 if device.type == "cpu" else max(0, threads - 1)
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        crops, batch_size=settings["batch_size"], shuffle=True, generator=generator,
        num_workers=workers, pin_memory=device.type == "cuda", persistent_workers=workers > 0)
    steps = len(loader) if settings["steps_per_epoch"] is None else min(len(loader), settings["steps_per_epoch"])
    log.info("%s/%s fold %d on %s: %d training samples (%d variants), %d validation samples, "
             "%d epochs x %d steps of %d crops %dpx, %d threads, %d loader workers",
             arch, settings["encoder"], fold, device, len(train_ids), len(rows), len(val_ids),
             settings["epochs"], steps, settings["batch_size"], settings["crop_size"], threads, workers)

    meta = {
        "arch": arch, "encoder": settings["encoder"], "encoder_weights": settings["encoder_weights"],
        "classes": list(classes), "in_channels": 3, "mean": mean, "std": std,
        "crop_size": settings["crop_size"], "size_divisor": divisor, "fold": fold, "seed": seed,
        "dataset": config["dataset"], "config_hash": configuration.digest(
            {k: config[k] for k in ("classes", "class_priority", "data", "split", "augment", "train")}),
        **provenance.record(),
    }
    history, best = [], -np.inf
    for epoch in range(1, settings["epochs"] + 1):
        started = time.perf_counter()
        crops.epoch = epoch
        model.train()
        losses, seen = [], 0
        for step, (images, masks, _) in enumerate(loader):
            if step == steps:
                break
            x = normalise(images.to(device, non_blocking=True), mean_t, std_t)
            y = masks.to(device, non_blocking=True)
            with autocast(device, settings["amp"]):
                logits = model(x)
                loss = loss_fn(logits, y)
            optimiser.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimiser)
            scaler.update()
            losses.append(loss.item())
            seen += len(images)
        train_seconds = time.perf_counter() - started
        model.eval()
        pairs = [(mask, predict_image(model, image, mean, std, divisor, device, settings["amp"]))
                 for _, image, mask in validation]
        val_dice, per_class = metrics.foreground_dice(pairs, classes)
        score = val_dice if np.isfinite(val_dice) else -1.0
        is_best = score > best
        if is_best:
            best = score
            models.save_checkpoint(out_dir / "model.pt", model, {**meta, "epoch": epoch, "val_dice": val_dice})
        record = {"dataset": config["dataset"], "arch": arch, "encoder": settings["encoder"], "fold": fold,
                  "epoch": epoch, "train_loss": float(np.mean(losses)), "val_dice_fg": val_dice,
                  **{f"val_dice_{name}": value for name, value in per_class.items()},
                  "learning_rate": optimiser.param_groups[0]["lr"],
                  "seconds": time.perf_counter() - started,
                  "images_per_second": seen / train_seconds if train_seconds else float("nan"),
                  "best": is_best}
        history.append(record)
        log.info("epoch %d/%d loss %.4f val_dice_fg %.4f (%s) %.1f img/s %.1fs%s", epoch,
                 settings["epochs"], record["train_loss"], val_dice,
                 " ".join(f"{k} {v:.3f}" for k, v in per_class.items()), record["images_per_second"],
                 record["seconds"], " *best*" if is_best else "")
    table = pd.DataFrame(history)
    write_parquet(table, out_dir / "history.parquet")
    return table
