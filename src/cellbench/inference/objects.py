"""Objects (cells, nuclei) as instance maps: from the annotated truth, and from predicted class maps.

An object type is a set of classes (cell = cytoplasm + nucleus). Truth objects are the annotated
instances restricted to those classes. Predicted objects are connected components of the type's
classes; when a seed class is given (nuclei for cells), touching cells are separated by a
watershed of the distance map seeded by the predicted nuclei, and a component without any
nucleus stays one object. A model trained on touching borders (train.target: boundary) marks where
objects meet: its objects are flooded from the connected interiors (the type's classes without the
border) over the border pixels, by the same watershed.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage
from skimage.measure import label as connected_components
from skimage.segmentation import watershed

from cellbench.classmaps import in_classes, sequential
from cellbench.evaluation.scope import Scope, applicable_objects


def object_types(classes: list[str], spec: dict[str, dict] | None) -> dict[str, dict]:
    """The object types that apply (cellbench.scope: defaults that do not fit are skipped, with none
    left one per foreground class): name -> {classes: [indices], seeds: [indices]}."""
    applied, _, _ = applicable_objects(classes, spec)
    return Scope(list(classes), {}, applied, [], []).object_indices()


def truth_objects(class_map: np.ndarray, instance_map: np.ndarray, members: list[int]) -> np.ndarray:
    """The annotated instances, restricted to the pixels of the object type's classes."""
    return np.where(in_classes(class_map, members), instance_map, 0).astype(np.int32)


def predicted_objects(class_map: np.ndarray, members: list[int], seeds: list[int] | None = None,
                      connectivity: int = 1, min_size: int = 0, fill_holes: bool = False,
                      border: int | None = None, join_gap: float = 0.0, seed_gap: float = 0.0) -> np.ndarray:
    """Instance map (int32, 1..N) of one object type in a predicted class map, post-processed (holes
    of each object filled, then objects smaller than ``min_size`` pixels dropped). ``border``: the
    index of the touching-border output in ``class_map`` (the map of a boundary-target model's
    outputs); the objects then grow from their interiors and ``seeds`` are not needed.
    ``join_gap`` / ``seed_gap``: pieces of the type / of its seed class at most this far apart
    (pixels) are one object / one seed (cellbench.inference.object_rules; not with ``border``)."""
    if border is None:
        region = in_classes(class_map, members)
        marks = in_classes(class_map, seeds) & region if seeds and not set(seeds) >= set(members) else None
        gaps = (join_gap, seed_gap if marks is not None else join_gap)
    else:
        interior = in_classes(class_map, members)
        region, marks, gaps = interior | (class_map == border), interior, (0.0, 0.0)
    return post_process(_components(region, marks, connectivity, gaps), min_size, fill_holes)


def objects_of(class_map: np.ndarray, kind: dict, border: int | None = None) -> np.ndarray:
    """The predicted objects of one object type as cellbench.evaluation.scope's object_indices gives it
    (with the learned rules of cellbench.inference.object_rules where they were applied)."""
    return predicted_objects(class_map, kind["classes"], kind["seeds"], min_size=kind.get("min_size", 0),
                             fill_holes=kind.get("fill_holes", False), border=border,
                             join_gap=kind.get("join_gap", 0.0), seed_gap=kind.get("seed_gap", 0.0))


def post_process(instances: np.ndarray, min_size: int = 0, fill_holes: bool = False) -> np.ndarray:
    """Fill each object's holes (background it encloses on its own), then drop objects smaller than
    ``min_size`` pixels, as Cellpose's fill_holes_and_remove_small_masks does; ids made 1..N again."""
    if not min_size and not fill_holes:
        return instances
    out = instances.copy()
    for index, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None:
            continue
        mine = instances[box] == index
        if fill_holes:
            holes = ndimage.binary_fill_holes(mine) & (instances[box] == 0)
            out[box][holes] = index
            mine |= holes
        if min_size and np.count_nonzero(mine) < min_size:
            out[box][mine] = 0
    return sequential(out)[0]


def _components(region: np.ndarray, marks: np.ndarray | None, connectivity: int,
                gaps: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Connected components of ``region`` (pieces within ``gaps[0]`` pixels joined); with ``marks`` (a
    part of it), each component holding marks is split among them by a watershed of its distance map
    seeded by their connected pieces (pieces within ``gaps[1]`` pixels are one seed).

    One component at a time, in its own box: a component with one seed is that seed's object without
    any flooding, and one with several is flooded alone, with the distances of the whole image
    (own_distance). The same objects as one watershed of the whole image, pixel for pixel but where
    two seeds are equally far (which of them takes such a pixel depends on the flooding queue's
    layout; tests/inference/test_objects.py), in a quarter of the time on a 2560 x 1920 image of
    300 cells (there pixel for pixel the same), and with memory bounded by the largest component on
    a whole slide."""
    components = _label_joined(region, connectivity, gaps[0])
    if marks is None:
        return components
    markers = _label_joined(marks, connectivity, gaps[1])
    n_markers = int(markers.max(initial=0))
    seeded = np.zeros(int(components.max(initial=0)) + 1, bool)
    seeded[components[markers > 0]] = True
    seeded[0] = False
    # a component without seed stays one object (numbered after the seeds)
    cells = np.where(seeded[components] | (components == 0), 0, components + n_markers).astype(np.int32)
    boxes = ndimage.find_objects(components)
    for index in np.flatnonzero(seeded):
        box = boxes[index - 1]
        mine = components[box] == index
        seeds = markers[box][mine]
        seeds = seeds[seeds > 0]
        if seeds.min() == seeds.max():  # one seed: its whole component (all its pieces), no flooding needed
            cells[box][mine] = seeds[0]
            continue
        distance = own_distance(mine, box, region.shape)
        flooded = watershed(-distance, np.where(mine, markers[box], 0), mask=mine, connectivity=connectivity)
        flooded[mine & (flooded == 0)] = index + n_markers  # a joined piece no seed reaches: its own object
        cells[box][mine] = flooded[mine]
    return sequential(cells)[0]


def own_distance(mine: np.ndarray, box: tuple[slice, slice], shape: tuple[int, int]) -> np.ndarray:
    """The Euclidean distance of each pixel of one component (``mine``, the component in its box
    ``box`` of an image of ``shape``) to the nearest background pixel of the whole image: within one
    pixel of a component lies background only (another component there would touch it), and beyond
    the image's edge lies none (scipy's distance transform of the whole image sees no background
    there either): the box is padded with background inside the image and foreground at its edge."""
    padded = np.pad(mine, 1)
    for axis, part in enumerate(box):
        edge = [slice(None)] * 2
        if part.start == 0:
            edge[axis] = slice(0, 1)
            padded[tuple(edge)] = True
        if part.stop == shape[axis]:
            edge[axis] = slice(-1, None)
            padded[tuple(edge)] = True
    return ndimage.distance_transform_edt(padded)[1:-1, 1:-1]


def _label_joined(mask: np.ndarray, connectivity: int, gap: float) -> np.ndarray:
    """Connected components of ``mask`` where pieces at most ``gap`` pixels apart (the distance between
    their nearest pixel centres) share a label: each piece is grown by half the gap, the grown pieces
    labelled, and the labels kept on ``mask``'s own pixels."""
    if gap <= 0 or not mask.any():
        return _label(mask, connectivity)
    radius = int(math.ceil(gap / 2))
    disk = np.hypot(*np.mgrid[-radius:radius + 1, -radius:radius + 1]) <= radius + 1e-9
    grown = _label(ndimage.binary_dilation(mask, structure=disk), connectivity)
    return sequential(np.where(mask, grown, 0).astype(np.int32))[0]


def _label(mask: np.ndarray, connectivity: int) -> np.ndarray:
    """Connected components, int32 ids in raster order (skimage's numbering, half its memory)."""
    if connectivity == 1:
        return ndimage.label(mask, output=np.int32)[0]
    return connected_components(mask, connectivity=connectivity).astype(np.int32)
