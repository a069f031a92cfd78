"""ImageJ / Fiji ROI sets (the ROI Manager's .zip): one ROI per object, named by its type and id.

A one-piece object without holes is a polygon ROI; one with holes or in pieces is a composite
(shape) ROI of all its rings, which ImageJ fills even-odd. Vertices are sub-pixel: the outlines of
cellbench.inference.polygons, which fill back to exactly the object's pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import roifile
from roifile import ROI_TYPE, ImagejRoi

from cellbench.inference.polygons import outlines, polygons_of

MOVETO, LINETO, CLOSE = 0, 1, 4  # java.awt.geom.PathIterator's segment types, as ImageJ stores paths


def _roi(geometry, name: str) -> ImagejRoi:
    parts = polygons_of(geometry)
    rings = [np.asarray(ring.coords, np.float64) for part in parts for ring in (part.exterior, *part.interiors)]
    if len(rings) == 1:
        roi = ImagejRoi.frompoints(rings[0][:-1], name=name)
        roi.roitype = ROI_TYPE.POLYGON
        return roi
    path: list[float] = []
    for ring in rings:
        path += [MOVETO, *ring[0]]
        for x, y in ring[1:-1]:
            path += [LINETO, x, y]
        path += [CLOSE]
    roi = ImagejRoi(roitype=ROI_TYPE.RECT, version=228, name=name)
    roi.multi_coordinates = np.asarray(path, np.float32)
    roi.shape_roi_size = len(path)
    left, top, right, bottom = geometry.bounds
    roi.left, roi.top, roi.right, roi.bottom = int(np.floor(left)), int(np.floor(top)), int(np.ceil(right)), \
        int(np.ceil(bottom))
    return roi


def rois(instances: np.ndarray, object_type: str, labels=None, offset: tuple[int, int] = (0, 0)) -> list[ImagejRoi]:
    """The ROIs of the objects of ``instances`` (or of ``labels`` only), shifted by ``offset``."""
    return [_roi(geometry, f"{object_type} {object_id}")
            for object_id, geometry in outlines(instances, labels, offset).items() if not geometry.is_empty]


def write(path: Path, items: list[ImagejRoi], append: bool = False) -> None:
    """Write (or add to) a ROI set; an empty set is an empty zip, which the ROI Manager opens."""
    if items:
        roifile.roiwrite(Path(path), items, mode="a" if append else "w")
    elif not append:
        import zipfile
        with zipfile.ZipFile(path, "w"):
            pass
