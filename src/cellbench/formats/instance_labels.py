"""data.format instance_labels: one label image per image in data.annotations (8- or 16-bit PNG or
TIFF, as Cellpose and StarDist store them) whose pixel values are object ids (0 = background), the
images in data.images matched by file stem. Every object gets data.object_class."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cellbench.errors import InputProblem
from cellbench.formats import Format
from cellbench.formats.common import Sample, guarded, image_of, images_by_stem
from cellbench.formats.instance_masks import object_class_index
from cellbench.images import ImageReadError, read_labels

PATTERNS = ("*.png", "*.tif", "*.tiff", "*.PNG", "*.TIF", "*.TIFF")


def read_samples(files: list[Path], config, problems: list[InputProblem]):
    data = config["data"]
    class_index = object_class_index(config["classes"], data["object_class"])
    images = images_by_stem(data, problems)
    if images is None:
        return
    max_pixels = data["max_pixels"]

    def read(path: Path) -> Sample | None:
        found_image = image_of(path, images, data["images"], max_pixels, problems)
        if found_image is None:
            return None
        image_path, image = found_image
        try:
            ids = read_labels(path, max_pixels)
        except ImageReadError as err:
            problems.append(InputProblem(path, str(err), err.hint))
            return None
        if ids.shape != image.rgb.shape[:2]:
            problems.append(InputProblem(path, f"label image is {ids.shape[0]} x {ids.shape[1]} but {image_path.name} "
                                               f"is {image.rgb.shape[0]} x {image.rgb.shape[1]}"))
            return None
        present = np.unique(ids)  # sorted; not a count per possible id: a 32-bit id must not cost 16 GB
        present = present[present != 0]
        if len(present) > np.iinfo(np.uint16).max:
            problems.append(InputProblem(path, f"{len(present)} objects: more than the {np.iinfo(np.uint16).max} an "
                                               "instance map holds"))
            return None
        instance_map = np.where(ids > 0, np.searchsorted(present, ids) + 1, 0).astype(np.uint16)
        class_map = np.where(instance_map > 0, class_index, 0).astype(np.uint8)
        return Sample(path.stem, path, image, class_map, instance_map)

    yield from guarded(files, read, problems)


FORMAT = Format("instance_labels", "label images (*.png, *.tif) of object ids", lambda data: PATTERNS, read_samples,
                images_apart=True)
