"""Out-of-fold ablation of inference choices on a finished benchmark run: test-time augmentation
(none, flips, d4) and tiled against whole-image prediction.

Each fold's model predicts its own held-out images (never the fold ensemble, which has seen every
image in training), under each choice; the evaluate step's own function scores them and the
aggregate step's statistics compare them pairwise on the same images (Wilcoxon, Holm; bootstrap
intervals). Also reports the Dice between the whole-image and the tiled class maps of each image.

    python benchmarks/infer_ablation.py --results results/wbc --config configs/wbc.yaml --arch Unet

Last line: key=value figures (CV foreground Dice per choice, tiled-vs-whole Dice mean and minimum).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench import config as configuration
from cellbench.evaluation import stats
from cellbench.evaluation.aggregate import summarise
from cellbench.evaluation.evaluate import evaluate_predictions
from cellbench.evaluation.semantic_metrics import FOREGROUND_MEAN
from cellbench.images import read_png
from cellbench.inference.ensemble import Windows
from cellbench.inference.predict import predict_fold


def class_dice(a: np.ndarray, b: np.ndarray, classes: int) -> float:
    """Mean over foreground classes of the Dice between two class maps (1 where both lack the class)."""
    values = []
    for c in range(1, classes):
        x, y = a == c, b == c
        total = x.sum() + y.sum()
        values.append(1.0 if total == 0 else 2.0 * (x & y).sum() / total)
    return float(np.mean(values))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="results/<dataset> of a finished run")
    parser.add_argument("--config", type=Path, nargs="+", required=True)
    parser.add_argument("--arch", default="Unet")
    parser.add_argument("--tile-size", type=int, default=128, help="windows for the tiled-vs-whole comparison")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    settings = configuration.load(*args.config)
    classes = settings["classes"]
    data, splits = args.results / "data", pd.read_parquet(args.results / "splits.parquet")
    folds = sorted(splits["fold"].unique())
    tables, maps = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        choices = {"none": Windows(tta="none"), "flips": Windows(tta="flips"), "d4": Windows(tta="d4"),
                   "tiled": Windows(tile_size=args.tile_size, overlap=0.25), "whole": Windows(tile_size=None)}
        for name, windows in choices.items():
            for fold in folds:
                out = Path(tmp) / name / f"fold{fold}"
                predict_fold(args.results / "models" / args.arch / f"fold{fold}" / "model.pt", data, splits, fold,
                             out, args.device, settings["evaluate"]["objects"], windows)
                if name in ("tiled", "whole"):
                    maps.update({(name, p.stem): read_png(p) for p in out.glob("*.png")})
                    continue
                scores = evaluate_predictions(data, out, splits, fold, classes, settings["evaluate"],
                                              {"dataset": settings["dataset"], "arch": f"{args.arch}+tta:{name}",
                                               "encoder": settings["train"]["encoder"]}, threads=2)
                tables.append((scores.semantic, scores.instances, scores.objects))
    metrics, instances, objects = (pd.concat([t[i] for t in tables], ignore_index=True) for i in range(3))
    summary = summarise(metrics)
    comparison = stats.compare(stats.per_image_values(metrics, instances, objects), 2000, 0)
    head = summary[summary["class"] == FOREGROUND_MEAN].set_index("arch")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(summary[["arch", "class", "cv_dice", "fold_mean_dice", "fold_sd_dice"]].to_string(index=False))
        paired = comparison[(comparison["kind"] == "paired") & (comparison["metric"].isin(["dice", "ap_50"]))]
        print(paired[["metric", "target", "arch", "arch_b", "n", "mean_difference", "p_value", "p_holm"]]
              .to_string(index=False))
    agreement = [class_dice(maps[("whole", s)], maps[("tiled", s)], len(classes))
                 for (kind, s) in maps if kind == "whole"]
    figures = {f"cv_dice_{choice}": float(head.loc[f"{args.arch}+tta:{choice}", "cv_dice"])
               for choice in ("none", "flips", "d4")}
    figures.update(images=len(agreement), tiled_vs_whole_dice_mean=float(np.mean(agreement)),
                   tiled_vs_whole_dice_min=float(np.min(agreement)), tile_size=args.tile_size)
    print(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()))
    return figures


if __name__ == "__main__":
    main()
