"""data.format class_index_png: one grey or palette PNG per image in data.annotations whose values
are class indices 0..C-1 in `classes` order (255 = ignore), the images in data.images matched by
file stem. LabelMe's own VOC export (SegmentationClass/) is such a folder."""

from __future__ import annotations

from pathlib import Path

from cellbench.formats import Format, class_masks
from cellbench.formats.common import images_by_stem


def read_samples(files: list[Path], config, problems):
    images = images_by_stem(config["data"], problems)
    if images is not None:
        table = class_masks.class_indices(config["classes"])
        yield from class_masks.samples(files, config, problems, table, images, Path(config["data"]["images"]))


FORMAT = Format("class_index_png", "mask *.png files", lambda data: ("*.png",), read_samples, images_apart=True)
