"""Segment new images with the benchmark's trained models: the fold ensemble of each chosen
architecture, written per image as class map, instance maps, LabelMe file and overlay, plus one
table (predictions.parquet) that ranks the images by how doubtful their segmentation is.

Every image is decoded once before any model runs, so unreadable ones are all listed at once and
nothing is written; the output folder is staged and appears complete or not at all.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from skimage.segmentation import find_boundaries

from cellbench.classmaps import relabel_sequential
from cellbench.errors import ConfigError, InputError, InputProblem
from cellbench.evaluation.scope import resolve
from cellbench.evaluation.semantic_metrics import FOREGROUND_MEAN
from cellbench.formats.labelme.export import labelme_document, map_shapes, relative_image_path, write_document
from cellbench.fsutil import WRITER, staged_dir, write_parquet
from cellbench.images import MAX_PIXELS, ImageReadError, read_image, write_png
from cellbench.inference.ensemble import Windows
from cellbench.inference.inputs import find_images, output_names  # noqa: F401  (find_images: re-exported)
from cellbench.inference.object_files import GEOJSON, ROIS, write_object_files
from cellbench.inference.segment import Segmentation, load_models, segment
from cellbench.inference.slide import DEFAULT_SLIDES, SlideOptions, SlideOutputs, SlideSummary, segment_slide
from cellbench.inference.slide_io import is_slide, open_slide
from cellbench.inference.slide_labels import CLASS_MAP, LabelStore
from cellbench.measure.measure import inferred_cells
from cellbench.provenance import record as provenance

log = logging.getLogger(__name__)

PREDICTIONS = "predictions.parquet"
CELLS = "cells.parquet"
RECORD = "inference.json"


@dataclass(frozen=True)
class ModelSet:
    """The fold checkpoints of one architecture that infer averages."""

    arch: str
    checkpoints: tuple[Path, ...]


def best_architecture(summary: pd.DataFrame) -> str:
    """The architecture with the highest cross-validated foreground-mean Dice."""
    head = summary[summary["class"] == FOREGROUND_MEAN].sort_values("cv_dice", ascending=False, kind="stable")
    if head.empty:
        raise ConfigError("summary.parquet holds no foreground-mean score: run the benchmark (aggregate) first")
    return str(head["arch"].iloc[0])


def model_sets_from(checkpoints: list[Path], architectures: list[str], folds: str | list[int],
                    summary: pd.DataFrame | None = None) -> list[ModelSet]:
    """The fold ensembles to run: per architecture asked for (``best``: the CV winner of ``summary``),
    its checkpoints among ``checkpoints`` of the asked folds (``all``: every one given)."""
    import torch
    by_arch: dict[str, dict[int, Path]] = {}
    for path in checkpoints:
        try:
            meta = torch.load(path, map_location="cpu", weights_only=True)
            arch, fold = str(meta["arch"]), int(meta["fold"])
        except Exception as err:  # any damage: name the file
            raise InputError([InputProblem(Path(path), f"is not a cellbench checkpoint ({type(err).__name__})",
                                           "train the model again")]) from None
        by_arch.setdefault(arch, {})[fold] = Path(path)
    names = [best_architecture(summary) if name == "best" else name for name in architectures]
    sets = []
    for name in dict.fromkeys(names):
        found = by_arch.get(name)
        if not found:
            raise ConfigError(f"infer.architectures: no trained model of {name!r} (trained: "
                              f"{', '.join(sorted(by_arch)) or 'none'})")
        wanted = sorted(found) if folds == "all" else list(folds)
        missing = [k for k in wanted if k not in found]
        if missing:
            raise ConfigError(f"infer.folds: {name} has no model of fold {', '.join(map(str, missing))}")
        sets.append(ModelSet(name, tuple(found[k] for k in wanted)))
    return sets


def check_images(paths: list[Path], max_pixels: int | None = MAX_PIXELS, slides: list[Path] = ()) -> None:
    """Decode every image once, and open every slide (its header and layout): all the unreadable
    ones in one InputError."""
    problems = []
    for path in paths:
        try:
            read_image(path, max_pixels, f"image {path}")
        except ImageReadError as err:
            problems.append(InputProblem(path, str(err).removeprefix(f"image {path} "), err.hint))
    for path in slides:
        try:
            open_slide(path).close()
        except ImageReadError as err:
            problems.append(InputProblem(path, str(err).removeprefix(f"slide {path} "), err.hint))
    if problems:
        raise InputError(problems)


def learned_types(types: dict[str, dict], fold_models: list, data_dir: Path | None, learning: dict | None
                  ) -> tuple[dict[str, dict], dict[str, dict]]:
    """(object types with the rules learned from the images the fold models trained on, the rules as
    recorded). Without ``data_dir`` the types are returned as they are, with a warning."""
    if data_dir is None:
        log.warning("no annotated images given (--data): objects get only evaluate.objects' own min_size, not the "
                    "one learned from the training annotations, and pieces are not joined")
        return types, {}
    from cellbench.dataset import Dataset
    from cellbench.inference import object_rules
    from cellbench.inference.predict import default_learning
    data = Dataset(Path(data_dir))
    known = set(data.ids)
    trained_on = sorted({s for model in fold_models for s in model.meta.get("train_samples", []) if s in known})
    rules = object_rules.learn_from(data, trained_on or sorted(known), types, learning or default_learning())
    applied = object_rules.applied(types, rules)
    return applied, {name: {**rule, "min_size": applied[name]["min_size"]} for name, rule in rules.items()}


def overlay(image: np.ndarray, result: Segmentation) -> np.ndarray:
    """Class colours over the image with every object's outline in white."""
    from cellbench.report.figures import colourise
    out = (colourise(result.class_map, image) * 255).round().astype(np.uint8)
    for instances in result.instances.values():
        out[find_boundaries(instances, mode="inner")] = 255
    return out


def labelme_for(result: Segmentation, image_path: str, shape: tuple[int, int],
                priority: list[str] | None = None) -> dict:
    """The LabelMe document of one segmentation: a polygon per object part, grouped by cell (the
    first object type's instances), pointing at ``image_path`` (relative to the JSON)."""
    grouping = next(iter(result.instances.values()), None)
    shapes = map_shapes(result.class_map, result.classes, priority, grouping)
    return labelme_document(shapes, image_path, *shape)


def _target(folder: Path, sub: str, name: str, suffix: str) -> Path:
    """<folder>/<sub>/<name><suffix>, its folder made (``name`` may hold subfolders: set1/raw)."""
    path = folder / sub / f"{name}{suffix}"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


_TOOLS = {GEOJSON: "qupath", ROIS: "imagej"}  # the folder of each per-object file


def _write(folder: Path, final: Path, path: Path, name: str, image: np.ndarray, result: Segmentation,
           keep_probabilities: bool, priority: list[str] | None, types: dict[str, dict], cells: pd.DataFrame) -> None:
    """One image's files in ``folder`` (staged; ``final`` is where it will be), named ``name`` (a
    path below the common folder of the images: set1/raw)."""

    def target(sub: str, suffix: str) -> Path:
        return _target(folder, sub, name, suffix)

    write_png(result.class_map, target("class_maps", ".png"))
    for kind, instances in result.instances.items():
        write_png(relabel_sequential(instances), target(f"instances/{kind}", ".png"))
    image_path = relative_image_path(path, final / "labelme" / f"{name}.json")  # as LabelMe will open it
    write_document(labelme_for(result, image_path, image.shape[:2], priority), target("labelme", ".json"))
    write_png(overlay(image, result), target("overlays", ".png"))
    write_object_files(result.instances, types, result.class_map, cells,
                       lambda kind, suffix: target(f"{_TOOLS[suffix]}/{kind}", suffix))
    if keep_probabilities and result.probabilities is not None:  # none from instance models (MaskRCNN)
        np.save(target("probabilities", ".npy"), result.probabilities)


def _segment_slide(folder: Path, scratch: Path, path: Path, name: str, fold_models: list, windows: Windows,
                   types: dict[str, dict], options: SlideOptions, measure: dict) -> tuple[SlideSummary, pd.DataFrame]:
    """One whole slide's files in ``folder``: its label images (OME-Zarr, or tiled TIFFs converted
    from an OME-Zarr in ``scratch``), GeoJSON and ROI sets."""
    as_zarr = options.format == "ome-zarr"
    store = _target(folder if as_zarr else scratch, "slides", name, ".ome.zarr")
    with open_slide(path) as slide:
        classes = fold_models[0].classes
        labels = LabelStore(store, slide.shape, list(types), classes, str(path),
                            outputs=len(fold_models[0].outputs) > len(classes))
        outputs = SlideOutputs(labels, {t: _target(folder, f"qupath/{t}", name, GEOJSON) for t in types},
                               {t: _target(folder, f"imagej/{t}", name, ROIS) for t in types})
        try:
            summary, cells = segment_slide(slide, fold_models, windows, types, outputs, options.object_margin,
                                           measure)
        except ImageReadError as err:  # a damaged tile, met when the block holding it is read
            raise InputError([InputProblem(path, str(err).removeprefix(f"slide {path} "), err.hint)]) from None
        labels.close()
    if not as_zarr:
        labels.to_tiff(CLASS_MAP, _target(folder, "class_maps", name, ".tif"))
        for kind in types:
            labels.to_tiff(kind, _target(folder, f"instances/{kind}", name, ".tif"))
        shutil.rmtree(store)  # the scratch copy this run made
    return summary, cells


def infer(images: list[Path], model_sets: list[ModelSet], out_dir: Path, windows: Windows,
          object_spec: dict | None = None, device: str = "auto", save_probabilities: bool = False,
          max_pixels: int | None = MAX_PIXELS, priority: list[str] | None = None, dataset: str = "",
          bin_width: int = 25, data_dir: Path | None = None, learning: dict | None = None,
          slides: SlideOptions = DEFAULT_SLIDES) -> pd.DataFrame:
    """Segment ``images`` with each model set (the fold ensemble of one architecture).

    Parameters
    ----------
    images:
        Image files (PNG, JPEG, BMP, 8/16-bit TIFF), any size; all are decoded first.
    model_sets:
        Per architecture, the fold checkpoints whose probabilities are averaged.
    out_dir:
        Written as a whole: <arch>/class_maps, <arch>/instances/<type>, <arch>/labelme, <arch>/overlays,
        <arch>/qupath/<type> (GeoJSON), <arch>/imagej/<type> (ROI sets) (and <arch>/probabilities) per image,
        predictions.parquet, cells.parquet (every object measured,
        cellbench.measure) and inference.json.
    windows:
        Tiling and test-time augmentation.
    slides:
        Which images are whole slides (cellbench.inference.slide_io), read and segmented block by
        block (cellbench.inference.slide) into <arch>/slides/<name>.ome.zarr (or tiled TIFFs in
        class_maps/ and instances/), GeoJSON and ROI sets; no LabelMe file, overlay or probabilities.
    object_spec:
        evaluate.objects (None: the schema default), post-processing included.
    device, save_probabilities, max_pixels, priority:
        Where models run; whether probabilities are kept; the decoding limit; class_priority for the
        LabelMe shapes.
    dataset, bin_width:
        The cells table's dataset column and measure.bin_width.
    data_dir, learning:
        The ingested annotated images and evaluate.min_size_fraction / join_pieces: the object rules
        (cellbench.inference.object_rules) are learned from every image the fold models trained on,
        and recorded in inference.json. None: no learned rules (a warning; evaluate.objects' own
        min_size still applies).

    Returns
    -------
    predictions.parquet's table: one row per image x architecture.
    """
    whole_slides = [p for p in images if is_slide(p, max_pixels, slides.every_tiff)]
    check_images([p for p in images if p not in whole_slides], max_pixels, whole_slides)
    names = output_names(images)
    out_dir = Path(out_dir)
    rows, cells, rules, slide_record = [], [], {}, {}
    with staged_dir(out_dir, [*images, *(c for s in model_sets for c in s.checkpoints)]) as stage:
        for model_set in model_sets:
            fold_models = load_models(list(model_set.checkpoints), device)
            classes = fold_models[0].classes
            section = {"regions": {}} if object_spec is None else {"regions": {}, "objects": object_spec}
            scope = resolve(classes, section)
            scope.log(log)
            types, rules[model_set.arch] = learned_types(scope.object_indices(), fold_models, data_dir, learning)
            folder = stage / model_set.arch
            for sub in ["class_maps", "labelme", "overlays", *(f"{kind}/{t}" for t in types
                                                               for kind in ("instances", "qupath", "imagej")),
                        *(["probabilities"] if save_probabilities else [])]:
                (folder / sub).mkdir(parents=True)
            run = {"models": len(fold_models), "folds": ",".join(str(m.meta.get("fold")) for m in fold_models),
                   "tta": windows.tta}
            for path in images:
                started = time.perf_counter()
                if path in whole_slides:
                    summary, table = _segment_slide(folder, stage / ".scratch" / model_set.arch, path, names[path],
                                                    fold_models, windows, types, slides,
                                                    {"dataset": dataset, "arch": model_set.arch,
                                                     "sample_id": names[path], "bin_width": bin_width})
                    cells.append(table)
                    slide_record.setdefault(model_set.arch, {})[names[path]] = dataclasses.asdict(summary)
                    size, counts = (summary.height, summary.width), summary.objects
                    entropy, disagreement = summary.entropy, summary.disagreement
                else:
                    image = read_image(path, max_pixels, f"image {path}").rgb
                    started = time.perf_counter()
                    result = segment(image, fold_models, windows, types, keep_probabilities=save_probabilities)
                    cells.append(inferred_cells(image, result.class_map, result.instances, classes, types, dataset,
                                                model_set.arch, names[path], bin_width))
                    _write(folder, out_dir / model_set.arch, path, names[path], image, result, save_probabilities,
                           priority, types, cells[-1])
                    size, counts = image.shape[:2], {t: int(m.max(initial=0)) for t, m in result.instances.items()}
                    entropy, disagreement = result.entropy, result.disagreement
                seconds = time.perf_counter() - started
                rows.append({"image": str(path), "name": names[path], "arch": model_set.arch, "height": size[0],
                             "width": size[1], "seconds": seconds, **run, **{f"n_{t}": n for t, n in counts.items()},
                             "entropy": entropy, "disagreement": disagreement})
                log.info("%s: %s in %.2f s (entropy %.3f, disagreement %.3f)", model_set.arch, path.name, seconds,
                         entropy, disagreement)
        shutil.rmtree(stage / ".scratch", ignore_errors=True)
        table = pd.DataFrame(rows)
        write_parquet(table, stage / PREDICTIONS)
        write_parquet(pd.concat(cells, ignore_index=True), stage / CELLS)
        record = {"writer": WRITER, "images": [str(p) for p in images],
                  "models": {s.arch: [str(c) for c in s.checkpoints] for s in model_sets},
                  "windows": windows.__dict__, "object_rules": rules, "slides": slide_record,
                  "provenance": provenance()}
        (stage / RECORD).write_text(json.dumps(record, indent=1) + "\n")
    return table
