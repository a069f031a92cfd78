"""Inference speed: segmenting one large image with a fold ensemble, against the models alone.

(a) seconds of cellbench.inference.segment on one image (sliding windows blended by MONAI, every fold
    model x test-time transform, class map, cell and nucleus instances);
(b) seconds of the same models on the same number of windows, made beforehand as normalised tensors
    on the device, in batches of the same size: the most the tiling could reach.

    python benchmarks/infer_speed.py --height 1920 --width 2560 --folds 5 --tta none       # SegPC size
    python benchmarks/infer_speed.py --height 10000 --width 10000 --folds 1 --quarters    # a large image
    python benchmarks/infer_speed.py --height 20000 --width 20000 --checkpoints .../fold0/model.pt  # a slide

With --slide (the default above 100 million pixels, where infer reads a TIFF as a slide) the image
is written as a tiled OME-TIFF (tile by tile, never whole in memory) and segmented by infer's
whole-slide path (cellbench.inference.slide: read lazily block by block, labels to OME-Zarr,
GeoJSON, ROI sets, cells measured): it prints seconds, objects, the objects that reached their
block's margin and peak_rss_gb, the figure the slide path must keep below 4 GB.

The models are freshly initialised (speed does not depend on the weights) unless --checkpoints are
given; the image is a real WBC image tiled to the size (else the demo's). The last line holds
``key=value`` figures: seconds_per_image, model_seconds, ratio = model_seconds / probability seconds,
object_seconds (cells and nuclei from this image's class map) and object_seconds_cells (the same
step on a 2560 x 1920 map of 300 touching cells, as a trained model gives),
peak_rss_gb (the process's peak resident memory), and with --quarters the agreement of the image's
class map with those of its four quarters segmented alone, away from the cuts.
"""

from __future__ import annotations

import argparse
import math
import resource
import time
from pathlib import Path

import numpy as np
import torch

from cellbench.device import autocast, normalise, resolve_device
from cellbench.images import MAX_PIXELS, read_image
from cellbench.inference import objects
from cellbench.inference import tta as tta_transforms
from cellbench.inference.ensemble import FoldModel, Windows, blocks
from cellbench.inference.segment import class_map, load_models, segment
from cellbench.training import models

REPO = Path(__file__).resolve().parents[1]
WBC = REPO.parent / "shared" / "data" / "wbc" / "images"
CLASSES = ["background", "cytoplasm", "nucleus"]
OBJECTS = {"cell": {"classes": [1, 2], "seeds": [2], "min_size": 0, "fill_holes": False},
           "nucleus": {"classes": [2], "seeds": [], "min_size": 0, "fill_holes": False}}


def picture_period() -> tuple[np.ndarray, str]:
    """A real cell image mirrored into a 2 x 2 period (so that seams look natural), and its source."""
    sources = sorted(WBC.glob("*")) if WBC.is_dir() else []
    if sources:
        tile, name = read_image(sources[0]).rgb, f"wbc:{sources[0].name}"
    else:
        import tempfile

        from cellbench.dataset import demo
        with tempfile.TemporaryDirectory() as tmp:
            demo.generate(Path(tmp))
            tile, name = read_image(sorted(Path(tmp).glob("*.png"))[0]).rgb, "demo"
    row = np.concatenate([tile, tile[:, ::-1]], axis=1)
    return np.concatenate([row, row[::-1]], axis=0), name


def test_image(height: int, width: int) -> tuple[np.ndarray, str]:
    """The period repeated to height x width."""
    block, name = picture_period()
    reps = (math.ceil(height / block.shape[0]), math.ceil(width / block.shape[1]), 1)
    return np.ascontiguousarray(np.tile(block, reps)[:height, :width]), name


def region_of(block: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """A region of the period repeated without end, cut without making the whole picture."""
    rows = np.arange(top, bottom) % block.shape[0]
    columns = np.arange(left, right) % block.shape[1]
    return block[rows[:, None], columns[None, :]]


def write_slide(path: Path, height: int, width: int, tile: int = 512) -> str:
    """The test picture as a tiled, zlib-compressed BigTIFF written tile by tile; its source."""
    import tifffile
    block, source = picture_period()

    def tiles():
        for top in range(0, height, tile):
            for left in range(0, width, tile):
                yield region_of(block, top, min(top + tile, height), left, min(left + tile, width))
    tifffile.imwrite(path, tiles(), shape=(height, width, 3), dtype=np.uint8, tile=(tile, tile), compression="zlib",
                     photometric="rgb", bigtiff=True)
    return source


def slide_figures(args, fold_models, windows: Windows, device: torch.device) -> dict:
    """infer's whole-slide path on a height x width slide of the test picture."""
    import tempfile

    from cellbench.inference.slide import SlideOutputs, segment_slide
    from cellbench.inference.slide_io import open_slide
    from cellbench.inference.slide_labels import LabelStore
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        started = time.perf_counter()
        source = write_slide(tmp / "slide.ome.tif", args.height, args.width)
        written = time.perf_counter() - started
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        started = time.perf_counter()
        with open_slide(tmp / "slide.ome.tif") as slide:
            labels = LabelStore(tmp / "labels.ome.zarr", slide.shape, list(OBJECTS), CLASSES, "slide")
            outputs = SlideOutputs(labels, {t: tmp / f"{t}.geojson" for t in OBJECTS},
                                   {t: tmp / f"{t}_rois.zip" for t in OBJECTS})
            summary, cells = segment_slide(slide, fold_models, windows, OBJECTS, outputs, args.object_margin,
                                           {"dataset": "bench", "arch": "bench", "sample_id": "slide",
                                            "bin_width": 25})
        seconds = time.perf_counter() - started
        synchronise(device)
    return {"device": device.type, "threads": args.threads, "height": args.height, "width": args.width,
            "models": len(fold_models), "tile_size": args.tile_size, "overlap": args.overlap,
            "block_size": args.block_size, "object_margin": args.object_margin, "source": source,
            "slide_write_seconds": written, "seconds": seconds, "blocks": summary.blocks,
            "cells": summary.objects["cell"], "nuclei": summary.objects["nucleus"], "measured": len(cells),
            "objects_at_margin": summary.objects_at_margin, "contested_pixels": summary.contested_pixels,
            "rss_before_gb": rss_before}


def fresh_models(arch: str, encoder: str, folds: int, device: torch.device) -> list[FoldModel]:
    out = []
    for fold in range(folds):
        torch.manual_seed(fold)
        net = models.build(arch, encoder, len(CLASSES)).to(device).eval()
        out.append(FoldModel(net, {"classes": CLASSES, "mean": [0.5] * 3, "std": [0.25] * 3,
                                   "size_divisor": models.size_divisor(net), "fold": fold, "arch": arch}))
    return out


def n_windows(height: int, width: int, tile: int, overlap: float) -> int:
    """Windows MONAI cuts (its scan: stride tile x (1 - overlap), the last window flush with the end)."""
    def along(size):
        if size <= tile:
            return 1
        stride = max(int(tile * (1 - overlap)), 1)
        return math.ceil((size - tile) / stride) + 1
    return along(height) * along(width)


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def model_only_seconds(fold_models, windows: Windows, count: int, device: torch.device) -> float:
    """The models on ``count`` pre-made windows (normalised, on the device), as the tiler batches them."""
    tile = windows.tile_size
    pixels = torch.randint(0, 256, (windows.batch_size, tile, tile, 3), dtype=torch.uint8).to(device)
    mean = torch.tensor([0.5] * 3, device=device)
    x = normalise(pixels, mean, mean / 2)
    transforms = tta_transforms.transforms(windows.tta)
    batches = math.ceil(count / windows.batch_size)
    synchronise(device)
    started = time.perf_counter()
    for _ in range(batches):
        for model in fold_models:
            for transform in transforms:
                with autocast(device, windows.amp):
                    torch.softmax(model.net(transform.apply(x)).float(), dim=1)
    synchronise(device)
    return time.perf_counter() - started


def quarter_agreement(image: np.ndarray, whole: np.ndarray, fold_models, windows: Windows) -> float:
    """Share of pixels, farther than one tile from the cuts, where the class map of a quarter
    segmented alone equals the whole image's."""
    height, width = whole.shape
    mid_h, mid_w = height // 2, width // 2
    band = windows.tile_size
    same = total = 0
    for top, bottom in ((0, mid_h), (mid_h, height)):
        for left, right in ((0, mid_w), (mid_w, width)):
            alone = class_map(image[top:bottom, left:right], fold_models, windows)
            keep = np.ones(alone.shape, bool)
            if top == 0:
                keep[-band:] = False
            else:
                keep[:band] = False
            if left == 0:
                keep[:, -band:] = False
            else:
                keep[:, :band] = False
            same += int((alone == whole[top:bottom, left:right])[keep].sum())
            total += int(keep.sum())
    return same / max(total, 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Unet")
    parser.add_argument("--encoder", default="resnet18")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--checkpoints", nargs="+", type=Path, help="trained models instead of fresh ones")
    parser.add_argument("--height", type=int, default=1920)
    parser.add_argument("--width", type=int, default=2560)
    parser.add_argument("--tta", choices=tta_transforms.CHOICES, default="none")
    parser.add_argument("--tile-size", type=int, default=512)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--device", choices=["cpu", "cuda", "auto"], default="auto")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=1, help="images timed (after one warm-up on a small image)")
    parser.add_argument("--quarters", action="store_true", help="also compare with the four quarters alone")
    parser.add_argument("--slide", action="store_true", help="infer's whole-slide path on a tiled TIFF of the size "
                        "(the default above data.max_pixels' 100 million pixels, as infer decides)")
    parser.add_argument("--object-margin", type=int, default=256)
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    fold_models = (load_models(args.checkpoints, device) if args.checkpoints
                   else fresh_models(args.arch, args.encoder, args.folds, device))
    windows = Windows(args.tile_size, args.overlap, args.batch_size, args.tta, True, args.block_size)
    if args.slide or args.height * args.width > MAX_PIXELS:
        figures = slide_figures(args, fold_models, windows, device)
        return report(figures, device)
    image, source = test_image(args.height, args.width)
    segment(image[:256, :256], fold_models, windows)  # warm-up (allocator, cuDNN)

    probability_seconds, object_seconds = [], []
    for _ in range(args.repeats):
        synchronise(device)
        started = time.perf_counter()
        result = segment(image, fold_models, windows)
        synchronise(device)
        probability_seconds.append(time.perf_counter() - started)
        started = time.perf_counter()
        cells = objects.objects_of(result.class_map, OBJECTS["cell"])
        objects.objects_of(result.class_map, OBJECTS["nucleus"])
        object_seconds.append(time.perf_counter() - started)
    count = sum(n_windows(bottom - top, right - left, windows.tile_size, windows.overlap)
                for _, (top, bottom, left, right) in blocks(args.height, args.width, windows.block_size,
                                                            windows.tile_size, windows.overlap))
    model_seconds = model_only_seconds(fold_models, windows, count, device)
    # the object step on what a trained model gives (evaluate_image's smear: 2560 x 1920, 300 touching
    # cells with nuclei): a fresh model's map is one image-wide component, which no cell image looks like
    from evaluate_image import smear
    cell_map = smear(300, seed=0)[0]
    started = time.perf_counter()
    for kind in OBJECTS.values():
        objects.objects_of(cell_map, kind)
    cell_object_seconds = time.perf_counter() - started
    probability_time = float(np.mean(probability_seconds))
    figures = {
        "device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "threads": args.threads, "height": args.height, "width": args.width, "models": len(fold_models),
        "tta": args.tta, "tile_size": args.tile_size, "overlap": args.overlap, "batch_size": args.batch_size,
        "windows": count, "source": source,
        "probability_seconds": probability_time, "object_seconds": float(np.mean(object_seconds)),
        "object_seconds_cells": cell_object_seconds,
        "seconds_per_image": probability_time + float(np.mean(object_seconds)),
        "model_seconds": model_seconds, "ratio": model_seconds / probability_time,
        "images_per_second": 1.0 / (probability_time + float(np.mean(object_seconds))),
        "cells": int(cells.max(initial=0)),
    }
    if args.quarters:
        figures["quarter_agreement"] = quarter_agreement(image, result.class_map, fold_models, windows)
    return report(figures, device)


def report(figures: dict, device: torch.device) -> dict:
    """Add the peak memory and print the figures as key=value on one line."""
    figures["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if device.type == "cuda":
        figures["peak_gpu_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
    print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={str(v).replace(' ', '_')}"
                   for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    main()
