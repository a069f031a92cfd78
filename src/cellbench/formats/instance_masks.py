"""Objects given one mask each (DSB folders, run-length rows, label images) -> class and instance maps."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from cellbench.classmaps import relabel_sequential
from cellbench.errors import ConfigError


def object_class_index(classes: list[str], object_class: str | None) -> int:
    """Class index given to every object (the only foreground class unless named)."""
    if object_class is None:
        if len(classes) != 2:
            raise ConfigError("data.object_class must name the class of the objects when there is more than "
                             f"one foreground class ({classes[1:]})")
        return 1
    if object_class not in classes:
        raise ConfigError(f"data.object_class {object_class!r} is not in classes {classes}")
    return classes.index(object_class)


def paint(masks: Iterable[np.ndarray], shape_hw: tuple[int, int], class_index: int
          ) -> tuple[np.ndarray, np.ndarray, int]:
    """Class map, instance map (object k = k-th mask; later masks win) and overlapping pixel count."""
    instances = np.zeros(shape_hw, dtype=np.int64)
    overlap = 0
    for k, mask in enumerate(masks, start=1):
        overlap += int((instances[mask] > 0).sum())
        instances[mask] = k
    classes = np.where(instances > 0, class_index, 0).astype(np.uint8)
    return classes, relabel_sequential(instances), overlap
