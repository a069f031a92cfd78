"""data.format instance_folders: the Data Science Bowl 2018 layout, one folder per image,
<id>/images/<id>.png and one binary mask per object in <id>/masks/ (sorted by the numeric _k
suffix). Every object gets data.object_class."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from cellbench.errors import InputProblem
from cellbench.formats import Format
from cellbench.formats.common import guarded, instance_sample, read_image_or_report
from cellbench.formats.instance_masks import object_class_index
from cellbench.images import IMAGE_SUFFIXES, MAX_PIXELS, ImageReadError, opened


def _number(path: Path) -> tuple[int, str]:
    match = re.search(r"_(\d+)$", path.stem)
    return (int(match.group(1)), path.stem) if match else (-1, path.stem)


def mask_files(sample_dir: Path) -> list[Path]:
    """A sample's object masks, in numeric order of their _k suffix (_2 before _10)."""
    return sorted((sample_dir / "masks").glob("*.png"), key=_number)


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


def read_samples(files: list[Path], config, problems: list[InputProblem]):
    class_index = object_class_index(config["classes"], config["data"]["object_class"])
    max_pixels = config["data"]["max_pixels"]

    def read(sample_dir: Path):
        images = [p for p in sorted((sample_dir / "images").glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(images) != 1:
            problems.append(InputProblem(sample_dir / "images", f"expected one image, found {len(images)}"))
            return None
        image = read_image_or_report(images[0], max_pixels, problems)
        if image is None:
            return None
        masks = read_mask_folder(sample_dir, image.rgb.shape[:2], problems, max_pixels)
        if masks is None:
            return None
        return instance_sample(sample_dir.name, sample_dir / "masks", image, masks, class_index, images[0])

    yield from guarded(sorted({path.parent.parent for path in files}), read, problems)


FORMAT = Format("instance_folders", "<id>/masks/*.png files", lambda data: ("*/masks/*.png",), read_samples,
                ids=lambda files, data: [path.parent.parent.name for path in files])
