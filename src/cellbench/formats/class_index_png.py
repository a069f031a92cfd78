"""data.format class_index_png: one grey or palette PNG per image in data.annotations whose values
are class indices 0..C-1 in `classes` order (255 = ignore), the images in data.images matched by
file stem, or one folder per sample (data.sample_folders). LabelMe's own VOC export
(SegmentationClass/) is such a folder."""

from __future__ import annotations

from pathlib import Path

from cellbench.formats import Format, class_masks, pairing


def read_samples(files: list[Path], config, problems):
    table = class_masks.class_indices(config["classes"])
    yield from class_masks.samples(pairing.pairs(files, config["data"], problems), config, problems, table)


FORMAT = Format("class_index_png", "mask *.png files", lambda data: ("*.png",), read_samples, images_apart=True)
