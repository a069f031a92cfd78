"""What every format's reader yields (a Sample) and what the readers share: images matched by file
stem, an image read or reported, objects painted into maps, and the last-resort guard that turns an
unforeseen error into a problem of the file that caused it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellbench.errors import ConfigError, InputProblem, internal_error
from cellbench.formats.instance_masks import paint
from cellbench.images import IMAGE_SUFFIXES, ImageReadError, LoadedImage, read_image

log = logging.getLogger(__name__)


@dataclass
class Sample:
    """One annotated image as ingest writes it: RGB image, class map, instance map."""

    sample_id: str
    source: Path
    image: LoadedImage
    class_map: np.ndarray
    instance_map: np.ndarray
    n_stray_pixels: int = 0


def guarded(items: Iterable, read: Callable, problems: list[InputProblem],
            file_of: Callable = lambda item: item) -> Iterator:
    """``read(item)`` for each item, yielding its non-None results. The last-resort guard: an exception
    no check foresaw becomes an internal-error problem of that item's file, and the other items go on."""
    for item in items:
        try:
            result = read(item)
        except Exception as err:
            problems.append(internal_error(file_of(item), err))
            continue
        if result is not None:
            yield result


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
        raise ConfigError(f"data.images must name the image folder when data.format is {data['format']}")
    image_dir = Path(data["images"])
    if not image_dir.is_dir():
        problems.append(InputProblem(image_dir, "image folder does not exist"))
        return None
    return image_index(image_dir, problems)


def read_image_or_report(path: Path, max_pixels: int, problems: list[InputProblem]) -> LoadedImage | None:
    try:
        return read_image(path, max_pixels)
    except ImageReadError as err:
        problems.append(InputProblem(path, str(err), err.hint))
        return None


def image_of(path: Path, images: dict[str, Path], image_dir, max_pixels: int, problems: list[InputProblem]
             ) -> tuple[Path, LoadedImage] | None:
    """The image of the annotation file ``path`` (same stem in ``images``), read; None, with a problem
    of that file, when there is none or it cannot be read."""
    image_path = images.get(path.stem)
    if image_path is None:
        problems.append(InputProblem(path, f"no image named {path.stem}.* in {image_dir}"))
        return None
    image = read_image_or_report(image_path, max_pixels, problems)
    return None if image is None else (image_path, image)


def instance_sample(sample_id: str, source: Path, image: LoadedImage, masks: Iterable[np.ndarray],
                    class_index: int) -> Sample:
    """A sample from one boolean mask per object, every object of class ``class_index``."""
    class_map, instance_map, overlap = paint(masks, image.rgb.shape[:2], class_index)
    if overlap:
        log.warning("%s: %d pixels belong to more than one object; the later object keeps them", source, overlap)
    return Sample(sample_id, source, image, class_map, instance_map)
