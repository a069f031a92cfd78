"""Time the per-cell measurements of one large image: 2560 x 1920 px with about 300 cells.

The synthetic smear of ``evaluate_image.py`` (cells = cytoplasm discs with a nucleus, many touching,
radii 40-68 px) is painted as a stained RGB image with noise. ``seconds_per_image`` times what the
measure step does per image and object type (``cellbench.measure.cells.measure_objects``): shape of
the cell, its nucleus and its cytoplasm (cellbench.measure.shape: regionprops' definitions for all
regions at once), first-order intensity of each in four channels, nucleus counts and ratios.
``regionprops_seconds`` times scikit-image's ``regionprops_table`` alone with the same shape
properties on the same three compartments (what the measure step called until 2026-12), and
``ratio`` = seconds_per_image / regionprops_seconds. CPU seconds (``cpu_*``) are this process's own,
less sensitive to other work on the machine than the wall-clock medians.

    python benchmarks/measure_speed.py [--cells 300] [--repeats 5]

The last line holds ``key=value`` figures, including ``seconds_per_image`` (the median).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from evaluate_image import SHAPE, smear
from skimage.measure import regionprops_table

from cellbench.measure.cells import Compartments, measure_objects
from cellbench.measure.features import REGIONPROPS


def stained(class_map: np.ndarray, seed: int = 0) -> np.ndarray:
    """Background, pink cytoplasm and purple nuclei with Gaussian noise, RGB uint8."""
    colours = np.array([[235, 225, 230], [220, 160, 190], [110, 60, 150]], dtype=np.float64)
    noise = np.random.default_rng(seed).normal(0, 12, (*SHAPE, 3))
    return np.clip(colours[class_map] + noise, 0, 255).astype(np.uint8)


def timed(repeats: int, work) -> tuple[list[float], list[float]]:
    work()  # warm up
    wall, cpu = [], []
    for _ in range(repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        work()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    class_map, cells = smear(args.cells, seed=0)
    image = stained(class_map)
    compartments = Compartments("cell", "nucleus", "cytoplasm", (2,))
    nucleus = np.where(class_map == 2, cells, 0)
    parts = (cells, nucleus, np.where(class_map == 2, 0, cells))

    def skimage_alone():
        for labels in parts:
            regionprops_table(labels, properties=("label", "centroid", *REGIONPROPS))

    table = measure_objects(image, class_map, cells, compartments)
    ours, ours_cpu = timed(args.repeats, lambda: measure_objects(image, class_map, cells, compartments))
    alone, alone_cpu = timed(args.repeats, skimage_alone)
    print(f"height={SHAPE[0]} width={SHAPE[1]} cells={len(table)} columns={table.shape[1]} "
          f"mean_nc_ratio={table['nc_ratio'].mean():.4f} repeats={args.repeats} "
          f"regionprops_seconds={statistics.median(alone):.3f} "
          f"cpu_regionprops_seconds={statistics.median(alone_cpu):.3f} "
          f"cpu_seconds_per_image={statistics.median(ours_cpu):.3f} "
          f"ratio={statistics.median(ours) / statistics.median(alone):.2f} "
          f"seconds_per_image={statistics.median(ours):.3f}")


if __name__ == "__main__":
    main()
