"""Per-object masks: DSB-style folders (<id>/images/<id>.png, <id>/masks/<id>_<k>.png) and Kaggle
run-length CSVs (ImageId, EncodedPixels, Height, Width), turned into class and instance maps."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.classmaps import relabel_sequential
from cellbench.errors import ConfigError, InputProblem
from cellbench.formats import rle
from cellbench.images import MAX_PIXELS, ImageReadError, opened


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


def _number(path: Path) -> tuple[int, str]:
    match = re.search(r"_(\d+)$", path.stem)
    return (int(match.group(1)), path.stem) if match else (-1, path.stem)


def mask_files(sample_dir: Path) -> list[Path]:
    """A sample's object masks, in numeric order of their _k suffix (_2 before _10)."""
    return sorted((sample_dir / "masks").glob("*.png"), key=_number)


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


def read_mask_folder(sample_dir: Path, shape_hw: tuple[int, int], problems: list[InputProblem],
                     max_pixels: int | None = MAX_PIXELS) -> list[np.ndarray] | None:
    """The sample's object masks as booleans; a mask whose header size differs from the image is
    reported before its pixels are decoded."""
    masks = []
    for path in mask_files(sample_dir):
        try:
            with opened(path, max_pixels, "mask") as pil:
                width, height = pil.size
                if (height, width) != shape_hw:
                    problems.append(InputProblem(path, f"mask is {height} x {width} but the image is "
                                                       f"{shape_hw[0]} x {shape_hw[1]}"))
                    return None
                masks.append(np.asarray(pil.convert("L")) > 0)
        except ImageReadError as err:
            problems.append(InputProblem(path, str(err), err.hint))
            return None
    return masks


def read_rle_csv(path: Path, problems: list[InputProblem]) -> dict[str, list[tuple[int, str, int, int]]]:
    """Rows per image id, in file order: (line number, encoded pixels, height, width)."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:  # ParserError, EmptyDataError and UnicodeDecodeError are ValueErrors
        problems.append(InputProblem(path, f"run-length CSV cannot be read ({err})"))
        return {}
    needed = ["ImageId", "EncodedPixels", "Height", "Width"]
    missing = [c for c in needed if c not in table.columns]
    if missing:
        problems.append(InputProblem(path, f"missing columns {missing}", f"expected {', '.join(needed)}"))
        return {}
    rows: dict[str, list[tuple[int, str, int, int]]] = {}
    for line, (image_id, encoded, height, width) in enumerate(table[needed].itertuples(index=False), start=2):
        if not (re.fullmatch(r"[0-9]{1,9}", height) and re.fullmatch(r"[0-9]{1,9}", width)):
            problems.append(InputProblem(path, f"line {line}: Height/Width {height[:20]!r}/{width[:20]!r} "
                                               "are not integers"))
            continue
        rows.setdefault(image_id, []).append((line, encoded, int(height), int(width)))
    return rows


def decode_rows(path: Path, rows: list[tuple[int, str, int, int]], shape_hw: tuple[int, int],
                problems: list[InputProblem]) -> list[np.ndarray] | None:
    masks = []
    for line, encoded, height, width in rows:
        if (height, width) != shape_hw:
            problems.append(InputProblem(path, f"line {line}: Height x Width {height} x {width} but the image is "
                                               f"{shape_hw[0]} x {shape_hw[1]}"))
            return None
        if not encoded.strip():
            continue  # Kaggle writes an empty row for an image without objects
        try:
            masks.append(rle.decode(encoded, height, width))
        except ValueError as err:
            problems.append(InputProblem(path, f"line {line}: {err}"))
            return None
    return masks
