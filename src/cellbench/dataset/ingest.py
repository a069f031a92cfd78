"""Ingest: annotated images -> normalised RGB PNG, class map, instance map and manifest."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.classmaps import IGNORE_INDEX
from cellbench.dataset import duplicates
from cellbench.errors import ConfigError, InputError, InputProblem, internal_error
from cellbench.formats import class_masks, instance_masks, labelme
from cellbench.fsutil import staged_dir
from cellbench.images import IMAGE_SUFFIXES, ImageReadError, LoadedImage, read_image, write_png
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
    """Where the annotations are: the generated demo, or data.annotations (for rle_csv: the CSV)."""
    data = config["data"]
    if data["demo"]:
        if data["annotations"]:
            raise ConfigError(f"data.demo is true but data.annotations is set ({data['annotations']}): "
                             "set data.demo: false to benchmark your own annotations")
        return Path(Layout(config["results"], config["dataset"]).demo_annotations)
    if not data["annotations"]:
        raise ConfigError("data.annotations must name the annotation folder (or set data.demo: true)")
    return Path(data["annotations"])


_ANNOTATION_PATTERNS = {"labelme": "*.json", "grey_masks": "*.png", "class_index_png": "*.png",
                        "instance_folders": "*/masks/*.png"}
_DESCRIPTIONS = {"labelme": "LabelMe *.json files", "grey_masks": "mask *.png files",
                 "class_index_png": "mask *.png files", "instance_folders": "<id>/masks/*.png files",
                 "rle_csv": "run-length CSV"}


def annotation_files(config: dict) -> list[Path]:
    """The annotation files of this config (for rle_csv: the CSV itself, if it exists)."""
    source = annotation_folder(config)
    if config["data"]["format"] == "rle_csv":
        return [source] if source.is_file() else []
    return sorted(source.glob(_ANNOTATION_PATTERNS[config["data"]["format"]]))


def input_files(config: dict) -> list[Path]:
    """Every file ingest reads, known before it runs: Snakemake's inputs of the ingest rule, so that
    an edited annotation or image reruns ingest and everything after it."""
    data = config["data"]
    files = annotation_files(config)
    folders = [annotation_folder(config)] if data["format"] != "rle_csv" else []
    folders += [Path(data["images"])] if data["images"] else []
    seen = set(files)
    for folder in dict.fromkeys(folders):
        if folder.is_dir():
            images = [p for p in sorted(folder.rglob("*")) if p.suffix.lower() in IMAGE_SUFFIXES and p not in seen]
            seen.update(images)
            files += images
    if data["format"] == "labelme":  # images a JSON names outside the folder (../images/x.bmp, /abs/x.png)
        for json_path in annotation_files(config):
            image = _referenced_image(json_path)
            if image is not None and image not in seen:
                seen.add(image)
                files.append(image)
    return files


def _referenced_image(json_path: Path) -> Path | None:
    """The image file a LabelMe JSON's imagePath names, if it exists (None for anything unreadable:
    validate reports what is wrong with the file)."""
    try:
        doc = json.loads(json_path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None
    image_path = doc.get("imagePath") if isinstance(doc, dict) else None
    if not isinstance(image_path, str) or not image_path:
        return None
    candidate = Path(image_path.replace("\\", "/"))
    candidate = candidate if candidate.is_absolute() else json_path.parent / candidate
    try:
        return Path(os.path.normpath(candidate)) if candidate.is_file() else None
    except (OSError, ValueError):
        return None


def _guarded(items, read, problems: list[InputProblem], file_of=lambda item: item):
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


def _labelme_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    data = config["data"]

    def read(path: Path) -> Sample | None:
        annotation, found = labelme.read_annotation(
            path, config["classes"], data["label_aliases"], data["unknown_labels"], data["max_pixels"])
        problems.extend(found)
        if annotation is None:
            return None
        class_map, instance_map = labelme.to_maps(annotation.shapes, annotation.shape_hw, config["classes"],
                                                  config["class_priority"], data["instance_mode"])
        return Sample(path.stem, path, annotation.image, class_map, instance_map)

    yield from _guarded(files, read, problems)


def _image_index(folder: Path, problems: list[InputProblem]) -> dict[str, Path]:
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


def _images_by_stem(config: dict, problems: list[InputProblem]) -> dict[str, Path] | None:
    data = config["data"]
    if not data["images"]:
        raise ConfigError(f"data.images must name the image folder when data.format is {data['format']}")
    image_dir = Path(data["images"])
    if not image_dir.is_dir():
        problems.append(InputProblem(image_dir, "image folder does not exist"))
        return None
    return _image_index(image_dir, problems)


def _read_image_or_report(path: Path, max_pixels: int, problems: list[InputProblem]) -> LoadedImage | None:
    try:
        return read_image(path, max_pixels)
    except ImageReadError as err:
        problems.append(InputProblem(path, str(err), err.hint))
        return None


def _class_mask_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    data = config["data"]
    images = _images_by_stem(config, problems)
    if images is None:
        return
    image_dir = Path(data["images"])
    if data["format"] == "grey_masks":
        table = class_masks.grey_levels(data["grey_levels"], config["classes"], data["stray_levels"])
    else:
        table = class_masks.class_indices(config["classes"])
    max_pixels = data["max_pixels"]

    def read(path: Path) -> Sample | None:
        image_path = images.get(path.stem)
        if image_path is None:
            problems.append(InputProblem(path, f"no image named {path.stem}.* in {image_dir}"))
            return None
        image = _read_image_or_report(image_path, max_pixels, problems)
        if image is None:
            return None
        class_map, n_stray, found = class_masks.read_class_mask(path, table, max_pixels)
        problems.extend(found)
        if class_map is None:
            return None
        if class_map.shape != image.rgb.shape[:2]:
            problems.append(InputProblem(path, f"mask is {class_map.shape[0]} x {class_map.shape[1]} but "
                                               f"{image_path.name} is {image.rgb.shape[0]} x {image.rgb.shape[1]}"))
            return None
        if n_stray:
            fate = "the nearest level" if table.stray == "nearest" else "the ignore index"
            log.warning("%s: %d pixels with grey values that are not class levels were mapped to %s",
                        path, n_stray, fate)
        return Sample(path.stem, path, image, class_map, class_masks.cell_instances(class_map), n_stray)

    yield from _guarded(files, read, problems)


def _instance_folder_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    class_index = instance_masks.object_class_index(config["classes"], config["data"]["object_class"])
    max_pixels = config["data"]["max_pixels"]

    def read(sample_dir: Path) -> Sample | None:
        images = [p for p in sorted((sample_dir / "images").glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES]
        if len(images) != 1:
            problems.append(InputProblem(sample_dir / "images", f"expected one image, found {len(images)}"))
            return None
        image = _read_image_or_report(images[0], max_pixels, problems)
        if image is None:
            return None
        masks = instance_masks.read_mask_folder(sample_dir, image.rgb.shape[:2], problems, max_pixels)
        if masks is None:
            return None
        return _instance_sample(sample_dir.name, sample_dir / "masks", image, masks, class_index)

    yield from _guarded(sorted({path.parent.parent for path in files}), read, problems)


def _rle_samples(files: list[Path], config: dict, problems: list[InputProblem]):
    class_index = instance_masks.object_class_index(config["classes"], config["data"]["object_class"])
    csv = files[0]
    try:
        rows = instance_masks.read_rle_csv(csv, problems)
    except Exception as err:  # the last-resort guard, as in _guarded
        problems.append(internal_error(csv, err))
        return
    images = _images_by_stem(config, problems)
    if images is None:
        return
    max_pixels = config["data"]["max_pixels"]

    def read(image_id: str) -> Sample | None:
        if image_id not in images:
            problems.append(InputProblem(csv, f"no image named {image_id}.* in {config['data']['images']}"))
            return None
        image = _read_image_or_report(images[image_id], max_pixels, problems)
        if image is None:
            return None
        masks = instance_masks.decode_rows(csv, rows[image_id], image.rgb.shape[:2], problems)
        if masks is None:
            return None
        return _instance_sample(image_id, csv, image, masks, class_index)

    yield from _guarded(sorted(rows), read, problems, file_of=lambda image_id: csv)


def _instance_sample(sample_id: str, source: Path, image: LoadedImage, masks: list[np.ndarray],
                     class_index: int) -> Sample:
    class_map, instance_map, overlap = instance_masks.paint(masks, image.rgb.shape[:2], class_index)
    if overlap:
        log.warning("%s: %d pixels belong to more than one object; the later object keeps them", source, overlap)
    return Sample(sample_id, source, image, class_map, instance_map)


_READERS = {"labelme": _labelme_samples, "grey_masks": _class_mask_samples, "class_index_png": _class_mask_samples,
            "instance_folders": _instance_folder_samples, "rle_csv": _rle_samples}


def _samples(config: dict, problems: list[InputProblem]):
    """Every readable sample; what is wrong with the others is appended to ``problems``."""
    files = annotation_files(config)
    if not files:
        problems.append(InputProblem(annotation_folder(config), f"no {_DESCRIPTIONS[config['data']['format']]} found"))
        return
    yield from _READERS[config["data"]["format"]](files, config, problems)


@dataclass
class Findings:
    """What validate found: the number of good samples, the problems (errors), and the copies among
    the good samples (not errors: split groups them)."""

    good: int
    problems: list[InputProblem]
    duplicates: duplicates.Duplicates
    names: dict[str, str]  # sample id -> how to name it (its file)

    def duplicate_lines(self, group_near_duplicates: bool = True) -> list[str]:
        return duplicates.report_lines(self.duplicates, self.names, group_near_duplicates)


def _sample_names(samples: list[tuple[str, Path]]) -> dict[str, str]:
    """Sample id -> its source file, with the id added where several samples share one file (a CSV)."""
    per_source: dict[Path, int] = {}
    for _, source in samples:
        per_source[source] = per_source.get(source, 0) + 1
    return {sample_id: str(source) if per_source[source] == 1 else f"{source} [{sample_id}]"
            for sample_id, source in samples}


def find_problems(config: dict) -> Findings:
    """Check every input as ingest would, writing nothing: the good samples, the problems, and the
    exact and near duplicates among the good samples."""
    problems: list[InputProblem] = []
    ids, sources, content, perceptual = [], [], [], []
    for sample in _samples(config, problems):
        ids.append(sample.sample_id)
        sources.append(sample.source)
        content.append(duplicates.content_hash(sample.image.rgb))
        perceptual.append(duplicates.perceptual_hash(sample.image.rgb))
    return Findings(len(ids), problems, duplicates.find(ids, content, perceptual),
                    _sample_names(list(zip(ids, sources, strict=True))))


def ingest(config: dict, out_dir: Path) -> pd.DataFrame:
    """Read every annotated image, check it, and write the normalised dataset to ``out_dir``.

    All problems of all files are collected; if there is any, InputError lists them and nothing
    is written (the output folder is staged and only moved into place on success).
    """
    out_dir = Path(out_dir)
    problems: list[InputProblem] = []
    rows = []
    sources = [annotation_folder(config), *([Path(config['data']['images'])] if config['data']['images'] else [])]
    with staged_dir(out_dir, sources) as stage:
        for sub in ("images", "masks", "instances"):
            (stage / sub).mkdir()
        for sample in _samples(config, problems):
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
        _log_duplicates(manifest)
        manifest.to_parquet(stage / "manifest.parquet", index=False)
    log.info("ingested %d images into %s", len(manifest), out_dir)
    return manifest


def _log_duplicates(manifest: pd.DataFrame) -> None:
    """Warn about copies (ingest's settings do not say whether split groups near-duplicates)."""
    if manifest.empty:
        return
    found = duplicates.find(manifest["sample_id"].tolist(), manifest["content_hash"].tolist(),
                            manifest["perceptual_hash"].tolist())
    names = _sample_names(list(zip(manifest["sample_id"], manifest["source"], strict=True)))
    for line in duplicates.report_lines(found, names, group_near_duplicates=None):
        log.warning("%s", line)


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
        "content_hash": duplicates.content_hash(sample.image.rgb),
        "perceptual_hash": duplicates.perceptual_hash(sample.image.rgb),
    }
    row.update({f"pixels_{name}": int(counts[i]) for i, name in enumerate(classes)})
    row["pixels_ignored"] = int(counts[IGNORE_INDEX])
    return row

