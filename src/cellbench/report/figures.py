"""The report's figures (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from skimage.segmentation import find_boundaries  # noqa: E402

from cellbench.classmaps import IGNORE_INDEX  # noqa: E402
from cellbench.dataset import Dataset  # noqa: E402
from cellbench.evaluation.aggregate import FOREGROUND_MEAN, ranking  # noqa: E402
from cellbench.fsutil import PNG_MARK  # noqa: E402
from cellbench.images import read_png  # noqa: E402
from cellbench.report.protocol import is_optimistic, selection_of  # noqa: E402

CLASS_COLOURS = np.array([[0, 0, 0], [0, 158, 115], [230, 159, 0], [86, 180, 233], [204, 121, 167],
                           [213, 94, 0], [0, 114, 178], [240, 228, 66]], dtype=np.float64) / 255
# their names (Okabe & Ito), for legends written in words
COLOUR_NAMES = ("black", "bluish green", "orange", "sky blue", "reddish purple", "vermillion", "blue", "yellow")


def colour_legend(classes: list[str]) -> str:
    """Which colour is which foreground class in colourise's overlays, in words."""
    return ", ".join(f"{name} {COLOUR_NAMES[min(i, len(COLOUR_NAMES) - 1)]}" for i, name in enumerate(classes) if i)


def message_figure(text: str, path: Path) -> None:
    """A figure that says why it has nothing to show (the workflow declared it, so it exists)."""
    fig, ax = plt.subplots(figsize=(6, 2.2))
    ax.axis("off")
    ax.text(0.5, 0.5, text, ha="center", va="center", fontsize=9, wrap=True)
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def arch_order(summary: pd.DataFrame | None, present) -> list[str]:
    """The order every figure lists architectures in: the ranking by CV Dice (best first), then any
    architecture the summary lacks, alphabetically."""
    present = list(dict.fromkeys(present))
    ranked = [] if summary is None or summary.empty else [a for a in ranking(summary)["arch"] if a in present]
    return ranked + sorted(a for a in present if a not in ranked)


def _fold_scores(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per fold image-wise mean Dice of every class and region, plus the foreground mean."""
    per_fold = metrics.groupby(["arch", "fold", "class", "is_region"])["dice"].mean().reset_index()
    classes = per_fold[~per_fold["is_region"]]
    headline = classes.groupby(["arch", "fold"])["dice"].mean().reset_index().assign(**{"class": FOREGROUND_MEAN})
    return pd.concat([per_fold, headline], ignore_index=True)


def bar_groups(summary: pd.DataFrame) -> list[str]:
    """The bars of each architecture: classes, regions, then the foreground mean unless it would
    repeat the only class."""
    kinds = summary.drop_duplicates("class").set_index("class")["is_region"].drop(FOREGROUND_MEAN, errors="ignore")
    groups = [*kinds.index[~kinds], *kinds.index[kinds]]
    return groups + [FOREGROUND_MEAN] if (~kinds).sum() > 1 else groups


def plot_dice_by_architecture(summary: pd.DataFrame, metrics: pd.DataFrame, path: Path) -> None:
    """Grouped bars of CV Dice per architecture and class, fold scores as dots, fold SD as bars."""
    archs = ranking(summary)["arch"].tolist()
    classes = bar_groups(summary)
    folds = _fold_scores(metrics)
    width = 0.8 / len(classes)
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(archs) * len(classes) / 2), 4))
    for j, name in enumerate(classes):
        rows = summary[summary["class"] == name].set_index("arch").reindex(archs)
        x = np.arange(len(archs)) + (j - (len(classes) - 1) / 2) * width
        colour = "0.35" if name == FOREGROUND_MEAN else CLASS_COLOURS[1 + j % 7]
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
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def plot_dice_by_class(metrics: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """Box plots of per-image Dice, one panel per class or region, one box per architecture."""
    names = list(dict.fromkeys(metrics["class"]))
    archs = arch_order(summary, metrics["arch"])
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        data = [metrics[(metrics["class"] == name) & (metrics["arch"] == a)]["dice"].dropna() for a in archs]
        ax.boxplot(data, tick_labels=archs, showfliers=True)
        ax.set_title(name)
        ax.tick_params(axis="x", labelrotation=45)
    axes[0][0].set_ylabel("Dice per image")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def _curve(run: pd.DataFrame, column: str) -> pd.Series | None:
    return run[column] if column in run.columns and run[column].notna().any() else None


def plot_training_curves(histories: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """Training loss and, per epoch, the foreground Dice of the images that decide the kept epoch
    (inner hold-out, or the scored fold under the optimistic protocol) and of the scored fold
    (monitor only: it never decides anything); one line per fold, the kept epoch circled."""
    archs = arch_order(summary, histories["arch"])
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
        axes[1][j].xaxis.set_major_locator(MaxNLocator(integer=True))
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
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def plot_dice_by_stratum(scores: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None) -> None:
    """One panel per class (and the foreground mean): mean Dice per stratum, one bar per architecture,
    95 % bootstrap intervals over the stratum's images."""
    if scores.empty:
        message_figure("No strata: set split.stratify_column (e.g. the cell type) to score each stratum", path)
        return
    names = [n for n in dict.fromkeys(scores["class"]) if n != FOREGROUND_MEAN] + [FOREGROUND_MEAN]
    archs = arch_order(summary, scores["arch"])
    strata = sorted(scores["stratum"].unique(), key=lambda v: (len(v), v))
    width = 0.8 / len(archs)
    fig, axes = plt.subplots(1, len(names), figsize=(max(3.5, 0.5 * len(strata) * len(archs)) * len(names) / 1.5,
                                                     3.8), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for j, arch in enumerate(archs):
            rows = scores[(scores["class"] == name) & (scores["arch"] == arch)].set_index("stratum").reindex(strata)
            x = np.arange(len(strata)) + (j - (len(archs) - 1) / 2) * width
            errors = np.vstack([rows["dice"] - rows["ci_low"], rows["ci_high"] - rows["dice"]]).clip(min=0)
            ax.bar(x, rows["dice"], width * 0.9, yerr=errors, capsize=2, color=CLASS_COLOURS[1 + j % 7],
                   label=arch)
        counts = scores[scores["class"] == name].groupby("stratum")["n"].max().reindex(strata)
        ax.set_xticks(np.arange(len(strata)), [f"{s}\n(n={int(n)})" for s, n in zip(strata, counts, strict=True)],
                      fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("stratum")
    axes[0][0].set_ylabel("Dice (mean over the stratum's images)")
    axes[0][0].set_ylim(0, 1.05)
    axes[0][-1].legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def pareto_front(cost: pd.Series, score: pd.Series, cheaper_is_lower: bool = True) -> pd.Index:
    """The architectures no other beats on both cost and score."""
    kept, best = [], -np.inf
    order = cost.sort_values(ascending=cheaper_is_lower).index
    for arch in order:
        if score[arch] > best:
            kept.append(arch)
            best = score[arch]
    return pd.Index(kept)


def plot_cost_accuracy(table: pd.DataFrame, path: Path) -> None:
    """CV foreground Dice against training time per fold and against prediction speed; bars: fold SDs,
    line: the Pareto front (nothing is both cheaper and better)."""
    table = table.set_index("arch")
    panels = [("train_minutes", "train_minutes_sd", "training time per fold (minutes)", True)]
    if "predict_images_per_second" in table.columns and table["predict_images_per_second"].notna().any():
        panels.append(("predict_images_per_second", None, "out-of-fold prediction (images / second)", False))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    for ax, (column, spread, label, lower) in zip(axes[0], panels, strict=True):
        ax.errorbar(table[column], table["cv_dice"], yerr=table["fold_sd_dice"],
                    xerr=table[spread] if spread else None, fmt="o", color="0.2", ecolor="0.6", capsize=3)
        for arch, row in table.iterrows():
            ax.annotate(arch, (row[column], row["cv_dice"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
        front = pareto_front(table[column].dropna(), table["cv_dice"], lower)
        ax.plot(table.loc[front, column], table.loc[front, "cv_dice"], color=CLASS_COLOURS[6], linewidth=1,
                label="Pareto front")
        ax.set_xlabel(label)
        ax.set_ylabel("CV foreground Dice")
        ax.legend(fontsize=8, frameon=False)
    fig.suptitle("Cost against accuracy (bars: fold SD)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def colourise(class_map: np.ndarray, image: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """Class colours blended over the image (background left as is, ignored regions grey)."""
    colours = CLASS_COLOURS[np.minimum(class_map, len(CLASS_COLOURS) - 1)]
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


_ERROR_COLOURS = {"false positive": (230, 159, 0), "false negative": (0, 114, 178), "wrong class": (204, 121, 167)}


def difference(truth: np.ndarray, predicted: np.ndarray, image: np.ndarray, alpha: float = 0.7) -> np.ndarray:
    """The image with the errors painted: foreground predicted on background, background predicted on
    foreground, the wrong foreground class (Okabe-Ito colours); ignored pixels are not errors."""
    out = image.astype(np.float64) / 255
    scored = truth != IGNORE_INDEX
    masks = {"false positive": scored & (truth == 0) & (predicted > 0),
             "false negative": scored & (truth > 0) & (predicted == 0),
             "wrong class": scored & (truth > 0) & (predicted > 0) & (truth != predicted)}
    for name, mask in masks.items():
        out[mask] = (1 - alpha) * out[mask] + alpha * np.array(_ERROR_COLOURS[name]) / 255
    return out


def worst_images(metrics: pd.DataFrame, arch: str, n: int) -> list[tuple[str, float]]:
    """The n out-of-fold images of ``arch`` with the lowest foreground Dice (mean over classes), worst first."""
    rows = metrics[(metrics["arch"] == arch) & ~metrics["is_region"]]
    per_image = rows.groupby("sample_id")["dice"].mean().dropna().sort_values(kind="stable")
    return list(per_image.head(n).items())


def plot_worst_cases(metrics: pd.DataFrame, data_dir: Path, prediction_dirs: dict[tuple[str, int], Path],
                     splits: pd.DataFrame, path: Path, summary: pd.DataFrame | None = None, n: int = 8) -> None:
    """One row per architecture: its n worst out-of-fold images by foreground Dice, errors painted, so
    that failures (and annotation errors) are found."""
    archs = arch_order(summary, [arch for arch, _ in prediction_dirs])
    data = Dataset(data_dir)
    fold_of = splits.set_index("sample_id")["fold"]
    columns = min(n, 4)  # rows of 4: readable at 100 % on the page
    per_arch = -(-n // columns)
    fig, axes = plt.subplots(max(1, len(archs)) * per_arch, columns,
                             figsize=(2.3 * columns, 2.4 * max(1, len(archs)) * per_arch + 0.6), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, arch in enumerate(archs):
        for j, (sample, dice) in enumerate(worst_images(metrics, arch, n)):
            ax = axes[i * per_arch + j // columns][j % columns]
            image = data.image(sample)
            predicted = read_png(Path(prediction_dirs[(arch, int(fold_of[sample]))]) / f"{sample}.png")
            ax.imshow(difference(data.class_map(sample), predicted, image), interpolation="nearest")
            ax.set_title(f"{sample}: {dice:.2f}", fontsize=9)
        first = axes[i * per_arch][0]
        first.text(-0.08, 0.5, arch, transform=first.transAxes, rotation=90, ha="right", va="center", fontsize=11)
    handles = [Patch(color=np.array(colour) / 255, label=name) for name, colour in _ERROR_COLOURS.items()]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=10, frameon=False)
    fig.suptitle("Worst out-of-fold images per architecture\n(title: image, foreground Dice)", fontsize=11)
    fig.tight_layout(rect=(0.02, 0.05, 1, 0.97))
    fig.savefig(path, dpi=110, format="png", metadata=PNG_MARK)
    plt.close(fig)


def outlined(picture: np.ndarray, instances: np.ndarray | None) -> np.ndarray:
    """Object outlines (white) drawn on an RGB float picture, so touching objects stay apart."""
    if instances is None or not instances.any():
        return picture
    out = picture.copy()
    out[find_boundaries(instances, mode="inner")] = 1.0
    return out


def _outline_type(prediction_dirs: dict[tuple[str, int], Path]) -> str | None:
    """The object type outlined in the overlays: cells when they were predicted, else the first type."""
    folder = Path(next(iter(prediction_dirs.values()))) / "instances" if prediction_dirs else None
    types = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder is not None and folder.is_dir() else []
    return "cell" if "cell" in types else (types[0] if types else None)


def _predicted_instances(folder: Path, kind: str | None, sample: str) -> np.ndarray | None:
    path = Path(folder) / "instances" / str(kind) / f"{sample}.png"
    return read_png(path) if kind is not None and path.exists() else None


def plot_overlays(metrics: pd.DataFrame, data_dir: Path, prediction_dirs: dict[tuple[str, int], Path],
                  splits: pd.DataFrame, n: int, path: Path, summary: pd.DataFrame | None = None,
                  classes: list[str] | None = None) -> None:
    """Panel rows: image | truth | prediction of each architecture, for a few out-of-fold images; class
    colours with a legend, object outlines in white."""
    samples = choose_overlay_samples(metrics, n)
    archs = arch_order(summary, [arch for arch, _ in prediction_dirs])
    data = Dataset(data_dir)
    fold_of = splits.set_index("sample_id")["fold"]
    kind = _outline_type(prediction_dirs)
    columns = 2 + len(archs)
    fig, axes = plt.subplots(max(1, len(samples)), columns, figsize=(2.4 * columns, 2.4 * max(1, len(samples)) + 0.5),
                             squeeze=False)
    for i, sample in enumerate(samples):
        image, truth = data.image(sample), data.class_map(sample)
        truth_objects = data.instances(sample) if kind is not None else None
        panels = [("image", image / 255), ("truth", outlined(colourise(truth, image), truth_objects))]
        for arch in archs:
            folder = Path(prediction_dirs[(arch, int(fold_of[sample]))])
            predicted = read_png(folder / f"{sample}.png")
            dice = metrics[(metrics["sample_id"] == sample) & (metrics["arch"] == arch)
                           & ~metrics["is_region"]]["dice"].mean()
            panels.append((f"{arch} (Dice {dice:.2f})",
                           outlined(colourise(predicted, image), _predicted_instances(folder, kind, sample))))
        for ax, (title, picture) in zip(axes[i], panels, strict=True):
            ax.imshow(picture, interpolation="nearest")
            ax.set_title(title if i == 0 or title not in ("image", "truth") else "", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_ylabel(sample, fontsize=8)
    if classes:
        handles = [Patch(color=CLASS_COLOURS[min(i, len(CLASS_COLOURS) - 1)], label=name)
                   for i, name in enumerate(classes) if i > 0]
        if kind is not None:
            handles.append(Patch(facecolor="white", edgecolor="black", label=f"{kind} outline"))
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.06, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)
