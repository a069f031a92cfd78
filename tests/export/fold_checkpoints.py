"""Small fold checkpoints for the export tests (fixtures in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import torch

from cellbench.training import models

CLASSES = ["background", "cytoplasm", "nucleus"]
# each fold its own normalisation, as folds trained on different images have
NORMALISATION = [([0.5, 0.5, 0.5], [0.25, 0.25, 0.25]), ([0.8, 0.66, 0.68], [0.18, 0.22, 0.1])]


def save_fold(path: Path, arch: str = "Unet", fold: int = 0, encoder: str = "resnet18", **meta) -> Path:
    """A cellbench checkpoint of a freshly initialised smp model (seeded by the fold)."""
    torch.manual_seed(fold)
    net = models.build(arch, encoder, len(CLASSES))
    mean, std = NORMALISATION[fold % len(NORMALISATION)]
    path.parent.mkdir(parents=True, exist_ok=True)
    models.save_checkpoint(path, net, {"arch": arch, "encoder": encoder, "classes": CLASSES, "in_channels": 3,
                                       "mean": mean, "std": std, "size_divisor": models.size_divisor(net),
                                       "fold": fold, "dataset": "t", **meta})
    return path
