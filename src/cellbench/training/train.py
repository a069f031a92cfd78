"""Training one architecture on one fold: a fresh model on the augmented variants of the fold's
training images, resumable after a SIGTERM.

Which weights are kept is `train.selection`, and no decision ever looks at the fold that is
scored unless the user asks for the optimistic protocol by name:
- last: the weights after the final epoch (nnU-Net's cross-validation);
- inner: the best epoch on an inner hold-out carved from the training groups (never trained on),
  which also drives early stopping and the plateau schedule;
- scored_fold_best: the best epoch on the scored fold itself. Optimistic; it exists only to
  reproduce published numbers and is labelled in every output.
The scored fold may be scored after every epoch for the training curves (monitor only).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from segmentation_models_pytorch.losses import DiceLoss

from cellbench import config as configuration
from cellbench import provenance
from cellbench.classmaps import IGNORE_INDEX
from cellbench.dataset import Dataset
from cellbench.dataset.split import budget_subset, inner_holdout
from cellbench.device import autocast, normalise, resolve_device
from cellbench.errors import ConfigError, Preempted
from cellbench.evaluation import semantic_metrics
from cellbench.fsutil import write_parquet
from cellbench.inference.ensemble import FoldModel, Windows
from cellbench.inference.segment import class_map
from cellbench.settings import NOT_MODEL_SETTINGS, Settings, TrainSettings
from cellbench.training import maskrcnn, models, nucleus_guided, resume, targets
from cellbench.training.batches import CropBatches
from cellbench.training.variants import VariantStore

log = logging.getLogger(__name__)

SELECTIONS = ("last", "inner", "scored_fold_best")
OPTIMISTIC = "scored_fold_best"


def protocol_label(selection: str) -> str:
    """How the kept weights were chosen, in words for tables and figures."""
    return {"last": "last epoch",
            "inner": "best epoch on an inner hold-out of the training images",
            OPTIMISTIC: "best epoch on the scored fold (OPTIMISTIC: selected on the images it is scored on)",
            }[selection]


def fold_members(splits: pd.DataFrame, fold: int) -> tuple[list[str], list[str]]:
    """(training sample ids, scored sample ids) of one fold."""
    return Dataset.training_ids(splits, fold), Dataset.fold_ids(splits, fold)


@dataclass(frozen=True)
class FoldPlan:
    """Which images one fold's model trains on, decides with, and is scored on."""

    fold: int
    selection: str
    train_ids: list[str]  # trained on (through their augmented variants)
    inner_ids: list[str]  # selection inner: held out of the training groups, decides epoch and early stop
    scored_ids: list[str]  # the fold: scored out of fold
    fraction: float = 1.0  # share of the training groups trained on (train.fractions: annotation budget)

    @property
    def deciding_ids(self) -> list[str]:
        """The images whose Dice decides the epoch (and early stop, plateau steps)."""
        return {"last": [], "inner": self.inner_ids, OPTIMISTIC: self.scored_ids}[self.selection]


def plan_fold(splits: pd.DataFrame, fold: int, selection: str, inner_fraction: float, seed: int,
              fraction: float = 1.0) -> FoldPlan:
    """The fold's training, inner hold-out (selection inner) and scored images. With ``fraction`` < 1
    the model trains on a nested, grouped, stratified subset of the training groups left after the
    inner hold-out (split.budget_subset); the inner and scored images do not change."""
    if selection not in SELECTIONS:
        raise ConfigError(f"train.selection must be one of {', '.join(SELECTIONS)}, not {selection!r}")
    train_ids, scored_ids = fold_members(splits, fold)
    training = splits[~splits["fold"].eq(fold)]
    columns = {"group": training.get("group", training["sample_id"]),
               "stratum": training.get("stratum", pd.Series("all", index=training.index))}
    table = pd.DataFrame({"sample_id": training["sample_id"], **columns})
    inner_ids: list[str] = []
    if selection == "inner":
        try:
            inner_ids = inner_holdout(table, inner_fraction, seed)
        except ValueError as err:
            raise ConfigError(f"selection inner, fold {fold}: {err}") from None
        held = set(inner_ids)
        train_ids = [s for s in train_ids if s not in held]
    if fraction != 1:
        try:
            kept = set(budget_subset(table[table["sample_id"].isin(train_ids)], fraction, seed))
        except ValueError as err:
            raise ConfigError(f"fold {fold}: {err}") from None
        train_ids = [s for s in train_ids if s in kept]
    return FoldPlan(fold, selection, train_ids, inner_ids, scored_ids, fraction)


def channel_stats(data: Dataset, sample_ids: list[str]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation in [0, 1] over the images of ``sample_ids``
    (the training images only: the normalisation is part of what is learned)."""
    total, total_sq, count = np.zeros(3), np.zeros(3), 0
    for sample_id in sample_ids:
        pixels = data.image(sample_id).reshape(-1, 3).astype(np.float64) / 255
        total += pixels.sum(0)
        total_sq += (pixels ** 2).sum(0)
        count += len(pixels)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(total_sq / max(count, 1) - mean ** 2, 0))
    return mean.tolist(), np.maximum(std, 1e-3).tolist()


def scoring_set(data: Dataset, sample_ids: list[str]) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(sample id, image, class map) of the images scored after each epoch."""
    return [(sid, data.image(sid), data.class_map(sid)) for sid in sample_ids]


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


def check_settings(settings: TrainSettings) -> None:
    """Combinations that cannot be honest or cannot work, refused before any work."""
    targets.check_target(settings.target)
    if settings.early_stopping_patience is not None and settings.selection == "last":
        raise ConfigError("train.early_stopping_patience needs a validation signal that is not the scored fold: "
                          "set train.selection: inner (or early_stopping_patience: null)")


class TrainingStep:
    """Model, optimiser, loss, mixed precision and learning-rate schedule: one optimiser step per call.
    ``loss(forward, images, targets)`` computes the family's loss on a uint8 batch."""

    def __init__(self, model: torch.nn.Module, loss, settings: TrainSettings, device: torch.device,
                 total_steps: int, learning_rate: float | None = None, compile_model: bool = False):
        self.device, self.amp = device, settings.amp
        self.model = model
        self.forward = torch.compile(self.model) if compile_model else self.model
        rate = settings.learning_rate if learning_rate is None else learning_rate
        self.optimiser = torch.optim.Adam(self.model.parameters(), lr=rate, weight_decay=settings.weight_decay)
        fp16 = self.amp and device.type == "cuda" and not torch.cuda.is_bf16_supported()
        self.scaler = torch.amp.GradScaler("cuda", enabled=fp16)
        self.loss_fn = loss
        self.schedule = settings.lr_schedule
        if self.schedule == "cosine":
            self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                self.optimiser, T_max=max(total_steps, 1), eta_min=rate * settings.lr_min_ratio)
        elif self.schedule == "plateau":
            self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self.optimiser, mode="max", factor=settings.plateau_factor, patience=settings.plateau_patience)
        else:
            self.scheduler = None

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One optimiser step on a uint8 batch; returns the loss (detached, not synchronised)."""
        with autocast(self.device, self.amp):
            loss = self.loss_fn(self.forward, images, targets)
        self.optimiser.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        if self.schedule == "cosine":
            self.scheduler.step()
        return loss.detach()

    def end_epoch(self, signal: float) -> None:
        """``signal``: higher is better (selection Dice, or minus the training loss under `last`)."""
        if self.schedule == "plateau":
            self.scheduler.step(signal)

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


def build_trainer(arch: str, settings: Settings, mean: list[float], std: list[float], device: torch.device,
                  total_steps: int, variants: tuple[VariantStore, np.ndarray] | None = None
                  ) -> tuple[TrainingStep, dict]:
    """The training step of ``arch``'s model family, and the checkpoint fields that rebuild its model
    and tell inference how to read its outputs. ``variants``: the store and the fold's training rows
    (NucleusGuided draws its stage-2 cells from them)."""
    train_settings, classes = settings.train, list(settings.classes)
    if arch == nucleus_guided.ARCH:
        if variants is None:
            raise ValueError("NucleusGuided trains on cells drawn from the training variants: pass variants")
        net, samples, family = nucleus_guided.build_trainer_parts(
            classes, settings.nucleus_guided, train_settings.encoder, train_settings.encoder_weights, *variants)
        loss = nucleus_guided.batch_loss(segmentation_loss(train_settings.dice_weight), samples, family, mean, std,
                                         device)
        log.info("NucleusGuided: %d training cells; scales %s for cytoplasm/nucleus area ratios %s",
                 len(samples.cells), [round(s, 2) for s in family["scales"]],
                 [round(r, 2) for r in family["scale_ratios"]])
        trainer = TrainingStep(net.to(device).to(memory_format=torch.channels_last), loss, train_settings, device,
                               total_steps, compile_model=train_settings.compile)
        return trainer, family
    if arch == maskrcnn.ARCH:
        rcnn = settings.maskrcnn
        types = maskrcnn.detection_types(classes, settings.evaluate.objects)
        shape = {key: rcnn[key] for key in maskrcnn.SHAPE}
        model = maskrcnn.build(len(types), mean, std, shape, train_settings.encoder_weights)
        trainer = TrainingStep(model.to(device), maskrcnn.batch_loss(types), train_settings, device, total_steps,
                               rcnn.learning_rate)
        return trainer, {"family": maskrcnn.FAMILY, "encoder": maskrcnn.BACKBONE, "detection_types": types,
                         **shape, "size_divisor": 32}
    outputs = targets.outputs(classes, train_settings.target)
    model = models.build(arch, train_settings.encoder, len(outputs), train_settings.encoder_weights)
    model = model.to(device).to(memory_format=torch.channels_last)
    mean_t, std_t = torch.tensor(mean, device=device), torch.tensor(std, device=device)
    segmentation = segmentation_loss(train_settings.dice_weight)

    def loss(forward, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        return segmentation(forward(normalise(images, mean_t, std_t)), masks)

    trainer = TrainingStep(model, loss, train_settings, device, total_steps, compile_model=train_settings.compile)
    return trainer, {"family": "smp", "encoder": train_settings.encoder, "target": train_settings.target,
                     "size_divisor": models.size_divisor(model)}


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


def run_identity(settings: Settings, arch: str, plan: FoldPlan, manifest: pd.DataFrame,
                 variants: pd.DataFrame) -> str:
    """Digest of what a training run depends on: the fold's training, inner and scored samples as
    ingested (manifest rows), the training variants (variant manifest rows), the model-changing train
    settings and classes. A resumable state is continued only by a run with the same identity."""
    def rows(ids):
        return manifest.loc[ids].reset_index().astype(str).to_dict("records")

    train = {k: v for k, v in settings.train.sent().items() if k not in NOT_MODEL_SETTINGS}
    return configuration.digest({
        "arch": arch, "fold": plan.fold, "classes": list(settings.classes), "train": train,
        "train_samples": rows(plan.train_ids), "inner_samples": rows(plan.inner_ids),
        "scored_samples": rows(plan.scored_ids),
        "variants": variants.astype(str).to_dict("records"), "resume_format": 2})


def train_fold(settings: Settings | Mapping, arch: str, fold: int, data_dir: Path, augmented_dir: Path,
               splits_path: Path, out_dir: Path, threads: int = 1, resume_dir: Path | None = None,
               fraction: float = 1.0) -> pd.DataFrame:
    """Train a fresh ``arch`` model on the training variants of ``fold``.

    Parameters
    ----------
    settings:
        What the step was sent: ``dataset``, ``classes`` and the ``train`` section.
    arch, fold:
        The architecture (smp's class name) and the fold whose images are scored.
    data_dir, augmented_dir, splits_path:
        The ingested dataset, its augmented variants, the folds.
    out_dir:
        Where model.pt (the weights train.selection keeps, with everything needed to rebuild the
        model) and history.parquet (one row per epoch) are written.
    threads:
        Torch threads.
    resume_dir:
        Where a SIGTERM/SIGUSR1 saves resume.pt (default: ``out_dir``).
    fraction:
        Share of the fold's training groups to train on (the annotation budget of train.fractions;
        nested across fractions, see plan_fold).

    Returns
    -------
    The history table.

    On a stop signal the run saves its state and raises errors.Preempted; called again on the same
    inputs, it continues from there and ends as an uninterrupted run would.
    """
    if not isinstance(settings, Settings):
        settings = Settings.build(settings)
    train_settings, classes = settings.train, list(settings.classes)
    check_settings(train_settings)
    out_dir = Path(out_dir)
    resume_dir = Path(resume_dir or out_dir)
    configure_threads(threads)
    configure_determinism(train_settings.deterministic)
    device = resolve_device(train_settings.device)
    seed = train_settings.seed + fold
    torch.manual_seed(seed)  # weights; crops and batch order have their own seeded generators

    plan = plan_fold(pd.read_parquet(splits_path), fold, train_settings.selection, train_settings.inner_fraction,
                     seed, fraction)
    store = VariantStore(augmented_dir)
    rows = store.variants_of(plan.train_ids)
    instance_model = arch == maskrcnn.ARCH
    semantic = arch not in (maskrcnn.ARCH, nucleus_guided.ARCH)  # the others make their own objects
    border = len(classes) if semantic and train_settings.target == "boundary" else None
    batches = CropBatches(store, rows, train_settings.crop_size, train_settings.batch_size, seed, device,
                          train_settings.in_memory, border_index=border, with_instances=instance_model)
    data = Dataset(data_dir)
    deciding = scoring_set(data, plan.deciding_ids)
    monitored = (scoring_set(data, plan.scored_ids)
                 if train_settings.monitor_scored_fold and plan.selection != OPTIMISTIC else [])
    mean, std = channel_stats(data, plan.train_ids)
    steps = len(batches) if train_settings.steps_per_epoch is None else min(len(batches),
                                                                             train_settings.steps_per_epoch)
    trainer, family = build_trainer(arch, settings, mean, std, device, train_settings.epochs * steps, (store, rows))
    divisor = family["size_divisor"]
    if train_settings.crop_size % divisor:
        raise ConfigError(f"train.crop_size {train_settings.crop_size} is not a multiple of {divisor} "
                          f"(required by {arch})")
    identity = run_identity(settings, arch, plan, data.manifest, store.manifest.iloc[rows])
    model_settings = {k: v for k, v in train_settings.sent().items() if k not in NOT_MODEL_SETTINGS}
    meta = {
        "arch": arch, "encoder_weights": train_settings.encoder_weights, **family,
        "classes": classes, "in_channels": 3, "mean": mean, "std": std,
        "crop_size": train_settings.crop_size, "fold": fold, "seed": seed,
        "dataset": settings.dataset, "selection": plan.selection, "protocol": protocol_label(plan.selection),
        "train_samples": plan.train_ids, "inner_samples": plan.inner_ids, "fraction": plan.fraction,
        "config_hash": configuration.digest({"classes": classes, "train": model_settings}),
        "inputs_digest": identity, **provenance.record(),
    }
    progress = _Progress()
    saved = resume.load_state(resume_dir, identity)
    if saved is not None:
        trainer.load_state_dict(saved["trainer"])
        progress.restore(saved["progress"])
        resume.restore_rng_states(saved["rng"])
        log.info("resuming from %s at epoch %d, step %d", resume_dir / resume.RESUME_FILE, progress.epoch,
                 progress.step)
    log.info("%s/%s fold %d on %s: %d training samples (%d variants, %s), %d inner hold-out, %d scored; "
             "selection %s; %d epochs x %d steps of %d crops %dpx, lr %s %s, %d threads",
             arch, meta["encoder"], fold, device, len(plan.train_ids), len(batches.rows), batches.where,
             len(plan.inner_ids), len(plan.scored_ids), protocol_label(plan.selection), train_settings.epochs,
             steps, train_settings.batch_size, train_settings.crop_size, trainer.learning_rate,
             train_settings.lr_schedule, threads)
    epoch_end = _EpochEnd(trainer, progress, deciding, monitored, meta, settings, arch, plan)

    def save_resumable() -> Path:
        return resume.save_state(resume_dir, {"identity": identity, "trainer": trainer.state_dict(),
                                              "progress": progress.as_dict()})

    last_save = time.monotonic()
    with resume.StopRequests() as stop:
        while progress.epoch <= train_settings.epochs and not _stopped_early(progress, train_settings):
            started = time.perf_counter()
            trainer.model.train()
            loss_sum = torch.zeros((), device=device)
            for images, masks, _ in batches.epoch(progress.epoch, progress.step, steps):
                loss_sum += trainer(images, masks)
                progress.step += 1
                progress.seen += len(images)
                if stop.requested:
                    break
            progress.loss_sum += float(loss_sum)
            progress.train_seconds += time.perf_counter() - started
            if stop.requested:
                raise Preempted(f"stopped at epoch {progress.epoch} step {progress.step}; "
                                       f"state saved to {save_resumable()}")
            epoch_end()
            if time.monotonic() - last_save > 60 * train_settings.resume_every_minutes or stop.requested:
                save_resumable()
                last_save = time.monotonic()
            if stop.requested:
                raise Preempted(f"stopped after epoch {progress.epoch - 1}; state saved")
    if not progress.history:
        raise RuntimeError("no epoch finished")
    if plan.selection == "last":
        kept_epoch, weights = progress.history[-1]["epoch"], models.cpu_weights(trainer.model)
    else:
        kept_epoch, weights = progress.best_epoch, progress.best_weights
    for record in progress.history:
        record["selected"] = record["epoch"] == kept_epoch
    kept = progress.history[kept_epoch - 1]
    models.save_checkpoint(out_dir / "model.pt", weights,
                           {**meta, "epoch": kept_epoch, "selection_dice": kept["selection_dice_fg"]})
    table = pd.DataFrame(progress.history)
    write_parquet(table, out_dir / "history.parquet")
    resume.clear_state(resume_dir)
    log.info("kept the weights of epoch %d (%s)", kept_epoch, protocol_label(plan.selection))
    return table


def _stopped_early(progress: _Progress, settings: TrainSettings) -> bool:
    patience = settings.early_stopping_patience
    if patience is None or not progress.history or progress.history[-1]["epoch"] - progress.best_epoch < patience:
        return False
    log.info("early stop: no better selection Dice for %d epochs (best %.4f at epoch %d)",
             patience, progress.best, progress.best_epoch)
    return True


def _dice_columns(prefix: str, value: float, per_class: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_dice_fg": float(value), **{f"{prefix}_dice_{name}": float(v) for name, v in per_class.items()}}


class _EpochEnd:
    """After each epoch: score the deciding images (and the monitored scored fold), keep the best
    weights when the selection asks for it, record the epoch and move on to the next."""

    def __init__(self, trainer, progress, deciding, monitored, meta: dict, settings: Settings, arch: str,
                 plan: FoldPlan):
        self.trainer, self.progress, self.deciding, self.monitored = trainer, progress, deciding, monitored
        self.meta, self.classes = meta, list(meta["classes"])
        self.settings, self.arch, self.plan = settings, arch, plan

    def _dice(self, scored) -> tuple[float, dict[str, float]]:
        if not scored:
            return float("nan"), {name: float("nan") for name in self.classes[1:]}
        model = FoldModel(self.trainer.model, self.meta)
        windows = Windows(amp=self.settings.train.amp)
        pairs = [(mask, class_map(image, [model], windows)) for _, image, mask in scored]
        return semantic_metrics.foreground_dice(pairs, self.classes)

    def __call__(self) -> None:
        progress, trainer, settings = self.progress, self.trainer, self.settings.train
        epoch_seconds = progress.train_seconds
        started = time.perf_counter()
        trainer.model.eval()
        deciding_dice, deciding_classes = self._dice(self.deciding)
        monitor_dice, monitor_classes = self._dice(self.monitored)
        train_loss = progress.loss_sum / max(progress.step, 1)
        if self.plan.selection == "last":
            signal = -train_loss
        else:
            signal = deciding_dice if np.isfinite(deciding_dice) else -1.0
            if signal > progress.best:
                progress.best, progress.best_epoch = signal, progress.epoch
                progress.best_weights = models.cpu_weights(trainer.model)
        record = {"dataset": self.settings.dataset, "arch": self.arch, "encoder": self.meta["encoder"],
                  "fold": self.plan.fold, "epoch": progress.epoch, "selection": self.plan.selection,
                  "train_loss": train_loss, **_dice_columns("selection", deciding_dice, deciding_classes),
                  **_dice_columns("monitor", monitor_dice, monitor_classes),
                  "learning_rate": trainer.learning_rate,
                  "seconds": epoch_seconds + time.perf_counter() - started,
                  "peak_gpu_gb": (torch.cuda.max_memory_allocated(trainer.device) / 2**30
                                  if trainer.device.type == "cuda" else float("nan")),
                  "images_per_second": progress.seen / epoch_seconds if epoch_seconds else float("nan"),
                  "device": (torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda"
                             else trainer.device.type),
                  "torch": str(torch.__version__),  # a plain str: resume.pt is loaded weights_only
                  "selected": False}
        progress.history.append(record)
        best = self.plan.selection != "last" and progress.best_epoch == progress.epoch
        log.info("epoch %d/%d loss %.4f selection_dice_fg %.4f monitor_dice_fg %.4f (monitor only) %.1f img/s "
                 "%.1fs%s", progress.epoch, settings.epochs, train_loss, deciding_dice, monitor_dice,
                 record["images_per_second"], record["seconds"], " *best*" if best else "")
        trainer.end_epoch(signal)
        progress.epoch, progress.step = progress.epoch + 1, 0
        progress.loss_sum, progress.seen, progress.train_seconds = 0.0, 0, 0.0
