import math

import numpy as np
import pandas as pd
import pytest
from helpers import make_config, relabelled

from cellbench.errors import ConfigError
from cellbench.evaluation.evaluate import evaluate_predictions, score_image
from cellbench.images import read_png, write_png
from cellbench.inference.objects import truth_objects

CLASSES = ["background", "cytoplasm", "nucleus"]
SETTINGS = make_config(None)["evaluate"]


def fold_of(demo_data):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    splits = pd.DataFrame({"sample_id": manifest["sample_id"], "fold": np.arange(len(manifest)) % 3})
    return splits, splits.loc[splits["fold"] == 1, "sample_id"].tolist()


def test_perfect_predictions_score_perfectly_in_all_three_tables(demo_data, tmp_path):
    splits, fold_ids = fold_of(demo_data)
    for name in ("cell", "nucleus"):
        (tmp_path / "instances" / name).mkdir(parents=True)
    for sample_id in fold_ids:
        truth = read_png(demo_data / "masks" / f"{sample_id}.png")
        write_png(truth, tmp_path / f"{sample_id}.png")
        instances = read_png(demo_data / "instances" / f"{sample_id}.png")
        for name, members in (("cell", [1, 2]), ("nucleus", [2])):
            objects = truth_objects(truth, instances, members).astype(np.uint16)
            write_png(objects, tmp_path / "instances" / name / f"{sample_id}.png")
    scores = evaluate_predictions(demo_data, tmp_path, splits, 1, CLASSES, SETTINGS,
                                  {"dataset": "demo", "arch": "Unet"})
    semantic = scores.semantic
    assert semantic.columns[:4].tolist() == ["dataset", "arch", "fold", "sample_id"]
    assert sorted(semantic["sample_id"].unique()) == sorted(fold_ids) and (semantic["fold"] == 1).all()
    assert len(semantic) == 3 * len(fold_ids)
    assert semantic["dice"].dropna().eq(1.0).all() and (semantic["fp"] == 0).all()
    assert semantic["hd95"].dropna().eq(0).all() and semantic["assd"].dropna().eq(0).all()
    assert len(scores.instances) == len(fold_ids) * 2 * 10
    assert scores.instances["ap"].eq(1).all() and scores.instances["pq"].eq(1).all()
    assert set(scores.objects["object_type"]) == {"cell", "nucleus"}
    assert scores.objects[["aji", "aji_plus", "segpc_miou", "glas_f1", "object_dice"]].eq(1).all().all()
    assert scores.objects["object_hausdorff"].eq(0).all()


def test_instances_are_made_from_class_maps_when_not_written(demo_data, tmp_path):
    splits, fold_ids = fold_of(demo_data)
    for sample_id in fold_ids:
        write_png(read_png(demo_data / "masks" / f"{sample_id}.png"), tmp_path / f"{sample_id}.png")
    scores = evaluate_predictions(demo_data, tmp_path, splits, 1, CLASSES, SETTINGS, {})
    nuclei = scores.instances[scores.instances["object_type"] == "nucleus"]
    assert nuclei["ap"].eq(1).all()  # nuclei are separate components: found exactly
    cells = scores.objects[scores.objects["object_type"] == "cell"]
    assert (cells["aji"] > 0.9).all() and not cells["aji"].map(math.isnan).any()


def test_missing_prediction_is_an_input_error_naming_the_folder(demo_data, tmp_path):
    from cellbench.errors import InputError
    splits = pd.DataFrame({"sample_id": ["demo_00"], "fold": [0]})
    with pytest.raises(InputError, match="no prediction for 1 of the fold's images: demo_00") as caught:
        evaluate_predictions(demo_data, tmp_path, splits, 0, CLASSES, SETTINGS, {})
    assert caught.value.problems[0].file == tmp_path


def test_threads_give_the_same_tables(demo_data, tmp_path):
    """Scoring the parts of each image side by side changes nothing in the three tables."""
    splits, fold_ids = fold_of(demo_data)
    for sample_id in fold_ids:
        truth = read_png(demo_data / "masks" / f"{sample_id}.png")
        write_png(np.roll(truth, (3, -5), axis=(0, 1)), tmp_path / f"{sample_id}.png")  # imperfect
    one, three = (evaluate_predictions(demo_data, tmp_path, splits, 1, CLASSES, SETTINGS, {}, threads=t)
                  for t in (1, 3))
    assert one.semantic["dice"].between(0.05, 0.99).any() and one.objects["object_hausdorff"].gt(0).all()
    for table in ("semantic", "instances", "objects"):
        pd.testing.assert_frame_equal(getattr(one, table), getattr(three, table))


def perfect_class_maps(data, folder, sample_ids):
    folder.mkdir()
    for sample_id in sample_ids:
        write_png(read_png(data / "masks" / f"{sample_id}.png"), folder / f"{sample_id}.png")
    return folder


def test_one_class_named_cell_is_scored_with_the_default_settings(demo_data, tmp_path, caplog):
    """classes [background, cell]: the default region `cell` and the default object types do not
    fit; they are skipped with a note and a `cell` object type is derived, never an error."""
    classes = ["background", "cell"]
    data = relabelled(demo_data, tmp_path / "data", [0, 1, 1])
    splits, fold_ids = fold_of(data)
    predictions = perfect_class_maps(data, tmp_path / "predictions", fold_ids)
    settings = make_config(None, classes=classes)["evaluate"]
    with caplog.at_level("INFO", logger="cellbench.evaluation.evaluate"):
        scores = evaluate_predictions(data, predictions, splits, 1, classes, settings, {})
    assert set(scores.semantic["class"]) == {"cell"} and not scores.semantic["is_region"].any()
    assert scores.semantic["dice"].dropna().eq(1).all() and len(scores.semantic) == len(fold_ids)
    assert set(scores.instances["object_type"]) == {"cell"} and len(scores.instances) == len(fold_ids) * 10
    assert set(scores.objects["object_type"]) == {"cell"} and scores.objects["aji"].notna().all()
    assert "region 'cell' skipped: it is the name of a class" in scores.notes
    assert "object type 'nucleus' skipped: no class 'nucleus' in classes [background, cell]" in scores.notes
    assert any(n.startswith("object type 'cell' derived") for n in scores.notes)
    assert [r.getMessage() for r in caplog.records] == scores.notes  # in the log, one line each


def test_score_image_of_one_class_named_cell():
    truth = np.zeros((12, 12), np.uint8)
    truth[1:5, 1:5] = truth[7:11, 6:11] = 1
    instances = np.zeros((12, 12), np.uint16)
    instances[1:5, 1:5], instances[7:11, 6:11] = 1, 2
    scores = score_image(truth, truth, ["background", "cell"], SETTINGS, instances)
    assert [row["class"] for row in scores.semantic] == ["cell"] and scores.semantic[0]["dice"] == 1
    rows, summary = scores.objects["cell"]
    assert list(scores.objects) == ["cell"] and rows[0]["tp"] == 2 and summary["aji"] == 1


def test_nucleus_only_keeps_the_default_nucleus_type(demo_data, tmp_path):
    classes = ["background", "nucleus"]
    data = relabelled(demo_data, tmp_path / "data", [0, 0, 1])
    splits, fold_ids = fold_of(data)
    scores = evaluate_predictions(data, perfect_class_maps(data, tmp_path / "predictions", fold_ids), splits, 1,
                                  classes, SETTINGS, {})
    assert set(scores.semantic["class"]) == {"nucleus"}
    assert set(scores.instances["object_type"]) == {"nucleus"} and scores.instances["ap"].eq(1).all()
    assert scores.notes == ["region 'cell' skipped: no class 'cytoplasm' in classes [background, nucleus]",
                            "object type 'cell' skipped: no class 'cytoplasm' in classes [background, nucleus]"]


def test_default_classes_give_no_notes(demo_data, tmp_path):
    splits, fold_ids = fold_of(demo_data)
    scores = evaluate_predictions(demo_data, perfect_class_maps(demo_data, tmp_path / "p", fold_ids[:2]),
                                  splits[splits["sample_id"].isin(fold_ids[:2])], 1, CLASSES, SETTINGS, {})
    assert scores.notes == [] and set(scores.semantic["class"]) == {"cytoplasm", "nucleus", "cell"}


@pytest.mark.parametrize(("evaluate", "message"), [
    ({"regions": {"whole": ["cell", "membrane"]}},
     r"evaluate.regions.whole: no class 'membrane' in classes \[background, cell\]"),
    ({"regions": {"cell": ["cell"]}}, r"evaluate.regions.cell: a region cannot have the name of a class"),
    ({"objects": {"nucleus": {"classes": ["nucleus"], "seed_class": None}, "cell": {"classes": ["cell"],
                                                                                    "seed_class": "nucleus"}}},
     r"evaluate.objects.cell.seed_class: no class 'nucleus' in classes \[background, cell\]"),
])
def test_chosen_regions_and_object_types_naming_missing_classes_are_errors(demo_data, tmp_path, evaluate, message):
    splits, fold_ids = fold_of(demo_data)
    settings = make_config(None, classes=["background", "cell"], evaluate=evaluate)["evaluate"]
    with pytest.raises(ConfigError, match=message):
        evaluate_predictions(demo_data, perfect_class_maps(demo_data, tmp_path / "p", fold_ids), splits, 1,
                             ["background", "cell"], settings, {})
