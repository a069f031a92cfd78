"""Scoring one fold's out-of-fold predictions against the ingested truth.

Three tables, each led by ``keys`` (dataset, arch, encoder) and the fold: semantic metrics per
image x class/region; instance matching per image x object type x IoU threshold; threshold-free
object metrics per image x object type.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench import metrics, object_metrics, objects
from cellbench.boundary import diagonal
from cellbench.images import read_png


@dataclass
class FoldScores:
    semantic: pd.DataFrame
    instances: pd.DataFrame
    objects: pd.DataFrame


def _lead(table: pd.DataFrame, keys: dict) -> pd.DataFrame:
    for position, (name, value) in enumerate(keys.items()):
        table.insert(position, name, value)
    return table


def evaluate_predictions(data_dir: Path, prediction_dir: Path, splits: pd.DataFrame, fold: int,
                         classes: list[str], settings: dict, keys: dict[str, object]) -> FoldScores:
    """All scores of the validation images of ``fold``; ``settings`` is the evaluate config section."""
    data_dir, prediction_dir = Path(data_dir), Path(prediction_dir)
    manifest = pd.read_parquet(data_dir / "manifest.parquet").set_index("sample_id")
    sample_ids = list(splits.loc[splits["fold"] == fold, "sample_id"])
    missing = [s for s in sample_ids if not (prediction_dir / f"{s}.png").is_file()]
    if missing:
        raise ValueError(f"no prediction in {prediction_dir} for {len(missing)} images: {missing[:5]}")
    types = objects.object_types(classes, settings["objects"])
    semantic, instance_rows, object_rows = [], [], []
    for sample_id in sample_ids:
        truth = read_png(data_dir / manifest.at[sample_id, "mask"])
        prediction = read_png(prediction_dir / f"{sample_id}.png")
        for row in metrics.image_rows(truth, prediction, classes, settings["regions"], settings["boundary"]):
            semantic.append({"sample_id": sample_id, **row})
        if not types:
            continue
        truth_instances = read_png(data_dir / manifest.at[sample_id, "instances"])
        for name, kind in types.items():
            predicted = prediction_dir / "instances" / name / f"{sample_id}.png"
            pred_objects = (read_png(predicted).astype(np.int32) if predicted.is_file()
                            else objects.predicted_objects(prediction, kind["classes"], kind["seeds"]))
            rows, summary = object_metrics.image_scores(
                objects.truth_objects(truth, truth_instances, kind["classes"]), pred_objects,
                settings["thresholds"], settings["object_hausdorff"])
            instance_rows += [{"sample_id": sample_id, "object_type": name, **r} for r in rows]
            object_rows.append({"sample_id": sample_id, "object_type": name, **summary,
                                "diagonal": diagonal(truth.shape)})
    lead = {**keys, "fold": fold}
    return FoldScores(_lead(pd.DataFrame(semantic), lead), _lead(pd.DataFrame(instance_rows), lead),
                      _lead(pd.DataFrame(object_rows), lead))
