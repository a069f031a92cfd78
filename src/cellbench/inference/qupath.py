"""QuPath GeoJSON: every object of one type as a feature QuPath imports (File > Import objects),
with its type as classification and its measurements (cells.parquet's features) as properties.

Objects of a type with seeds (cells, seeded by nuclei) are QuPath cells: the cell outline plus a
``nucleusGeometry`` of its seed-class pixels; the others are detections. Coordinates are full-
resolution pixels with the origin at the image's top-left corner, as QuPath stores them.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from cellbench.inference.polygons import outline

# cells.parquet's columns that link a row rather than measure the object
LINK_COLUMNS = ("dataset", "source", "fold", "sample_id", "name", "cell_type", "object_type", "object_id",
                "reference_id", "match_iou")
TYPE_COLOURS = ([0, 158, 115], [230, 159, 0], [86, 180, 233], [204, 121, 167], [240, 228, 66], [0, 114, 178])


def measurements(cells: pd.DataFrame, object_type: str) -> dict[int, dict[str, float]]:
    """Object id -> its numeric features (finite values only: GeoJSON has no NaN)."""
    rows = cells[cells["object_type"] == object_type] if len(cells) else cells
    numeric = [c for c in rows.columns if c not in LINK_COLUMNS and pd.api.types.is_numeric_dtype(rows[c])]
    found = {}
    for object_id, values in zip(rows["object_id"].to_numpy() if len(rows) else [],
                                 rows[numeric].to_numpy(np.float64) if len(rows) else [], strict=True):
        found[int(object_id)] = {name: float(v) for name, v in zip(numeric, values, strict=True) if math.isfinite(v)}
    return found


def features(instances: np.ndarray, object_type: str, colour_index: int, class_map: np.ndarray | None = None,
             seed_classes: list[int] | None = None, measured: dict[int, dict] | None = None,
             labels=None, offset: tuple[int, int] = (0, 0)) -> list[dict]:
    """The GeoJSON features of the objects of ``instances`` (or of ``labels`` only), shifted by
    ``offset`` (rows, columns), with ``measured`` (from measurements) or at least their area in
    pixels. With ``seed_classes``, each is a cell with the outline of its pixels of those classes in
    ``class_map`` as nucleus."""
    colour = TYPE_COLOURS[colour_index % len(TYPE_COLOURS)]
    seeds = np.isin(class_map, seed_classes) if seed_classes and class_map is not None else None
    areas = np.bincount(instances.ravel())  # every object has its area, measured as a type or not
    wanted = None if labels is None else {int(v) for v in labels}
    found = []
    for object_id, box in enumerate(ndimage.find_objects(instances), start=1):
        if box is None or (wanted is not None and object_id not in wanted):
            continue
        mine = instances[box] == object_id
        top, left = box[0].start + offset[0], box[1].start + offset[1]
        properties = {"objectType": "cell" if seeds is not None else "detection",
                      "name": f"{object_type} {object_id}",
                      "classification": {"name": object_type, "color": colour},
                      "isLocked": False, "object_id": object_id,
                      "measurements": {f"{object_type}_area": float(areas[object_id]),
                                       **(measured or {}).get(object_id, {})}}
        if seeds is not None and (nucleus := mine & seeds[box]).any():
            properties["nucleusGeometry"] = shapely.geometry.mapping(outline(nucleus, top, left))
        found.append({"type": "Feature", "geometry": shapely.geometry.mapping(outline(mine, top, left)),
                      "properties": properties})
    return found


class FeatureCollectionWriter:
    """A GeoJSON FeatureCollection written feature by feature (a whole slide's objects never all in
    memory at once)."""

    def __init__(self, path: Path):
        self.path, self.count = Path(path), 0
        self._file = self.path.open("w", encoding="utf-8")
        self._file.write('{"type": "FeatureCollection", "features": [')

    def add(self, items: list[dict]) -> None:
        for item in items:
            self._file.write(("\n" if self.count == 0 else ",\n") + json.dumps(item, allow_nan=False))
            self.count += 1

    def close(self) -> None:
        self._file.write("\n]}\n")
        self._file.close()

    def __enter__(self) -> FeatureCollectionWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
