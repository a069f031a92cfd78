"""data.format mask_pairs: images and their masks side by side in one folder (data.annotations),
told apart by name: the mask of image <stem>.<any image extension> is <stem><data.mask_suffix>
<data.mask_extension> (001.bmp + 001.png with the defaults; x.png + x_mask.png with mask_suffix
"_mask"); or one folder per sample with fixed names (data.sample_folders). Mask values are read as
data.mask_values says: grey levels (data.grey_levels) or class indices."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from cellbench.errors import InputProblem
from cellbench.formats import Format, class_masks, pairing
from cellbench.formats.pairing import Pair
from cellbench.images import IMAGE_SUFFIXES


def _mask_end(data: Mapping) -> str:
    return f"{data['mask_suffix']}{data['mask_extension']}"


def patterns(data: Mapping) -> tuple[str, ...]:
    end = _mask_end(data)
    return tuple(dict.fromkeys((f"*{end}", f"*{end.lower()}", f"*{end.upper()}")))


def sample_id(mask: Path, data: Mapping) -> str:
    """The sample of a mask is named after its image: 001, x (not x_mask)."""
    return mask.name[: len(mask.name) - len(_mask_end(data))]


def images_beside(masks: list[Path], data: Mapping, problems: list[InputProblem]) -> list[Pair]:
    """Each mask with its image: the one image file in its folder named <stem>.<ext>."""
    mask_set = set(masks)
    by_stem: dict[tuple[Path, str], list[Path]] = {}
    for folder in sorted({m.parent for m in masks}):
        for path in sorted(folder.iterdir()):
            if path in mask_set or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            by_stem.setdefault((folder, path.stem), []).append(path)
    pairs = []
    for mask in masks:
        stem = sample_id(mask, data)
        found = by_stem.get((mask.parent, stem), [])
        if len(found) > 1:
            problems.append(InputProblem(mask, f"{len(found)} images could be its image: "
                                               f"{', '.join(p.name for p in found)}", "keep one image per mask"))
        elif not found:
            hint = ("images and masks differ only in extension, so they cannot share it: set data.mask_suffix "
                    "(e.g. _mask) or data.mask_extension" if not data["mask_suffix"] else "")
            problems.append(InputProblem(mask, f"no image named {stem}.* beside it", hint))
        else:
            pairs.append(Pair(stem, mask, found[0]))
    return pairs


def read_samples(files: list[Path], config, problems: list[InputProblem]):
    data = config["data"]
    if data["mask_values"] == "grey_levels":
        table = class_masks.grey_levels(data["grey_levels"], config["classes"], data["stray_levels"])
    else:
        table = class_masks.class_indices(config["classes"])
    pairs = pairing.in_sample_folders(files, data, problems) if pairing.sample_folders(data) else \
        images_beside(files, data, problems)
    yield from class_masks.samples(pairs, config, problems, table)


FORMAT = Format("mask_pairs", "masks *{mask_suffix}{mask_extension} beside their images", patterns,
                read_samples, ids=lambda files, data: [sample_id(path, data) for path in files])
