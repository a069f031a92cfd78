"""The report's tables: what was scored, the protocol, the semantic and instance rankings, the
confidence intervals and the paired comparisons, as Markdown and HTML."""

from __future__ import annotations

import html
from pathlib import Path

import pandas as pd

from cellbench.evaluation.aggregate import FOREGROUND_MEAN, instance_ranking, ranking
from cellbench.evaluation.scope import Scope
from cellbench.fsutil import HTML_MARK
from cellbench.report.protocol import SELECTION_WORDS, is_optimistic, selection_of

P_VALUES = ("p_value", "p_holm")


def p_text(value: float) -> str:
    """A p-value as a reader should see it: never 0.0000."""
    return "" if pd.isna(value) else "< 1e-4" if value < 1e-4 else f"{value:.4f}"


def _formatted(table: pd.DataFrame) -> pd.DataFrame:
    shown = table.copy()
    integers = shown.select_dtypes("integer").columns
    numeric = shown.select_dtypes("number").columns.difference(integers)
    for column in numeric:
        shown[column] = shown[column].map(p_text if column in P_VALUES
                                          else lambda v: "" if pd.isna(v) else f"{v:.4f}")
    shown[integers] = shown[integers].map(lambda v: "" if pd.isna(v) else str(int(v)))
    return shown.astype(object).fillna("")


def markdown_table(title: str, table: pd.DataFrame, note: str) -> str:
    shown = _formatted(table)
    header = "| " + " | ".join(map(str, shown.columns)) + " |"
    rule = "|" + "|".join("---" for _ in shown.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in shown.itertuples(index=False)]
    return "\n".join([f"## {title}", "", header, rule, *body, "", note, ""])


def html_table(title: str, table: pd.DataFrame, note: str) -> str:
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
                      out_dir: Path, scope: Scope | None = None, strata: pd.DataFrame | None = None,
                      errors: pd.DataFrame | None = None, calibration: pd.DataFrame | None = None,
                      strata_ap: pd.DataFrame | None = None) -> pd.DataFrame:
    """What was scored (the classes, regions and object types, with ``scope``'s notes on defaults
    skipped and object types derived), model comparison (best first), instance metrics and
    statistics, and where given the scores per stratum, error types and calibration, as Markdown and
    HTML."""
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
    if strata is not None and not strata.empty:
        sections.append(("Per stratum (split.stratify_column)", strata.sort_values(["class", "stratum", "arch"]),
                         "Mean Dice over the out-of-fold images of each stratum (per class, and the per-image "
                         "foreground mean) with a 95 % bootstrap interval over those images; small strata have "
                         "wide intervals."))
    if strata_ap is not None and not strata_ap.empty:
        sections.append(("AP at IoU 0.5 per stratum", strata_ap.sort_values(["object_type", "stratum", "arch"]),
                         "AP = tp / (tp + fp + fn) pooled over the out-of-fold images of each stratum, with a 95 % "
                         "bootstrap interval (images resampled, counts pooled again); n_true: reference objects."))
    if errors is not None and not errors.empty:
        sections.append(("Error types", errors, "Counts over all out-of-fold images and per image (docs/metrics.md: "
                         "error types): loose = found but IoU < 0.5, missed, false = detections of nothing, merge = "
                         "one prediction over several cells, split = one cell in several predictions, catastrophe = "
                         "several of each."))
    if calibration is not None and not calibration.empty:
        sections.append(("Calibration", calibration, "Expected calibration error of the out-of-fold softmax "
                         "probabilities (15 equal-width bins, pixels of all folds pooled; each class one against the "
                         "rest, top-label: the highest probability against whether the argmax is right), with the "
                         "mean and SD of the per-fold ECE. 0 = the probabilities mean what they say."))
    lines, notes = scored_lines(summary, instance_summary, scope), scope.notes if scope is not None else []
    markdown = "\n".join([_scored_markdown(lines, notes), *(markdown_table(*section) for section in sections)])
    (out_dir / "model_comparison.md").write_text(f"{markdown}\n{HTML_MARK}\n")
    (out_dir / "model_comparison.html").write_text(
        _scored_html(lines, notes) + "".join(html_table(*section) for section in sections) + f"{HTML_MARK}\n")
    return table
