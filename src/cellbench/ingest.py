"""Ingest: annotated images -> normalised RGB PNG, class map, instance map and manifest."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench import greymasks, labelme
from cellbench.classmaps import IGNORE_INDEX
from cellbench.errors import InputError, InputProblem
from cellbench.fsutil import staged_dir
from cellbench.images import IMAGE_SUFFIXES, LoadedImage, read_image, write_png
from cellbench.layout import Layout

log = logging.getLogger(__name__)


@dataclass
class Sample:
    sample_id: str
    source: Path
    image: LoadedImage
    class_map: np.ndarray
    instance_map: np.ndarray
    n_stray_pixels: int = 0


def annotation_folder(config: dict) -> Path:
    """Where the annotations are: the generated demo, or data.annotations."""
    data = config["data"]
    if data["demo"]:
        if data["annotations"]:
            raise ValueError(f"data.demo is true but data.annotations is set ({data['annotations']}): "
                             "set data.demo: false to benchmark your own annotations")
        return Path(Layout(config["results"], config["dataset"]).demo_annotations)
    if not data["annotations"]:
        raise ValueError("data.annotations must name the annotation folder (or set data.demo: true)")
    return Path(data["annotations"])


def annotation_files(config: dict) -> list[Path]:
    """The files ingest reads for this config (used by Snakemake for its inputs too)."""
    folder = annotation_folder(config)
    pattern = "*.json" if config["data"]["format"] == "labelme" else "*.png"
    return sorted(folder.glob(pattern))


def _labelme_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    data = config["data"]
    for path in files:
        annotation, found = labelme.read_annotation(
            path, config["classes"], data["label_aliases"], data["unknown_labels"])
        problems.extend(found)
        if annotation is not None:
            class_map, instance_map = labelme.to_maps(annotation.shapes, annotation.shape_hw, config["classes"],
                                                      config["class_priority"], data["instance_mode"])
            yield Sample(path.stem, path, annotation.image, class_map, instance_map)


def _image_index(folder: Path, problems: list[InputProblem]) -> dict[str, Path]:
    index: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in index:
            problems.append(InputProblem(path, f"two images share the name {path.stem!r}: "
                                               f"{index[path.stem].name} and {path.name}"))
        index[path.stem] = path
    return index


def _grey_mask_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    data = config["data"]
    if not data["images"]:
        raise ValueError("data.images must name the image folder when data.format is grey_masks")
    image_dir = Path(data["images"])
    if not image_dir.is_dir():
        problems.append(InputProblem(image_dir, "image folder does not exist"))
        return
    images = _image_index(image_dir, problems)
    lut, exact = greymasks.level_lookup(data["grey_levels"], config["classes"])
    for path in files:
        image_path = images.get(path.stem)
        if image_path is None:
            problems.append(InputProblem(path, f"no image named {path.stem}.* in {image_dir}"))
            continue
        try:
            image = read_image(image_path)
        except (OSError, ValueError) as err:
            problems.append(InputProblem(image_path, f"image cannot be read ({err})"))
            continue
        class_map, n_stray, found = greymasks.read_grey_mask(path, lut, exact)
        problems.extend(found)
        if class_map is None:
            continue
        if class_map.shape != image.rgb.shape[:2]:
            problems.append(InputProblem(path, f"mask is {class_map.shape[0]} x {class_map.shape[1]} but "
                                               f"{image_path.name} is {image.rgb.shape[0]} x {image.rgb.shape[1]}"))
            continue
        if n_stray:
            log.warning("%s: %d pixels with grey values that are not class levels were mapped to the "
                        "nearest level", path, n_stray)
        yield Sample(path.stem, path, image, class_map, greymasks.cell_instances(class_map), n_stray)


def ingest(config: dict, out_dir: Path) -> pd.DataFrame:
    """Read every annotated image, check it, and write the normalised dataset to ``out_dir``.

    All problems of all files are collected; if there is any, InputError lists them and nothing
    is written (the output folder is staged and only moved into place on success).
    """
    out_dir = Path(out_dir)
    files = annotation_files(config)
    problems: list[InputProblem] = []
    if not files:
        kind = "LabelMe *.json" if config["data"]["format"] == "labelme" else "mask *.png"
        raise InputError([InputProblem(annotation_folder(config), f"no {kind} files found")])
    reader = _labelme_samples if config["data"]["format"] == "labelme" else _grey_mask_samples
    rows = []
    with staged_dir(out_dir) as stage:
        for sub in ("images", "masks", "instances"):
            (stage / sub).mkdir()
        for sample in reader(files, config, problems):
            if problems:  # keep checking the rest, but stop writing
                continue
            name = f"{sample.sample_id}.png"
            write_png(sample.image.rgb, stage / "images" / name)
            write_png(sample.class_map, stage / "masks" / name)
            write_png(sample.instance_map, stage / "instances" / name)
            rows.append(_manifest_row(sample, name, config["classes"]))
        if problems:
            raise InputError(problems)
        manifest = pd.DataFrame(rows)
        manifest.insert(0, "dataset", config["dataset"])
        manifest.to_parquet(stage / "manifest.parquet", index=False)
    log.info("ingested %d images into %s", len(manifest), out_dir)
    return manifest


def _manifest_row(sample: Sample, name: str, classes: list[str]) -> dict:
    height, width = sample.class_map.shape
    counts = np.bincount(sample.class_map.ravel(), minlength=IGNORE_INDEX + 1)
    row = {
        "sample_id": sample.sample_id,
        "image": f"images/{name}",
        "mask": f"masks/{name}",
        "instances": f"instances/{name}",
        "source": str(sample.source),
        "height": height,
        "width": width,
        "n_objects": int(sample.instance_map.max()),
        "n_stray_pixels": sample.n_stray_pixels,
        "source_mode": sample.image.source_mode,
        "intensity_scale": sample.image.intensity_scale,
    }
    row.update({f"pixels_{name}": int(counts[i]) for i, name in enumerate(classes)})
    row["pixels_ignored"] = int(counts[IGNORE_INDEX])
    return row


def load_manifest(data_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(Path(data_dir) / "manifest.parquet")
