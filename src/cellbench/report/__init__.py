"""Figures and tables of a benchmark run (matplotlib, no display needed)."""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cellbench.classmaps import IGNORE_INDEX  # noqa: E402
from cellbench.dataset import Dataset  # noqa: E402
from cellbench.evaluation.aggregate import FOREGROUND_MEAN, instance_ranking, ranking  # noqa: E402
from cellbench.evaluation.scope import Scope  # noqa: E402
from cellbench.fsutil import staged_dir  # noqa: E402
from cellbench.images import read_png  # noqa: E402

FIGURES = ("dice_by_architecture.png", "dice_by_class.png", "training_curves.png", "overlays.png")
TABLES = ("model_comparison.md", "model_comparison.html")
# background transparent, then one colour per foreground class
_CLASS_COLOURS = np.array([[0, 0, 0], [0, 158, 115], [230, 159, 0], [86, 180, 233], [204, 121, 167],
                           [213, 94, 0], [0, 114, 178], [240, 228, 66]], dtype=np.float64) / 255


def _fold_scores(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per fold image-wise mean Dice of every class and region, plus the foreground mean."""
    per_fold = metrics.groupby(["arch", "fold", "class", "is_region"])["dice"].mean().reset_index()
    classes = per_fold[~per_fold["is_region"]]
    headline = classes.groupby(["arch", "fold"])["dice"].mean().reset_index().assign(**{"class": FOREGROUND_MEAN})
    return pd.concat([per_fold, headline], ignore_index=True)


def plot_dice_by_architecture(summary: pd.DataFrame, metrics: pd.DataFrame, path: Path) -> None:
    """Grouped bars of CV Dice per architecture and class, fold scores as dots, fold SD as bars."""
    archs = ranking(summary)["arch"].tolist()
    kinds = summary.drop_duplicates("class").set_index("class")["is_region"].drop(FOREGROUND_MEAN)
    classes = [*kinds.index[~kinds], *kinds.index[kinds], FOREGROUND_MEAN]  # classes, regions, headline
    folds = _fold_scores(metrics)
    width = 0.8 / len(classes)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(archs) * len(classes) / 2), 4))
    for j, name in enumerate(classes):
        rows = summary[summary["class"] == name].set_index("arch").reindex(archs)
        x = np.arange(len(archs)) + (j - (len(classes) - 1) / 2) * width
        colour = "0.35" if name == FOREGROUND_MEAN else _CLASS_COLOURS[1 + j % 7]
        ax.bar(x, rows["cv_dice"], width * 0.9, yerr=rows["fold_sd_dice"], capsize=3,
               color=colour, alpha=0.85, label=name)
        for i, arch in enumerate(archs):
            values = folds[(folds["arch"] == arch) & (folds["class"] == name)]["dice"]
            ax.scatter(np.full(len(values), x[i]), values, s=10, color="black", zorder=3)
    ax.set_xticks(np.arange(len(archs)), archs)
    ax.set_ylabel("Dice (all out-of-fold images)")
    ax.set_ylim(0, 1.08)
    title = "Cross-validated Dice per architecture (dots: folds, bars: fold SD)"
    if is_optimistic(selection_of(summary)):
        title += "\nOPTIMISTIC: epoch selected on the scored fold"
    ax.set_title(title, fontsize=10, color="firebrick" if is_optimistic(selection_of(summary)) else "black")
    ax.legend(fontsize=8, ncol=len(classes), loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_dice_by_class(metrics: pd.DataFrame, path: Path) -> None:
    """Box plots of per-image Dice, one panel per class or region, one box per architecture."""
    names = list(dict.fromkeys(metrics["class"]))
    archs = sorted(metrics["arch"].unique())
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        data = [metrics[(metrics["class"] == name) & (metrics["arch"] == a)]["dice"].dropna() for a in archs]
        ax.boxplot(data, tick_labels=archs, showfliers=True)
        ax.set_title(name)
        ax.tick_params(axis="x", labelrotation=45)
    axes[0][0].set_ylabel("Dice per image")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


SELECTION_WORDS = {
    "last": "weights of the last epoch; no decision looked at the scored fold",
    "inner": "weights of the best epoch on an inner hold-out of the training images; no decision looked at "
             "the scored fold",
    "scored_fold_best": "OPTIMISTIC: weights of the best epoch on the scored fold itself (the protocol of some "
                        "published comparisons, kept only to reproduce their numbers)",
}


def selection_of(table: pd.DataFrame) -> str | None:
    """The model-selection protocol recorded in a table (one value), or None when absent."""
    if "selection" not in table.columns or table.empty:
        return None
    values = sorted(table["selection"].dropna().unique())
    return values[0] if len(values) == 1 else "mixed: " + ", ".join(values)


def is_optimistic(selection: str | None) -> bool:
    return bool(selection) and "scored_fold_best" in selection


def _curve(run: pd.DataFrame, column: str) -> pd.Series | None:
    return run[column] if column in run.columns and run[column].notna().any() else None


def plot_training_curves(histories: pd.DataFrame, path: Path) -> None:
    """Training loss and, per epoch, the foreground Dice of the images that decide the kept epoch
    (inner hold-out, or the scored fold under the optimistic protocol) and of the scored fold
    (monitor only: it never decides anything); one line per fold, the kept epoch circled."""
    archs = sorted(histories["arch"].unique())
    selection = selection_of(histories) or "last"
    fig, axes = plt.subplots(2, len(archs), figsize=(3.6 * len(archs), 5.4), squeeze=False, sharex=True)
    for j, arch in enumerate(archs):
        for i, (fold, run) in enumerate(histories[histories["arch"] == arch].groupby("fold")):
            colour = f"C{i % 10}"
            axes[0][j].plot(run["epoch"], run["train_loss"], marker=".", color=colour, label=f"fold {fold}")
            deciding, monitor = _curve(run, "selection_dice_fg"), _curve(run, "monitor_dice_fg")
            if deciding is not None:
                axes[1][j].plot(run["epoch"], deciding, marker=".", color=colour)
            if monitor is not None:
                axes[1][j].plot(run["epoch"], monitor, linestyle=":", marker=".", color=colour, alpha=0.7)
            kept = run[run["selected"]] if "selected" in run.columns else run.tail(0)
            shown = deciding if deciding is not None else monitor
            if shown is not None and not kept.empty:
                axes[1][j].scatter(kept["epoch"], shown[kept.index], s=50, facecolors="none", edgecolors="k")
        axes[0][j].set_title(arch)
        axes[1][j].set_xlabel("epoch")
    axes[0][0].set_ylabel("training loss")
    axes[1][0].set_ylabel("foreground Dice")
    axes[0][-1].legend(fontsize=7)
    lines = {"last": "dotted: scored fold (monitor only); circle: kept (last) epoch",
             "inner": "solid: inner hold-out (decides); dotted: scored fold (monitor only); circle: kept epoch",
             "scored_fold_best": "solid: scored fold, which also DECIDES the kept epoch (optimistic); "
                                 "circle: kept epoch"}
    fig.suptitle(lines.get(selection, selection), fontsize=8, color="firebrick" if is_optimistic(selection)
                 else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def colourise(class_map: np.ndarray, image: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Class colours blended over the image (background left as is, ignored regions grey)."""
    colours = _CLASS_COLOURS[np.minimum(class_map, len(_CLASS_COLOURS) - 1)]
    colours[class_map == IGNORE_INDEX] = 0.5
    out = image.astype(np.float64) / 255
    fg = class_map > 0
    out[fg] = (1 - alpha) * out[fg] + alpha * colours[fg]
    return out


def choose_overlay_samples(metrics: pd.DataFrame, n: int) -> list[str]:
    """Images spread over the range of difficulty (worst, median, best foreground Dice ...)."""
    per_image = metrics[~metrics["is_region"]].groupby("sample_id")["dice"].mean().dropna().sort_values()
    if per_image.empty:
        return []
    picks = np.unique(np.linspace(0, len(per_image) - 1, min(n, len(per_image))).round().astype(int))
    return per_image.index[picks].tolist()


def plot_overlays(metrics: pd.DataFrame, data_dir: Path, prediction_dirs: dict[tuple[str, int], Path],
                  splits: pd.DataFrame, n: int, path: Path) -> None:
    """Panel rows: image | truth | prediction of each architecture, for a few validation images."""
    samples = choose_overlay_samples(metrics, n)
    archs = sorted({arch for arch, _ in prediction_dirs})
    data = Dataset(data_dir)
    fold_of = splits.set_index("sample_id")["fold"]
    columns = 2 + len(archs)
    fig, axes = plt.subplots(max(1, len(samples)), columns, figsize=(2.4 * columns, 2.4 * max(1, len(samples))),
                             squeeze=False)
    for i, sample in enumerate(samples):
        image, truth = data.image(sample), data.class_map(sample)
        panels = [("image", image), ("truth", colourise(truth, image))]
        for arch in archs:
            predicted = read_png(Path(prediction_dirs[(arch, int(fold_of[sample]))]) / f"{sample}.png")
            dice = metrics[(metrics["sample_id"] == sample) & (metrics["arch"] == arch)
                           & ~metrics["is_region"]]["dice"].mean()
            panels.append((f"{arch} (Dice {dice:.2f})", colourise(predicted, image)))
        for ax, (title, picture) in zip(axes[i], panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title if i == 0 or title not in ("image", "truth") else "", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(sample, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    integers = shown.select_dtypes("integer").columns
    numeric = shown.select_dtypes("number").columns.difference(integers)
    shown[numeric] = shown[numeric].map(lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown[integers] = shown[integers].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return shown.astype(object).fillna("")


def _markdown(title: str, table: pd.DataFrame, note: str) -> str:
    shown = _formatted(table)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([f"## {title}", "", header, rule, *body, "", note, ""])


def _html(title: str, table: pd.DataFrame, note: str) -> str:
    shown = _formatted(table)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    cells = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>"
                    for row in shown.itertuples(index=False))
    return (f"<h2>{html.escape(title)}</h2>\n<table border='1'><thead><tr>{head}</tr></thead>"
            f"<tbody>{cells}</tbody></table>\n<p>{html.escape(note)}</p>\n")


def statistics_tables(stats: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(confidence intervals, paired comparisons) in reading order."""
    intervals = stats[stats["kind"] == "interval"][["metric", "target", "arch", "n", "estimate", "ci_low", "ci_high"]]
    paired = stats[stats["kind"] == "paired"][["metric", "target", "arch", "arch_b", "n", "mean_difference",
                                               "median_difference", "p_value", "p_holm"]]
    return (intervals.sort_values(["metric", "target", "estimate"], ascending=[True, True, False], kind="stable"),
            paired.sort_values(["metric", "target", "p_holm"], kind="stable"))


def scored_lines(summary: pd.DataFrame, instance_summary: pd.DataFrame, scope: Scope | None = None) -> list[str]:
    """What was scored, one sentence a line: from ``scope`` (cellbench.evaluation.scope.resolve) when given,
    else the classes, regions and object types found in the tables."""
    if scope is not None:
        return scope.describe()
    kinds = summary[summary["class"] != FOREGROUND_MEAN].drop_duplicates("class")
    lines = [f"Classes: {', '.join(kinds.loc[~kinds['is_region'], 'class']) or 'none'}.",
             f"Regions: {', '.join(kinds.loc[kinds['is_region'], 'class']) or 'none'}."]
    return lines + [f"Object types: {', '.join(object_type_names(instance_summary)) or 'none'}."]


def object_type_names(instance_summary: pd.DataFrame) -> list[str]:
    """The object types present in the instance summary, in table order."""
    if instance_summary.empty or "object_type" not in instance_summary:
        return []
    return list(dict.fromkeys(instance_summary["object_type"].sort_values(kind="stable")))


def _scored_markdown(lines: list[str], notes: list[str]) -> str:
    return "\n".join(["## What was scored", "", " ".join(lines), "", *(f"- {n}" for n in notes),
                      *([""] if notes else [])])


def _scored_html(lines: list[str], notes: list[str]) -> str:
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    return (f"<h2>What was scored</h2>\n<p>{html.escape(' '.join(lines))}</p>\n"
            + (f"<ul>{items}</ul>\n" if notes else ""))


def comparison_tables(summary: pd.DataFrame, instance_summary: pd.DataFrame, stats: pd.DataFrame,
                      out_dir: Path, scope: Scope | None = None) -> pd.DataFrame:
    """What was scored (the classes, regions and object types, with ``scope``'s notes on defaults
    skipped and object types derived), model comparison (best first), instance metrics and
    statistics, as Markdown and HTML."""
    table = ranking(summary)
    intervals, paired = statistics_tables(stats)
    types = object_type_names(instance_summary)
    selection = selection_of(summary)
    caution = " — OPTIMISTIC (epoch selected on the scored fold)" if is_optimistic(selection) else ""
    sections = [
        ("Protocol" + caution, pd.DataFrame({"model selection": [selection or "not recorded"]}),
         SELECTION_WORDS.get(selection, "see run_info/provenance.json") + "."),
        ("Semantic segmentation (cross-validated Dice)" + caution, table,
         "Dice over all out-of-fold images (image-wise mean per class, foreground_mean = mean over "
         "foreground classes); fold_sd_dice = SD of the fold scores."),
        (f"Instances ({', '.join(types) if types else 'none scored'})", instance_ranking(instance_summary),
         "AP = tp / (tp + fp + fn) from counts pooled over all out-of-fold images, at IoU 0.5 and 0.75 "
         "and averaged over 0.50:0.95; PQ at 0.5; AJI, AJI+, SegPC mIoU, GlaS object F1 / Dice / "
         "Hausdorff (px) are image-wise means."),
        ("95 % confidence intervals", intervals,
         "Mean over out-of-fold images with a bootstrap interval over images (dice: per class and the "
         "per-image foreground mean; ap_50 and aji: per object type)."),
        ("Paired comparisons", paired,
         "Per-image differences arch - arch_b on the same images; Wilcoxon signed-rank p, Holm-corrected "
         "over all pairs of a metric and target."),
    ]
    lines, notes = scored_lines(summary, instance_summary, scope), scope.notes if scope is not None else []
    (out_dir / "model_comparison.md").write_text(
        "\n".join([_scored_markdown(lines, notes), *(_markdown(*section) for section in sections)]))
    (out_dir / "model_comparison.html").write_text(
        _scored_html(lines, notes) + "".join(_html(*section) for section in sections))
    return table


def make_report(summary: pd.DataFrame, metrics: pd.DataFrame, histories: pd.DataFrame, data_dir: Path,
                prediction_dirs: dict[tuple[str, int], Path], splits: pd.DataFrame, out_dir: Path,
                overlay_samples: int = 4, instance_summary: pd.DataFrame | None = None,
                stats: pd.DataFrame | None = None, scope: Scope | None = None) -> None:
    """Figures and tables of a run; ``scope`` (cellbench.evaluation.scope.resolve of the classes and the
    evaluate section) says in the tables what was scored and which defaults were left out."""
    with staged_dir(Path(out_dir), [data_dir]) as stage:
        plot_dice_by_architecture(summary, metrics, stage / FIGURES[0])
        plot_dice_by_class(metrics, stage / FIGURES[1])
        plot_training_curves(histories, stage / FIGURES[2])
        plot_overlays(metrics, data_dir, prediction_dirs, splits, overlay_samples, stage / FIGURES[3])
        empty_stats = pd.DataFrame(columns=["kind", "metric", "target", "arch", "arch_b", "n", "estimate", "ci_low",
                                            "ci_high", "mean_difference", "median_difference", "p_value", "p_holm"])
        comparison_tables(summary, instance_summary if instance_summary is not None else pd.DataFrame(),
                          stats if stats is not None else empty_stats, stage, scope)
