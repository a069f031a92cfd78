"""Which image belongs to which label file (mask or label image), decided from names alone, before
anything is decoded: by file stem (the images in data.images), side by side in one folder
(mask_pairs), or one folder per sample with fixed file names (data.sample_folders, where the
sample id is the folder's path below data.annotations)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from cellbench.errors import ConfigError, InputProblem
from cellbench.images import IMAGE_SUFFIXES

# the formats of one label file per image, which can also come as one folder per sample
SAMPLE_FOLDER_FORMATS = ("grey_masks", "class_index_png", "instance_labels", "mask_pairs")
ID_SEPARATOR = "__"  # a nested sample folder a/set1 is sample a__set1 (ids are file names)


@dataclass(frozen=True)
class Pair:
    """One sample: its id, its label file and its image file."""

    sample_id: str
    label: Path
    image: Path


def own_image(pair: Pair) -> InputProblem | None:
    """A label file that is its own image (data.annotations and data.images naming one folder of
    images, say) is no annotation."""
    try:
        same = pair.label.resolve() == pair.image.resolve()
    except OSError:
        same = False
    if not same:
        return None
    return InputProblem(pair.label, "is its own image: a label file must be a mask or label image beside it, "
                                    "not the image itself", "data.annotations must hold the masks, data.images "
                                    "the images (or set data.sample_folders: {image: ..., labels: ...})")


def sample_folders(data: Mapping) -> Mapping | None:
    """data.sample_folders when it applies to data.format (else None)."""
    spec = data.get("sample_folders")
    return spec if spec and data["format"] in SAMPLE_FOLDER_FORMATS else None


def folder_patterns(spec: Mapping) -> tuple[str, ...]:
    """The globs of the label files under data.annotations: the labels pattern at any depth."""
    return (f"**/{spec['labels']}",)


def _depth(pattern: str) -> int:
    return len(PurePosixPath(pattern).parts) - 1


def sample_folder_of(label: Path, spec: Mapping) -> Path:
    """The sample folder of a label file (the labels pattern may name a subfolder: masks/*.png)."""
    return label.parents[_depth(spec["labels"])]


def folder_sample_id(folder: Path, root: Path) -> str:
    """A sample folder's id: its path below data.annotations, parts joined by ID_SEPARATOR."""
    try:
        parts = folder.relative_to(root).parts
    except ValueError:
        parts = ()
    return ID_SEPARATOR.join(parts) or folder.name or "sample"


def _matches(path: Path, folder: Path, pattern: str) -> bool:
    return fnmatch.fnmatchcase(path.relative_to(folder).as_posix(), pattern)


def in_sample_folders(files: list[Path], data: Mapping, problems: list[InputProblem]) -> list[Pair]:
    """One pair per sample folder: its one label file and its one image (data.sample_folders)."""
    spec = sample_folders(data)
    root = Path(data["annotations"])
    by_folder: dict[Path, list[Path]] = {}
    for label in files:
        if label.is_file():
            by_folder.setdefault(sample_folder_of(label, spec), []).append(label)
    pairs, seen = [], {}
    for folder, labels in sorted(by_folder.items()):
        if len(labels) > 1:  # a labels pattern that also matches the image (*.png for raw.png + ids.png)
            labels = [label for label in labels if not _matches(label, folder, spec["image"])] or labels
        if len(labels) > 1:
            problems.append(InputProblem(folder, f"{len(labels)} files match data.sample_folders.labels "
                                                 f"{spec['labels']!r}: {', '.join(p.name for p in labels)}",
                                         "keep one label file per sample folder, or make the pattern narrower"))
            continue
        images = [path for path in sorted(folder.glob(spec["image"]))
                  if path.is_file() and path != labels[0] and path.suffix.lower() in IMAGE_SUFFIXES]
        if len(images) != 1:
            found = f": {', '.join(p.name for p in images)}" if images else ""
            problems.append(InputProblem(folder, f"{len(images)} images match data.sample_folders.image "
                                                 f"{spec['image']!r}{found}",
                                         "each sample folder needs exactly one image"))
            continue
        sample_id = folder_sample_id(folder, root)
        if sample_id in seen:
            problems.append(InputProblem(folder, f"sample id {sample_id!r} is also the id of {seen[sample_id]}",
                                         f"rename one folder ({ID_SEPARATOR!r} joins nested folder names)"))
            continue
        seen[sample_id] = folder
        pairs.append(Pair(sample_id, labels[0], images[0]))
    return pairs


def image_index(folder: Path, problems: list[InputProblem]) -> dict[str, Path]:
    """Images by file stem: <folder>/<stem>.<ext>, or the DSB layout <folder>/<id>/images/<id>.<ext>."""
    index: dict[str, Path] = {}
    candidates = [*sorted(folder.iterdir()), *sorted(folder.glob("*/images/*"))]
    for path in candidates:
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue
        if path.stem in index:
            problems.append(InputProblem(path, f"two images share the name {path.stem!r}: "
                                               f"{index[path.stem].name} and {path.name}"))
        index[path.stem] = path
    return index


def images_by_stem(data: Mapping, problems: list[InputProblem]) -> dict[str, Path] | None:
    """The images of data.images by file stem (None, with a problem, when the folder is missing)."""
    if not data["images"]:
        raise ConfigError(f"data.images must name the image folder when data.format is {data['format']} "
                          "(or set data.sample_folders for one folder per sample)")
    image_dir = Path(data["images"])
    if not image_dir.is_dir():
        problems.append(InputProblem(image_dir, "image folder does not exist"))
        return None
    return image_index(image_dir, problems)


def by_stem(files: list[Path], data: Mapping, problems: list[InputProblem]) -> list[Pair]:
    """Each label file with the image of its stem in data.images."""
    images = images_by_stem(data, problems)
    if images is None:
        return []
    pairs = []
    for label in files:
        image = images.get(label.stem)
        if image is None:
            problems.append(InputProblem(label, f"no image named {label.stem}.* in {data['images']}"))
        else:
            pairs.append(Pair(label.stem, label, image))
    return pairs


def pairs(files: list[Path], data: Mapping, problems: list[InputProblem]) -> list[Pair]:
    """The samples of a label-file format: in sample folders when data.sample_folders is set, else by stem."""
    if sample_folders(data):
        return in_sample_folders(files, data, problems)
    return by_stem(files, data, problems)
