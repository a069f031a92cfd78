"""data.format instance_labels: one label image per image in data.annotations (8- or 16-bit PNG or
TIFF, as Cellpose and StarDist store them) whose pixel values are object ids (0 = background), the
images in data.images matched by file stem, or one folder per sample (data.sample_folders). Every
object gets data.object_class."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from skimage.measure import label as equal_value_regions

from cellbench.errors import InputProblem
from cellbench.formats import Format, pairing
from cellbench.formats.common import Sample, guarded, read_image_or_report
from cellbench.formats.instance_masks import object_class_index
from cellbench.images import ImageReadError, read_labels

PATTERNS = ("*.png", "*.tif", "*.tiff", "*.PNG", "*.TIF", "*.TIFF")
# each object id of a label image is one region (a few in pieces); in a photograph every grey value
# is scattered over thousands of places (measured: <= 1.2 regions per value on the DSB-2018 label
# maps, 60-1000 on their images and the WBC photographs). A 16-bit camera image has so many values
# that each is only a few pixels: there its regions are tiny (2-5 pixels, against hundreds for cells).
REGIONS_PER_VALUE = 4
PIXELS_PER_REGION = 8


def photograph_problem(path: Path, ids: np.ndarray) -> InputProblem | None:
    """A problem when ``ids`` cannot be a label image: its values are scattered like a photograph's."""
    n_values = len(np.unique(ids))
    if n_values < 3:
        return None
    n_regions = int(equal_value_regions(ids.astype(np.int64), background=-1, connectivity=1).max())
    scattered = n_regions > REGIONS_PER_VALUE * n_values + 16
    specks = n_values > 256 and ids.size < PIXELS_PER_REGION * n_regions
    if not (scattered or specks):
        return None
    return InputProblem(path, f"this looks like an image, not a label image of object ids: its {n_values} distinct "
                              f"values lie in {n_regions} separate regions of {ids.size / n_regions:.1f} pixels "
                              "on average (each object id should be one region of many pixels)",
                        "data.annotations must hold the label images (0 = background, 1..N = objects) and "
                        "data.images the images")


def read_samples(files: list[Path], config, problems: list[InputProblem]):
    data = config["data"]
    class_index = object_class_index(config["classes"], data["object_class"])
    max_pixels = data["max_pixels"]

    def read(pair: pairing.Pair) -> Sample | None:
        if (problem := pairing.own_image(pair)) is not None:
            problems.append(problem)
            return None
        try:
            ids = read_labels(pair.label, max_pixels)
        except ImageReadError as err:
            problems.append(InputProblem(pair.label, str(err), err.hint))
            return None
        if (problem := photograph_problem(pair.label, ids)) is not None:
            problems.append(problem)
            return None
        image = read_image_or_report(pair.image, max_pixels, problems)
        if image is None:
            return None
        if ids.shape != image.rgb.shape[:2]:
            problems.append(InputProblem(pair.label, f"label image is {ids.shape[0]} x {ids.shape[1]} but "
                                                     f"{pair.image.name} is {image.rgb.shape[0]} x "
                                                     f"{image.rgb.shape[1]}"))
            return None
        present = np.unique(ids)  # sorted; not a count per possible id: a 32-bit id must not cost 16 GB
        present = present[present != 0]
        if len(present) > np.iinfo(np.uint16).max:
            problems.append(InputProblem(pair.label, f"{len(present)} objects: more than the "
                                                     f"{np.iinfo(np.uint16).max} an instance map holds"))
            return None
        instance_map = np.where(ids > 0, np.searchsorted(present, ids) + 1, 0).astype(np.uint16)
        class_map = np.where(instance_map > 0, class_index, 0).astype(np.uint8)
        return Sample(pair.sample_id, pair.label, image, class_map, instance_map, image_file=pair.image)

    yield from guarded(pairing.pairs(files, data, problems), read, problems, file_of=lambda pair: pair.label)


FORMAT = Format("instance_labels", "label images (*.png, *.tif) of object ids", lambda data: PATTERNS, read_samples,
                images_apart=True)
