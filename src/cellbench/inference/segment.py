"""One image in, its segmentation out: class map, objects per type, probabilities, uncertainty.

The same function serves the out-of-fold predictions of the benchmark (one fold model), the
per-epoch scoring during training (class map only) and the inference on new images (the fold
ensemble, test-time augmentation), so what is scored is what a user gets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cellbench.device import resolve_device
from cellbench.inference import detections, nucleus_guided, objects
from cellbench.inference.ensemble import DEFAULT_WINDOWS, FoldModel, Windows, argmax_channels, predict_blocks


@dataclass
class Segmentation:
    """What one image gets. ``entropy``: mean predictive entropy of the averaged probabilities,
    divided by log(C) (0 = certain, 1 = uniform); ``disagreement``: mean share of the models whose own
    class differs from the ensemble's (0 with one model)."""

    classes: list[str]
    class_map: np.ndarray  # uint8 (H, W)
    instances: dict[str, np.ndarray] = field(default_factory=dict)  # object type -> int32 (H, W), 1..N
    probabilities: np.ndarray | None = None  # float16 (C, H, W) when asked for
    entropy: float = 0.0
    disagreement: float = 0.0


def load_models(checkpoints: list[Path], device: str | torch.device = "auto") -> list[FoldModel]:
    """The fold models of the given checkpoints, on ``device`` (auto: CUDA when there is one)."""
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    return [FoldModel.load(Path(path), torch_device) for path in checkpoints]


def device_of(fold_models: list[FoldModel]) -> torch.device:
    weight = next(iter(fold_models[0].net.parameters()), None)
    return torch.device("cpu") if weight is None else weight.device


def chosen_outputs(mean: torch.Tensor, n_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(output chosen per pixel, class chosen per pixel): the argmax over the model's outputs, and for
    a touching-border pixel (output index n_classes) its most likely foreground class instead."""
    chosen = argmax_channels(mean, 0)
    if mean.shape[0] == n_classes:
        return chosen, chosen
    foreground = argmax_channels(mean[1:n_classes], 0) + 1
    return chosen, torch.where(chosen == n_classes, foreground, chosen)


def class_map(image: np.ndarray, fold_models: list[FoldModel], windows: Windows = DEFAULT_WINDOWS) -> np.ndarray:
    """uint8 (H, W) class indices: the argmax of the models' mean probabilities."""
    if fold_models[0].family == "maskrcnn":
        return _from_detections(image, fold_models, windows, None).class_map
    if fold_models[0].family == "nucleus_guided":
        return nucleus_guided.segment_cells(image, fold_models, windows, device_of(fold_models), None)[0]
    out = np.empty(image.shape[:2], np.uint8)
    n, outputs = len(fold_models[0].classes), len(fold_models[0].outputs)
    for (top, bottom, left, right), block in predict_blocks(image, fold_models, windows, device_of(fold_models)):
        out[top:bottom, left:right] = chosen_outputs(block[:outputs], n)[1].to(torch.uint8).numpy()
    return out


def segment(image: np.ndarray, fold_models: list[FoldModel], windows: Windows = DEFAULT_WINDOWS,
            object_types: dict[str, dict] | None = None, keep_probabilities: bool = False) -> Segmentation:
    """Segment one RGB uint8 image (H, W, 3) of any size.

    Parameters
    ----------
    image:
        RGB uint8 (H, W, 3).
    fold_models:
        From load_models: one model, or the K fold models of an architecture (their probabilities
        are averaged, as are those of the test-time transforms of ``windows.tta``).
    windows:
        Tile size, overlap, batch size, test-time augmentation, block size.
    object_types:
        name -> {classes, seeds, min_size, fill_holes} in class indices
        (cellbench.evaluation.scope.resolve(...).object_indices()); None: no instance maps.
    keep_probabilities:
        Also return the averaged probabilities (float16, C x H x W; C counts the model's outputs, so a
        model trained on touching borders adds the border channel last).

    Returns
    -------
    Segmentation. For Mask R-CNN models (whose objects come from their detections) and the two-stage
    NucleusGuided models (whose cells come from their second stage), no probabilities and no entropy
    or disagreement (NaN).
    """
    if any(m.family != fold_models[0].family for m in fold_models):
        raise ValueError("the models of an ensemble must be of one family")
    if fold_models[0].family == "maskrcnn":
        return _from_detections(image, fold_models, windows, object_types)
    if fold_models[0].family == "nucleus_guided":
        class_out, instances = nucleus_guided.segment_cells(image, fold_models, windows, device_of(fold_models),
                                                            object_types)
        return Segmentation(fold_models[0].classes, class_out, instances, None, float("nan"), float("nan"))
    classes = fold_models[0].classes
    n = len(fold_models[0].outputs)
    border = len(classes) if n > len(classes) else None
    height, width = image.shape[:2]
    class_out = np.empty((height, width), np.uint8)
    output_map = np.empty((height, width), np.uint8) if border is not None else class_out
    probabilities = np.empty((n, height, width), np.float16) if keep_probabilities else None
    entropy = disagreement = 0.0
    for (top, bottom, left, right), block in predict_blocks(image, fold_models, windows, device_of(fold_models)):
        mean, votes = block[:n], block[n:]
        chosen, chosen_class = chosen_outputs(mean, len(classes))
        class_out[top:bottom, left:right] = chosen_class.to(torch.uint8).numpy()
        if border is not None:
            output_map[top:bottom, left:right] = chosen.to(torch.uint8).numpy()
        entropy += float(-(mean * torch.log(mean.clamp_min(1e-12))).sum())
        disagreement += float((1.0 - votes.gather(0, chosen[None])).clamp_min(0).sum())
        if probabilities is not None:
            probabilities[:, top:bottom, left:right] = mean.numpy()
    pixels = max(height * width, 1)
    instances = {name: objects.objects_of(output_map, kind, border) for name, kind in (object_types or {}).items()}
    return Segmentation(classes, class_out, instances, probabilities,
                        entropy / pixels / math.log(n) if n > 1 else 0.0, disagreement / pixels)


def _from_detections(image: np.ndarray, fold_models: list[FoldModel], windows: Windows,
                     object_types: dict[str, dict] | None) -> Segmentation:
    """Class map and objects painted from Mask R-CNN detections; an object type the detector was
    not trained on is made from the class map like a semantic model's."""
    found = detections.detect(image, fold_models, windows)
    class_out, detected = detections.compose(found, image.shape[:2], fold_models[0].meta["detection_types"])
    instances = {}
    for name, kind in (object_types or {}).items():
        instances[name] = (objects.post_process(detected[name], kind.get("min_size", 0), kind.get("fill_holes", False))
                           if name in detected else objects.objects_of(class_out, kind))
    return Segmentation(fold_models[0].classes, class_out, instances, None, float("nan"), float("nan"))
