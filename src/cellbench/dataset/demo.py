"""A deterministic synthetic dataset of stained-smear-like cells annotated in LabelMe format.

Pale background with a few red cells (background class), white cells with pink/purple cytoplasm
and a dark, irregular or lobed nucleus; cells touch, some are cut by the border, some images are
empty. Annotations are LabelMe 5.x JSON files: one `cytoplasm` shape (whole-cell outline) and one
or more `nucleus` shapes per cell sharing a `group_id`. A few files use circles or rectangles, and
a few list the nuclei before the cytoplasm.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from cellbench.formats import labelme
from cellbench.fsutil import staged_dir, staged_file
from cellbench.images import write_png

CLASSES = ["background", "cytoplasm", "nucleus"]
EMPTY_IMAGES = (5, 17)
N_IMAGES = 24
METADATA_COLUMNS = ("image_id", "cell_type")  # the cell-type table written beside the demo


def sample_names(n_images: int = N_IMAGES) -> list[str]:
    return [f"demo_{index:02d}" for index in range(n_images)]


def file_names(n_images: int = N_IMAGES) -> list[str]:
    """Every file the generator writes to its folder (known before it runs)."""
    return [f"{name}{suffix}" for name in sample_names(n_images) for suffix in (".json", ".png")]


def _blob(rng, cx, cy, radius, n_points=40, roughness=0.12, elongation=0.25):
    """Irregular closed outline around (cx, cy)."""
    theta = np.linspace(0, 2 * np.pi, n_points, endpoint=False)
    r = np.ones_like(theta)
    for k in (2, 3, 4, 5):
        r += rng.uniform(0, roughness / (k - 1)) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    stretch = 1 + rng.uniform(0, elongation)
    angle = rng.uniform(0, np.pi)
    x, y = radius * r * np.cos(theta) * stretch, radius * r * np.sin(theta) / stretch
    ca, sa = math.cos(angle), math.sin(angle)
    return np.stack([cx + ca * x - sa * y, cy + sa * x + ca * y], axis=1)


def _shape(label, points, shape_type, group_id):
    return {"label": label, "points": [[round(float(x), 2), round(float(y), 2)] for x, y in points],
            "group_id": group_id, "description": "", "shape_type": shape_type, "flags": {}, "mask": None}


def _clip(points, size):
    return np.clip(points, 0, size - 1)


def _cell_shapes(rng, group_id, cx, cy, radius, size, style):
    """LabelMe shapes of one cell: cytoplasm outline and nucleus shape(s)."""
    if style["circle_cells"]:
        cytoplasm = _shape("cytoplasm", [(cx, cy), (cx + radius, cy)], "circle", group_id)
        inner = radius
    else:
        outline = _clip(_blob(rng, cx, cy, radius, roughness=0.10), size)
        cytoplasm = _shape("cytoplasm", outline, "polygon", group_id)
        inner = radius * 0.75
    nuclei = []
    lobed = rng.random() < 0.4
    if lobed:
        n_lobes = int(rng.integers(2, 4))
        lobe_r = inner * rng.uniform(0.24, 0.32)
        arc = rng.uniform(0, 2 * np.pi)
        for k in range(n_lobes):
            a = arc + k * rng.uniform(0.9, 1.3)
            lx, ly = cx + 0.45 * inner * math.cos(a), cy + 0.45 * inner * math.sin(a)
            nuclei.append(_shape("nucleus", _clip(_blob(rng, lx, ly, lobe_r, 24, 0.2), size),
                                 "polygon", group_id))
    else:
        nr = inner * rng.uniform(0.45, 0.65)
        off = (inner - nr) * 0.5
        a = rng.uniform(0, 2 * np.pi)
        nx, ny = cx + off * math.cos(a), cy + off * math.sin(a)
        if style["rect_nucleus"]:
            side = nr * 0.8
            nuclei.append(_shape("nucleus", _clip(np.array([(nx - side, ny - side), (nx + side, ny + side)]),
                                                  size), "rectangle", group_id))
        elif style["circle_nucleus"]:
            nuclei.append(_shape("nucleus", [(nx, ny), (nx, ny + nr)], "circle", group_id))
        else:
            nuclei.append(_shape("nucleus", _clip(_blob(rng, nx, ny, nr, 32, 0.25), size), "polygon", group_id))
    return ([*nuclei, cytoplasm] if style["nucleus_first"] else [cytoplasm, *nuclei]), lobed


def _place_cells(rng, size, n_cells):
    cells = []
    for _ in range(200):
        if len(cells) == n_cells:
            break
        radius = rng.uniform(0.10, 0.2) * size
        cx, cy = rng.uniform(-0.05, 1.05, size=2) * size
        # touching is allowed (0.85), overlapping much is not
        if all(math.hypot(cx - x, cy - y) > 0.85 * (radius + r) for x, y, r in cells):
            cells.append((cx, cy, radius))
    return cells


def _render(rng, size, class_map, rbc_mask):
    """Stained-smear-like RGB image from a class map."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    light = 1 + 0.04 * (xx - 0.5) + 0.03 * (yy - 0.5)
    background = np.array([232, 226, 231]) + rng.normal(0, 4, 3)
    cytoplasm = np.array([rng.uniform(185, 220), rng.uniform(155, 180), rng.uniform(200, 225)])
    nucleus = np.array([rng.uniform(85, 130), rng.uniform(45, 80), rng.uniform(135, 180)])
    rbc = np.array([222, 160, 168]) + rng.normal(0, 5, 3)
    image = np.broadcast_to(background, (size, size, 3)).astype(np.float64).copy()
    image[rbc_mask] = rbc
    texture = gaussian_filter(rng.normal(0, 1, (size, size)), 1.5)
    for class_index, colour, grain in ((1, cytoplasm, 6.0), (2, nucleus, 14.0)):
        region = class_map == class_index
        image[region] = colour + grain * texture[region, None]
    image = gaussian_filter(image, sigma=(0.9, 0.9, 0)) * light[..., None]
    image += rng.normal(0, rng.uniform(2, 7), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _red_cells(rng, size, n):
    yy, xx = np.mgrid[0:size, 0:size]
    mask = np.zeros((size, size), dtype=bool)
    for _ in range(n):
        cx, cy, r = *rng.uniform(0, size, 2), rng.uniform(0.07, 0.1) * size
        d = np.hypot(xx - cx, yy - cy)
        mask |= (d < r) & (d > 0.35 * r)
    return mask


def _is_demo_metadata(path: Path) -> bool:
    """Whether a file is a cell-type table this generator wrote (it may be replaced)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return False
    kinds = ("empty", "polylobed", "mononuclear")
    return bool(lines) and lines[0] == ",".join(METADATA_COLUMNS) and all(
        line.startswith("demo_") and line.split(",")[-1] in kinds for line in lines[1:])


def generate(out_dir: Path, metadata_csv: Path | None = None, n_images: int = N_IMAGES, size: int = 128,
             seed: int = 0) -> list[Path]:
    """Write ``n_images`` PNG images with their LabelMe JSON files to ``out_dir``, and a per-image
    cell-type table (for stratified folds) to ``metadata_csv`` (default: out_dir/cell_types.csv)."""
    rng = np.random.default_rng(seed)
    written = []
    metadata_csv = Path(metadata_csv) if metadata_csv else Path(out_dir) / "cell_types.csv"
    beside = Path(os.path.abspath(metadata_csv)).parent == Path(os.path.abspath(out_dir))  # in the folder's record
    with staged_dir(Path(out_dir)) as stage:
        types = [",".join(METADATA_COLUMNS)]
        for index, name in enumerate(sample_names(n_images)):
            style = {"circle_cells": index % 6 == 2, "circle_nucleus": index % 8 == 5,
                     "rect_nucleus": index % 9 == 7, "nucleus_first": index % 5 == 1}
            n_cells = 0 if index in EMPTY_IMAGES else int(rng.integers(1, 5))
            shapes, lobed = [], []
            for group_id, (cx, cy, radius) in enumerate(_place_cells(rng, size, n_cells), start=1):
                cell, is_lobed = _cell_shapes(rng, group_id, cx, cy, radius, size, style)
                shapes += cell
                lobed.append(is_lobed)
            doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png",
                   "imageData": None, "imageHeight": size, "imageWidth": size}
            class_map, _ = labelme.to_maps(labelme.parse_shapes(shapes, CLASSES), (size, size), CLASSES)
            rbc = _red_cells(rng, size, int(rng.integers(0, 5))) & (class_map == 0)
            write_png(_render(rng, size, class_map, rbc), stage / f"{name}.png")
            (stage / f"{name}.json").write_text(json.dumps(doc, indent=2))
            cell_type = "empty" if not lobed else ("polylobed" if sum(lobed) * 2 >= len(lobed) else "mononuclear")
            types.append(f"{name},{cell_type}")
            written.append(Path(out_dir) / f"{name}.json")
        if beside:
            (stage / metadata_csv.name).write_text("\n".join(types) + "\n")
    if not beside:
        with staged_file(metadata_csv, replaceable=_is_demo_metadata) as tmp:
            tmp.write_text("\n".join(types) + "\n")
    return written
