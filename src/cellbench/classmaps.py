"""The class-map contract: uint8 values 0..C-1 in `classes` order (0 = background), plus one
ignore value for regions that neither the loss nor the metrics look at (LabelMe's `__ignore__`)."""

import numpy as np

IGNORE_INDEX = 255
IGNORE_LABEL = "__ignore__"


def relabel_sequential(instance_map: np.ndarray) -> np.ndarray:
    """Ids 1..N keeping their order, as uint16 (0 stays background)."""
    flat = instance_map.ravel()
    present = np.flatnonzero(np.bincount(flat, minlength=1)) if flat.size else np.zeros(0, dtype=np.intp)
    present = present[present != 0]
    if len(present) > np.iinfo(np.uint16).max:
        raise ValueError(f"{len(present)} instances do not fit a uint16 instance map")
    lut = np.zeros(int(present[-1]) + 1 if len(present) else 1, dtype=np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    return lut[instance_map]
