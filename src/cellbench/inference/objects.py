"""Objects (cells, nuclei) as instance maps: from the annotated truth, and from predicted class maps.

An object type is a set of classes (cell = cytoplasm + nucleus). Truth objects are the annotated
instances restricted to those classes. Predicted objects are connected components of the type's
classes; when a seed class is given (nuclei for cells), touching cells are separated by a
watershed of the distance map seeded by the predicted nuclei, and a component without any
nucleus stays one object.
"""

from __future__ import annotations

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
                      connectivity: int = 1) -> np.ndarray:
    """Instance map (int32, 1..N) of one object type in a predicted class map."""
    region = in_classes(class_map, members)
    if not seeds or set(seeds) >= set(members):
        return connected_components(region, connectivity=connectivity).astype(np.int32)
    markers = connected_components(in_classes(class_map, seeds) & region, connectivity=connectivity).astype(np.int32)
    components = connected_components(region, connectivity=connectivity)
    seeded = np.unique(components[markers > 0])
    unseeded = region & ~np.isin(components, seeded)
    markers[unseeded] = components[unseeded] + markers.max()
    distance = ndimage.distance_transform_edt(region)
    cells = watershed(-distance, markers, mask=region, connectivity=connectivity)
    return sequential(cells)[0]
