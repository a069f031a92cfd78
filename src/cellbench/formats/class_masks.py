"""Mask PNGs whose pixel values stand for classes -> class maps.

Two kinds: grey-level masks (e.g. 0 background, 128 cytoplasm, 255 nucleus), where a value that is
no level ("stray", e.g. from anti-aliasing or JPEG) goes to the nearest level, to the ignore index,
or is an error; and class-index masks (0..C-1, 255 ignore; grey or palette PNGs such as LabelMe's
own VOC export), where any other value is an error.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from skimage.measure import label as connected_components

from cellbench.classmaps import IGNORE_INDEX
from cellbench.errors import ConfigError, InputProblem
from cellbench.formats.pairing import Pair, own_image
from cellbench.images import MAX_PIXELS, ImageReadError, opened

log = logging.getLogger(__name__)

STRAY_POLICIES = ("nearest", "ignore", "error")
MOST_STRAY = 0.5  # a "mask" with more pixels off every level than on one is an image (anti-aliasing is ~1 %)


@dataclass(frozen=True)
class ValueTable:
    """How pixel values become classes: a 256-entry class table and which values are exact."""

    lut: np.ndarray
    exact: np.ndarray
    stray: str  # nearest | ignore | error
    keep_palette_indices: bool  # class-index PNGs: a palette index is the class, not its colour
    hint: str


def grey_levels(levels: dict[str, int], classes: list[str], stray: str = "nearest") -> ValueTable:
    """Grey value -> class of the nearest level (ties go to the lower level)."""
    unknown = [name for name in levels if name not in classes]
    if unknown:
        raise ConfigError(f"grey_levels names classes not in `classes`: {unknown}")
    if len(set(levels.values())) != len(levels):
        raise ConfigError(f"grey_levels maps two classes to one grey value: {levels}")
    if stray not in STRAY_POLICIES:
        raise ConfigError(f"stray_levels must be one of {STRAY_POLICIES}, not {stray!r}")
    values = np.array(sorted(levels.values()))
    index_of = {level: classes.index(name) for name, level in levels.items()}
    grey = np.arange(256)
    nearest = values[np.abs(grey[:, None] - values[None, :]).argmin(axis=1)]
    lut = np.array([index_of[int(v)] for v in nearest], dtype=np.uint8)
    levels_text = ", ".join(f"{name} {level}" for name, level in levels.items())
    return ValueTable(lut, np.isin(grey, values), stray, False,
                      f"levels are {levels_text}; set data.stray_levels to nearest or ignore to accept them")


def class_indices(classes: list[str]) -> ValueTable:
    """Value i -> class i for i < len(classes); 255 -> ignore; anything else is an error."""
    values = np.arange(256)
    exact = (values < len(classes)) | (values == IGNORE_INDEX)
    return ValueTable(values.astype(np.uint8), exact, "error", True,
                      f"class indices are 0..{len(classes) - 1} ({', '.join(classes)}) and {IGNORE_INDEX} = ignore")


def _read_values(path: Path, table: ValueTable, max_pixels: int | None) -> np.ndarray | InputProblem:
    try:
        with opened(path, max_pixels, "mask") as pil:
            mode = pil.mode
            if mode == "P" and not table.keep_palette_indices:
                pil = pil.convert("RGB")
            elif mode in ("RGBA", "LA", "PA"):
                pil = pil.convert("RGB")
            values = np.asarray(pil)
    except ImageReadError as err:
        return InputProblem(path, str(err), err.hint)
    if values.ndim == 3:
        if not (np.array_equal(values[..., 0], values[..., 1]) and np.array_equal(values[..., 0], values[..., 2])):
            return InputProblem(path, f"mask is colour ({mode}), expected one value per pixel",
                                "save the mask as a single-channel 8-bit PNG")
        values = values[..., 0]
    if values.dtype == bool:
        values = values.astype(np.uint8)
    if values.dtype != np.uint8:
        return InputProblem(path, f"mask is {mode} ({values.dtype}), expected 8-bit values")
    return values


def read_class_mask(path: Path, table: ValueTable, max_pixels: int | None = MAX_PIXELS
                    ) -> tuple[np.ndarray | None, int, list[InputProblem]]:
    """Class map, number of stray pixels (values that are no class), and problems."""
    values = _read_values(path, table, max_pixels)
    if isinstance(values, InputProblem):
        return None, 0, [values]
    stray = ~table.exact[values]
    n_stray = int(np.count_nonzero(stray))
    if n_stray > MOST_STRAY * values.size:  # a photograph is no mask, whatever the stray policy says
        return None, n_stray, [InputProblem(
            path, f"this looks like an image, not a mask: {100 * n_stray / values.size:.0f} % of its pixels hold "
                  f"values that are no class ({len(np.unique(values))} distinct values)",
            "point data.annotations at the masks (images and masks in one folder: data.format mask_pairs)")]
    if n_stray and table.stray == "error":
        found = np.unique(values[stray])
        shown = ", ".join(map(str, found[:12])) + (", ..." if len(found) > 12 else "")
        return None, n_stray, [InputProblem(path, f"{n_stray} pixels have values that are no class ({shown})",
                                            table.hint)]
    class_map = table.lut[values]
    if n_stray and table.stray == "ignore":
        class_map[stray] = IGNORE_INDEX
    return class_map, n_stray, []


def cell_instances(class_map: np.ndarray) -> np.ndarray:
    """Instances of a mask without object ids: connected components of the foreground."""
    foreground = (class_map > 0) & (class_map != IGNORE_INDEX)
    return connected_components(foreground, connectivity=1).astype(np.uint16)


def samples(pairs: list[Pair], config: Mapping, problems: list[InputProblem], table: ValueTable):
    """Samples of mask files read with ``table``, each with its paired image."""
    from cellbench.formats.common import Sample, guarded, read_image_or_report

    max_pixels = config["data"]["max_pixels"]

    def read(pair: Pair) -> Sample | None:
        if (problem := own_image(pair)) is not None:
            problems.append(problem)
            return None
        class_map, n_stray, found = read_class_mask(pair.label, table, max_pixels)
        problems.extend(found)
        if class_map is None:
            return None
        image = read_image_or_report(pair.image, max_pixels, problems)
        if image is None:
            return None
        if class_map.shape != image.rgb.shape[:2]:
            problems.append(InputProblem(pair.label, f"mask is {class_map.shape[0]} x {class_map.shape[1]} but "
                                                     f"{pair.image.name} is {image.rgb.shape[0]} x "
                                                     f"{image.rgb.shape[1]}"))
            return None
        if n_stray:
            fate = "the nearest level" if table.stray == "nearest" else "the ignore index"
            log.warning("%s: %d pixels with grey values that are not class levels were mapped to %s",
                        pair.label, n_stray, fate)
        return Sample(pair.sample_id, pair.label, image, class_map, cell_instances(class_map), n_stray,
                      image_file=pair.image)

    yield from guarded(pairs, read, problems, file_of=lambda pair: pair.label)
