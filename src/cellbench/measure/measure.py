"""The cells tables: every object of the expert masks, of each fold's out-of-fold predictions, and of
an infer run, measured (cellbench.measure.cells) and linked to its image, fold, cell type and matched
reference object (docs/parquet_schema.md, cells.parquet)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cellbench.dataset import Dataset
from cellbench.errors import InputError, InputProblem
from cellbench.evaluation.scope import resolve
from cellbench.inference import objects as object_maps
from cellbench.inference.outputs import read_prediction
from cellbench.measure.cells import matches, measure_objects, measured_types

log = logging.getLogger(__name__)

REFERENCE = "reference"  # the `source` of the expert masks' rows
LEAD = ("dataset", "source", "fold", "sample_id", "cell_type", "object_type", "object_id", "reference_id",
        "match_iou", "centroid_row", "centroid_column")


def object_types(classes: list[str], object_spec: dict | None) -> dict[str, dict]:
    """Object types as class indices (cellbench.evaluation.scope), defaults that do not fit skipped."""
    section = {"regions": {}} if object_spec is None else {"regions": {}, "objects": object_spec}
    return resolve(list(classes), section).object_indices()


def image_cells(image: np.ndarray, class_map: np.ndarray, instances: dict[str, np.ndarray], classes: list[str],
                types: dict[str, dict], bin_width: int = 25,
                reference: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Every measured object of one image: object_type, object_id, (reference_id, match_iou when the
    ``reference`` instance maps by type are given) and its features."""
    parts = []
    for name, compartments in measured_types(classes, types).items():
        table = measure_objects(image, class_map, instances[name], compartments, bin_width)
        if reference is not None:
            table = table.join(matches(reference[name], instances[name]), how="left")
        parts.append(table.reset_index().assign(object_type=name))
    if not parts:
        return pd.DataFrame(columns=["object_type", "object_id"])
    return pd.concat(parts, ignore_index=True)


def _lead(table: pd.DataFrame, values: dict) -> pd.DataFrame:
    """The link columns first (typed even when a table has no rows), then the features."""
    for name, value in values.items():
        table[name] = value
    for name in ("reference_id",):
        table[name] = table[name].astype("Int64") if name in table else pd.array([pd.NA] * len(table), "Int64")
    if "match_iou" not in table:
        table["match_iou"] = np.nan
    table["object_id"] = table["object_id"].astype(np.int64)
    table["fold"] = table["fold"].astype(np.int64)
    table["cell_type"] = table["cell_type"].astype("string")
    features = [c for c in table.columns if c not in LEAD]
    return table[[*LEAD, *features]]


def _cell_types(splits: pd.DataFrame) -> dict[str, str | None]:
    """Each sample's cell type: the split's stratum (split.stratify_column), none without one."""
    if "stratum" not in splits:
        return dict.fromkeys(splits["sample_id"])
    return dict(zip(splits["sample_id"], splits["stratum"].astype(str), strict=True))


def _collect(rows: list[pd.DataFrame]) -> pd.DataFrame:
    rows = [r for r in rows if len(r)] or rows[:1]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()


def reference_cells(data_dir: Path, splits: pd.DataFrame, classes: list[str], object_spec: dict | None,
                    dataset: str, bin_width: int = 25) -> pd.DataFrame:
    """Every object of the expert masks of every image in ``splits`` (source ``reference``)."""
    data, types = Dataset(Path(data_dir)), object_types(classes, object_spec)
    cell_types, folds = _cell_types(splits), dict(zip(splits["sample_id"], splits["fold"], strict=True))
    tables = []
    for sample_id in splits["sample_id"]:
        class_map = data.class_map(sample_id)
        truth = _truth_objects(data, sample_id, class_map, types)
        table = image_cells(data.image(sample_id), class_map, truth, classes, types, bin_width)
        tables.append(_lead(table, {"dataset": dataset, "source": REFERENCE, "fold": folds[sample_id],
                                    "sample_id": sample_id, "cell_type": cell_types[sample_id]}))
    return _collect(tables)


def _truth_objects(data: Dataset, sample_id: str, class_map: np.ndarray, types: dict[str, dict]):
    instances = data.instances(sample_id)
    return {name: object_maps.truth_objects(class_map, instances, kind["classes"]) for name, kind in types.items()}


def predicted_cells(data_dir: Path, prediction_dir: Path, splits: pd.DataFrame, fold: int, classes: list[str],
                    object_spec: dict | None, dataset: str, arch: str, bin_width: int = 25) -> pd.DataFrame:
    """Every object of one fold's out-of-fold predictions (source: ``arch``), each linked to the
    reference object it matches at IoU >= 0.5 (the instance metrics' matching)."""
    data, prediction_dir = Dataset(Path(data_dir)), Path(prediction_dir)
    types = object_types(classes, object_spec)
    cell_types = _cell_types(splits)
    tables = []
    for sample_id in Dataset.fold_ids(splits, fold):
        path = prediction_dir / f"{sample_id}.png"
        if not path.is_file():
            raise InputError([InputProblem(prediction_dir, f"has no prediction of {sample_id}",
                                           "run the predict step of this fold again")])
        reference = data.class_map(sample_id)
        class_map = read_prediction(path, reference.shape, len(classes))
        predicted = {}
        for name, kind in types.items():
            saved = prediction_dir / "instances" / name / f"{sample_id}.png"
            predicted[name] = (read_prediction(saved, reference.shape).astype(np.int32) if saved.is_file()
                               else object_maps.objects_of(class_map, kind))
        truth = _truth_objects(data, sample_id, reference, types)
        table = image_cells(data.image(sample_id), class_map, predicted, classes, types, bin_width, truth)
        tables.append(_lead(table, {"dataset": dataset, "source": arch, "fold": fold, "sample_id": sample_id,
                                    "cell_type": cell_types[sample_id]}))
    log.info("measured %d objects of %s fold %d", sum(map(len, tables)), arch, fold)
    return _collect(tables)


def inferred_cells(image: np.ndarray, class_map: np.ndarray, instances: dict[str, np.ndarray], classes: list[str],
                   types: dict[str, dict], dataset: str, arch: str, sample_id: str,
                   bin_width: int = 25) -> pd.DataFrame:
    """Every object of one image segmented by ``infer`` (no reference, no fold: fold -1)."""
    table = image_cells(image, class_map, instances, classes, types, bin_width)
    return _lead(table, {"dataset": dataset, "source": arch, "fold": -1, "sample_id": sample_id, "cell_type": None})
