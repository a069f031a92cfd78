"""The cells tables of a small run on the demo data: the expert masks, out-of-fold predictions
(perfect and degraded), their fidelity and the measurement report."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellbench import config
from cellbench.cli import main
from cellbench.errors import InputError
from cellbench.evaluation.evaluate import evaluate_predictions
from cellbench.fsutil import written_by_cellbench
from cellbench.images import read_png, write_png
from cellbench.measure.by_type import by_type
from cellbench.measure.fidelity import fidelity
from cellbench.measure.measure import REFERENCE, predicted_cells, reference_cells
from cellbench.report import MEASUREMENT_FIGURES, MEASUREMENT_TABLES
from cellbench.report.measurements import make_measurement_report

CLASSES = ["background", "cytoplasm", "nucleus"]
EVALUATE = config.complete({"dataset": "demo", "classes": CLASSES})["evaluate"]


@pytest.fixture(scope="module")
def run(demo_data, tmp_path_factory):
    root = tmp_path_factory.mktemp("measure")
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    samples = manifest["sample_id"].tolist()[:8]
    splits = pd.DataFrame({"sample_id": samples, "fold": [0, 1] * 4,
                           "stratum": ["plasma", "lymphocyte"] * 4})
    tables = [reference_cells(demo_data, splits, CLASSES, None, "demo")]
    for arch, shift in (("Perfect", 0), ("Shifted", 3)):
        for fold in (0, 1):
            folder = root / arch / str(fold)
            folder.mkdir(parents=True)
            for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
                truth = read_png(demo_data / "masks" / f"{sample}.png")
                write_png(np.roll(truth, shift, axis=(0, 1)), folder / f"{sample}.png")
            tables.append(predicted_cells(demo_data, folder, splits, fold, CLASSES, None, "demo", arch))
    cells = pd.concat(tables, ignore_index=True)
    return root, splits, cells


def test_every_reference_cell_is_measured_once_with_its_fold_and_type(run, demo_data):
    _, splits, cells = run
    reference = cells[cells["source"] == REFERENCE]
    assert set(reference["object_type"]) == {"cell"}
    assert not reference.duplicated(["sample_id", "object_id"]).any()
    assert reference["reference_id"].isna().all()
    first = reference[reference["sample_id"] == splits["sample_id"][1]]
    assert set(first["fold"]) == {1} and set(first["cell_type"]) == {"lymphocyte"}
    assert (reference["nucleus_count"] >= 0).all() and reference["nc_ratio"].between(0, 1).all()
    assert (reference["cell_area"] == reference["nucleus_area"] + reference["cytoplasm_area"]).all()


def test_a_perfect_prediction_measures_what_the_expert_measures(run):
    _, splits, cells = run
    table = fidelity(cells, 200, 0, splits["sample_id"].tolist()).set_index(["source", "feature"])
    perfect = table.loc["Perfect"]
    # every cell matched; a class map copied from the truth yields the expert's cells up to the watershed
    # that separates touching cells (the expert drew the borders)
    assert perfect.loc["object_count", "bias"] == 0
    assert perfect.loc["nc_ratio", "ccc"] > 0.95
    assert perfect.loc["nucleus_grey_mean", "ccc"] > 0.95
    assert table.loc[("Perfect", "nc_ratio"), "rank"] == 1
    shifted = table.loc["Shifted"]
    assert shifted.loc["cell_red_mean", "mean_absolute_difference"] > perfect.loc["cell_red_mean",
                                                                                   "mean_absolute_difference"]


def test_predicted_rows_link_to_the_reference_object_they_match(run):
    _, _, cells = run
    predicted = cells[cells["source"] == "Perfect"]
    assert predicted["reference_id"].notna().mean() > 0.9
    assert (predicted["match_iou"].dropna() >= 0.5).all()


def test_a_missing_prediction_is_named(run, demo_data):
    root, splits, _ = run
    empty = root / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="has no prediction of"):
        predicted_cells(demo_data, empty, splits, 0, CLASSES, None, "demo", "X")


@pytest.mark.parametrize("selection", ["last", "scored_fold_best"])
def test_the_measurement_report(run, tmp_path, selection):
    _, splits, cells = run
    agreement = fidelity(cells, 200, 0, splits["sample_id"].tolist())
    out = {name: tmp_path / name for name in (*MEASUREMENT_FIGURES, *MEASUREMENT_TABLES)}
    make_measurement_report(cells, agreement, by_type(cells), ["nc_ratio", "cell_area", "nucleus_circularity"],
                            out, selection)
    for name in MEASUREMENT_FIGURES:
        with Image.open(out[name]) as picture:
            assert picture.size[0] > 400 and picture.size[1] > 300
    fidelity_md = out["measurement_fidelity.md"].read_text()
    assert "N/C area ratio (nucleus / cell)" in fidelity_md and "| 1 | Perfect |" in fidelity_md
    assert ("OPTIMISTIC" in fidelity_md) is (selection == "scored_fold_best")
    types_md = out["cell_features_by_type.md"].read_text()
    assert "| lymphocyte | expert (reference) |" in types_md and "cell area (px²)" in types_md
    assert all(written_by_cellbench(path) for path in out.values())


def test_measure_command_refuses_mixed_options(tmp_path, capsys):
    overrides = json.dumps({"dataset": "d", "results": str(tmp_path)})
    status = main(["measure", "--config-json", overrides, "--reference", "--arch", "Unet"])
    assert status == 2
    assert "--reference measures the expert masks" in capsys.readouterr().err


@pytest.mark.parametrize("damage, message", [
    ("not a png", "cannot be read: it is not a PNG image"),
    ("small", "has shape (5, 5), not the image's"),
    ("class 7", "holds class 7; the classes are 0..2"),
])
def test_a_damaged_prediction_is_named_by_measure_and_evaluate(run, demo_data, tmp_path, damage, message):
    root, splits, _ = run
    folder = tmp_path / "damaged"
    folder.mkdir()
    samples = splits.loc[splits["fold"] == 0, "sample_id"].tolist()
    for sample in samples:
        write_png(read_png(root / "Perfect" / "0" / f"{sample}.png"), folder / f"{sample}.png")
    target = folder / f"{samples[1]}.png"
    if damage == "not a png":
        target.write_bytes(b"GIF89a not an image")
    elif damage == "small":
        write_png(np.zeros((5, 5), np.uint8), target)
    else:
        write_png(np.full(read_png(target).shape, 7, np.uint8), target)
    with pytest.raises(InputError, match=re.escape(message)) as caught:
        predicted_cells(demo_data, folder, splits, 0, CLASSES, None, "demo", "X")
    assert str(target) in str(caught.value)
    with pytest.raises(InputError, match=re.escape(message)):
        evaluate_predictions(demo_data, folder, splits, 0, CLASSES, EVALUATE, {"arch": "X"})
