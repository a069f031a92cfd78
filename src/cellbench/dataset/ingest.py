"""Ingest: annotated images -> normalised RGB PNG, class map, instance map and manifest."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench import formats
from cellbench.classmaps import IGNORE_INDEX
from cellbench.dataset import duplicates
from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.formats.common import Sample
from cellbench.fsutil import staged_dir
from cellbench.images import IMAGE_SUFFIXES, write_png
from cellbench.layout import Layout

log = logging.getLogger(__name__)


def annotation_folder(config: dict) -> Path:
    """Where the annotations are: the generated demo, or data.annotations (for rle_csv: the CSV)."""
    data = config["data"]
    if data["demo"]:
        if data["annotations"]:
            raise ConfigError(f"data.demo is true but data.annotations is set ({data['annotations']}): "
                             "set data.demo: false to benchmark your own annotations")
        return Path(Layout(config["results"], config["dataset"]).demo_annotations)
    if not data["annotations"]:
        raise ConfigError("data.annotations must name the annotation folder (or leave data.demo out: without "
                          "annotations the demo runs)")
    return Path(data["annotations"])


def annotation_files(config: Mapping) -> list[Path]:
    """The annotation files of this config (for rle_csv: the CSV itself, if it exists)."""
    return formats.get(config["data"]["format"]).files(annotation_folder(config), config["data"])


def input_files(config: dict) -> list[Path]:
    """Every file ingest reads, known before it runs: Snakemake's inputs of the ingest rule, so that
    an edited annotation or image reruns ingest and everything after it."""
    data = config["data"]
    files = annotation_files(config)
    source = annotation_folder(config)
    folders = [source] if source.is_dir() else []
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


def _samples(config: Mapping, problems: list[InputProblem]):
    """Every readable sample; what is wrong with the others is appended to ``problems``. Two samples
    of one id (000.png and 000.tif) are a problem, not a sample overwriting another."""
    reader = formats.get(config["data"]["format"])
    files = annotation_files(config)
    if not files:
        problems.append(InputProblem(annotation_folder(config), f"no {reader.describe(config['data'])} found"))
        return
    seen: dict[str, Path] = {}
    before = len(problems)
    for sample in reader.read(files, config, problems):
        if not is_text(sample.sample_id):  # the id names every file made of this sample (Parquet strings are UTF-8)
            problems.append(InputProblem(sample.source, "its name is not valid text (UTF-8)",
                                         "rename it with letters, digits and punctuation"))
        elif sample.sample_id in seen:
            problems.append(InputProblem(sample.source, f"is sample {sample.sample_id!r}, as {seen[sample.sample_id]} "
                                                        "is: two annotations of one image name",
                                         "keep one of them, or rename one with its image"))
        else:
            seen[sample.sample_id] = sample.source
            yield sample
    if not seen and len(problems) == before:
        problems.append(InputProblem(annotation_folder(config), f"no sample found among {len(files)} "
                                                                f"{reader.describe(config['data'])}"))


def is_text(name: str) -> bool:
    """Whether ``name`` is valid Unicode text (a file name that was not UTF-8 holds surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclass
class Findings:
    """What validate found: the number of good samples, the problems (errors), and the copies among
    the good samples (not errors: split groups them)."""

    good: int
    problems: list[InputProblem]
    duplicates: duplicates.Duplicates
    names: dict[str, str]  # sample id -> how to name it (its image file, else its annotation file)

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
    """Check every input as ingest would, writing nothing.

    Parameters
    ----------
    config:
        The configuration, as for ``ingest``.

    Returns
    -------
    Findings: the number of good samples, every problem of every file (InputProblem: file, what is
    wrong, how to fix it), and the exact and near duplicates among the good samples.
    """
    problems: list[InputProblem] = []
    ids, sources, content, perceptual, d4 = [], [], [], [], []
    for sample in _samples(config, problems):
        ids.append(sample.sample_id)
        sources.append(sample.image_file or sample.source)
        content.append(duplicates.content_hash(sample.image.rgb))
        d4.append(duplicates.perceptual_hashes_d4(sample.image.rgb))
        perceptual.append(d4[-1][:64])
    return Findings(len(ids), problems, duplicates.find(ids, content, perceptual, d4_hashes=d4),
                    _sample_names(list(zip(ids, sources, strict=True))))


def ingest(config: dict, out_dir: Path) -> pd.DataFrame:
    """Read every annotated image, check it, and write the normalised dataset to ``out_dir``.

    Parameters
    ----------
    config:
        The configuration (a mapping or cellbench.settings.Settings): ``data`` says where the
        annotations are and in which format, ``classes`` and ``class_priority`` how they become
        class maps, ``dataset`` names the rows.
    out_dir:
        The folder to write: images/ (RGB PNG), masks/ (class maps), instances/ (uint16 instance
        maps) and manifest.parquet. Replaced only if empty or written by cellbench before.

    Returns
    -------
    The manifest, one row per image (docs/parquet_schema.md).

    All problems of all files are collected; if there is any, InputError lists them and nothing
    is written (the output folder is staged and only moved into place on success).
    """
    out_dir = Path(out_dir)
    problems: list[InputProblem] = []
    rows, named = [], []
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
            named.append((sample.sample_id, sample.image_file or sample.source))
        if problems:
            raise InputError(problems)
        manifest = pd.DataFrame(rows)
        manifest.insert(0, "dataset", config["dataset"])
        _log_duplicates(manifest, _sample_names(named))
        manifest.to_parquet(stage / "manifest.parquet", index=False)
    log.info("ingested %d images into %s", len(manifest), out_dir)
    return manifest


def _log_duplicates(manifest: pd.DataFrame, names: dict[str, str]) -> None:
    """Warn about copies, named by their image files (ingest's settings do not say whether split
    groups near-duplicates)."""
    if manifest.empty:
        return
    found = duplicates.find(manifest["sample_id"].tolist(), manifest["content_hash"].tolist(),
                            manifest["perceptual_hash"].tolist(), d4_hashes=manifest["perceptual_hash_d4"].tolist())
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
        "perceptual_hash_d4": duplicates.perceptual_hashes_d4(sample.image.rgb),
    }
    row.update({f"pixels_{name}": int(counts[i]) for i, name in enumerate(classes)})
    row["pixels_ignored"] = int(counts[IGNORE_INDEX])
    return row

