"""data.format rle_csv: a Kaggle run-length CSV (ImageId, EncodedPixels, Height, Width; 1-indexed,
column-major "start length" pairs) named by data.annotations, the images in data.images matched by
ImageId. Every object gets data.object_class."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.errors import InputProblem, internal_error
from cellbench.formats import Format, rle
from cellbench.formats.common import guarded, instance_sample, read_image_or_report
from cellbench.formats.instance_masks import object_class_index
from cellbench.formats.pairing import images_by_stem


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


def read_samples(files: list[Path], config, problems: list[InputProblem]):
    class_index = object_class_index(config["classes"], config["data"]["object_class"])
    csv = files[0]
    try:
        rows = read_rle_csv(csv, problems)
    except Exception as err:  # the last-resort guard, as in guarded()
        problems.append(internal_error(csv, err))
        return
    images = images_by_stem(config["data"], problems)
    if images is None:
        return
    max_pixels = config["data"]["max_pixels"]

    def read(image_id: str):
        if image_id not in images:
            problems.append(InputProblem(csv, f"no image named {image_id}.* in {config['data']['images']}"))
            return None
        image = read_image_or_report(images[image_id], max_pixels, problems)
        if image is None:
            return None
        masks = decode_rows(csv, rows[image_id], image.rgb.shape[:2], problems)
        if masks is None:
            return None
        return instance_sample(image_id, csv, image, masks, class_index, images[image_id])

    yield from guarded(sorted(rows), read, problems, file_of=lambda image_id: csv)


def image_ids(files: list[Path], data) -> list[str]:
    """The ImageIds of the CSV (none when it cannot be read: reading it reports why)."""
    try:
        return pd.read_csv(files[0], dtype=str, keep_default_na=False, usecols=["ImageId"])["ImageId"].tolist()
    except (OSError, ValueError, IndexError):
        return []


FORMAT = Format("rle_csv", "run-length CSV", lambda data: None, read_samples, images_apart=True, ids=image_ids)
