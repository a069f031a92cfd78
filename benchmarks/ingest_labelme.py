"""Time cellbench's LabelMe import against LabelMe's own ``shapes_to_label`` on the same files.

Both sides do the same work per file, in the same process, alternating rounds: read the JSON and
its image, rasterise the class map and the instance map, and write the class map as a PNG with
the same writer. Pinned to one CPU core by default. Needs LabelMe (``pip install -e '.[bench]'``).

    python benchmarks/ingest_labelme.py [--labelme-dir ../shared/data/wbc/labelme] [--rounds 5]

The last line holds ``key=value`` figures, including ``ratio`` = cellbench files/s / LabelMe files/s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from cellbench.formats import labelme
from cellbench.images import write_png

DEFAULT_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "wbc" / "labelme"


def cellbench_convert(path: Path, classes: list[str], out: Path) -> None:
    annotation, problems = labelme.read_annotation(path, classes)
    if problems:
        raise SystemExit("\n".join(map(str, problems)))
    class_map, _ = labelme.to_maps(annotation.shapes, annotation.shape_hw, classes, priority="file",
                                     instance_mode="labelme")
    write_png(class_map, out)


def labelme_convert(path: Path, label_values: dict[str, int], out: Path) -> None:
    import labelme as lm  # imported here so that the cellbench side pays no import cost

    label_file = lm.LabelFile(filename=str(path))
    image = lm.utils.img_data_to_arr(label_file.image_data)
    class_map, _ = lm.utils.shapes_to_label(image.shape, label_file.shapes, label_values)
    write_png(class_map.astype(np.uint8), out)


def time_round(convert, files: list[Path], out_dir: Path) -> float:
    start = time.perf_counter()
    for path in files:
        convert(path, out_dir / f"{path.stem}.png")
    return len(files) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelme-dir", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--classes", nargs="+", default=["background", "cytoplasm", "nucleus"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--all-cores", action="store_true", help="do not pin the process to one core")
    args = parser.parse_args()
    files = sorted(args.labelme_dir.glob("*.json"))
    if not files:
        raise SystemExit(f"no LabelMe files in {args.labelme_dir}")
    try:
        import labelme as lm
    except ImportError:
        raise SystemExit("LabelMe is not installed: pip install -e '.[bench]'") from None
    from loguru import logger

    logger.remove()  # LabelMe logs every image read at DEBUG level; do not time the logging
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    label_values = {name: i for i, name in enumerate(args.classes)}

    with tempfile.TemporaryDirectory() as tmp:
        ours_dir, theirs_dir = Path(tmp, "cellbench"), Path(tmp, "labelme")
        ours_dir.mkdir()
        theirs_dir.mkdir()

        def ours(path, out):
            cellbench_convert(path, args.classes, out)

        def theirs(path, out):
            labelme_convert(path, label_values, out)

        ours(files[0], ours_dir / "warm.png")  # warm caches and imports on both sides
        theirs(files[0], theirs_dir / "warm.png")
        ours_rates, theirs_rates = [], []
        for _ in range(args.rounds):
            ours_rates.append(time_round(ours, files, ours_dir))
            theirs_rates.append(time_round(theirs, files, theirs_dir))
        identical = sum(
            np.array_equal(np.asarray(_png(ours_dir / f"{p.stem}.png")), np.asarray(_png(theirs_dir / f"{p.stem}.png")))
            for p in files)

    ours_rate, theirs_rate = statistics.median(ours_rates), statistics.median(theirs_rates)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"files={len(files)} rounds={args.rounds} cores={cores} cpu={platform.processor() or platform.machine()} "
          f"python={sys.version.split()[0]} labelme={lm.__version__} "
          f"cellbench_files_per_s={ours_rate:.1f} labelme_files_per_s={theirs_rate:.1f} "
          f"identical_class_maps={identical} ratio={ours_rate / theirs_rate:.2f}")


def _png(path: Path):
    from PIL import Image

    with Image.open(path) as image:
        return np.asarray(image)


if __name__ == "__main__":
    main()
