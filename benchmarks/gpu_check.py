"""The prepared GPU check: one command that exercises the CUDA path end to end and prints one table.

1. a short real 5-fold training of Unet on WBC (../shared/data/wbc, else --wbc DIR, else the demo)
   through `cellbench ingest/split/augment/train/predict/evaluate/aggregate`;
2. the inference benchmark (benchmarks/infer_speed.py): 2560 x 1920, 5 folds x d4, the app on one
   image with the 5-fold models, and the whole-slide path on a 12288 x 12288 tiled TIFF with fold 0;
3. training throughput (benchmarks/train_throughput.py) of Unet-resnet34, DeepLabV3Plus-resnet34,
   Segformer-mit_b0, MaskRCNN (torchvision, resnet50_fpn_v2; 20 steps) and NucleusGuided (Unet +
   DeepLabV3Plus, resnet34) at 256 x 256, batch 16.

On a machine without internet, install the packages a bare PyTorch machine lacks from a wheelhouse
made where pip works (the same recipe serves cluster nodes):

    pip download --only-binary=:all: -d wheels -c constraints.txt \\
        segmentation-models-pytorch albumentations monai jsonschema pyyaml
    pip install --no-index --find-links wheels segmentation-models-pytorch albumentations monai jsonschema

then:  python benchmarks/gpu_check.py --deadline 480   (about 8 minutes on an H200, 2026-12-04: the 5-fold
                                                        run 286 s, each throughput 30-45 s, inference 20 s)
       python benchmarks/gpu_check.py --tiny     (seconds, on CPU: what the tests run)

The table is written to --out (default results/gpu_check/gpu_check.md) and printed; each step's
key=value line is kept in it, and a failing step is a row that says so (the others still run).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEADLINE = [float("inf")]  # perf_counter time after which no step starts (--deadline): a lease ends hard


def time_left(timeout: float) -> float:
    return min(timeout, DEADLINE[0] - time.perf_counter())
WBC = REPO.parent / "shared" / "data" / "wbc"
MODELS = [("Unet", "resnet34"), ("DeepLabV3Plus", "resnet34"), ("Segformer", "mit_b0"),
          ("MaskRCNN", "resnet50_fpn_v2"), ("NucleusGuided", "resnet34")]


def run(name: str, command: list[str], rows: list[dict], env: dict, timeout: float) -> str:
    """Run one step, add its row (the last key=value line, or the failure) and return its output."""
    started = time.perf_counter()
    timeout = time_left(timeout)
    if timeout < 5:
        rows.append({"step": name, "seconds": 0.0, "result": "skipped: past --deadline"})
        print(f"{name}: skipped: past --deadline", flush=True)
        return ""
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
        output, status = done.stdout + done.stderr, done.returncode
    except subprocess.TimeoutExpired as err:
        output, status = f"{err.stdout or ''}{err.stderr or ''}", "timeout"
    seconds = time.perf_counter() - started
    lines = [line for line in output.splitlines() if "=" in line and " " in line and not line.startswith(" ")]
    result = lines[-1] if status == 0 and lines else f"FAILED ({status}): " + " | ".join(output.splitlines()[-5:])
    rows.append({"step": name, "seconds": round(seconds, 1), "result": result})
    print(f"{name}: {result}", flush=True)
    return output


def cellbench(*args: str) -> list[str]:
    return [sys.executable, "-m", "cellbench", *args]


def five_fold_run(work: Path, config: dict, folds: int, rows: list[dict], env: dict, timeout: float) -> None:
    """ingest -> split -> augment -> train/predict/evaluate per fold -> aggregate, as the workflow runs them."""
    config_path = work / "config.json"
    config_path.write_text(json.dumps(config))
    common = ["--config", str(config_path)]
    steps = [("ingest", cellbench("ingest", *common)), ("split", cellbench("split", *common)),
             ("augment", cellbench("augment", *common))]
    for fold in range(folds):
        for step in ("train", "predict", "evaluate"):
            steps.append((f"{step} fold {fold}", cellbench(step, *common, "--arch", "Unet", "--fold", str(fold))))
    steps.append(("aggregate", cellbench("aggregate", *common)))
    started = time.perf_counter()
    for name, command in steps:
        step_started, step_timeout = time.perf_counter(), max(1.0, time_left(timeout))
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=step_timeout, cwd=work)
        except subprocess.TimeoutExpired:
            done = subprocess.CompletedProcess(command, "timeout", "", f"{name} ran past {step_timeout:.0f} s")
        print(f"  5-fold Unet {name}: {time.perf_counter() - step_started:.1f} s", flush=True)
        if done.returncode:
            tail = " | ".join((done.stdout + done.stderr).splitlines()[-5:])
            rows.append({"step": "5-fold Unet", "seconds": round(time.perf_counter() - started, 1),
                         "result": f"FAILED at {name} ({done.returncode}): {tail}"})
            print(rows[-1]["result"], flush=True)
            return
    import pandas as pd
    summary = pd.read_parquet(work / "results" / config["dataset"] / "summary.parquet")
    head = summary[summary["class"] == "foreground_mean"].iloc[0]
    result = (f"cv_dice={head['cv_dice']:.4f} fold_sd={head['fold_sd_dice']:.4f} folds={folds} "
              f"epochs={config['train']['epochs']}")
    rows.append({"step": "5-fold Unet", "seconds": round(time.perf_counter() - started, 1), "result": result})
    print(f"5-fold Unet: {result}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="seconds on a CPU: tiny sizes, the demo data, 2 folds")
    parser.add_argument("--wbc", type=Path, default=WBC, help="WBC folder (images/, masks/)")
    parser.add_argument("--out", type=Path, default=REPO / "results" / "gpu_check" / "gpu_check.md")
    parser.add_argument("--step-timeout", type=float, default=300)
    parser.add_argument("--deadline", type=float, default=float("inf"),
                        help="seconds from now after which steps are cut short or skipped (the table is still written)")
    args = parser.parse_args(argv)
    DEADLINE[0] = time.perf_counter() + args.deadline
    args.wbc, args.out = args.wbc.resolve(), args.out.resolve()  # the 5-fold steps run in their own folder

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "NO_ALBUMENTATIONS_UPDATE": "1", "MPLBACKEND": "Agg",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
    rows: list[dict] = []
    import torch
    device = "cuda" if torch.cuda.is_available() and not args.tiny else "cpu"
    rows.append({"step": "device", "seconds": 0.0,
                 "result": (torch.cuda.get_device_name(0) if device == "cuda" else "cpu")
                 + f" torch={torch.__version__} cuda={torch.version.cuda}"})

    size, batch, steps = (64, 2, 2) if args.tiny else (256, 16, 50)
    work = args.out.parent / "five_fold"
    work.mkdir(parents=True, exist_ok=True)
    folds = 2 if args.tiny else 5
    if not args.tiny and (args.wbc / "masks").is_dir():
        data = {"format": "grey_masks", "annotations": str(args.wbc / "masks"), "images": str(args.wbc / "images"),
                "demo": False}
        dataset = "wbc"
    else:
        subprocess.run(cellbench("demo", "--out", str(work / "demo"), "--n-images", "8" if args.tiny else "24"),
                       env=env, check=True, capture_output=True, cwd=work)
        data, dataset = {"format": "labelme", "annotations": str(work / "demo"), "demo": False}, "demo"
    config = {"dataset": dataset, "results": str(work / "results"), "data": data,
              "split": {"folds": folds, "seed": 42},
              "augment": {"rotations": 2 if args.tiny else 4, "flip": not args.tiny},
              "train": {"architectures": ["Unet"], "encoder": "resnet18" if args.tiny else "resnet34",
                        "epochs": 1 if args.tiny else 4, "steps_per_epoch": 2 if args.tiny else 60,
                        "batch_size": batch, "crop_size": size, "device": device, "threads": 2},
              "evaluate": {"object_hausdorff": not args.tiny, "bootstrap_resamples": 100}}
    five_fold_run(work, config, folds, rows, env, args.step_timeout * 3)

    height, width = (96, 128) if args.tiny else (1920, 2560)
    run("infer 5 folds x d4" if not args.tiny else "infer 2 folds x d4",
        [sys.executable, str(REPO / "benchmarks" / "infer_speed.py"), "--height", str(height), "--width", str(width),
         "--folds", str(folds), "--tta", "d4", "--device", device, "--tile-size", "64" if args.tiny else "512",
         "--batch-size", "2" if args.tiny else "8"], rows, env, args.step_timeout)

    images = sorted((work / "results" / dataset / "data" / "images").glob("*.png"))
    if images:  # the app on the 5-fold run's models (its CUDA path)
        run("app: one image", [sys.executable, str(REPO / "benchmarks" / "app_speed.py"), "--results",
                               str(work / "results" / dataset), "--image", str(images[0]), "--device", device],
            rows, env, args.step_timeout)

    checkpoint = work / "results" / dataset / "models" / "Unet" / "fold0" / "model.pt"
    if checkpoint.is_file():  # the whole-slide path (lazy TIFF, two passes, OME-Zarr) on a trained model
        side = "320" if args.tiny else "12288"
        run(f"slide {side} x {side}", [sys.executable, str(REPO / "benchmarks" / "infer_speed.py"), "--slide",
                                       "--height", side, "--width", side, "--checkpoints", str(checkpoint),
                                       "--device", device, "--tile-size", "64" if args.tiny else "512",
                                       "--block-size", "256" if args.tiny else "4096",
                                       "--object-margin", "32" if args.tiny else "256"], rows, env, args.step_timeout)

    # the throughput runs reuse the 5-fold run's augmented variants (WBC, or the demo) instead of ingesting
    # again; last, so that a deadline cuts the slowest (Mask R-CNN: ~1 step/s at batch 16 on an H200)
    variants = work / "results" / dataset / "augmented"
    augmented = ["--augmented", str(variants)] if variants.is_dir() else []
    for arch, encoder in MODELS:
        if args.tiny and arch == "MaskRCNN":  # ~25 s a step on 2 CPU cores; tests/training/test_maskrcnn.py runs it
            rows.append({"step": f"train {arch}-{encoder}", "seconds": 0.0, "result": "skipped in --tiny"})
            continue
        arch_steps = min(steps, 20) if arch == "MaskRCNN" else steps
        run(f"train {arch}-{encoder}", [sys.executable, str(REPO / "benchmarks" / "train_throughput.py"),
                                        "--arch", arch, "--encoder", encoder, "--crop-size", str(size),
                                        "--batch-size", str(batch), "--steps", str(arch_steps), "--warmup", "2",
                                        "--device", device, "--table", str(args.out.parent / "train.parquet"),
                                        *augmented],
            rows, env, args.step_timeout)

    table = ["| step | seconds | result |", "|---|---|---|"]
    table += [f"| {r['step']} | {r['seconds']} | {r['result']} |" for r in rows]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(table) + "\n")
    print("\n".join(table))
    return 1 if any(str(r["result"]).startswith("FAILED") for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
