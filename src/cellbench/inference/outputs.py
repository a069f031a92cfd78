"""Reading back what the predict step wrote (torch-free: evaluate and measure import it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from cellbench.errors import InputError, InputProblem
from cellbench.images import ImageReadError, read_png

CALIBRATION = "calibration.parquet"  # reliability bins of the out-of-fold probabilities (evaluation.calibration)
PREDICTION_INFO = "prediction.json"  # which model predicted a folder: the report finds (arch, fold) there


def prediction_info(folder: Path) -> dict:
    """What a prediction folder holds (architecture, encoder, fold, checkpoint, samples), from its
    prediction.json."""
    path = Path(folder) / PREDICTION_INFO
    try:
        info = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise InputError([InputProblem(path, f"cannot be read ({err})", "run the predict step of this fold again")]
                         ) from None
    if not isinstance(info, dict) or not {"arch", "fold"} <= set(info):
        raise InputError([InputProblem(path, "is not a cellbench prediction record")])
    return info


def read_prediction(path: Path, shape: tuple[int, int], n_classes: int | None = None) -> np.ndarray:
    """A class map (``n_classes`` given) or instance map the predict step wrote, checked: it decodes,
    has the image's ``shape`` and holds only class indices; any damage is an InputError naming it."""
    hint = "run the predict step of this fold again"
    try:
        labels = read_png(path)
    except ImageReadError as err:
        raise InputError([InputProblem(path, str(err).removeprefix(f"PNG {path} "), hint)]) from None
    if labels.ndim != 2 or labels.shape != tuple(shape):
        raise InputError([InputProblem(path, f"has shape {labels.shape}, not the image's {tuple(shape)}", hint)])
    if n_classes is not None and labels.size and int(labels.max()) >= n_classes:
        raise InputError([InputProblem(path, f"holds class {int(labels.max())}; the classes are 0..{n_classes - 1}",
                                       hint)])
    return labels
