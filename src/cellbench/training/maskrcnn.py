"""Mask R-CNN as a cellbench model family: torchvision's maskrcnn_resnet50_fpn_v2 trained per fold
on the object types (cells, and nuclei as a second label) of the instance maps.

Each object type of evaluate.objects is one detection label. The type paints its "own" class into
the composed class map: its classes minus those of the types nested in it (a cell paints
cytoplasm, the nucleus inside it paints nucleus on top), so the predictions are class and instance
maps like every other architecture's and are scored by the same metrics. Images are seen at their
own scale: torchvision's resizing to 800 pixels is switched off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from cellbench.errors import ConfigError, WeightsUnavailable
from cellbench.evaluation.scope import resolve
from cellbench.inference.objects import truth_objects

ARCH = "MaskRCNN"
FAMILY = "maskrcnn"
BACKBONE = "resnet50_fpn_v2"


def detection_types(classes: list[str], objects: dict | None) -> dict[str, dict]:
    """name -> {label (1..), classes: [indices], paints: class index}, in painting order (a type
    before the types nested in it). Refused when a class would never be predicted or a type has no
    single class of its own."""
    section = {"regions": {}} if objects is None else {"regions": {}, "objects": objects}
    types = resolve(list(classes), section).object_indices()
    members = {name: set(kind["classes"]) for name, kind in types.items()}
    out = {}
    for name in sorted(types, key=lambda n: -len(members[n])):
        nested = set().union(*(m for other, m in members.items() if other != name and m < members[name]))
        own = sorted(members[name] - nested)
        if len(own) != 1:
            raise ConfigError(f"MaskRCNN: object type {name!r} ({', '.join(classes[i] for i in sorted(members[name]))})"
                              " must have exactly one class of its own, not covered by a type nested in it; "
                              "adjust evaluate.objects")
        out[name] = {"label": len(out) + 1, "classes": sorted(members[name]), "paints": own[0]}
    painted = {kind["paints"] for kind in out.values()}
    missing = [classes[i] for i in range(1, len(classes)) if i not in painted]
    if missing:
        raise ConfigError(f"MaskRCNN cannot predict class {', '.join(missing)}: no object type of evaluate.objects "
                          "has it as its own class")
    return out


def build(n_labels: int, mean: list[float], std: list[float], shape: dict,
          backbone_weights: str | None = None) -> torch.nn.Module:
    """A fresh Mask R-CNN (torchvision v2 recipe) for ``n_labels`` object types plus background,
    normalising with the training images' channel statistics; ``shape``: score_threshold,
    detections_per_image, proposals_per_image, rois_per_image (the maskrcnn settings). An ImageNet
    backbone only when asked for, and only from torch's local cache (never downloaded on a compute
    node)."""
    from torchvision.models import ResNet50_Weights
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    weights_backbone = None
    if backbone_weights is not None:
        if backbone_weights != "imagenet":
            raise ConfigError(f"MaskRCNN backbone weights: only imagenet or null, not {backbone_weights!r}")
        weights_backbone = ResNet50_Weights.IMAGENET1K_V1
        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(weights_backbone.url).name
        if not cached.exists():
            raise WeightsUnavailable(f"MaskRCNN backbone weights are not in torch's cache ({cached}); fetch them on "
                                     "a host with internet (torchvision.models.resnet50(weights='IMAGENET1K_V1')) "
                                     "or set train.encoder_weights: null")
    return maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=weights_backbone, num_classes=n_labels + 1,
                                    image_mean=list(mean), image_std=list(std),
                                    box_detections_per_img=shape["detections_per_image"],
                                    box_score_thresh=shape["score_threshold"],
                                    rpn_post_nms_top_n_train=shape["proposals_per_image"],
                                    rpn_post_nms_top_n_test=shape["proposals_per_image"],
                                    box_batch_size_per_image=shape["rois_per_image"], _skip_resize=True)


SHAPE = ("score_threshold", "mask_threshold", "detections_per_image", "proposals_per_image", "rois_per_image")


def detection_targets(class_crop: np.ndarray, instance_crop: np.ndarray, types: dict[str, dict],
                      device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Boxes (x0, y0, x1, y1; float32), labels (int64) and binary masks (uint8, N x H x W) of every
    object of every type in one crop, as torchvision's detection models take them."""
    boxes, labels, masks = [], [], []
    for kind in types.values():
        objects = truth_objects(class_crop, instance_crop, kind["classes"])
        for index in np.unique(objects[objects > 0]):
            mask = objects == index
            rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
            boxes.append([cols[0], rows[0], cols[-1] + 1, rows[-1] + 1])
            labels.append(kind["label"])
            masks.append(mask)
    height, width = class_crop.shape
    return {"boxes": torch.as_tensor(np.array(boxes, np.float32).reshape(-1, 4), device=device),
            "labels": torch.as_tensor(np.array(labels, np.int64), device=device),
            "masks": torch.as_tensor(np.array(masks, np.uint8).reshape(-1, height, width), device=device)}


def batch_loss(types: dict[str, dict]):
    """loss(model, images uint8 (B, H, W, 3), targets int64 (B, 2, H, W) = class map and instance map):
    the sum of Mask R-CNN's losses (RPN, box, class, mask)."""
    def loss(model, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        pictures = list((images.permute(0, 3, 1, 2).float() / 255).unbind(0))
        maps = targets.cpu().numpy()
        wanted = [detection_targets(m[0], m[1], types, images.device) for m in maps]
        return sum(model(pictures, wanted).values())
    return loss
