"""Inference: whole images padded to the model's size divisor and cropped back."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cellbench.classmaps import relabel_sequential
from cellbench.dataset import Dataset
from cellbench.device import autocast, normalise, resolve_device
from cellbench.errors import InputError, InputProblem
from cellbench.evaluation.scope import resolve
from cellbench.fsutil import staged_dir
from cellbench.images import write_png
from cellbench.inference import objects
from cellbench.training import models

log = logging.getLogger(__name__)

PREDICTION_INFO = "prediction.json"  # which model predicted a folder: the report finds (arch, fold) there


@torch.no_grad()
def predict_image(model: torch.nn.Module, image: np.ndarray, mean, std, divisor: int,
                  device: torch.device, amp: bool = True) -> np.ndarray:
    """Class map of one image.

    Parameters
    ----------
    model:
        A segmentation model in eval mode on ``device``.
    image:
        RGB uint8 (H, W, 3), any size: it is padded (reflected) to a multiple of ``divisor`` and the
        prediction cropped back.
    mean, std:
        The per-channel normalisation the model was trained with (in [0, 1]).
    divisor:
        The model's size divisor.
    device, amp:
        Where to run, and whether with mixed precision (CUDA only).

    Returns
    -------
    uint8 (H, W) class indices (argmax).
    """
    height, width = image.shape[:2]
    pad_h, pad_w = (-height) % divisor, (-width) % divisor
    x = torch.from_numpy(np.array(image))[None].to(device)
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=device)
    x = normalise(x, mean_t, std_t)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
    with autocast(device, amp):
        logits = model(x)
    return logits[0, :, :height, :width].argmax(0).to(torch.uint8).cpu().numpy()


def predict_fold(checkpoint: Path, data_dir: Path, splits: pd.DataFrame, fold: int, out_dir: Path,
                 device: str = "auto", object_spec: dict | None = None) -> list[str]:
    """Predict every image of ``fold`` with that fold's model (out of fold).

    Parameters
    ----------
    checkpoint:
        The fold's model.pt.
    data_dir, splits, fold:
        The ingested dataset, the folds, the fold to predict.
    out_dir:
        Where <sample>.png (class maps), instances/<type>/<sample>.png (uint16 instance maps) and
        prediction.json (which model, which images) are written.
    device:
        auto, cpu or cuda.
    object_spec:
        evaluate.objects (None: the schema default); the object types that apply to the model's
        classes get instance maps (cellbench.evaluation.scope: defaults that do not fit are skipped
        and logged).

    Returns
    -------
    The predicted sample ids.
    """
    data_dir = Path(data_dir)
    torch_device = resolve_device(device)
    model, meta = models.load_checkpoint(checkpoint, torch_device)
    if meta["fold"] != fold:
        raise InputError([InputProblem(Path(checkpoint), f"was trained for fold {meta['fold']}, not fold {fold}")])
    data = Dataset(data_dir)
    sample_ids = Dataset.fold_ids(splits, fold)
    section = {"regions": {}} if object_spec is None else {"regions": {}, "objects": object_spec}
    scope = resolve(meta["classes"], section)  # regions are not predicted: only the object types' notes
    scope.log(log)
    types = scope.object_indices()
    with staged_dir(Path(out_dir), [data_dir, checkpoint]) as stage:
        for name in types:
            (stage / "instances" / name).mkdir(parents=True)
        for sample_id in sample_ids:
            image = data.image(sample_id)
            class_map = predict_image(model, image, meta["mean"], meta["std"], meta["size_divisor"],
                                      torch_device)
            write_png(class_map, stage / f"{sample_id}.png")
            for name, kind in types.items():
                instances = objects.predicted_objects(class_map, kind["classes"], kind["seeds"])
                write_png(relabel_sequential(instances), stage / "instances" / name / f"{sample_id}.png")
        info = {"arch": meta["arch"], "encoder": meta["encoder"], "fold": fold, "selection": meta.get("selection"),
                "epoch": meta.get("epoch"), "checkpoint": str(checkpoint), "samples": sample_ids}
        (stage / PREDICTION_INFO).write_text(json.dumps(info, indent=1) + "\n")
    log.info("predicted %d out-of-fold images of fold %d", len(sample_ids), fold)
    return sample_ids


def prediction_info(folder: Path) -> dict:
    """What a prediction folder holds (architecture, fold, checkpoint, samples), from its prediction.json."""
    path = Path(folder) / PREDICTION_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError([InputProblem(path, f"cannot be read ({err})", "run the predict step of this fold again")]
                         ) from None
    if not isinstance(info, dict) or not {"arch", "fold"} <= set(info):
        raise InputError([InputProblem(path, "is not a cellbench prediction record")])
    return info
