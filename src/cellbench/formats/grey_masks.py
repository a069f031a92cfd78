"""data.format grey_masks: one 8-bit grey mask PNG per image in data.annotations whose grey levels
are classes (data.grey_levels, e.g. 0 background, 128 cytoplasm, 255 nucleus), the images in
data.images matched by file stem, or one folder per sample (data.sample_folders). Other grey values
(anti-aliasing) follow data.stray_levels."""

from __future__ import annotations

from pathlib import Path

from cellbench.formats import Format, class_masks, pairing


def read_samples(files: list[Path], config, problems):
    data = config["data"]
    table = class_masks.grey_levels(data["grey_levels"], config["classes"], data["stray_levels"])
    yield from class_masks.samples(pairing.pairs(files, data, problems), config, problems, table)


FORMAT = Format("grey_masks", "mask *.png files", lambda data: ("*.png",), read_samples, images_apart=True)
