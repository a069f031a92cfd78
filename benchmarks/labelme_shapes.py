"""Validating a LabelMe file of many ungrouped shapes: seconds of `cellbench validate`.

Each cell is a cytoplasm polygon with a nucleus polygon inside, neither with a group_id, so every
nucleus is matched to the cytoplasm containing its centre (formats/labelme/maps.py). A grid index
keeps that search local; a search over all shapes grew with the square of their number (5,000
shapes 2.3 s, 20,000 shapes 18.5 s, 200,000 shapes did not finish in 300 s).

    python benchmarks/labelme_shapes.py --shapes 200000      # prints shapes=..., seconds=...
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cellbench import cli


def polygon(cx: float, cy: float, radius: float, points: int = 12) -> list[list[float]]:
    angles = np.linspace(0, 2 * np.pi, points, endpoint=False)
    return [[round(cx + radius * np.cos(a), 2), round(cy + radius * np.sin(a), 2)] for a in angles]


def write_file(folder: Path, n_shapes: int, spacing: int = 24) -> tuple[int, int]:
    """A LabelMe file of n_shapes (half cytoplasm, half nucleus) on a grid, and its blank image."""
    cells = n_shapes // 2
    side = math.ceil(math.sqrt(cells))
    size = side * spacing
    shapes = []
    for index in range(cells):
        cy, cx = (index // side + 0.5) * spacing, (index % side + 0.5) * spacing
        for label, radius in (("cytoplasm", spacing * 0.45), ("nucleus", spacing * 0.2)):
            shapes.append({"label": label, "points": polygon(cx, cy, radius), "group_id": None,
                           "shape_type": "polygon", "flags": {}})
    Image.new("RGB", (size, size), (230, 225, 230)).save(folder / "many.png")
    (folder / "many.json").write_text(json.dumps({"version": "5.4.1", "flags": {}, "shapes": shapes,
                                                  "imagePath": "many.png", "imageData": None,
                                                  "imageHeight": size, "imageWidth": size}))
    return size, len(shapes)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", type=int, default=200_000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "annotations"
        folder.mkdir()
        size, n = write_file(folder, args.shapes)
        config = Path(tmp) / "config.yaml"
        config.write_text("classes: [background, cytoplasm, nucleus]\n")
        started = time.perf_counter()
        status = cli.main(["validate", str(folder), "--config", str(config), "--format", "labelme",
                           "--out", str(Path(tmp) / "validation.txt")])
        seconds = time.perf_counter() - started
    figures = {"shapes": n, "image_side": size, "status": status, "seconds": seconds}
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    main()
