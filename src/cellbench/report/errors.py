"""Error types per architecture and object type (docs/metrics.md): how often each model merges,
splits, misses or invents objects, the table and its stacked-bar figure."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

from cellbench.evaluation.error_types import ERRORS, OUTCOMES
from cellbench.fsutil import PNG_MARK
from cellbench.report.figures import arch_order, message_figure

# Okabe-Ito, one colour per error type (colour-blind safe)
_COLOURS = {"loose": "#56B4E9", "missed": "#E69F00", "false": "#CC79A7", "merge": "#D55E00", "split": "#0072B2",
            "catastrophe": "#000000"}


def error_table(objects: pd.DataFrame) -> pd.DataFrame:
    """One row per architecture x object type: images, reference and predicted objects, each outcome's
    count over all out-of-fold images and, as ``<outcome>_per_image``, that count per image."""
    columns = [f"n_{o}" for o in OUTCOMES]
    if objects.empty or not set(columns) <= set(objects.columns):
        return pd.DataFrame(columns=["arch", "object_type", "images", "n_true", "n_pred", *columns])
    grouped = objects.groupby(["arch", "object_type"], sort=False)
    table = grouped[["n_true", "n_pred", *columns]].sum().astype("int64")
    table.insert(0, "images", grouped.size())
    for outcome in ERRORS:
        table[f"{outcome}_per_image"] = table[f"n_{outcome}"] / table["images"]
    return table.reset_index()


def plot_error_types(table: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """One panel per object type: a stacked bar per architecture of its errors per image."""
    if table.empty:
        message_figure("No object types were scored, so there are no error types", path)
        return
    types = list(dict.fromkeys(table["object_type"]))
    archs = arch_order(summary, table["arch"])
    fig, axes = plt.subplots(1, len(types), figsize=(max(4.0, 0.9 * len(archs) + 2) * len(types), 4), squeeze=False)
    for ax, name in zip(axes[0], types, strict=True):
        rows = table[table["object_type"] == name].set_index("arch").reindex(archs)
        bottom = pd.Series(0.0, index=archs)
        for outcome in ERRORS:
            values = rows[f"{outcome}_per_image"].fillna(0)
            ax.bar(range(len(archs)), values, 0.7, bottom=bottom, color=_COLOURS[outcome], label=outcome)
            bottom += values
        ax.set_xticks(range(len(archs)), archs, rotation=20 if len(archs) > 3 else 0, fontsize=8)
        ax.set_title(f"{name} (mean {rows['n_true'].sum() / max(rows['images'].sum(), 1):.1f} "
                     "reference objects per image)", fontsize=9)
        ax.set_ylabel("errors per image (count)")
    axes[0][-1].legend(fontsize=7, frameon=False, title="error type", title_fontsize=7, loc="upper left",
                       bbox_to_anchor=(1.0, 1.0))
    fig.suptitle("Object errors per out-of-fold image (docs/metrics.md: error types)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)
