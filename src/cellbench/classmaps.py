"""The class-map contract: uint8 values 0..C-1 in `classes` order (0 = background), plus one
ignore value for regions that neither the loss nor the metrics look at (LabelMe's `__ignore__`)."""

import numpy as np

IGNORE_INDEX = 255
IGNORE_LABEL = "__ignore__"


def in_classes(class_map: np.ndarray, members) -> np.ndarray:
    """Boolean mask of the pixels whose class is one of ``members``: a comparison or two for a run of
    consecutive classes, otherwise one table lookup per pixel."""
    members = sorted(set(members))
    if not members:
        return np.zeros(np.shape(class_map), dtype=bool)
    low, high = members[0], members[-1]
    if high - low + 1 == len(members):  # consecutive classes
        if low == high:
            return class_map == low
        mask = class_map >= low
        mask &= class_map <= high
        return mask
    size = 256 if class_map.dtype == np.uint8 else max(int(class_map.max()), high) + 1
    table = np.zeros(size, dtype=bool)
    table[members] = True
    return table[class_map]


def sequential(instances: np.ndarray) -> tuple[np.ndarray, int]:
    """Object ids relabelled 1..N in their order (0 stays background) as int32, and N."""
    flat = np.asarray(instances).ravel()
    if flat.size and flat.min() < 0:
        raise ValueError("instance maps must not hold negative ids")
    present = np.flatnonzero(np.bincount(flat)) if flat.size else np.zeros(0, dtype=np.int64)
    present = present[present != 0]
    return renumbered(instances, present), len(present)


def renumbered(instances: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """The map with its object ids (sorted, nonzero: every id it holds) renumbered 1..N, as int32."""
    if len(ids) == (ids[-1] if len(ids) else 0):  # already 1..N: no lookup needed
        return np.asarray(instances, dtype=np.int32)
    lut = np.zeros(int(ids[-1]) + 1, dtype=np.int32)
    lut[ids] = np.arange(1, len(ids) + 1, dtype=np.int32)
    return lut[np.asarray(instances)]


def relabel_sequential(instance_map: np.ndarray) -> np.ndarray:
    """Ids 1..N keeping their order, as uint16 (0 stays background), for instance PNGs."""
    labels, n = sequential(instance_map)
    if n > np.iinfo(np.uint16).max:
        raise ValueError(f"{n} instances do not fit a uint16 instance map")
    return labels.astype(np.uint16)
