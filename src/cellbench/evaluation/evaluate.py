"""Scoring one fold's out-of-fold predictions against the ingested truth.

Three tables, each led by ``keys`` (dataset, arch, encoder) and the fold: semantic metrics per
image x class/region; instance matching per image x object type x IoU threshold; threshold-free
object metrics per image x object type.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.dataset import Dataset
from cellbench.errors import InputError, InputProblem
from cellbench.evaluation import object_metrics, semantic_metrics
from cellbench.evaluation.boundary import diagonal
from cellbench.evaluation.scope import resolve
from cellbench.inference import objects
from cellbench.inference.outputs import read_prediction
from cellbench.pool import submit, thread_pool

log = logging.getLogger(__name__)


@dataclass
class FoldScores:
    semantic: pd.DataFrame
    instances: pd.DataFrame
    objects: pd.DataFrame
    notes: list[str] = field(default_factory=list)  # defaults skipped and object types derived (cellbench.scope)


def _lead(table: pd.DataFrame, keys: dict) -> pd.DataFrame:
    for position, (name, value) in enumerate(keys.items()):
        table.insert(position, name, value)
    return table


@dataclass
class ImageScores:
    semantic: list[dict]  # one row per class/region
    objects: dict[str, tuple[list[dict], dict]]  # object type -> (rows per IoU threshold, threshold-free)


def score_image(truth: np.ndarray, prediction: np.ndarray, classes: list[str], settings: dict,
                truth_instances: np.ndarray | None = None, predicted: dict[str, np.ndarray] | None = None,
                pool: Executor | None = None) -> ImageScores:
    """Every metric of one image (``settings``: the evaluate config section; its regions and object
    types as cellbench.scope.resolve applies them to ``classes``). Object types are scored when
    ``truth_instances`` is given, from the ``predicted`` instance maps by type (made from the class
    map when missing). With a thread ``pool``, the object types and each region's surface distances
    run side by side."""
    scope = resolve(classes, settings)
    types = scope.object_indices() if truth_instances is not None else {}
    jobs = {name: submit(pool, _object_scores, truth, truth_instances, prediction, kind,
                         (predicted or {}).get(name), settings) for name, kind in types.items()}
    semantic = semantic_metrics.image_rows(truth, prediction, classes, scope.regions, settings["boundary"], pool)
    return ImageScores(semantic, {name: job.result() for name, job in jobs.items()})


def _object_scores(truth, truth_instances, prediction, kind, predicted, settings) -> tuple[list[dict], dict]:
    if predicted is None:
        predicted = objects.objects_of(prediction, kind)
    return object_metrics.image_scores(objects.truth_objects(truth, truth_instances, kind["classes"]), predicted,
                                       settings["thresholds"], settings["object_hausdorff"])


def evaluate_predictions(data_dir: Path, prediction_dir: Path, splits: pd.DataFrame, fold: int,
                         classes: list[str], settings: dict, keys: dict[str, object],
                         threads: int = 1) -> FoldScores:
    """Every score of every image of ``fold``.

    Parameters
    ----------
    data_dir, prediction_dir:
        The ingested dataset (truth) and the fold's out-of-fold predictions.
    splits, fold:
        The folds, and the fold scored.
    classes, settings:
        The class names and the evaluate section (regions and object types that do not fit
        ``classes`` are skipped and logged, see cellbench.evaluation.scope).
    keys:
        Columns put first in every table (dataset, arch, encoder, selection).
    threads:
        Threads scoring the parts of each image side by side.

    Returns
    -------
    FoldScores: semantic (image x class/region), instances (image x object type x IoU threshold),
    objects (image x object type), as docs/metrics.md defines them.
    """
    data_dir, prediction_dir = Path(data_dir), Path(prediction_dir)
    data = Dataset(data_dir)
    sample_ids = Dataset.fold_ids(splits, fold)
    missing = [s for s in sample_ids if not (prediction_dir / f"{s}.png").is_file()]
    if missing:
        raise InputError([InputProblem(prediction_dir, f"no prediction for {len(missing)} of the fold's images: "
                                                       f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}",
                                       "run the predict step of this fold again")])
    scope = resolve(classes, settings)
    scope.log(log)
    settings, types = scope.settings(settings), scope.object_indices()
    semantic, instance_rows, object_rows = [], [], []
    with thread_pool(threads) as pool:
        for sample_id in sample_ids:
            truth = data.class_map(sample_id)
            prediction = read_prediction(prediction_dir / f"{sample_id}.png", truth.shape, len(classes))
            truth_instances = data.instances(sample_id) if types else None
            predicted = {name: read_prediction(path, truth.shape).astype(np.int32) for name in types
                         if (path := prediction_dir / "instances" / name / f"{sample_id}.png").is_file()}
            scores = score_image(truth, prediction, classes, settings, truth_instances, predicted, pool)
            semantic += [{"sample_id": sample_id, **row} for row in scores.semantic]
            for name, (rows, summary) in scores.objects.items():
                instance_rows += [{"sample_id": sample_id, "object_type": name, **r} for r in rows]
                object_rows.append({"sample_id": sample_id, "object_type": name, **summary,
                                    "diagonal": diagonal(truth.shape)})
    lead = {**keys, "fold": fold}
    return FoldScores(_lead(pd.DataFrame(semantic), lead), _lead(pd.DataFrame(instance_rows), lead),
                      _lead(pd.DataFrame(object_rows), lead), scope.notes)
