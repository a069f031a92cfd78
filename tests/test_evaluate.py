import math

import numpy as np
import pandas as pd
import pytest
from conftest import make_config

from cellbench.evaluate import evaluate_predictions
from cellbench.images import read_png, write_png
from cellbench.objects import truth_objects

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


def test_missing_prediction_is_an_error(demo_data, tmp_path):
    splits = pd.DataFrame({"sample_id": ["demo_00"], "fold": [0]})
    with pytest.raises(ValueError, match="no prediction"):
        evaluate_predictions(demo_data, tmp_path, splits, 0, CLASSES, SETTINGS, {})


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
