"""Measure the perceptual hash's near-duplicate threshold on the 100 WBC images, and its cost.

Distances (bits of 256) between all 4,950 pairs of distinct images against the distance from each
image to its own copies: JPEG re-encodes (quality 75 and 90), crops of 2 and 4 pixels (off every
border, and off the top and left only), resizes to 0.5x and 0.9x, and all of JPEG 75 + 4-pixel crop
+ 0.5x at once. ``duplicates.NEAR_THRESHOLD`` must sit in the gap between the two. Also: exact and
near duplicates within WBC itself, the distinct-pair distances of the DSB-2018 images when present,
and the time to hash one 300 x 300 and one 2560 x 1920 image (with the time ingest already spends
writing that image's PNG, for scale).

    python benchmarks/duplicates_wbc.py [--wbc ../shared/data/wbc/images]

The last line holds ``key=value`` figures.
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cellbench.dataset import duplicates
from cellbench.images import read_image, write_png

SHARED = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return read_image(buffer.getvalue()).rgb


def resize(rgb: np.ndarray, factor: float) -> np.ndarray:
    height, width = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((round(width * factor), round(height * factor))))


COPIES = {
    "jpeg75": lambda x: jpeg(x, 75),
    "jpeg90": lambda x: jpeg(x, 90),
    "crop2": lambda x: x[2:-2, 2:-2],
    "crop2_corner": lambda x: x[2:, 2:],
    "crop4": lambda x: x[4:-4, 4:-4],
    "crop4_corner": lambda x: x[4:, 4:],
    "resize0.5": lambda x: resize(x, 0.5),
    "resize0.9": lambda x: resize(x, 0.9),
    "jpeg75_crop4_resize0.5": lambda x: jpeg(resize(x[4:, 4:], 0.5), 75),
}
# rotated and mirrored copies: found by comparing with every rotation and mirror (perceptual_hash_d4)
TURNED = {
    "rot90": lambda x: np.rot90(x),
    "rot180": lambda x: np.rot90(x, 2),
    "rot270": lambda x: np.rot90(x, 3),
    "mirror": lambda x: x[:, ::-1],
    "flip": lambda x: x[::-1],
    "transpose": lambda x: np.swapaxes(x, 0, 1),
    "rot90_jpeg75": lambda x: jpeg(np.ascontiguousarray(np.rot90(x)), 75),
    "mirror_crop2_resize0.9": lambda x: resize(np.ascontiguousarray(x[2:-2, 2:-2, :][:, ::-1]), 0.9),
}


def d4_distance(hash_a: str, d4_b: str) -> int:
    """The smallest distance between an image's hash and any rotation or mirror of another's."""
    return min(duplicates.distance(hash_a, d4_b[64 * t:64 * (t + 1)]) for t in range(8))


def pair_distances(hashes: list[str]) -> np.ndarray:
    matrix = duplicates.distances(hashes)
    return matrix[np.triu_indices(len(hashes), 1)]


def describe(values: np.ndarray) -> str:
    p = np.percentile(values, [0.1, 1, 5, 50])
    return f"min {values.min()}, p0.1 {p[0]:.0f}, p1 {p[1]:.0f}, p5 {p[2]:.0f}, median {p[3]:.0f}, max {values.max()}"


def per_image_ms(function, image: np.ndarray, rounds: int) -> float:
    function(image)
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        function(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wbc", type=Path, default=SHARED / "wbc" / "images")
    parser.add_argument("--dsb", type=Path, default=SHARED / "dsb2018-stage1-test" / "stage1_test")
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    paths = sorted(args.wbc.glob("*.bmp"))
    if not paths:
        raise SystemExit(f"no WBC images in {args.wbc}")
    images = [read_image(p).rgb for p in paths]
    ids = [p.stem for p in paths]
    hashes = [duplicates.perceptual_hash(x) for x in images]
    threshold = duplicates.NEAR_THRESHOLD

    distinct = pair_distances(hashes)
    print(f"WBC distinct pairs ({len(distinct)}): {describe(distinct)}")
    worst = {}
    for name, copy in COPIES.items():
        d = np.array([duplicates.distance(duplicates.perceptual_hash(copy(x)), h)
                      for x, h in zip(images, hashes, strict=True)])
        worst[name] = int(d.max())
        print(f"WBC copies {name}: mean {d.mean():.1f}, max {d.max()} ({ids[int(d.argmax())]})")
    copy_max = max(worst.values())

    d4 = [duplicates.perceptual_hashes_d4(x) for x in images]
    distinct_d4 = np.array([d4_distance(hashes[i], d4[j]) for i in range(len(ids)) for j in range(len(ids)) if i != j])
    print(f"WBC distinct pairs, closest rotation or mirror ({len(distinct_d4)} ordered): {describe(distinct_d4)}")
    for name, copy in TURNED.items():
        d = np.array([d4_distance(duplicates.perceptual_hash(copy(x)), h) for x, h in zip(images, d4, strict=True)])
        worst[name] = int(d.max())
        print(f"WBC copies {name} (closest rotation or mirror): mean {d.mean():.1f}, max {d.max()}")
    copy_max = max(v for k, v in worst.items() if k not in TURNED)
    found = duplicates.find(ids, [duplicates.content_hash(x) for x in images], hashes, d4_hashes=d4)
    print(f"WBC exact duplicate sets: {found.exact or 'none'}; near-duplicate pairs at <= {threshold}: "
          f"{[(p.a, p.b, p.distance) for p in found.near] or 'none'}")

    dsb_min = "absent"
    dsb_images = sorted(args.dsb.glob("*/images/*.png")) if args.dsb.is_dir() else []
    if dsb_images:
        dsb = pair_distances([duplicates.perceptual_hash(read_image(p).rgb) for p in dsb_images])
        dsb_min = int(dsb.min())
        print(f"DSB-2018 distinct pairs ({len(dsb)}): {describe(dsb)}")

    small = images[0]
    large = np.asarray(Image.fromarray(small).resize((2560, 1920), Image.BICUBIC))

    def both(rgb):
        duplicates.content_hash(rgb)
        duplicates.perceptual_hash(rgb)

    with tempfile.TemporaryDirectory() as tmp:
        def write(rgb):
            write_png(rgb, Path(tmp) / "x.png")

        timing = {f"{name}_{size}": per_image_ms(function, image, args.rounds if size == "300" else 5)
                  for size, image in (("300", small), ("2560x1920", large))
                  for name, function in (("content_ms", duplicates.content_hash),
                                         ("perceptual_ms", duplicates.perceptual_hash),
                                         ("hashes_ms", both), ("write_png_ms", write))}
    print(f"time per image (ms): {', '.join(f'{k}={v:.2f}' for k, v in timing.items())}")
    p = np.percentile(distinct, [0.1, 1, 5, 50])
    print(f"threshold={threshold} bits={duplicates.HASH_BITS} wbc_distinct_min={distinct.min()} "
          f"wbc_distinct_p0.1={p[0]:.0f} wbc_distinct_p1={p[1]:.0f} wbc_distinct_p5={p[2]:.0f} "
          f"wbc_distinct_median={p[3]:.0f} " + " ".join(f"copy_max_{k}={v}" for k, v in worst.items()) +
          f" copy_max={copy_max} margin_below={threshold - copy_max} margin_above={distinct.min() - threshold} "
          f"wbc_distinct_d4_min={distinct_d4.min()} turned_threshold={duplicates.TURNED_THRESHOLD} "
          f"turned_copy_max={max(worst[k] for k in TURNED)} "
          f"margin_above_d4={distinct_d4.min() - duplicates.TURNED_THRESHOLD} "
          f"wbc_exact_sets={len(found.exact)} wbc_near_pairs={len(found.near)} dsb_distinct_min={dsb_min} "
          + " ".join(f"{k}={v:.2f}" for k, v in timing.items()))


if __name__ == "__main__":
    main()
