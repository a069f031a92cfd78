"""Grey-level mask PNGs (e.g. 0 background, 128 cytoplasm, 255 nucleus) -> class maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage.measure import label as connected_components

from cellbench.errors import InputProblem


def level_lookup(levels: dict[str, int], classes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """256-entry tables: grey value -> class index of the nearest level, and 'is an exact level'."""
    unknown = [name for name in levels if name not in classes]
    if unknown:
        raise ValueError(f"grey_levels names classes not in `classes`: {unknown}")
    if len(set(levels.values())) != len(levels):
        raise ValueError(f"grey_levels maps two classes to one grey value: {levels}")
    values = np.array(sorted(levels.values()))
    index_of = {level: classes.index(name) for name, level in levels.items()}
    grey = np.arange(256)
    nearest = values[np.abs(grey[:, None] - values[None, :]).argmin(axis=1)]  # ties -> lower level
    lut = np.array([index_of[int(v)] for v in nearest], dtype=np.uint8)
    exact = np.isin(grey, values)
    return lut, exact


def read_grey_mask(path: Path, lut: np.ndarray, exact: np.ndarray
                   ) -> tuple[np.ndarray | None, int, list[InputProblem]]:
    """Class map, number of stray pixels mapped to the nearest level, and problems."""
    try:
        with Image.open(path) as pil:
            mode = pil.mode
            grey = np.asarray(pil.convert("RGB") if mode in ("RGB", "RGBA") else pil)
    except (OSError, ValueError) as err:
        return None, 0, [InputProblem(path, f"mask cannot be read ({err})")]
    if grey.ndim == 3:
        if not (np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 0], grey[..., 2])):
            return None, 0, [InputProblem(path, f"mask is colour ({mode}), expected 8-bit grey levels",
                                          "save the mask as a single-channel 8-bit PNG")]
        grey = grey[..., 0]
    if grey.dtype != np.uint8:
        return None, 0, [InputProblem(path, f"mask is {mode} ({grey.dtype}), expected 8-bit grey")]
    n_stray = int((~exact[grey]).sum())
    return lut[grey], n_stray, []


def cell_instances(class_map: np.ndarray) -> np.ndarray:
    """Instances of a mask without object ids: connected components of the foreground."""
    return connected_components(class_map > 0, connectivity=1).astype(np.uint16)
