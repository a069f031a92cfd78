"""Out-of-fold prediction: every image of a fold segmented by that fold's model (cellbench.inference.segment)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from cellbench.classmaps import relabel_sequential
from cellbench.dataset import Dataset
from cellbench.device import resolve_device
from cellbench.errors import InputError, InputProblem
from cellbench.evaluation.calibration import COLUMNS as CALIBRATION_COLUMNS
from cellbench.evaluation.calibration import reliability_bins, summed
from cellbench.evaluation.scope import resolve
from cellbench.fsutil import staged_dir, write_parquet
from cellbench.images import write_png
from cellbench.inference import object_rules
from cellbench.inference.ensemble import DEFAULT_WINDOWS, FoldModel, Windows
from cellbench.inference.outputs import CALIBRATION, PREDICTION_INFO
from cellbench.inference.segment import segment

log = logging.getLogger(__name__)


def default_learning() -> dict:
    """The schema's evaluate.min_size_fraction and evaluate.join_pieces."""
    from cellbench.config import defaults
    evaluate = defaults()["evaluate"]
    return {key: evaluate[key] for key in ("min_size_fraction", "join_pieces")}


def predict_fold(checkpoint: Path, data_dir: Path, splits: pd.DataFrame, fold: int, out_dir: Path,
                 device: str = "auto", object_spec: dict | None = None,
                 windows: Windows = DEFAULT_WINDOWS, learning: Mapping | None = None) -> list[str]:
    """Predict every image of ``fold`` with that fold's model (out of fold).

    Parameters
    ----------
    checkpoint:
        The fold's model.pt.
    data_dir, splits, fold:
        The ingested dataset, the folds, the fold to predict.
    out_dir:
        Where <sample>.png (class maps), instances/<type>/<sample>.png (uint16 instance maps),
        calibration.parquet (reliability bins of the softmax probabilities against the truth, for
        the report; no rows for families without per-pixel probabilities) and prediction.json
        (which model, which images) are written.
    device:
        auto, cpu or cuda.
    object_spec:
        evaluate.objects (None: the schema default); the object types that apply to the model's
        classes get instance maps (cellbench.evaluation.scope: defaults that do not fit are skipped
        and logged); their post-processing (min_size, fill_holes) is applied.
    windows:
        Tiling of the images (no test-time augmentation unless asked: a fold is scored as trained).
    learning:
        evaluate.min_size_fraction and evaluate.join_pieces (None: their defaults): the object rules
        learned from the model's training images (cellbench.inference.object_rules), never from the
        scored fold, recorded in prediction.json.

    Returns
    -------
    The predicted sample ids.
    """
    data_dir = Path(data_dir)
    torch_device = resolve_device(device)
    model = FoldModel.load(Path(checkpoint), torch_device)
    meta = model.meta
    if meta["fold"] != fold:
        raise InputError([InputProblem(Path(checkpoint), f"was trained for fold {meta['fold']}, not fold {fold}")])
    data = Dataset(data_dir)
    sample_ids = Dataset.fold_ids(splits, fold)
    section = {"regions": {}} if object_spec is None else {"regions": {}, "objects": object_spec}
    scope = resolve(meta["classes"], section)  # regions are not predicted: only the object types' notes
    scope.log(log)
    trained_on = meta.get("train_samples") or Dataset.training_ids(splits, fold)
    if set(trained_on) & set(sample_ids):
        raise InputError([InputProblem(Path(checkpoint), f"was trained on images of fold {fold} itself")])
    rules = object_rules.learn_from(data, trained_on, scope.object_indices(), learning or default_learning())
    types = object_rules.applied(scope.object_indices(), rules)
    for name, rule in rules.items():
        log.info("object type %s, learned from %d training images: min_size %d px, pieces joined within %.1f px "
                 "(seeds %.1f px)", name, len(trained_on), types[name]["min_size"], rule["join_gap"],
                 rule["seed_gap"])
    with staged_dir(Path(out_dir), [data_dir, checkpoint]) as stage:
        for name in types:
            (stage / "instances" / name).mkdir(parents=True)
        bins = []
        for sample_id in sample_ids:
            result = segment(data.image(sample_id), [model], windows, types, keep_probabilities=True)
            write_png(result.class_map, stage / f"{sample_id}.png")
            for name, instances in result.instances.items():
                write_png(relabel_sequential(instances), stage / "instances" / name / f"{sample_id}.png")
            if result.probabilities is not None:
                bins.append(reliability_bins(result.probabilities, data.class_map(sample_id), meta["classes"]))
        calibration = summed(pd.concat(bins), []) if bins else pd.DataFrame(columns=CALIBRATION_COLUMNS)
        write_parquet(calibration.assign(arch=meta["arch"], fold=int(fold)), stage / CALIBRATION)
        info = {"arch": meta["arch"], "encoder": meta["encoder"], "fold": int(fold), "selection": meta.get("selection"),
                "epoch": meta.get("epoch"), "checkpoint": str(checkpoint), "samples": sample_ids,
                "tile_size": windows.tile_size, "overlap": windows.overlap, "tta": windows.tta,
                "object_rules": {name: {**rule, "min_size": types[name]["min_size"]} for name, rule in rules.items()}}
        (stage / PREDICTION_INFO).write_text(json.dumps(info, indent=1) + "\n")
    log.info("predicted %d out-of-fold images of fold %d", len(sample_ids), fold)
    return sample_ids
