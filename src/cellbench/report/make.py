"""A run's report: every figure and table, each written where it is asked for."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cellbench.evaluation.scope import Scope
from cellbench.fsutil import check_files_replaceable, write_bytes
from cellbench.report import FIGURES, TABLES
from cellbench.report.errors import error_table, plot_error_types
from cellbench.report.figures import (
    plot_dice_by_architecture,
    plot_dice_by_class,
    plot_dice_by_stratum,
    plot_overlays,
    plot_training_curves,
    plot_worst_cases,
)
from cellbench.report.page import write_page
from cellbench.report.reliability import calibration_table, plot_reliability
from cellbench.report.strata import stratum_ap, stratum_scores
from cellbench.report.tables import comparison_tables


def outputs_in(folder: Path) -> dict[str, Path]:
    """Every report file in ``folder`` under its standard name."""
    return {name: Path(folder) / name for name in (*FIGURES, *TABLES)}


def make_report(summary: pd.DataFrame, metrics: pd.DataFrame, histories: pd.DataFrame, data_dir: Path,
                prediction_dirs: dict[tuple[str, int], Path], splits: pd.DataFrame, out: Path | Mapping[str, Path],
                overlay_samples: int = 4, instance_summary: pd.DataFrame | None = None,
                stats: pd.DataFrame | None = None, scope: Scope | None = None,
                instances: pd.DataFrame | None = None, objects: pd.DataFrame | None = None,
                calibration: pd.DataFrame | None = None, cost: pd.DataFrame | None = None,
                extra_figures: tuple[Path, ...] = ()) -> None:
    """Write the figures and tables of a run.

    Parameters
    ----------
    summary, metrics, instance_summary, stats:
        The aggregate step's tables (summary.parquet, metrics.parquet, ...).
    histories:
        Every fold's training history, concatenated.
    data_dir, prediction_dirs, splits:
        The ingested data, the out-of-fold prediction folder of each (arch, fold), the folds.
    out:
        A folder (every file under its standard name, see FIGURES and TABLES), or a mapping from
        standard name to the path to write it to (what the workflow passes).
    instances, objects:
        The per-image instance and object tables (AP per stratum, error types); None: not shown.
    calibration:
        The out-of-fold reliability bins (calibration.parquet); None: not shown.
    cost, extra_figures:
        The cost step's table, and figures of other steps (the cost and learning-curve figures), shown
        on index.html after the report's own.
    scope:
        What was scored (cellbench.evaluation.scope.resolve of the classes and the evaluate
        section), said in the tables with the defaults that were left out.

    Each file is rendered in a private folder and moved into place atomically; an existing file is
    replaced only if cellbench wrote it.
    """
    targets = outputs_in(out) if isinstance(out, (str, Path)) else {name: Path(path) for name, path in out.items()}
    unknown = set(targets) - {*FIGURES, *TABLES}
    if unknown:
        raise ValueError(f"not report outputs: {sorted(unknown)} (known: {[*FIGURES, *TABLES]})")
    check_files_replaceable(targets.values())  # every refusal before anything is drawn or written
    with tempfile.TemporaryDirectory(prefix="cellbench-report-") as tmp:
        stage = Path(tmp)
        plot_dice_by_architecture(summary, metrics, stage / FIGURES[0])
        plot_dice_by_class(metrics, stage / FIGURES[1], summary)
        plot_training_curves(histories, stage / FIGURES[2], summary)
        classes = scope.classes if scope is not None else ["background", *dict.fromkeys(
            metrics.loc[~metrics["is_region"], "class"])]
        plot_overlays(metrics, data_dir, prediction_dirs, splits, overlay_samples, stage / FIGURES[3], summary,
                      classes)
        strata = stratum_scores(metrics, splits)
        plot_dice_by_stratum(strata, stage / FIGURES[4], summary)
        plot_worst_cases(metrics, data_dir, prediction_dirs, splits, stage / FIGURES[5], summary)
        errors = error_table(objects if objects is not None else pd.DataFrame())
        plot_error_types(errors, stage / FIGURES[6], summary)
        calibration = calibration if calibration is not None else pd.DataFrame()
        plot_reliability(calibration, stage / FIGURES[7], summary)
        extra = {"errors": errors, "calibration": calibration_table(calibration),
                 "strata_ap": stratum_ap(instances if instances is not None else pd.DataFrame(), splits)}
        empty_stats = pd.DataFrame(columns=["kind", "metric", "target", "arch", "arch_b", "n", "estimate", "ci_low",
                                            "ci_high", "mean_difference", "median_difference", "p_value", "p_holm"])
        comparison_tables(summary, instance_summary if instance_summary is not None else pd.DataFrame(),
                          stats if stats is not None else empty_stats, stage, scope, strata, **extra)
        figures = list(FIGURES)
        for picture in map(Path, extra_figures):
            if picture.name not in figures:
                write_bytes(picture.read_bytes(), stage / picture.name)
                figures.append(picture.name)
        write_page(stage, figures, summary, splits, histories, stage / "index.html", cost=cost)
        check_files_replaceable(targets.values())  # again: one may have appeared while the report was drawn
        for name, target in targets.items():
            write_bytes((stage / name).read_bytes(), target)
