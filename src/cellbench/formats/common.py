"""What every format's reader yields (a Sample) and what the readers share: an image read or
reported, objects painted into maps, and the last-resort guard that turns an unforeseen error into a
problem of the file that caused it. Which image belongs to which label file: cellbench.formats.pairing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cellbench.errors import InputProblem, internal_error
from cellbench.formats.instance_masks import paint
from cellbench.images import ImageReadError, LoadedImage, read_image

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
    image_file: Path | None = None  # the image's own file, where it has one (how reports name the image)


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


def read_image_or_report(path: Path, max_pixels: int, problems: list[InputProblem]) -> LoadedImage | None:
    try:
        return read_image(path, max_pixels)
    except ImageReadError as err:
        problems.append(InputProblem(path, str(err), err.hint))
        return None


def instance_sample(sample_id: str, source: Path, image: LoadedImage, masks: Iterable[np.ndarray],
                    class_index: int, image_file: Path | None = None) -> Sample:
    """A sample from one boolean mask per object, every object of class ``class_index``."""
    class_map, instance_map, overlap = paint(masks, image.rgb.shape[:2], class_index)
    if overlap:
        log.warning("%s: %d pixels belong to more than one object; the later object keeps them", source, overlap)
    return Sample(sample_id, source, image, class_map, instance_map, image_file=image_file)
