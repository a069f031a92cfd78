"""Class and instance maps from Mask R-CNN detections, for an image of any size.

An image larger than a window is cut into overlapping windows; each window keeps the detections
whose box centre lies in its own share of the image (the overlaps split half-way), so an object is
kept once, by the window that sees it most centrally. Several fold models: their detections are
pooled and torchvision's per-label NMS keeps the best of overlapping ones. Detections are painted
from the lowest score up (the most confident wins a contested pixel); an object type paints its own
class, types nesting others first (cells, then their nuclei on top).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms

from cellbench.classmaps import sequential
from cellbench.device import autocast
from cellbench.errors import ConfigError
from cellbench.inference.ensemble import FoldModel, Windows

ENSEMBLE_NMS_IOU = 0.5


@dataclass
class Detections:
    """Kept detections of one image: boxes (N, 4) x0 y0 x1 y1 in image pixels, labels, scores, and
    each binary mask cropped to its integer box (x0, y0, x1, y1)."""

    boxes: torch.Tensor
    labels: torch.Tensor
    scores: torch.Tensor
    masks: list[tuple[tuple[int, int, int, int], np.ndarray]]


def window_starts(size: int, tile: int, overlap: float) -> list[int]:
    """Starts of windows of side ``tile`` covering ``size`` with at least ``overlap`` shared."""
    if size <= tile:
        return [0]
    step = max(int(tile * (1 - overlap)), 1)
    count = math.ceil((size - tile) / step) + 1
    return [round(i * (size - tile) / (count - 1)) for i in range(count)]


def shares(starts: list[int], tile: int, size: int) -> list[tuple[float, float]]:
    """The part of the axis each window answers for: the overlaps of neighbours split half-way."""
    cuts = [0.0] + [(starts[i] + starts[i - 1] + tile) / 2 for i in range(1, len(starts))] + [float(size)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


@torch.no_grad()
def _window_detections(model: FoldModel, window: np.ndarray, device: torch.device, amp: bool):
    net = model.net
    height, width = window.shape[:2]
    net.transform.min_size, net.transform.max_size = (min(height, width),), max(height, width)  # native scale
    x = torch.from_numpy(np.ascontiguousarray(window.transpose(2, 0, 1))).to(device).float() / 255
    with autocast(device, amp):
        out = net([x])[0]
    keep = out["scores"] >= float(model.meta["score_threshold"])
    return {key: value[keep].float() if value.is_floating_point() else value[keep] for key, value in out.items()}


def detect(image: np.ndarray, fold_models: list[FoldModel], windows: Windows) -> Detections:
    """Detections of every model over the windows of ``image`` (RGB uint8), pooled."""
    if windows.tta != "none":
        raise ConfigError("test-time augmentation is not available for MaskRCNN: set infer.tta: none")
    device = next(fold_models[0].net.parameters()).device
    height, width = image.shape[:2]
    tile = windows.tile_size or max(height, width)
    rows, cols = window_starts(height, tile, windows.overlap), window_starts(width, tile, windows.overlap)
    boxes, labels, scores, masks = [], [], [], []
    for model in fold_models:
        model.net.eval()
        threshold = float(model.meta["mask_threshold"])
        for top, (row_from, row_to) in zip(rows, shares(rows, tile, height), strict=True):
            for left, (col_from, col_to) in zip(cols, shares(cols, tile, width), strict=True):
                found = _window_detections(model, image[top:top + tile, left:left + tile], device, windows.amp)
                box = found["boxes"].cpu() + torch.tensor([left, top, left, top], dtype=torch.float32)
                centre_y, centre_x = (box[:, 1] + box[:, 3]) / 2, (box[:, 0] + box[:, 2]) / 2
                mine = ((centre_y >= row_from) & (centre_y < row_to) & (centre_x >= col_from) & (centre_x < col_to))
                probabilities = found["masks"][:, 0].cpu()
                for index in torch.nonzero(mine).flatten().tolist():
                    x0, y0, x1, y1 = box[index].tolist()
                    x0, y0 = max(int(math.floor(x0)), left), max(int(math.floor(y0)), top)
                    x1, y1 = min(int(math.ceil(x1)), left + tile, width), min(int(math.ceil(y1)), top + tile, height)
                    if x1 <= x0 or y1 <= y0:
                        continue
                    crop = probabilities[index, y0 - top:y1 - top, x0 - left:x1 - left].numpy() >= threshold
                    boxes.append(box[index])
                    labels.append(int(found["labels"][index]))
                    scores.append(float(found["scores"][index]))
                    masks.append(((x0, y0, x1, y1), crop))
    if not boxes:
        return Detections(torch.zeros((0, 4)), torch.zeros(0, dtype=torch.int64), torch.zeros(0), [])
    result = Detections(torch.stack(boxes), torch.tensor(labels), torch.tensor(scores), masks)
    if len(fold_models) > 1:
        keep = batched_nms(result.boxes, result.scores, result.labels, ENSEMBLE_NMS_IOU).tolist()
        result = Detections(result.boxes[keep], result.labels[keep], result.scores[keep],
                            [result.masks[i] for i in keep])
    return result


def compose(detections: Detections, shape: tuple[int, int], types: dict[str, dict]
            ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(class map uint8, object type -> instance map int32 1..N) painted from the detections."""
    class_map = np.zeros(shape, np.uint8)
    instances = {name: np.zeros(shape, np.int32) for name in types}
    order = np.argsort(detections.scores.numpy(), kind="stable")  # lowest first: the best paints last
    for name, kind in types.items():  # painting order: a type before the types nested in it
        count = 0
        for index in order:
            if int(detections.labels[index]) != kind["label"]:
                continue
            (x0, y0, x1, y1), crop = detections.masks[index]
            if not crop.any():
                continue
            count += 1
            class_map[y0:y1, x0:x1][crop] = kind["paints"]
            instances[name][y0:y1, x0:x1][crop] = count
        instances[name] = sequential(instances[name])[0]  # an object wholly covered by better ones is gone
    return class_map, instances
