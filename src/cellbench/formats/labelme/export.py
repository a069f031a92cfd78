"""Class maps (e.g. predictions) -> LabelMe JSON, so that people correct instead of drawing.

Each object (a connected component of the foreground, or an id of an instance map) gets one
``group_id``. Within an object, a class's polygon covers its own pixels and those of every class
painted above it: with the default priority the cytoplasm polygon is the whole-cell outline and
the nucleus polygon lies inside it, the convention of hand-drawn cell annotations. Importing the
file with the same class priority paints the classes back in order.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy import ndimage
from skimage.measure import approximate_polygon, find_contours

from cellbench.classmaps import IGNORE_INDEX
from cellbench.errors import InputError, InputProblem
from cellbench.formats.class_masks import class_indices, read_class_mask
from cellbench.formats.labelme.maps import paint_order
from cellbench.fsutil import staged_dir
from cellbench.images import MAX_PIXELS, ImageReadError, image_size

LABELME_VERSION = "5.4.1"  # the file format we write; LabelMe 4.x to 7.x open it


def mask_polygons(mask: np.ndarray, tolerance: float = 0.5) -> list[list[list[float]]]:
    """Outer boundary polygons ([x, y] points) of each 8-connected component of ``mask``.

    The boundary runs through the centres of the component's edge pixels, which is where
    LabelMe's polygon outline puts them back; ``tolerance`` (px) simplifies it (Douglas-Peucker).
    """
    components, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    polygons = []
    for index, window in enumerate(ndimage.find_objects(components), start=1):
        part = np.pad(components[window] == index, 1)
        top, left = window[0].start - 1, window[1].start - 1
        contours = find_contours(part.astype(np.uint8), 0.5)
        outer = max(contours, key=len)
        centres = _onto_pixel_centres(outer, part)
        simplified = approximate_polygon(centres, tolerance) if tolerance > 0 else centres
        if len(simplified) > 1 and np.array_equal(simplified[0], simplified[-1]):
            simplified = simplified[:-1]
        if len(simplified) < 3:  # a one- or two-pixel-wide sliver: LabelMe wants 3 points at least
            simplified = np.resize(simplified, (3, 2))
        polygons.append([[float(x + left), float(y + top)] for y, x in simplified])
    return polygons


def _onto_pixel_centres(contour: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Move each contour point (half-way between an inside and an outside pixel) onto the inside one."""
    rows, cols = contour[:, 0], contour[:, 1]
    row_between = rows != np.floor(rows)
    near_r, near_c = np.floor(rows).astype(int), np.floor(cols).astype(int)
    cols_int, rows_int = np.round(cols).astype(int), np.round(rows).astype(int)
    a_r, a_c = near_r, np.where(row_between, cols_int, near_c)  # the pixel before the edge
    b_r, b_c = np.where(row_between, near_r + 1, rows_int), np.where(row_between, cols_int, near_c + 1)
    take_a = part[a_r, a_c]
    points = np.stack([np.where(take_a, a_r, b_r), np.where(take_a, a_c, b_c)], axis=1).astype(float)
    keep = np.any(points != np.roll(points, 1, axis=0), axis=1)
    return points[keep] if keep.any() else points[:1]


def map_shapes(class_map: np.ndarray, classes: list[str], priority: list[str] | None = None,
               instance_map: np.ndarray | None = None, tolerance: float = 1.0) -> list[dict]:
    """LabelMe shape dicts for one class map (0 = background; IGNORE_INDEX is left out)."""
    foreground = (class_map > 0) & (class_map != IGNORE_INDEX)
    if instance_map is None:
        objects, _ = ndimage.label(foreground, structure=np.ones((3, 3), dtype=bool))
    else:
        objects = np.where(foreground, instance_map, 0)
    rank = paint_order(classes, priority)
    class_rank = np.array([rank[name] for name in classes] + [-1] * (256 - len(classes)))
    bottom_up = sorted(range(1, len(classes)), key=lambda c: rank[classes[c]])
    shapes = []
    for group_id, window in enumerate(ndimage.find_objects(objects), start=1):
        if window is None:
            continue
        inside = objects[window] == group_id
        ranks = np.where(inside, class_rank[class_map[window]], -1)
        for class_index in bottom_up:
            if not np.any(inside & (class_map[window] == class_index)):
                continue
            region = ranks >= rank[classes[class_index]]
            for points in mask_polygons(region, tolerance):
                shapes.append({
                    "label": classes[class_index],
                    "points": [[x + window[1].start, y + window[0].start] for x, y in points],
                    "group_id": group_id, "description": "", "shape_type": "polygon", "flags": {}, "mask": None,
                })
    return shapes


def labelme_document(shapes: list[dict], image_path: str, height: int, width: int) -> dict:
    return {"version": LABELME_VERSION, "flags": {}, "shapes": shapes, "imagePath": image_path,
            "imageData": None, "imageHeight": int(height), "imageWidth": int(width)}


def write_document(document: dict, path: Path) -> None:
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


def relative_image_path(image: Path, json_path: Path) -> str:
    """imagePath as LabelMe writes it: relative to the JSON's folder, with forward slashes."""
    return Path(os.path.relpath(Path(image).resolve(), Path(json_path).resolve().parent)).as_posix()


def export(masks: list[Path], images: dict[str, Path], out_dir: Path, classes: list[str],
           priority: list[str] | None = None, tolerance: float = 1.0, max_pixels: int | None = MAX_PIXELS,
           inputs: list[Path] = ()) -> int:
    """One LabelMe JSON per class-map PNG (matched to its image by file stem) in ``out_dir``.

    All files are checked first; on any problem InputError lists them all and nothing is written.
    ``out_dir`` must not be (or contain) one of the ``inputs`` folders, nor a folder of files
    cellbench did not write.
    """
    out_dir = Path(out_dir)
    problems: list[InputProblem] = []
    table = class_indices(classes)
    with staged_dir(out_dir, [*inputs, *masks, *images.values()]) as stage:
        for mask_path in masks:
            image = images.get(mask_path.stem)
            if image is None:
                problems.append(InputProblem(mask_path, f"no image named {mask_path.stem}.*"))
                continue
            class_map, _, found = read_class_mask(mask_path, table, max_pixels)
            problems.extend(found)
            if class_map is None:
                continue
            try:
                width, height = image_size(image, max_pixels)
            except ImageReadError as err:
                problems.append(InputProblem(image, str(err), err.hint))
                continue
            if class_map.shape != (height, width):
                problems.append(InputProblem(mask_path, f"mask is {class_map.shape[0]} x {class_map.shape[1]} "
                                                        f"but {image.name} is {height} x {width}"))
                continue
            if problems:
                continue
            json_name = f"{mask_path.stem}.json"
            document = labelme_document(map_shapes(class_map, classes, priority, tolerance=tolerance),
                                        relative_image_path(image, out_dir / json_name), height, width)
            write_document(document, stage / json_name)
        if problems:
            raise InputError(problems)
    return len(masks)
