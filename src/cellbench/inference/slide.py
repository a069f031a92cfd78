"""A whole slide segmented block by block, with memory bounded by the block, not the slide.

Each block of ``block_size`` is read with a margin (``object_margin``) in which its objects are
completed, plus the whole slide's windows that touch that region, so that its probabilities and
class map are exactly the whole slide's (ensemble.reading_region). Objects are made in the block
plus margin; a block keeps the objects whose top-left corner lies inside it, so an object that
crosses a block border is kept once, whole, by one block, and equals what a whole-image run gives
unless it (or the clump of touching cells it is flooded in) reaches farther than the margin, which
is counted and reported. Kept objects get slide-wide ids and are written to the OME-Zarr label
store, measured, and added to the QuPath GeoJSON and ImageJ ROI sets as they come.
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
    reading_region,
    window_size,
)
from cellbench.inference.segment import chosen_outputs, device_of
from cellbench.inference.slide_io import Slide
from cellbench.inference.slide_labels import CLASS_MAP, LabelStore
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


class _BlockPredictor:
    """Class and output maps of a region, exactly as a whole-slide run would give them, plus the
    entropy and disagreement sums of a part of it."""

    def __init__(self, slide: Slide, fold_models: list[FoldModel], windows: Windows):
        self.slide, self.windows = slide, windows
        self.n_classes, self.n_outputs = len(fold_models[0].classes), len(fold_models[0].outputs)
        self.device = device_of(fold_models)
        self.divisor = max(m.divisor for m in fold_models)
        self.tile = window_size(windows, self.divisor)
        self.predictor = _Predictor(fold_models, windows, self.device)

    def __call__(self, region, inner):
        """(image, class map, output map of ``region``; entropy sum, disagreement sum over ``inner``)."""
        read = reading_region(region, self.slide.shape, self.windows.block_size, self.tile, self.windows.overlap)
        image = self.slide.read(*read)
        stitch = _stitch_device(self.device, image.shape[0] * image.shape[1], self.n_outputs)
        values = _block_probabilities(image, self.predictor, self.windows, self.divisor, self.device, stitch).cpu()
        rows, columns = _inside(read, region)
        values, image = values[:, rows, columns], image[rows, columns]
        mean, votes = values[:self.n_outputs], values[self.n_outputs:]
        chosen, chosen_class = chosen_outputs(mean, self.n_classes)
        own = _inside(region, inner)
        inner_mean = mean[:, own[0], own[1]]
        entropy = float(-(inner_mean * torch.log(inner_mean.clamp_min(1e-12))).sum())
        disagreement = float((1.0 - votes[:, own[0], own[1]].gather(0, chosen[own][None])).clamp_min(0).sum())
        class_map = chosen_class.to(torch.uint8).numpy()
        output_map = chosen.to(torch.uint8).numpy() if self.n_outputs > self.n_classes else class_map
        return image, class_map, output_map, entropy, disagreement


def segment_slide(slide: Slide, fold_models: list[FoldModel], windows: Windows, types: dict[str, dict],
                  out: SlideOutputs, object_margin: int, measure: dict) -> tuple[SlideSummary, pd.DataFrame]:
    """Segment ``slide`` block by block into ``out``; return its summary and its cells table.

    ``measure``: inferred_cells' dataset, arch, sample_id (the output name) and bin_width.
    """
    height, width = slide.shape
    classes = fold_models[0].classes
    border = len(classes) if len(fold_models[0].outputs) > len(classes) else None
    predict = _BlockPredictor(slide, fold_models, windows)
    block = windows.block_size
    summary = SlideSummary(height, width, dict.fromkeys(types, 0))
    cells, entropy, disagreement = [], 0.0, 0.0
    writers = {name: qupath.FeatureCollectionWriter(path) for name, path in out.geojson.items()}
    try:
        for top in range(0, height, block):
            for left in range(0, width, block):
                inner = (top, min(top + block, height), left, min(left + block, width))
                region = _region_of(inner, object_margin, (height, width))
                image, class_map, output_map, block_entropy, block_disagreement = predict(region, inner)
                entropy, disagreement = entropy + block_entropy, disagreement + block_disagreement
                out.labels.write(CLASS_MAP, inner, class_map[_inside(region, inner)])
                kept = {}
                for name, kind in types.items():
                    labels = objects.objects_of(output_map, kind, border)
                    owned, at_margin = _owned(labels, inner, region, (height, width))
                    kept[name] = _renumbered(labels, owned, summary.objects[name] + 1)
                    summary.objects[name] += len(owned)
                    summary.objects_at_margin += at_margin
                    summary.contested_pixels += out.labels.add_objects(name, region, kept[name])
                block_cells = inferred_cells(image, class_map, kept, classes, types, measure["dataset"],
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
    pixels = max(height * width, 1)
    n = len(fold_models[0].outputs)
    summary.entropy = entropy / pixels / math.log(n) if n > 1 else 0.0
    summary.disagreement = disagreement / pixels
    if summary.objects_at_margin:
        log.warning("slide %s: %d objects reach the edge of their block's margin and may be cut; raise "
                    "infer.object_margin (now %d px) above the largest object", slide.path.name,
                    summary.objects_at_margin, object_margin)
    return summary, pd.concat(cells, ignore_index=True)
