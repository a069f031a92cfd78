"""The learning-curve figure of the annotation budget (cellbench.evaluation.learning_curve)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cellbench.fsutil import PNG_MARK
from cellbench.report.figures import CLASS_COLOURS, arch_order, message_figure


def plot_learning_curve(table: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """CV foreground Dice against the training images per fold, one line per architecture, the
    band its 95 % bootstrap interval over the out-of-fold images; ticks name the fraction."""
    if table.empty:
        message_figure("No annotation budget: set train.fractions (e.g. [0.25, 0.5, 1.0]) for a learning curve", path)
        return
    fig, ax = plt.subplots(figsize=(6, 4))
    for j, arch in enumerate(arch_order(summary, table["arch"])):
        rows = table[table["arch"] == arch].sort_values("n_train_images")
        colour = CLASS_COLOURS[1 + j % 7]
        ax.fill_between(rows["n_train_images"], rows["ci_low"], rows["ci_high"], color=colour, alpha=0.2)
        ax.plot(rows["n_train_images"], rows["cv_dice"], marker="o", color=colour, label=arch)
    points = table.drop_duplicates("fraction").sort_values("fraction")
    ax.set_xticks(points["n_train_images"], [f"{n:.0f}\n({f:.0%})" for n, f in
                                              zip(points["n_train_images"], points["fraction"], strict=True)],
                  fontsize=8)
    ax.set_xlabel("annotated training images per fold (share of the training groups)")
    ax.set_ylabel("CV foreground Dice (out-of-fold images)")
    ax.set_ylim(max(0.0, table["ci_low"].min() - 0.05), min(1.0, table["ci_high"].max() + 0.05))
    ax.set_title("How many annotated images are enough? (band: 95 % bootstrap interval)", fontsize=10)
    ax.legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)
