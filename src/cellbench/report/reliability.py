"""Calibration in the report: reliability diagrams per class and the expected calibration error of
each architecture's out-of-fold probabilities (cellbench.evaluation.calibration)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from cellbench.evaluation.calibration import (
    ONE_VS_REST,
    PREDICTED_OR_TRUE,
    TOP_LABEL,
    expected_calibration_error,
    summed,
)
from cellbench.fsutil import PNG_MARK
from cellbench.report.figures import CLASS_COLOURS, arch_order, message_figure

TABLE_COLUMNS = ["arch", "class", "pixels", "ece", "ece_fold_mean", "ece_fold_sd", "ece_predicted_or_true",
                 "mean_confidence", "frequency"]


def calibration_table(bins: pd.DataFrame) -> pd.DataFrame:
    """ECE per architecture x class (one against the rest, over all folds' pixels), its fold mean and
    SD, and the class-conditional ECE (the pixels where the class is predicted or true)."""
    if bins.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    overall = expected_calibration_error(bins, ["arch"])
    folds = expected_calibration_error(bins, ["arch", "fold"]).groupby(["arch", "class"], sort=False)["ece"].agg(
        ece_fold_mean="mean", ece_fold_sd=lambda v: v.std(ddof=1))
    conditional = expected_calibration_error(bins, ["arch"], PREDICTED_OR_TRUE).set_index(["arch", "class"])["ece"]
    table = overall.join(folds, on=["arch", "class"]).join(conditional.rename("ece_predicted_or_true"),
                                                          on=["arch", "class"])
    return table[TABLE_COLUMNS]


def plot_reliability(bins: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """One panel per class (one against the rest) and the top label: observed frequency against mean
    predicted probability per bin, one line per architecture, ECE in the legend."""
    if bins.empty:
        message_figure("No per-pixel probabilities (Mask R-CNN and NucleusGuided have none): no calibration", path)
        return
    archs = arch_order(summary, bins["arch"])
    names = [n for n in dict.fromkeys(bins["class"]) if n != "background" and n != TOP_LABEL] + [TOP_LABEL]
    table = summed(bins, ["arch"])
    table = table[table["scope"] == ONE_VS_REST]
    ece = expected_calibration_error(bins, ["arch"]).set_index(["arch", "class"])["ece"]
    fig, axes = plt.subplots(1, len(names), figsize=(3.4 * len(names), 3.8), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1, label="perfectly calibrated")
        for j, arch in enumerate(archs):
            rows = table[(table["arch"] == arch) & (table["class"] == name) & (table["n"] > 0)]
            ax.plot(rows["sum_confidence"] / rows["n"], rows["n_true"] / rows["n"], marker="o", markersize=3,
                    color=CLASS_COLOURS[1 + j % 7], label=f"{arch} (ECE {ece.get((arch, name), np.nan):.3f})")
        ax.set_title(name if name != TOP_LABEL else "top label (argmax right?)", fontsize=9)
        ax.set_xlabel("mean predicted probability")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_aspect("equal")
        ax.legend(fontsize=6, frameon=False, loc="upper left")
    axes[0][0].set_ylabel("observed frequency")
    fig.suptitle("Reliability of the out-of-fold probabilities (15 bins, all folds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)
