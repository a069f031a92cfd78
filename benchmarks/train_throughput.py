"""Training throughput: the real data path against the bound set by the model alone.

(a) steps/s of the training loop as train_fold runs it: seeded crops of real augmented variants
    (cellbench.training.batches), normalised on the device, one optimiser step each (cellbench.training.train);
(b) steps/s of the same model, optimiser, loss and precision on one batch held on the device: the
    most the data path could reach.

Any architecture of the config's train.architectures, MaskRCNN included (its targets are built from
the crops' instance maps on every step, as in training).

    python benchmarks/train_throughput.py --arch Unet --encoder resnet34 --batch-size 16 --crop-size 256 --device cuda

The augmented variants come from --augmented DIR, else the WBC expert masks in ../shared/data/wbc
(ingested and augmented once into results/benchmarks/), else the demo dataset. The last line holds
``key=value`` figures, including ``ratio`` = a / b; a row is appended to --table (Parquet).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cellbench import config
from cellbench.dataset import demo, ingest
from cellbench.device import resolve_device
from cellbench.settings import Settings
from cellbench.training import augment
from cellbench.training.batches import CropBatches
from cellbench.training.maskrcnn import ARCH as MASKRCNN
from cellbench.training.train import build_trainer, configure_determinism, configure_threads
from cellbench.training.variants import VariantStore

REPO = Path(__file__).resolve().parents[1]
WBC = REPO.parent / "shared" / "data" / "wbc"
CACHE = REPO / "results" / "benchmarks"


def augmented_variants(requested: Path | None) -> tuple[Path, str]:
    """A folder of augmented variants and what data it holds."""
    if requested is not None:
        return requested, str(requested)
    if WBC.is_dir():
        source, name = {"format": "grey_masks", "annotations": str(WBC / "masks"), "images": str(WBC / "images")}, "wbc"
    else:
        source, name = None, "demo"
    out = CACHE / f"{name}_augmented"
    if not (out / "manifest.parquet").is_file():
        with tempfile.TemporaryDirectory() as tmp:
            if source is None:
                demo.generate(Path(tmp, "demo"))
                source = {"format": "labelme", "annotations": str(Path(tmp, "demo"))}
            settings = config.complete({"dataset": name, "data": {**source, "demo": False}})
            ingest.ingest(settings, Path(tmp, "data"))
            augment.augment(Path(tmp, "data"), out)
    return out, name


def steps_per_second(step, n_steps: int, warmup: int, device: torch.device) -> float:
    """Run ``warmup`` then ``n_steps`` calls of ``step()`` (each returns the loss) and time the latter."""
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    total = torch.zeros((), device=device)
    for _ in range(n_steps):
        total += step()
    float(total)  # waits for the device
    return n_steps / (time.perf_counter() - started)


def cpu_name() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Unet")
    parser.add_argument("--encoder", default="resnet34")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--crop-size", type=int, default=256)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--amp", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--augmented", type=Path)
    parser.add_argument("--table", type=Path, default=CACHE / "train_throughput.parquet")
    args = parser.parse_args()

    configure_threads(args.threads)
    configure_determinism(False)
    device = resolve_device(args.device)
    folder, data_name = augmented_variants(args.augmented)
    store = VariantStore(folder)
    n_classes = int(max(int(store.get(r)[1].max()) for r in range(0, len(store), 16))) + 1
    classes = ["background", "cytoplasm", "nucleus"] if n_classes == 3 else ["background"] + [
        f"class{i}" for i in range(1, n_classes)]
    settings = Settings.build(config.complete({"classes": classes, "class_priority": None, "train": {
        "encoder": args.encoder, "batch_size": args.batch_size, "crop_size": args.crop_size, "amp": args.amp,
        "compile": args.compile, "lr_schedule": "constant"}}))
    torch.manual_seed(0)
    mean, std = [0.5, 0.5, 0.5], [0.25, 0.25, 0.25]

    # (a) the real data path
    trainer = build_trainer(args.arch, settings, mean, std, device, 1, (store, np.arange(len(store))))[0]
    batches = CropBatches(store, np.arange(len(store)), args.crop_size, args.batch_size, seed=0, device=device,
                          with_instances=args.arch == MASKRCNN)
    stream = (batch for epoch in range(1, 10**6) for batch in batches.epoch(epoch))

    def real_step():
        images, masks, _ = next(stream)
        return trainer(images, masks)

    real = steps_per_second(real_step, args.steps, args.warmup, device)

    # (b) the same model and optimiser on one batch already on the device
    trainer = build_trainer(args.arch, settings, mean, std, device, 1, (store, np.arange(len(store))))[0]
    held_images, held_masks, _ = next(stream)
    bound = steps_per_second(lambda: trainer(held_images, held_masks), args.steps, args.warmup, device)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    row = {"time": datetime.now(UTC).isoformat(timespec="seconds"), "arch": args.arch,
           "encoder": args.encoder, "batch_size": args.batch_size, "crop_size": args.crop_size,
           "device": device.type, "device_name": device_name, "threads": args.threads, "amp": args.amp,
           "compile": args.compile, "data": data_name, "data_where": batches.where, "torch": torch.__version__,
           "real_steps_per_s": real, "synthetic_steps_per_s": bound, "ratio": real / bound,
           "real_images_per_s": real * args.batch_size}
    args.table.parent.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame([row])
    if args.table.is_file():
        table = pd.concat([pd.read_parquet(args.table), table], ignore_index=True)
    table.to_parquet(args.table, index=False)
    print(" ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={str(v).replace(' ', '_')}"
                   for k, v in row.items() if k != "time"))


if __name__ == "__main__":
    main()
