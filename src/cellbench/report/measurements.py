"""The report's measurement pages: key features per cell type (violins and a P2/P50/P98/mean/SD
table) and how faithfully each architecture measures them (Bland-Altman plots and the fidelity
table, architectures ranked by Lin's CCC)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from cellbench.fsutil import HTML_MARK, PNG_MARK, write_bytes  # noqa: E402
from cellbench.measure.by_type import ALL  # noqa: E402
from cellbench.measure.cells import measured_types  # noqa: E402
from cellbench.measure.fidelity import COUNT, matched_pairs  # noqa: E402
from cellbench.measure.measure import REFERENCE  # noqa: E402
from cellbench.report import MEASUREMENT_FIGURES, MEASUREMENT_TABLES  # noqa: E402
from cellbench.report.protocol import is_optimistic  # noqa: E402
from cellbench.report.tables import html_table, markdown_table  # noqa: E402

# Okabe-Ito: the reference in black, the architectures in colour-blind-safe hues
PALETTE = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#CC79A7", "#0072B2", "#D55E00", "#F0E442"]
UNITS = {"area": "px²", "perimeter": "px", "equivalent_diameter": "px", "major_axis_length": "px",
         "minor_axis_length": "px", "feret_diameter_max": "px"}


def key_features(classes: list[str], types: dict[str, dict]) -> list[str]:
    """The features the report shows: N/C ratio, cell area and nucleus circularity for a seeded type
    (cell + nucleus), else the first type's area, circularity and mean grey level."""
    measured = measured_types(classes, types)
    if not measured:
        return []
    name, compartments = next(iter(measured.items()))
    if compartments.seed_name:
        return ["nc_ratio", f"{name}_area", f"{compartments.seed_name}_circularity"]
    return [f"{name}_area", f"{name}_circularity", f"{name}_grey_mean"]


def label(feature: str) -> str:
    """An axis label with the unit: 'cell area (px²)', 'N/C area ratio (nucleus / cell)'."""
    if feature == "nc_ratio":
        return "N/C area ratio (nucleus / cell)"
    if feature == COUNT:
        return "objects per image"
    unit = next((u for suffix, u in UNITS.items() if feature.endswith("_" + suffix)), "")
    words = feature.replace("_", " ")
    return f"{words} ({unit})" if unit else words


def _sources(cells: pd.DataFrame) -> list[str]:
    return [REFERENCE, *sorted(set(cells["source"]) - {REFERENCE})]


def plot_violins(cells: pd.DataFrame, features: list[str], path: Path) -> None:
    """One panel per key feature: a violin per cell type and source (reference first), medians marked.
    Architectures show their cells matched to an expert cell, so the distributions compare like with
    like (false detections are in the fidelity table's object count and in cells_by_type)."""
    sources = _sources(cells)
    cells = cells[(cells["source"] == REFERENCE) | cells["reference_id"].notna()]
    types = sorted(cells["cell_type"].dropna().astype(str).unique()) or [ALL]
    fig, axes = plt.subplots(len(features), 1, figsize=(max(6, 1.3 * len(types) * len(sources) / 2 + 2),
                                                          2.8 * len(features)), squeeze=False)
    width = 0.8 / len(sources)
    for ax, feature in zip(axes[:, 0], features, strict=True):
        for j, source in enumerate(sources):
            rows = cells[cells["source"] == source]
            for i, cell_type in enumerate(types):
                chosen = rows if types == [ALL] else rows[rows["cell_type"].astype(str) == cell_type]
                values = chosen[feature].to_numpy(np.float64) if feature in chosen else np.zeros(0)
                values = values[np.isfinite(values)]
                x = i + (j - (len(sources) - 1) / 2) * width
                if len(values) > 1 and np.ptp(values) > 0:
                    parts = ax.violinplot(values, [x], widths=width * 0.95, showextrema=False)
                    for body in parts["bodies"]:
                        body.set_facecolor(PALETTE[j % len(PALETTE)])
                        body.set_alpha(0.55 if j else 0.35)
                if len(values):
                    ax.scatter([x], [np.median(values)], s=12, color=PALETTE[j % len(PALETTE)], zorder=3,
                               edgecolor="white", linewidth=0.5)
        ax.set_xticks(range(len(types)), types, fontsize=8)
        ax.set_ylabel(label(feature), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    handles = [plt.Rectangle((0, 0), 1, 1, color=PALETTE[j % len(PALETTE)], alpha=0.6) for j in range(len(sources))]
    axes[0, 0].legend(handles, ["expert (reference)", *(f"{s} (matched cells)" for s in sources[1:])], fontsize=8,
                      ncol=len(sources),
                      loc="lower center", bbox_to_anchor=(0.5, 1.02), frameon=False)
    axes[-1, 0].set_xlabel("cell type (dots: medians)")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def plot_bland_altman(cells: pd.DataFrame, features: list[str], fidelity: pd.DataFrame, path: Path,
                      optimistic: bool = False) -> None:
    """Rows: key features; columns: architectures. Difference (architecture - expert) against the
    mean of the two on every matched cell, with the bias and the 95 % limits of agreement."""
    archs = _sources(cells)[1:]
    fig, axes = plt.subplots(len(features), max(len(archs), 1), figsize=(3.6 * max(len(archs), 1) + 0.6,
                                                                       2.9 * len(features)), squeeze=False)
    for column, arch in enumerate(archs):
        predicted, reference = matched_pairs(cells, arch)
        for row, feature in enumerate(features):
            ax = axes[row, column]
            if feature not in predicted:
                ax.set_axis_off()
                continue
            x, y = predicted[feature].to_numpy(np.float64), reference[feature].to_numpy(np.float64)
            valid = np.isfinite(x) & np.isfinite(y)
            mean, difference = (x[valid] + y[valid]) / 2, x[valid] - y[valid]
            ax.scatter(mean, difference, s=8, alpha=0.6, color=PALETTE[(column + 1) % len(PALETTE)],
                       edgecolor="none")
            stats = fidelity[(fidelity["source"] == arch) & (fidelity["feature"] == feature)]
            if len(stats):
                s = stats.iloc[0]
                ax.axhline(s["bias"], color="black", linewidth=1)
                for limit in (s["loa_low"], s["loa_high"]):
                    ax.axhline(limit, color="black", linewidth=0.8, linestyle="--")
                ax.set_title(f"{arch}: bias {s['bias']:.3g}, LoA [{s['loa_low']:.3g}, {s['loa_high']:.3g}]\n"
                             f"CCC {s['ccc']:.3f}, n = {int(s['n_pairs'])}", fontsize=8)
            ax.axhline(0, color="0.6", linewidth=0.6)
            ax.set_xlabel(f"mean of both: {label(feature)}", fontsize=8)
            ax.set_ylabel(f"{arch} − expert", fontsize=8)
            ax.tick_params(labelsize=7)
    if not archs:
        axes[0, 0].set_axis_off()
    title = "Bland–Altman, matched cells (IoU ≥ 0.5)\nsolid: bias, dashed: 95 % limits of agreement"
    if optimistic:
        title += "\nOPTIMISTIC: epoch selected on the scored fold"
    fig.suptitle(title, fontsize=9, color="firebrick" if optimistic else "black")
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png", metadata=PNG_MARK)
    plt.close(fig)


def _interval(value, low, high) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.4g} [{low:.4g}, {high:.4g}]" if pd.notna(low) else f"{value:.4g}"


def fidelity_table(fidelity: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    """Key features and the object count, architectures ranked by CCC within each feature."""
    chosen = fidelity[fidelity["feature"].isin([*features, COUNT])].copy()
    order = {f: i for i, f in enumerate([*features, COUNT])}
    chosen = chosen.sort_values(["object_type", "feature", "rank"], key=lambda c: c.map(order) if c.name ==
                                "feature" else c, kind="stable")
    return pd.DataFrame({
        "feature": chosen["feature"].map(label), "rank": chosen["rank"], "architecture": chosen["source"],
        "n": chosen["n_pairs"], "images": chosen["n_images"], "expert mean": chosen["reference_mean"],
        "bias [95 % CI]": [_interval(*v) for v in chosen[["bias", "bias_low", "bias_high"]].to_numpy()],
        "limits of agreement": [f"{lo:.4g} to {hi:.4g}" if pd.notna(lo) else ""
                                for lo, hi in chosen[["loa_low", "loa_high"]].to_numpy()],
        "mean absolute difference": chosen["mean_absolute_difference"],
        "CCC [95 % CI]": [_interval(*v) for v in chosen[["ccc", "ccc_low", "ccc_high"]].to_numpy()]})


def type_table(by_type: pd.DataFrame, features: list[str]) -> pd.DataFrame:
    chosen = by_type[by_type["feature"].isin(features)].copy()
    order = {f: i for i, f in enumerate(features)}
    chosen = chosen.assign(_feature=chosen["feature"].map(order), _expert=chosen["source"] != REFERENCE)
    chosen = chosen.sort_values(["_feature", "cell_type", "_expert", "source", "subset"], kind="stable")
    chosen["source"] = chosen["source"].replace({REFERENCE: "expert (reference)"})
    chosen["feature"] = chosen["feature"].map(label)
    chosen["objects"] = chosen["subset"].replace({"all": "all", "matched": "matched to expert"})
    return chosen[["feature", "cell_type", "source", "objects", "n", "p2", "p50", "p98", "mean", "sd"]]


def make_measurement_report(cells: pd.DataFrame, fidelity: pd.DataFrame, by_type: pd.DataFrame,
                            features: list[str], out: Mapping[str, Path], selection: str | None = None) -> None:
    """Write the measurement figures and tables (``out``: standard name -> path), each atomically."""
    unknown = set(out) - {*MEASUREMENT_FIGURES, *MEASUREMENT_TABLES}
    if unknown:
        raise ValueError(f"not measurement report outputs: {sorted(unknown)}")
    features = [f for f in features if f in cells.columns]
    optimistic = is_optimistic(selection)
    caution = " — OPTIMISTIC (epoch selected on the scored fold)" if optimistic else ""
    with tempfile.TemporaryDirectory(prefix="cellbench-report-") as tmp:
        stage = Path(tmp)
        plot_violins(cells, features, stage / "cell_features_by_type.png")
        plot_bland_altman(cells, features, fidelity, stage / "bland_altman.png", optimistic)
        sections = [(f"Measurement fidelity (matched cells){caution}", fidelity_table(fidelity, features),
                     "Per architecture, on its out-of-fold objects matched one-to-one to an expert object at "
                     "IoU >= 0.5: bias = mean(architecture - expert) with a 95 % bootstrap interval over images; "
                     "limits of agreement = bias -+ 1.96 SD of the differences; Lin's concordance correlation "
                     "(CCC, 1 = identical) with its interval; rank 1 = the most concordant architecture for "
                     "that feature. 'objects per image' compares the counts of every image.")]
        types = [(f"Key features per cell type{caution}", type_table(by_type, features),
                  "P2, P50, P98 (numpy's linear percentiles), mean and SD (n - 1) over every object of the "
                  "expert masks and of each architecture's out-of-fold predictions: all its objects (false "
                  "detections included) and those matched to an expert cell; "
                  "definitions in docs/measurements.md; every feature is in cells_by_type.parquet.")]
        for name, parts in (("measurement_fidelity", sections), ("cell_features_by_type", types)):
            (stage / f"{name}.md").write_text("\n".join(markdown_table(*p) for p in parts) + f"\n{HTML_MARK}\n")
            (stage / f"{name}.html").write_text("".join(html_table(*p) for p in parts) + f"{HTML_MARK}\n")
        for name, target in out.items():
            write_bytes((stage / name).read_bytes(), Path(target))
