"""Write the small LabelMe files in this folder (run it from anywhere; it overwrites them).

Made here, not taken from any dataset: the tests compare our rasterisation with LabelMe's own
`shapes_to_label` (and `lblsave`), computed at test time, so only the package is needed.

- cells.json: hand-placed cells (cytoplasm with nucleus by group_id) that exercise what LabelMe's
  export does: shapes painted in file order (a nucleus listed before its cytoplasm is painted over),
  one object split into two polygons by a shared group_id, the same group_id under two labels (two
  objects), overlapping cells, cells cut by the image border, ungrouped shapes, `__ignore__` shapes
  with and without a group_id (counted when numbering objects), half-pixel coordinates.
- random_cells.json: 30 seeded random outlines of every label, some grouped, some ignored, many
  crossing the border, corners on whole, half and arbitrary coordinates.
- primitives.json: every shape type (rectangle, circle, polygon, line, point, linestrip,
  oriented_rectangle, mask), its image embedded as imageData (no image file beside it).
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
LABELS = ["__ignore__", "_background_", "cytoplasm", "nucleus", "debris"]


def image(seed: int, height: int, width: int) -> np.ndarray:
    """A blocky random RGB picture: distinct per file, a few hundred bytes as PNG."""
    blocks = np.random.default_rng(seed).integers(60, 230, (height // 8 + 1, width // 8 + 1, 3), dtype=np.uint8)
    return blocks.repeat(8, 0).repeat(8, 1)[:height, :width]


def png_base64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def shape(label, points, shape_type="polygon", group_id=None, **extra):
    points = [[round(float(x), 3), round(float(y), 3)] for x, y in points]
    return {"label": label, "points": points, "group_id": group_id, "description": "", "shape_type": shape_type,
            "flags": {}, **extra}


def blob(rng, cx, cy, radius, n=12, jitter=0.25):
    theta = np.sort(rng.uniform(0, 2 * np.pi, n))
    r = radius * (1 + rng.uniform(-jitter, jitter, n))
    return np.column_stack([cx + r * np.cos(theta), cy + r * np.sin(theta)])


def write(name: str, shapes: list[dict], pixels: np.ndarray, embed: bool = False) -> None:
    if embed:
        image_path, image_data = f"{name}.png", png_base64(pixels)  # no file: only imageData loads it
    else:
        Image.fromarray(pixels).save(HERE / f"{name}.png", optimize=True)
        image_path, image_data = f"{name}.png", None
    doc = {"version": "5.5.0", "flags": {}, "shapes": shapes, "imagePath": image_path, "imageData": image_data,
           "imageHeight": int(pixels.shape[0]), "imageWidth": int(pixels.shape[1])}
    (HERE / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")


def cells() -> None:
    rng = np.random.default_rng(3)
    shapes = [
        shape("cytoplasm", blob(rng, 20, 18, 13), group_id=1),
        shape("nucleus", blob(rng, 19.5, 17.5, 5), group_id=1),
        shape("nucleus", blob(rng, 62, 20, 5), group_id=2),  # listed before its cytoplasm: painted over
        shape("cytoplasm", blob(rng, 60, 22, 12), group_id=2),
        shape("cytoplasm", [[28.5, 30], [44, 28.5], [46.5, 44], [30, 47]], group_id=3),  # over cell 1
        shape("cytoplasm", [[47, 34.5], [55.5, 36], [52, 46.5]], group_id=3),  # the same object, apart
        shape("nucleus", [[34, 35], [40.5, 35], [40.5, 41.5], [34, 41.5]], group_id=3),
        shape("cytoplasm", blob(rng, 92, 50, 14), group_id=4),  # cut by the right and bottom edges
        shape("nucleus", blob(rng, 90, 55, 4), group_id=4),
        shape("cytoplasm", blob(rng, 8, 56, 9)),  # ungrouped: an object of its own
        shape("cytoplasm", blob(rng, 75, 8, 6)),
        shape("debris", [[66.5, 40.5], [71.5, 45.5]], "rectangle"),
        shape("debris", [[40, 8], [43.5, 8]], "circle"),
        shape("__ignore__", [[10, 14.5], [24, 14.5], [24, 22], [10, 22]]),  # over cell 1 and its nucleus
        shape("__ignore__", blob(rng, 64, 54, 6), group_id=7),
        shape("nucleus", blob(rng, 62, 53, 3), group_id=8),  # partly under the ignored region above
        shape("debris", blob(rng, 82, 30, 4), group_id=1),  # group 1 again, another label: another object
    ]
    write("cells", shapes, image(1, 64, 96))


def random_cells() -> None:
    rng = np.random.default_rng(11)
    height, width = 72, 88
    labels = ["cytoplasm"] * 5 + ["nucleus"] * 4 + ["debris"] * 2
    shapes = []
    for i in range(30):
        label = "__ignore__" if i % 7 == 4 else labels[rng.integers(len(labels))]
        points = blob(rng, rng.uniform(-8, width + 8), rng.uniform(-8, height + 8), rng.uniform(2, 16),
                      n=int(rng.integers(3, 16)), jitter=0.5)
        style = rng.integers(3)
        if style == 0:
            points = np.round(points)
        elif style == 1:
            points = np.round(points * 2) / 2
        group = None if rng.random() < 0.3 else int(rng.integers(1, 7))
        shapes.append(shape(label, points, group_id=group))
    write("random_cells", shapes, image(2, height, width))


def primitives() -> None:
    patch = np.zeros((7, 5), np.uint8)
    patch[1:6, 1:4] = 255
    patch[3, 0] = 255
    shapes = [
        shape("cytoplasm", [[3.5, 4.2], [20.7, 15.5]], "rectangle", group_id=1),
        shape("nucleus", [[12, 9.5], [15.5, 11]], "circle", group_id=1),
        shape("cytoplasm", [[30, 3], [44.5, 6], [40, 19.5], [27.2, 14.8]], "polygon"),
        shape("debris", [[4, 30], [26.5, 41]], "line"),
        shape("debris", [[50, 40.5]], "point"),
        shape("debris", [[30, 28], [38, 44], [46, 30.5], [58, 42]], "linestrip"),
        shape("nucleus", [[52, 4], [60, 12], [52, 20], [44, 12]], "oriented_rectangle"),
        shape("cytoplasm", [[10.7, 20.2], [14.7, 26.9]], "mask", mask=png_base64(patch)),
        shape("__ignore__", [[22, 22], [27, 26]], "rectangle"),
    ]
    write("primitives", shapes, image(3, 48, 64), embed=True)


if __name__ == "__main__":
    (HERE / "labels.txt").write_text("\n".join(LABELS) + "\n")
    cells()
    random_cells()
    primitives()
