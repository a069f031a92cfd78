"""Scoring one fold's out-of-fold predictions against the ingested truth."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cellbench import metrics
from cellbench.images import read_png


def evaluate_predictions(data_dir: Path, prediction_dir: Path, splits: pd.DataFrame, fold: int,
                         classes: list[str], regions: dict[str, list[str]] | None,
                         keys: dict[str, object]) -> pd.DataFrame:
    """Metrics table of the validation images of ``fold``; ``keys`` (dataset, arch, ...) lead each row."""
    data_dir, prediction_dir = Path(data_dir), Path(prediction_dir)
    manifest = pd.read_parquet(data_dir / "manifest.parquet").set_index("sample_id")
    sample_ids = splits.loc[splits["fold"] == fold, "sample_id"]
    truths, predictions = {}, {}
    for sample_id in sample_ids:
        truths[sample_id] = read_png(data_dir / manifest.at[sample_id, "mask"])
        predicted = prediction_dir / f"{sample_id}.png"
        if predicted.is_file():
            predictions[sample_id] = read_png(predicted)
    table = metrics.evaluate_fold(truths, predictions, classes, regions)
    for position, (name, value) in enumerate({**keys, "fold": fold}.items()):
        table.insert(position, name, value)
    return table
