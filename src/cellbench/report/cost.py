"""What each architecture costs, beside what it scores: parameters, multiply-adds at the crop size
(torch's own FLOP counter), training wall time and peak memory per fold (Snakemake's benchmark
files, the GPU's peak from the training history where CUDA ran) and out-of-fold prediction speed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from cellbench.errors import InputError, InputProblem


@torch.no_grad()
def multiply_adds(net: torch.nn.Module, meta: dict, size: int) -> float:
    """Multiply-adds of one forward pass on a size x size RGB crop (for NucleusGuided: stage 1 on
    the crop plus stage 2 on one cell crop of its input size)."""
    family = meta.get("family", "smp")
    net = net.eval()
    with FlopCounterMode(display=False) as counter:
        if family == "maskrcnn":
            net([torch.zeros(3, size, size)])
        elif family == "nucleus_guided":
            net.stage1(torch.zeros(1, 3, size, size))
            net.stage2(torch.zeros(1, 4, meta["input_size"], meta["input_size"]))
        else:
            net(torch.zeros(1, 3, size, size))
    return counter.get_total_flops() / 2


def model_cost(checkpoint: Path, size: int | None = None) -> dict:
    """Parameters and multiply-adds (at ``size``, default the training crop) of one fold model."""
    from cellbench.training.models import load_checkpoint

    net, meta = load_checkpoint(Path(checkpoint))
    size = int(size or meta["crop_size"])
    return {"arch": meta["arch"], "encoder": meta["encoder"], "parameters": sum(p.numel() for p in net.parameters()),
            "crop_size": size, "gmacs_per_crop": multiply_adds(net, meta, size) / 1e9}


def read_benchmark(path: Path) -> dict:
    """Wall seconds and peak resident memory (GiB) of one job, from its Snakemake benchmark file."""
    try:
        table = pd.read_csv(path, sep="\t")
        return {"seconds": float(table["s"].iloc[-1]), "peak_rss_gb": float(table["max_rss"].iloc[-1]) / 1024}
    except (OSError, ValueError, KeyError, IndexError, pd.errors.ParserError) as err:
        raise InputError([InputProblem(Path(path), f"is not a Snakemake benchmark file ({err})",
                                       "rerun the job that writes it")]) from None


def fold_costs(train: dict[tuple[str, int], Path], predict: dict[tuple[str, int], Path], splits: pd.DataFrame,
               histories: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per architecture x fold: training seconds and peak memory, prediction images per second
    (the fold's images over the predict job's wall time, model loading included)."""
    sizes = splits.groupby("fold").size()
    rows = []
    for (arch, fold), path in sorted(train.items()):
        trained = read_benchmark(path)
        row = {"arch": arch, "fold": fold, "train_seconds": trained["seconds"],
               "train_peak_rss_gb": trained["peak_rss_gb"]}
        if (arch, fold) in predict:
            predicted = read_benchmark(predict[(arch, fold)])
            row["predict_images_per_second"] = int(sizes.get(fold, 0)) / max(predicted["seconds"], 1e-9)
        if histories is not None and "peak_gpu_gb" in histories.columns:
            runs = histories[(histories["arch"] == arch) & (histories["fold"] == fold)]
            row["train_peak_gpu_gb"] = float(runs["peak_gpu_gb"].max()) if len(runs) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def cost_table(models: pd.DataFrame, folds: pd.DataFrame, summary: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture: size, compute, the fold means and SDs of time and memory, and its
    CV foreground Dice (best first)."""
    from cellbench.evaluation.aggregate import FOREGROUND_MEAN

    spread = folds.groupby("arch").agg(**{
        "train_minutes": ("train_seconds", lambda s: s.mean() / 60),
        "train_minutes_sd": ("train_seconds", lambda s: s.std(ddof=1) / 60 if len(s) > 1 else np.nan),
        "train_peak_rss_gb": ("train_peak_rss_gb", "max"), "n_folds": ("fold", "nunique")})
    for column in ("predict_images_per_second", "train_peak_gpu_gb"):
        if column in folds.columns:
            spread[column] = folds.groupby("arch")[column].agg("mean" if "second" in column else "max")
    head = summary[summary["class"] == FOREGROUND_MEAN].set_index("arch")[["cv_dice", "fold_sd_dice"]]
    table = models.drop_duplicates("arch").set_index("arch").join(spread).join(head)
    return table.sort_values("cv_dice", ascending=False).reset_index()
