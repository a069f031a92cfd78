"""Class and instance maps from the two-stage nucleus-guided models (cellbench.training.nucleus_guided).

Stage 1 runs like any semantic model (tiles, fold ensemble, test-time augmentation) and gives the
nuclei: its connected components, specks smaller than the training nuclei dropped. Stage 2 sees
each nucleus at every scale and gives its cell's cytoplasm probability (averaged over the fold
models); the scales are combined by the checkpoint's rule, and nuclei whose predicted cells
overlap by more than half of the smaller are one cell (the lobes of one nucleus). Cells are made by
the method itself: a pixel claimed by two cells goes to the more probable, nucleus pixels to their
own cell.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from skimage.measure import label as connected_components
from skimage.measure import regionprops

from cellbench.device import autocast
from cellbench.inference import objects
from cellbench.inference.cell_crops import CropBox, cut, paste, resize
from cellbench.inference.ensemble import FoldModel, Windows, predict_blocks
from cellbench.training.nucleus_guided import guide_input

SAME_CELL = 0.5  # two nuclei's cells overlapping by more than this share of the smaller are one cell


def stage_one(model: FoldModel) -> FoldModel:
    """Stage 1 as a plain semantic model (other, nucleus), for the shared tiling and ensembling."""
    meta = model.meta
    return FoldModel(model.net.stage1, {"classes": ["other", "nucleus"], "family": "smp", "mean": meta["mean"],
                                        "std": meta["std"], "size_divisor": meta["size_divisor"]})


def nuclei(image: np.ndarray, fold_models: list[FoldModel], windows: Windows, device: torch.device) -> np.ndarray:
    """int32 (H, W): the predicted nuclei, 1..N, specks below the training nuclei's size dropped."""
    mask = np.zeros(image.shape[:2], bool)
    first = [stage_one(m) for m in fold_models]
    for (top, bottom, left, right), block in predict_blocks(image, first, windows, device):
        mask[top:bottom, left:right] = (block[1] > block[0]).numpy()
    smallest = max(m.meta["min_nucleus_area"] for m in fold_models)
    labels = objects.post_process(connected_components(mask, connectivity=1).astype(np.int32), math.ceil(smallest))
    return labels.astype(np.int32)


def first_passing(areas: list[float], nucleus_area: float, ratios: list[float], threshold: float) -> int:
    """From the smallest scale up, the first whose predicted cytoplasm/nucleus area ratio is at most
    ``threshold`` x the ratio that scale was chosen for (a larger cell is cut by that crop); else the
    largest."""
    for level, (area, fitted) in enumerate(zip(areas, ratios, strict=True)):
        if area / max(nucleus_area, 1.0) <= threshold * fitted:
            return level
    return len(areas) - 1


def combine(maps: list[torch.Tensor], boxes: list[CropBox], rule: str, nucleus_area: float, ratios: list[float],
            threshold: float, shape: tuple[int, int]) -> torch.Tensor:
    """One cytoplasm probability map on the largest scale's crop (side x side) from each scale's map
    (at its own crop's side; every crop centred on the nucleus). Pixels outside the image count for
    nothing; outside a scale's crop that scale says nothing."""
    outer = boxes[-1]
    total = torch.zeros((outer.side, outer.side))
    covered = torch.zeros_like(total)
    placed = []
    for values, box in zip(maps, boxes, strict=True):
        inside = torch.zeros((box.side, box.side))
        parts = box.overlap(*shape)
        if parts is not None:
            inside[parts[2], parts[3]] = 1
        top, left = box.top - outer.top, box.left - outer.left
        placed.append((slice(top, top + box.side), slice(left, left + box.side), values * inside, inside))
    if rule == "mean":
        for rows, cols, values, inside in placed:
            total[rows, cols] += values
            covered[rows, cols] += inside
        return total / covered.clamp_min(1)
    areas = [float((values >= 0.5).sum()) for _, _, values, _ in placed]
    rows, cols, values, _ = placed[first_passing(areas, nucleus_area, ratios, threshold)]
    total[rows, cols] = values
    return total


@torch.no_grad()
def cytoplasm_maps(image: np.ndarray, labels: np.ndarray, fold_models: list[FoldModel], windows: Windows,
                   device: torch.device) -> list[tuple[CropBox, torch.Tensor]]:
    """Per nucleus (label order): a crop around it and the cytoplasm probability on it, the mean of
    the fold models' (each combines its own scales, chosen from its own training cells)."""
    props = regionprops(labels)
    per_model = [_model_maps(image, labels, props, model, windows, device) for model in fold_models]
    out = []
    for maps in zip(*per_model, strict=True):
        outer = max((box for box, _ in maps), key=lambda box: box.side)
        total = torch.zeros((outer.side, outer.side))
        for box, values in maps:
            top, left = box.top - outer.top, box.left - outer.left
            total[top:top + box.side, left:left + box.side] += values
        out.append((outer, total / len(maps)))
    return out


def _model_maps(image: np.ndarray, labels: np.ndarray, props: list, model: FoldModel, windows: Windows,
                device: torch.device) -> list[tuple[CropBox, torch.Tensor]]:
    """One fold model's combined cytoplasm map per nucleus, a chunk of nuclei x scales per forward pass."""
    meta = model.meta
    scales, size = meta["scales"], meta["input_size"]
    mean, std = torch.tensor(meta["mean"]), torch.tensor(meta["std"])
    chunk = max(1, 8 * windows.batch_size // len(scales))
    out = []
    for start in range(0, len(props), chunk):
        group = props[start:start + chunk]
        boxes = [[CropBox.around(p.centroid, p.area, s) for s in scales] for p in group]
        batch = torch.stack([guide_input(cut(image, box), (cut(labels, box) == p.label).astype(np.uint8), size,
                                         mean, std) for p, row in zip(group, boxes, strict=True) for box in row])
        with autocast(device, windows.amp):
            logits = model.net.stage2(batch.to(device).contiguous(memory_format=torch.channels_last))
        probability = torch.softmax(logits.float(), 1)[:, 1].cpu().view(len(group), len(scales), size, size)
        for i, (prop, row) in enumerate(zip(group, boxes, strict=True)):
            at_side = [resize(probability[i, k][None], box.side)[0] for k, box in enumerate(row)]
            out.append((row[-1], combine(at_side, row, meta["aggregation"], prop.area, meta["scale_ratios"],
                                         meta["ratio_threshold"], labels.shape)))
    return out


def assemble(labels: np.ndarray, cells: list[tuple[CropBox, torch.Tensor]]) -> np.ndarray:
    """int32 (H, W) cell instances, 1..N: each nucleus with its predicted cytoplasm, lobes of one
    nucleus merged, contested pixels to the more probable cell, nucleus pixels to their own."""
    height, width = labels.shape
    pieces = []  # (rows, cols, probability, member mask) per nucleus, in image coordinates
    for index, (box, probability) in enumerate(cells, start=1):
        placed = paste(probability, box, height, width)
        if placed is None:
            pieces.append(None)
            continue
        (rows, cols), values = placed
        pieces.append((rows, cols, values.numpy(), (values.numpy() >= 0.5) | (labels[rows, cols] == index)))
    group = _merge(pieces)
    best = np.zeros((height, width), np.float32)
    owner = np.zeros((height, width), np.int32)
    for index, piece in enumerate(pieces):
        if piece is None:
            continue
        rows, cols, values, member = piece
        win_best, win_owner = best[rows, cols], owner[rows, cols]
        take = member & (values > win_best)
        win_best[take], win_owner[take] = values[take], group[index] + 1
    nuclear = labels > 0
    owner[nuclear] = group[labels[nuclear] - 1] + 1
    return objects.post_process(owner)


def _merge(pieces: list) -> np.ndarray:
    """Group id per nucleus: union of nuclei whose cells overlap by more than SAME_CELL of the smaller."""
    parent = list(range(len(pieces)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(pieces):
        for j in range(i + 1, len(pieces)):
            b = pieces[j]
            if a is None or b is None:
                continue
            rows = slice(max(a[0].start, b[0].start), min(a[0].stop, b[0].stop))
            cols = slice(max(a[1].start, b[1].start), min(a[1].stop, b[1].stop))
            if rows.start >= rows.stop or cols.start >= cols.stop:
                continue
            shared = (_window(a, rows, cols) & _window(b, rows, cols)).sum()
            if shared > SAME_CELL * min(a[3].sum(), b[3].sum()):
                parent[root(j)] = root(i)
    roots = [root(i) for i in range(len(pieces))]
    ids = {r: n for n, r in enumerate(dict.fromkeys(roots))}
    return np.array([ids[r] for r in roots], np.int32)


def _window(piece, rows: slice, cols: slice) -> np.ndarray:
    own_rows, own_cols, _, member = piece
    return member[rows.start - own_rows.start:rows.stop - own_rows.start,
                  cols.start - own_cols.start:cols.stop - own_cols.start]


def segment_cells(image: np.ndarray, fold_models: list[FoldModel], windows: Windows, device: torch.device,
                  object_types: dict[str, dict] | None):
    """(class map uint8, {object type: instances}) of one image: cells as the method makes them,
    nuclei as stage 1's components, other types from the class map."""
    meta = fold_models[0].meta
    labels = nuclei(image, fold_models, windows, device)
    cells = assemble(labels, cytoplasm_maps(image, labels, fold_models, windows, device))
    class_out = np.zeros(labels.shape, np.uint8)
    class_out[cells > 0] = meta["cytoplasm"]
    class_out[labels > 0] = meta["nucleus"]
    made = {frozenset((meta["cytoplasm"], meta["nucleus"])): cells, frozenset((meta["nucleus"],)): labels}
    instances = {}
    for name, kind in (object_types or {}).items():
        own = made.get(frozenset(kind["classes"]))
        instances[name] = (objects.post_process(own, kind.get("min_size", 0), kind.get("fill_holes", False))
                           if own is not None else objects.objects_of(class_out, kind))
    return class_out, instances
