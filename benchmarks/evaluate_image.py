"""Time scoring one large image: 2560 x 1920 px with about 300 cells, every metric.

A synthetic smear (cells = cytoplasm discs with a nucleus, many touching) is the truth; the
prediction moves, grows, shrinks, drops and adds cells. ``seconds_per_image`` times what the
evaluate step does per image: semantic metrics with HD95/ASSD for each class and the cell region,
and the instance metrics of both object types (cells, nuclei) at ten IoU thresholds (AP, PQ, AJI,
AJI+, SegPC mIoU, GlaS F1 / Dice / Hausdorff), with the evaluate step's own function
(``evaluate.score_image``) on a pool of ``--threads`` threads. ``instances_seconds`` times what the predict step
adds: instance maps from the class map (nucleus-seeded watershed for cells, components for nuclei).

    python benchmarks/evaluate_image.py [--repeats 5] [--threads 2]

The last line holds ``key=value`` figures, including ``seconds_per_image`` (the median).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

from cellbench import config
from cellbench.evaluation import evaluate, object_metrics
from cellbench.inference import objects
from cellbench.pool import thread_pool

CLASSES = ["background", "cytoplasm", "nucleus"]
# the evaluate step's defaults: every metric, ten thresholds, cells and nuclei, the cell region
SETTINGS = config.complete({"dataset": "benchmark", "classes": CLASSES})["evaluate"]
SHAPE = (1920, 2560)


def smear(n_cells: int, seed: int, jitter: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(class map, cell instance map) with ``n_cells`` cells on a jittered grid."""
    rng = np.random.default_rng(seed)
    class_map = np.zeros(SHAPE, np.uint8)
    instances = np.zeros(SHAPE, np.int32)
    rows, cols = 15, 20
    spacing_r, spacing_c = SHAPE[0] / rows, SHAPE[1] / cols
    yy, xx = np.ogrid[: SHAPE[0], : SHAPE[1]]
    cells = [(r, c) for r in range(rows) for c in range(cols)][:n_cells]
    for k, (r, c) in enumerate(cells, start=1):
        cy = (r + 0.5) * spacing_r + rng.normal(0, 12) + rng.normal(0, jitter)
        cx = (c + 0.5) * spacing_c + rng.normal(0, 12) + rng.normal(0, jitter)
        radius = rng.uniform(40, 68) * (1 + rng.normal(0, jitter / 100))
        top, left = max(int(cy - radius - 2), 0), max(int(cx - radius - 2), 0)
        box = np.s_[top: int(cy + radius + 3), left: int(cx + radius + 3)]
        disc = (yy[box[0]] - cy) ** 2 + (xx[:, box[1]] - cx) ** 2 <= radius ** 2
        nucleus = (yy[box[0]] - cy - radius / 5) ** 2 + (xx[:, box[1]] - cx) ** 2 <= (radius / 2.2) ** 2
        class_map[box][disc] = 1
        class_map[box][nucleus & disc] = 2
        instances[box][disc] = k
    return class_map, instances


def predicted_instances(prediction, types) -> dict[str, np.ndarray]:
    """What the predict step writes beside the class map (timed separately)."""
    return {name: objects.predicted_objects(prediction, kind["classes"], kind["seeds"]) for name, kind in types.items()}


def score(truth, truth_instances, prediction, predicted, pool, hausdorff_distance=True) -> None:
    """What the evaluate step does for one image."""
    evaluate.score_image(truth, prediction, CLASSES, {**SETTINGS, "object_hausdorff": hausdorff_distance},
                         truth_instances, predicted, pool)


def timed(repeats: int, work) -> list[float]:
    work()  # warm up
    timings = []
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        timings.append(time.perf_counter() - started)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="threads scoring the parts of the image side by side (default: this machine's cores)")
    args = parser.parse_args()
    truth, truth_instances = smear(args.cells, seed=0)
    prediction, _ = smear(args.cells - 10, seed=0, jitter=6.0)  # moved and resized, 10 cells missed
    prediction[100:160, 100:160] = 1  # and a false positive
    types = objects.object_types(CLASSES, SETTINGS["objects"])
    predicted = predicted_instances(prediction, types)
    with thread_pool(args.threads) as pool:
        scoring = timed(args.repeats, lambda: score(truth, truth_instances, prediction, predicted, pool))
        without = timed(args.repeats, lambda: score(truth, truth_instances, prediction, predicted, pool, False))
    splitting = timed(args.repeats, lambda: predicted_instances(prediction, types))
    rows, summary = object_metrics.image_scores(objects.truth_objects(truth, truth_instances, [1, 2]),
                                                objects.predicted_objects(prediction, [1, 2], [2]))
    print(f"height={SHAPE[0]} width={SHAPE[1]} cells_true={summary['n_true']} cells_pred={summary['n_pred']} "
          f"thresholds={len(rows)} ap_50={rows[0]['ap']:.4f} aji={summary['aji']:.4f} repeats={args.repeats} "
          f"threads={args.threads} "
          f"instances_seconds={statistics.median(splitting):.3f} "
          f"seconds_without_object_hausdorff={statistics.median(without):.3f} seconds_min={min(scoring):.3f} "
          f"seconds_per_image={statistics.median(scoring):.3f}")


if __name__ == "__main__":
    main()
