"""LabelMe shapes -> one class map and one instance map: which class lies on top, which shapes are one object."""

from __future__ import annotations

import numpy as np

from cellbench.classmaps import IGNORE_INDEX, IGNORE_LABEL, relabel_sequential
from cellbench.errors import ConfigError
from cellbench.formats.labelme.painting import Footprint, rasterise
from cellbench.formats.labelme.reading import Shape


def paint_order(classes: list[str], priority: list[str] | str | None) -> dict[str, int]:
    """Rank of each class when painting: higher ranks lie on top (`__ignore__` above all).

    ``priority`` lists classes highest first; None puts later classes on top; "file" ranks all
    classes equally, so that shapes are painted in file order as LabelMe does.
    """
    if priority == "file":
        return {name: 0 for name in [*classes, IGNORE_LABEL]}
    top_first = list(priority or [])
    unknown = [c for c in top_first if c not in classes]
    if unknown:
        raise ConfigError(f"class_priority names unknown classes: {unknown} (classes: {classes})")
    rest = [c for c in reversed(classes) if c not in top_first]  # later classes on top by default
    bottom_to_top = [*reversed(top_first + rest), IGNORE_LABEL]
    return {name: rank for rank, name in enumerate(bottom_to_top)}


def _object_keys(shapes: list[Shape], footprints: list[Footprint], rank: dict[str, int], mode: str) -> list[tuple]:
    """Group shapes into objects.

    cell: a shared group_id across labels (a cell is its cytoplasm and nucleus), else an ungrouped
    shape joins the smallest lower-ranked shape containing its centre. labelme: one object per
    (label, group_id), as LabelMe's own export.
    """
    if mode == "labelme":
        return [(s.class_name, s.group_id) if s.group_id is not None else ("shape", s.index) for s in shapes]
    keys: list[tuple] = [("group", s.group_id) if s.group_id is not None else ("shape", s.index) for s in shapes]
    index = _WindowIndex(footprints)
    lowest = min((rank[s.class_name] for s in shapes), default=0)  # shapes of this rank have no container
    for i, shape in enumerate(shapes):
        if shape.group_id is not None or rank[shape.class_name] == lowest:
            continue
        centre = footprints[i].centre()
        if centre is None:
            continue
        containers = [j for j in index.around(*centre)
                      if rank[shapes[j].class_name] < rank[shape.class_name] and footprints[j].contains(*centre)]
        if containers:
            keys[i] = keys[min(containers, key=lambda j: footprints[j].area)]
    return keys


class _WindowIndex:
    """Which shapes' windows cover a pixel, by a grid of square cells: each shape is listed in the
    cells its window overlaps, so finding the shapes around a centre looks at a few shapes, not all
    of them (200,000 ungrouped shapes: seconds instead of hours)."""

    CELL = 64

    def __init__(self, footprints: list[Footprint]):
        self.cells: dict[tuple[int, int], list[int]] = {}
        for j, footprint in enumerate(footprints):
            rows, columns = footprint.window
            if rows.stop <= rows.start or columns.stop <= columns.start:
                continue
            for row in range(rows.start // self.CELL, (rows.stop - 1) // self.CELL + 1):
                for column in range(columns.start // self.CELL, (columns.stop - 1) // self.CELL + 1):
                    self.cells.setdefault((row, column), []).append(j)

    def around(self, y: int, x: int) -> list[int]:
        """The shapes (in file order) whose windows may hold pixel (y, x)."""
        return self.cells.get((y // self.CELL, x // self.CELL), [])


def to_maps(shapes: list[Shape], shape_hw: tuple[int, int], classes: list[str],
            priority: list[str] | str | None = None, instance_mode: str = "cell") -> tuple[np.ndarray, np.ndarray]:
    """Class-index map (uint8) and instance map (uint16, 1..N in order of first appearance).

    Class priority decides which class lies on top (see paint_order; "file" = LabelMe's file
    order). `__ignore__` regions become IGNORE_INDEX in the class map and 0 in the instance map.
    Objects are formed as _object_keys describes.
    """
    height, width = shape_hw
    rank = paint_order(classes, priority)
    value = {**{name: i for i, name in enumerate(classes)}, IGNORE_LABEL: IGNORE_INDEX}
    footprints = [rasterise(s.shape_type, s.points, height, width, s.mask) for s in shapes]
    containment_rank = rank if priority != "file" else paint_order(classes, None)
    keys = _object_keys(shapes, footprints, containment_rank, instance_mode)
    ids: dict[tuple, int] = {}
    for key in keys:
        ids.setdefault(key, len(ids) + 1)
    class_map = np.zeros((height, width), dtype=np.uint8)
    instance_map = np.zeros((height, width), dtype=np.int32)
    for i in sorted(range(len(shapes)), key=lambda i: (rank[shapes[i].class_name], i)):
        footprint, class_value = footprints[i], value[shapes[i].class_name]
        is_object = class_value not in (0, IGNORE_INDEX)
        class_map[footprint.window][footprint.mask] = class_value
        instance_map[footprint.window][footprint.mask] = ids[keys[i]] if is_object else 0
    return class_map, relabel_sequential(instance_map)
