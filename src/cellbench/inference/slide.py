"""A whole slide segmented block by block, with memory bounded by the block, not the slide.

Two passes. First each block of ``block_size`` is predicted, read with the whole slide's windows
that touch it, so that its probabilities and class map are exactly the whole slide's
(ensemble.reading_region), and its class map written to the label store: every pixel is predicted
once. Then each block's objects are made from the stored class map of the block plus a margin
(``object_margin``); a block keeps the objects whose top-left corner lies inside it, so an object
that crosses a block border is kept once, whole, by one block, and equals what a whole-image run
gives unless it (or the clump of touching cells it is flooded in) reaches farther than the margin,
which is counted and reported. Kept objects get slide-wide ids and are written to the label store,
measured, and added to the QuPath GeoJSON and ImageJ ROI sets as they come.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from scipy import ndimage

from cellbench.inference import imagej_rois, objects, qupath
from cellbench.inference.ensemble import (
    FoldModel,
    Windows,
    _block_probabilities,
    _Predictor,
    _stitch_device,
    blocks,
    window_size,
)
from cellbench.inference.segment import chosen_outputs, device_of
from cellbench.inference.slide_io import Slide
from cellbench.inference.slide_labels import CLASS_MAP, OUTPUT_MAP, LabelStore
from cellbench.measure.measure import inferred_cells

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlideOptions:
    """infer.whole_slide (every TIFF a slide), infer.slide_format and infer.object_margin."""

    every_tiff: bool = False
    format: str = "ome-zarr"
    object_margin: int = 256


DEFAULT_SLIDES = SlideOptions()


@dataclass
class SlideSummary:
    """What predictions.parquet and inference.json say about one slide."""

    height: int
    width: int
    objects: dict[str, int] = field(default_factory=dict)
    entropy: float = 0.0
    disagreement: float = 0.0
    blocks: int = 0
    objects_at_margin: int = 0  # kept objects that reach the edge of their block's margin
    contested_pixels: int = 0  # pixels two blocks' objects both claimed (the first keeps them)


@dataclass
class SlideOutputs:
    """Where one slide's results go: the label store, and per object type a GeoJSON and a ROI set."""

    labels: LabelStore
    geojson: dict[str, Path]
    rois: dict[str, Path]


def _owned(labels: np.ndarray, inner: tuple[int, int, int, int], region: tuple[int, int, int, int],
           shape: tuple[int, int]) -> tuple[list[int], int]:
    """(labels of the objects whose bounding box's top-left corner lies in ``inner``, how many of them
    touch an edge of ``region`` that is not the slide's edge)."""
    top, bottom, left, right = region
    owned, at_margin = [], 0
    for label, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        row, column = box[0].start + top, box[1].start + left
        if not (inner[0] <= row < inner[1] and inner[2] <= column < inner[3]):
            continue
        owned.append(label)
        edges = ((box[0].start == 0 and top > 0) or (box[0].stop == bottom - top and bottom < shape[0])
                 or (box[1].start == 0 and left > 0) or (box[1].stop == right - left and right < shape[1]))
        at_margin += bool(edges)
    return owned, at_margin


def _renumbered(labels: np.ndarray, owned: list[int], first: int) -> np.ndarray:
    """The owned objects only, numbered first, first + 1, ... in their order (uint32)."""
    lookup = np.zeros(int(labels.max(initial=0)) + 1, np.uint32)
    lookup[np.asarray(owned, np.int64)] = np.arange(first, first + len(owned), dtype=np.uint32)
    return lookup[labels]


def _region_of(inner: tuple[int, int, int, int], margin: int, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    return (max(inner[0] - margin, 0), min(inner[1] + margin, shape[0]),
            max(inner[2] - margin, 0), min(inner[3] + margin, shape[1]))


def _inside(outer: tuple[int, int, int, int], inner: tuple[int, int, int, int]) -> tuple[slice, slice]:
    """The slices of ``inner`` within an array covering ``outer``."""
    return slice(inner[0] - outer[0], inner[1] - outer[0]), slice(inner[2] - outer[2], inner[3] - outer[2])


BAND = 256  # rows of a block turned into class maps at once (bounds the temporaries of the argmax)


def _predict_pass(slide: Slide, fold_models: list[FoldModel], windows: Windows, labels: LabelStore,
                  border: int | None) -> tuple[float, float]:
    """Pass 1: every block's class map (and, for a touching-border model, its output map) into
    ``labels``, each pixel predicted once, with exactly the whole slide's windows; returns the sums of
    the predictive entropy and of the fold disagreement over the slide."""
    n_classes, n_outputs = len(fold_models[0].classes), len(fold_models[0].outputs)
    device = device_of(fold_models)
    divisor = max(m.divisor for m in fold_models)
    tile = window_size(windows, divisor)
    predictor = _Predictor(fold_models, windows, device)
    entropy = disagreement = 0.0
    for inner, read in blocks(*slide.shape, windows.block_size, tile, windows.overlap):
        image = slide.read(*read)
        stitch = _stitch_device(device, image.shape[0] * image.shape[1], n_outputs)
        values = _block_probabilities(image, predictor, windows, divisor, device, stitch).cpu()
        del image
        rows, columns = _inside(read, inner)
        height = inner[1] - inner[0]
        class_map = np.empty((height, inner[3] - inner[2]), np.uint8)
        output_map = np.empty_like(class_map) if border is not None else class_map
        for top in range(0, height, BAND):
            band = values[:, rows.start + top:min(rows.start + top + BAND, rows.stop), columns]
            mean, votes = band[:n_outputs], band[n_outputs:]
            chosen, chosen_class = chosen_outputs(mean, n_classes)
            class_map[top:top + BAND] = chosen_class.to(torch.uint8).numpy()
            if border is not None:
                output_map[top:top + BAND] = chosen.to(torch.uint8).numpy()
            entropy += float(-(mean * torch.log(mean.clamp_min(1e-12))).sum())
            disagreement += float((1.0 - votes.gather(0, chosen[None])).clamp_min(0).sum())
        del values
        labels.write(CLASS_MAP, inner, class_map)
        if border is not None:
            labels.write(OUTPUT_MAP, inner, output_map)
    return entropy, disagreement


def segment_slide(slide: Slide, fold_models: list[FoldModel], windows: Windows, types: dict[str, dict],
                  out: SlideOutputs, object_margin: int, measure: dict) -> tuple[SlideSummary, pd.DataFrame]:
    """Segment ``slide`` block by block into ``out``; return its summary and its cells table.

    Pass 1 writes the class map (_predict_pass); pass 2 reads it back block by block with the margin,
    makes, keeps, numbers, writes, measures and outlines the objects. ``measure``: inferred_cells'
    dataset, arch, sample_id (the output name) and bin_width.
    """
    height, width = slide.shape
    classes = fold_models[0].classes
    n = len(fold_models[0].outputs)
    border = len(classes) if n > len(classes) else None
    summary = SlideSummary(height, width, dict.fromkeys(types, 0))
    entropy, disagreement = _predict_pass(slide, fold_models, windows, out.labels, border)
    pixels = max(height * width, 1)
    summary.entropy = entropy / pixels / math.log(n) if n > 1 else 0.0
    summary.disagreement = disagreement / pixels
    cells = []
    writers = {name: qupath.FeatureCollectionWriter(path) for name, path in out.geojson.items()}
    try:
        for inner, _ in blocks(height, width, windows.block_size, None, 0.0):
            region = _region_of(inner, object_margin, (height, width))
            class_map = out.labels.read(CLASS_MAP, region)
            output_map = out.labels.read(OUTPUT_MAP, region) if border is not None else class_map
            kept = {}
            for name, kind in types.items():
                found = objects.objects_of(output_map, kind, border)
                owned, at_margin = _owned(found, inner, region, (height, width))
                kept[name] = _renumbered(found, owned, summary.objects[name] + 1)
                summary.objects[name] += len(owned)
                summary.objects_at_margin += at_margin
                summary.contested_pixels += out.labels.add_objects(name, region, kept[name])
            block_cells = inferred_cells(slide.read(*region), class_map, kept, classes, types, measure["dataset"],
                                         measure["arch"], measure["sample_id"], measure["bin_width"])
            block_cells["centroid_row"] += region[0]
            block_cells["centroid_column"] += region[2]
            cells.append(block_cells)
            corner = (region[0], region[2])
            for index, (name, kind) in enumerate(types.items()):
                writers[name].add(qupath.features(kept[name], name, index, class_map, kind.get("seeds"),
                                                  qupath.measurements(block_cells, name), offset=corner))
                imagej_rois.write(out.rois[name], imagej_rois.rois(kept[name], name, offset=corner),
                                  append=summary.blocks > 0)
            summary.blocks += 1
            log.info("slide %s: block %d (rows %d-%d, columns %d-%d); objects so far: %s", slide.path.name,
                     summary.blocks, *inner, summary.objects)
    finally:
        for writer in writers.values():
            writer.close()
    if summary.objects_at_margin:
        log.warning("slide %s: %d objects reach the edge of their block's margin and may be cut; raise "
                    "infer.object_margin (now %d px) above the largest object", slide.path.name,
                    summary.objects_at_margin, object_margin)
    return summary, pd.concat(cells, ignore_index=True)
