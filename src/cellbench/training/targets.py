"""What a semantic model is trained to predict: the classes, or the classes plus a touching-border class.

A model trained on classes alone sees two touching cells as one region and no post-processing can
part them without a seed class. With ``train.target: boundary`` (the DSB-2018 winners' recipe) the
pixels where two annotated instances meet form one extra class, "border", the last output of the
model; its instances are then flooded from the interiors (cellbench.inference.objects).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cellbench.classmaps import IGNORE_INDEX
from cellbench.errors import ConfigError

TARGETS = ("classes", "boundary")
BORDER = "border"


def check_target(target: str) -> str:
    if target not in TARGETS:
        raise ConfigError(f"train.target must be one of {', '.join(TARGETS)}, not {target!r}")
    return target


def outputs(classes: list[str], target: str = "classes") -> list[str]:
    """The model's output channels: the classes, then "border" for the boundary target."""
    return [*classes, BORDER] if check_target(target) == "boundary" else list(classes)


def touching_border(instances: np.ndarray) -> np.ndarray:
    """Pixels of an instance with a pixel of another instance among their 8 neighbours (bool (H, W)):
    a line two pixels wide where two objects meet; edges against background are not borders."""
    ids = np.asarray(instances).astype(np.int64)
    inside = ids > 0
    larger = ndimage.maximum_filter(ids, size=3, mode="nearest") != ids
    filled = np.where(inside, ids, int(ids.max(initial=0)) + 1)  # background never the smaller neighbour
    smaller = ndimage.minimum_filter(filled, size=3, mode="nearest") != filled
    return inside & (larger | smaller)


def with_border(mask: np.ndarray, instances: np.ndarray, border_index: int) -> np.ndarray:
    """A copy of the class map with touching borders set to ``border_index`` (ignored pixels stay
    ignored)."""
    out = np.array(mask, copy=True)
    out[touching_border(instances) & (out != IGNORE_INDEX)] = border_index
    return out
