"""Training one architecture on one fold: a fresh model, augmented training variants, original
validation images, best checkpoint by validation foreground Dice; resumable after a SIGTERM."""

from __future__ import annotations

import logging
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from segmentation_models_pytorch.losses import DiceLoss

from cellbench import config as configuration
from cellbench import metrics, models, provenance, resume
from cellbench.batches import CropBatches
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


def configure_determinism(deterministic: bool) -> None:
    """Deterministic kernels (slower), or cuDNN's autotuner picking the fastest ones."""
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(deterministic)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


class TrainingStep:
    """Model, optimiser, loss, mixed precision and learning-rate schedule: one optimiser step per call."""

    def __init__(self, arch: str, settings: dict, n_classes: int, device: torch.device, total_steps: int):
        self.device, self.amp = device, settings["amp"]
        model = models.build(arch, settings["encoder"], n_classes, settings["encoder_weights"])
        self.model = model.to(device).to(memory_format=torch.channels_last)
        self.forward = torch.compile(self.model) if settings["compile"] else self.model
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=settings["learning_rate"],
                                          weight_decay=settings["weight_decay"])
        fp16 = self.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.loss_fn = segmentation_loss(settings["dice_weight"])
        self.schedule = settings["lr_schedule"]
        if self.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimiser, T_max=max(total_steps, 1), eta_min=settings["learning_rate"] * settings["lr_min_ratio"])
        elif self.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimiser, mode="max", factor=settings["plateau_factor"], patience=settings["plateau_patience"])
        else:
            self.scheduler = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """One optimiser step on a normalised batch; returns the loss (detached, not synchronised)."""
        with autocast(self.device, self.amp):
            loss = self.loss_fn(self.forward(x), y)
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        if self.schedule == "cosine":
            self.scheduler.step()
        return loss.detach()

    def end_epoch(self, score: float) -> None:
        if self.schedule == "plateau":
            self.scheduler.step(score)

    @property
    def learning_rate(self) -> float:
        return self.optimiser.param_groups[0]["lr"]

    def state_dict(self) -> dict:
        return {"model": self.model.state_dict(), "optimiser": self.optimiser.state_dict(),
                "scaler": self.scaler.state_dict(),
                "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {}}

    def load_state_dict(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimiser.load_state_dict(state["optimiser"])
        self.scaler.load_state_dict(state["scaler"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])


def _validation_set(data_dir: Path, manifest: pd.DataFrame, sample_ids: list[str]
                    ) -> list[tuple[str, np.ndarray, np.ndarray]]:
    return [(sid, read_png(Path(data_dir) / manifest.at[sid, "image"]),
             read_png(Path(data_dir) / manifest.at[sid, "mask"])) for sid in sample_ids]


class _Progress:
    """Where training stands: what a resumable state holds besides the weights."""

    def __init__(self):
        self.epoch, self.step = 1, 0  # next step to run
        self.loss_sum, self.seen, self.train_seconds = 0.0, 0, 0.0  # of the current epoch so far
        self.best, self.best_epoch, self.best_weights = -math.inf, 0, None
        self.history: list[dict] = []

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    def restore(self, state: dict) -> None:
        self.__dict__.update({k: state[k] for k in self.as_dict()})


def train_fold(config: dict, arch: str, fold: int, data_dir: Path, augmented_dir: Path,
               splits_path: Path, out_dir: Path, threads: int = 1, resume_dir: Path | None = None) -> pd.DataFrame:
    """Train a fresh ``arch`` model on the training variants of ``fold``; write model.pt and
    history.parquet to ``out_dir`` and return the history.

    On SIGTERM/SIGUSR1 the run saves ``resume_dir/resume.pt`` (default: ``out_dir``) and raises
    resume.Preempted; called again with the same settings, it continues from there and ends as an
    uninterrupted run would.
    """
    settings, classes = config["train"], config["classes"]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    resume_dir = Path(resume_dir or out_dir)
    configure_threads(threads)
    configure_determinism(settings["deterministic"])
    device = resolve_device(settings["device"])
    seed = settings["seed"] + fold
    torch.manual_seed(seed)  # weights; crops and batch order have their own seeded generators

    train_ids, val_ids = fold_members(pd.read_parquet(splits_path), fold)
    store = VariantStore(augmented_dir)
    batches = CropBatches(store, store.variants_of(train_ids), settings["crop_size"], settings["batch_size"],
                          seed, device, settings["in_memory"])
    manifest = pd.read_parquet(Path(data_dir) / "manifest.parquet").set_index("sample_id")
    validation = _validation_set(data_dir, manifest, val_ids)
    mean, std = channel_stats([read_png(Path(data_dir) / manifest.at[s, "image"]) for s in train_ids])
    steps = len(batches) if settings["steps_per_epoch"] is None else min(len(batches), settings["steps_per_epoch"])
    trainer = TrainingStep(arch, settings, len(classes), device, settings["epochs"] * steps)
    divisor = models.size_divisor(trainer.model)
    if settings["crop_size"] % divisor:
        raise ValueError(f"train.crop_size {settings['crop_size']} is not a multiple of {divisor} "
                         f"(required by {arch})")
    mean_t, std_t = torch.tensor(mean, device=device), torch.tensor(std, device=device)
    meta = {
        "arch": arch, "encoder": settings["encoder"], "encoder_weights": settings["encoder_weights"],
        "classes": list(classes), "in_channels": 3, "mean": mean, "std": std,
        "crop_size": settings["crop_size"], "size_divisor": divisor, "fold": fold, "seed": seed,
        "dataset": config["dataset"], "config_hash": configuration.digest(
            {k: config[k] for k in ("classes", "class_priority", "data", "split", "augment", "train")}),
        **provenance.record(),
    }
    run_hash = configuration.digest({"config": meta["config_hash"], "arch": arch, "fold": fold})
    progress = _Progress()
    saved = resume.load_state(resume_dir, run_hash)
    if saved is not None:
        trainer.load_state_dict(saved["trainer"])
        progress.restore(saved["progress"])
        resume.restore_rng_states(saved["rng"])
        log.info("resuming from %s at epoch %d, step %d", resume_dir / resume.RESUME_FILE, progress.epoch,
                 progress.step)
    log.info("%s/%s fold %d on %s: %d training samples (%d variants, %s), %d validation samples, "
             "%d epochs x %d steps of %d crops %dpx, lr %s %s, %d threads",
             arch, settings["encoder"], fold, device, len(train_ids), len(batches.rows), batches.where,
             len(val_ids), settings["epochs"], steps, settings["batch_size"], settings["crop_size"],
             settings["learning_rate"], settings["lr_schedule"], threads)

    def save_resumable() -> Path:
        return resume.save_state(resume_dir, {"config_hash": run_hash, "trainer": trainer.state_dict(),
                                           "progress": progress.as_dict()})

    last_save = time.monotonic()
    with resume.StopRequests() as stop:
        while progress.epoch <= settings["epochs"] and not _stopped_early(progress, settings):
            started = time.perf_counter()
            trainer.model.train()
            loss_sum = torch.zeros((), device=device)
            for images, masks, _ in batches.epoch(progress.epoch, progress.step, steps):
                loss_sum += trainer(normalise(images, mean_t, std_t), masks)
                progress.step += 1
                progress.seen += len(images)
                if stop.requested:
                    break
            progress.loss_sum += float(loss_sum)
            progress.train_seconds += time.perf_counter() - started
            if stop.requested:
                raise resume.Preempted(f"stopped at epoch {progress.epoch} step {progress.step}; "
                                       f"state saved to {save_resumable()}")
            _end_epoch(trainer, progress, validation, classes, mean, std, divisor, settings, config, arch, fold)
            if time.monotonic() - last_save > 60 * settings["resume_every_minutes"] or stop.requested:
                save_resumable()
                last_save = time.monotonic()
            if stop.requested:
                raise resume.Preempted(f"stopped after epoch {progress.epoch - 1}; state saved")
    if progress.best_weights is None:
        raise RuntimeError("no epoch finished")
    best_record = progress.history[progress.best_epoch - 1]
    models.save_checkpoint(out_dir / "model.pt", progress.best_weights,
                           {**meta, "epoch": progress.best_epoch, "val_dice": best_record["val_dice_fg"]})
    table = pd.DataFrame(progress.history)
    write_parquet(table, out_dir / "history.parquet")
    resume.clear_state(resume_dir)
    return table


def _stopped_early(progress: _Progress, settings: dict) -> bool:
    patience = settings["early_stopping_patience"]
    if patience is None or not progress.history or progress.history[-1]["epoch"] - progress.best_epoch < patience:
        return False
    log.info("early stop: no better validation Dice for %d epochs (best %.4f at epoch %d)",
             patience, progress.best, progress.best_epoch)
    return True


def _end_epoch(trainer: TrainingStep, progress: _Progress, validation, classes, mean, std, divisor,
               settings: dict, config: dict, arch: str, fold: int) -> None:
    """Validate, keep the best weights, record the epoch and move on to the next."""
    epoch_seconds = progress.train_seconds
    started = time.perf_counter()
    trainer.model.eval()
    pairs = [(mask, predict_image(trainer.model, image, mean, std, divisor, trainer.device, settings["amp"]))
             for _, image, mask in validation]
    val_dice, per_class = metrics.foreground_dice(pairs, classes)
    score = val_dice if np.isfinite(val_dice) else -1.0
    is_best = score > progress.best
    if is_best:
        progress.best, progress.best_epoch = score, progress.epoch
        progress.best_weights = models.cpu_weights(trainer.model)
    record = {"dataset": config["dataset"], "arch": arch, "encoder": settings["encoder"], "fold": fold,
              "epoch": progress.epoch, "train_loss": progress.loss_sum / max(progress.step, 1),
              "val_dice_fg": float(val_dice), **{f"val_dice_{name}": float(v) for name, v in per_class.items()},
              "learning_rate": trainer.learning_rate,
              "seconds": epoch_seconds + time.perf_counter() - started,
              "images_per_second": progress.seen / epoch_seconds if epoch_seconds else float("nan"),
              "best": is_best}
    progress.history.append(record)
    log.info("epoch %d/%d loss %.4f val_dice_fg %.4f (%s) %.1f img/s %.1fs%s", progress.epoch,
             settings["epochs"], record["train_loss"], val_dice,
             " ".join(f"{k} {v:.3f}" for k, v in per_class.items()), record["images_per_second"],
             record["seconds"], " *best*" if is_best else "")
    trainer.end_epoch(score)
    progress.epoch, progress.step = progress.epoch + 1, 0
    progress.loss_sum, progress.seen, progress.train_seconds = 0.0, 0, 0.0
