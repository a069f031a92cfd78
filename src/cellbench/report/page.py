"""report/index.html: the whole report as one self-contained page (figures embedded, tables sortable
without a network) opening with the protocol in words, a methods paragraph to paste into a paper."""

from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from cellbench.fsutil import HTML_MARK
from cellbench.report.protocol import SELECTION_WORDS, selection_of
from cellbench.report.tables import html_table

_SORTING = """<script>
document.querySelectorAll("table").forEach(function (table) {
  table.querySelectorAll("th").forEach(function (th, column) {
    th.style.cursor = "pointer";
    th.title = "sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.from(body.rows);
      var down = th.dataset.order !== "down";
      th.dataset.order = down ? "down" : "up";
      rows.sort(function (a, b) {
        var x = a.cells[column].textContent.trim(), y = b.cells[column].textContent.trim();
        var p = parseFloat(x.replace("< ", "")), q = parseFloat(y.replace("< ", ""));
        var c = (isNaN(p) || isNaN(q)) ? x.localeCompare(y) : p - q;
        return down ? -c : c;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
</script>"""

_STYLE = """<style>
body { font-family: sans-serif; max-width: 1200px; margin: 1em auto; padding: 0 1em; color: #222; }
img { max-width: 100%; border: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; }
th { background: #eee; }
.methods { background: #f6f6f6; padding: 0.6em 1em; border-left: 4px solid #0072b2; }
</style>"""


def methods_paragraph(summary: pd.DataFrame, splits: pd.DataFrame, histories: pd.DataFrame) -> str:
    """The protocol in words: images, folds and grouping, strata, selection rule, budget, architectures."""
    n_images, folds = splits["sample_id"].nunique(), splits["fold"].nunique()
    grouped = "group" in splits.columns and splits["group"].nunique() < n_images
    grouping = (f"grouped so that the {n_images - splits['group'].nunique()} images sharing a source with another "
                "stay in one fold" if grouped else "each image its own group")
    strata = (f", stratified by {splits['stratum'].nunique()} strata" if "stratum" in splits.columns
              and splits["stratum"].nunique() > 1 else "")
    models = summary.drop_duplicates("arch")[["arch", "encoder"]]
    archs = ", ".join(f"{a} ({e})" for a, e in models.itertuples(index=False))
    epochs = histories.groupby(["arch", "fold"])["epoch"].max()
    budget = (f"{int(epochs.min())}" if epochs.min() == epochs.max() else f"{int(epochs.min())}-{int(epochs.max())}")
    selection = selection_of(summary) or "last"
    return (f"{n_images} annotated images were split into {folds} folds ({grouping}{strata}); for each fold a fresh "
            f"model of each architecture was trained on rotated and flipped copies of the other folds' images only "
            f"(no copy of a scored image) for {budget} epochs, "
            f"keeping the {SELECTION_WORDS.get(selection, selection)}. Architectures: {archs}. Every image was "
            "scored once, out of fold; cross-validated Dice is the mean over all out-of-fold images, with 95 % "
            "bootstrap intervals over images and paired Wilcoxon tests with Holm's correction between "
            f"architectures.{_hardware(histories)} Software versions, hardware and the full configuration: "
            "run_info/.")


def _hardware(histories: pd.DataFrame) -> str:
    """Where and with what the models were trained, as the training histories recorded it."""
    if "device" not in histories.columns:
        return ""
    devices = ", ".join(sorted(map(str, histories["device"].dropna().unique())))
    torches = ", ".join(sorted(map(str, histories["torch"].dropna().unique()))) if "torch" in histories else ""
    return f" Training ran on {devices}" + (f" with PyTorch {torches}." if torches else ".")


def write_page(folder: Path, figures: list[str], summary: pd.DataFrame, splits: pd.DataFrame,
               histories: pd.DataFrame, path: Path, title: str = "cellbench report",
               cost: pd.DataFrame | None = None) -> None:
    """One HTML file holding the methods paragraph, every figure of ``folder`` named in ``figures``
    (embedded as data URIs) and the comparison tables (model_comparison.html's body), sortable."""
    parts = [f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"{_STYLE}</head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<h2>Methods</h2><p class='methods'>{html.escape(methods_paragraph(summary, splits, histories))}</p>"]
    for name in figures:
        picture = Path(folder) / name
        if picture.exists():
            data = base64.b64encode(picture.read_bytes()).decode("ascii")
            label = name.rsplit(".", 1)[0].replace("_", " ")
            parts.append(f"<h2>{html.escape(label)}</h2><img alt='{html.escape(label)}' "
                         f"src='data:image/png;base64,{data}'>")
    tables = Path(folder) / "model_comparison.html"
    if tables.exists():
        parts.append(tables.read_text().replace(HTML_MARK, ""))
    if cost is not None and not cost.empty:
        parts.append(html_table("Cost", cost, "Per architecture: parameters, multiply-adds per crop, training wall "
                                "time and peak memory per fold (Snakemake benchmarks; GPU memory from torch), "
                                "out-of-fold prediction speed (docs/parquet_schema.md: cost.parquet)."))
    parts += [_SORTING, "</body></html>", HTML_MARK]
    Path(path).write_text("\n".join(parts) + "\n")
