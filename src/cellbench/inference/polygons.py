"""Objects of an instance map as polygons that give back exactly their pixels.

QuPath, ImageJ and GeoJSON readers put pixel (x, y) at [x, x + 1) x [y, y + 1) and fill a polygon
by testing pixel centres. An outline through the midpoints between each inside and outside pixel
centre (marching squares at level 0.5) therefore fills back to the object's own pixels, no more and
no less: the same outline other tools draw, without the half-pixel shrink of outlines through the
edge pixels' centres.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

import numpy as np
import shapely
from scipy import ndimage
from shapely.geometry import MultiPolygon, Polygon
from skimage.draw import polygon as fill_polygon
from skimage.measure import find_contours


def outline(mask: np.ndarray, top: int, left: int) -> shapely.Geometry:
    """The outline of the True pixels of ``mask`` (its corner at row ``top``, column ``left``):
    shells with their holes (even-odd of every ring), a MultiPolygon where it is in pieces."""
    padded = np.pad(mask, 1).astype(np.uint8)
    rings = []
    for contour in find_contours(padded, 0.5, fully_connected="high"):
        if len(contour) < 4:
            continue
        # array index (r, c) of the padded crop -> pixel-corner coordinates: centre of pixel j is j + 0.5
        xy = np.stack([contour[:, 1] + left - 0.5, contour[:, 0] + top - 0.5], axis=1)
        rings.append(Polygon(xy))
    if not rings:
        return Polygon()
    geometry = functools.reduce(shapely.symmetric_difference, rings)
    return shapely.simplify(geometry, 0)  # drops collinear vertices only


def outlines(instances: np.ndarray, labels: Iterable[int] | None = None, offset: tuple[int, int] = (0, 0)
             ) -> dict[int, shapely.Geometry]:
    """Object id -> Polygon or MultiPolygon in pixel coordinates (x right, y down), of every object
    of ``instances`` (or of ``labels`` only), shifted by ``offset`` = (rows, columns)."""
    wanted = None if labels is None else {int(v) for v in labels}
    found = {}
    for label, window in enumerate(ndimage.find_objects(instances), start=1):
        if window is None or (wanted is not None and label not in wanted):
            continue
        found[label] = outline(instances[window] == label, window[0].start + offset[0],
                                 window[1].start + offset[1])
    return found


def polygons_of(geometry: shapely.Geometry) -> list[Polygon]:
    """The pieces of a geometry, largest first."""
    parts = list(geometry.geoms) if isinstance(geometry, MultiPolygon) else [geometry]
    return sorted((p for p in parts if isinstance(p, Polygon) and not p.is_empty), key=lambda p: -p.area)


def rasterise(geometry: shapely.Geometry, shape: tuple[int, int]) -> np.ndarray:
    """The pixels whose centres lie inside ``geometry`` (the inverse of outlines, as QuPath fills)."""
    mask = np.zeros(shape, bool)
    for part in polygons_of(geometry):
        for index, ring in enumerate([part.exterior, *part.interiors]):
            xy = np.asarray(ring.coords)
            rows, cols = fill_polygon(xy[:, 1] - 0.5, xy[:, 0] - 0.5, shape)
            if index == 0:
                mask[rows, cols] = True
            else:
                mask[rows, cols] = False
    return mask
