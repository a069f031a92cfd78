"""Mask R-CNN family: labels from object types, targets from instance maps, a tiny real run."""

import numpy as np
import pytest
import torch

from cellbench.errors import ConfigError
from cellbench.training.maskrcnn import detection_targets, detection_types

WBC = ["background", "cytoplasm", "nucleus"]
SPEC = {"cell": {"classes": ["cytoplasm", "nucleus"], "seed_class": "nucleus"}, "nucleus": {"classes": ["nucleus"]}}


def test_types_paint_their_own_class_outer_types_first():
    types = detection_types(WBC, SPEC)
    assert list(types) == ["cell", "nucleus"]
    assert types["cell"] == {"label": 1, "classes": [1, 2], "paints": 1}
    assert types["nucleus"] == {"label": 2, "classes": [2], "paints": 2}
    assert detection_types(["background", "nucleus"], SPEC) == {"nucleus": {"label": 1, "classes": [1], "paints": 1}}


def test_a_class_no_type_can_paint_is_refused():
    with pytest.raises(ConfigError, match="object type 'cell'"):
        detection_types(WBC, {"cell": {"classes": ["cytoplasm", "nucleus"]}})
    with pytest.raises(ConfigError, match="cannot predict class cytoplasm"):
        detection_types(WBC, {"nucleus": {"classes": ["nucleus"]}})


def test_targets_from_hand_made_maps():
    classes = np.zeros((10, 12), np.uint8)
    instances = np.zeros((10, 12), np.int32)
    classes[1:5, 1:6], instances[1:5, 1:6] = 1, 4  # cell 4, nucleus at (2..3, 2..3)
    classes[2:4, 2:4] = 2
    classes[6:9, 7:12], instances[6:9, 7:12] = 1, 9  # cell 9 without nucleus, touching the right edge
    classes[0, 0] = 255  # ignored pixel (padding): no object
    target = detection_targets(classes, instances, detection_types(WBC, SPEC))
    assert target["labels"].tolist() == [1, 1, 2]
    assert target["boxes"].tolist() == [[1, 1, 6, 5], [7, 6, 12, 9], [2, 2, 4, 4]]  # x0 y0 x1 y1, ends exclusive
    assert target["masks"].shape == (3, 10, 12) and target["masks"].dtype == torch.uint8
    assert target["masks"][0].sum() == 20 and target["masks"][1].sum() == 15 and target["masks"][2].sum() == 4
    empty = detection_targets(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.int32), detection_types(WBC, SPEC))
    assert empty["boxes"].shape == (0, 4) and empty["masks"].shape == (0, 8, 8)


def test_a_tiny_maskrcnn_trains_per_fold_and_predicts_class_and_instance_maps(demo_data, demo_raw, tmp_path):
    import pandas as pd
    from helpers import make_config

    from cellbench.dataset.split import make_splits
    from cellbench.images import read_png
    from cellbench.inference.ensemble import Windows
    from cellbench.inference.predict import predict_fold
    from cellbench.training import augment, models, train

    augment.augment(demo_data, tmp_path / "augmented", rotations=1, flip=False)
    config = make_config(demo_raw, split={"folds": 3}, evaluate={"objects": SPEC},
                         train={"epochs": 1, "steps_per_epoch": 1, "batch_size": 1, "crop_size": 64,
                                "monitor_scored_fold": False},
                         maskrcnn={"proposals_per_image": 50, "rois_per_image": 16, "score_threshold": 0.0})
    splits = make_splits(pd.read_parquet(demo_data / "manifest.parquet"), config["split"])
    splits.to_parquet(tmp_path / "splits.parquet", index=False)
    history = train.train_fold(config, "MaskRCNN", 2, demo_data, tmp_path / "augmented", tmp_path / "splits.parquet",
                               tmp_path / "model")
    assert np.isfinite(history["train_loss"]).all() and history["encoder"].eq("resnet50_fpn_v2").all()
    net, meta = models.load_checkpoint(tmp_path / "model" / "model.pt")
    assert meta["family"] == "maskrcnn" and list(meta["detection_types"]) == ["cell", "nucleus"]
    assert type(net).__name__ == "MaskRCNN" and meta["fold"] == 2
    ids = predict_fold(tmp_path / "model" / "model.pt", demo_data, splits, 2, tmp_path / "pred", "cpu", SPEC,
                       Windows(tile_size=128, overlap=0.25, amp=False))
    for sample in ids[:2]:
        class_map = read_png(tmp_path / "pred" / f"{sample}.png")
        cells = read_png(tmp_path / "pred" / "instances" / "cell" / f"{sample}.png")
        assert class_map.max() <= 2 and cells.shape == class_map.shape
        assert set(np.unique(class_map[cells > 0])) <= {1, 2}  # every cell pixel is painted as a class
