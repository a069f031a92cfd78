"""The nucleus-guided family: cells and scales from the training maps, stage-2 examples, a tiny real run."""

import numpy as np
import pytest
import torch

from cellbench.errors import ConfigError
from cellbench.training.nucleus_guided import CONTEXT, cells_of, choose_scales, ratios_of, roles

WBC = ["background", "cytoplasm", "nucleus"]
SETTINGS = {"cytoplasm_class": "cytoplasm", "nucleus_class": "nucleus"}
SPEC = {"cell": {"classes": ["cytoplasm", "nucleus"], "seed_class": "nucleus"}, "nucleus": {"classes": ["nucleus"]}}


def test_roles_need_background_cytoplasm_and_nucleus():
    assert roles(WBC, SETTINGS) == (1, 2)
    with pytest.raises(ConfigError, match="NucleusGuided needs classes"):
        roles(["background", "nucleus"], SETTINGS)
    with pytest.raises(ConfigError, match="NucleusGuided needs classes"):
        roles(["background", "cytoplasm", "nucleus", "granule"], SETTINGS)


def test_cells_their_nuclei_and_ratios_from_hand_made_maps():
    classes = np.zeros((20, 30), np.uint8)
    instances = np.zeros((20, 30), np.int32)
    classes[2:12, 2:12], instances[2:12, 2:12] = 1, 3  # cell 3: 100 px, nucleus of 2 lobes (4 + 4 px)
    classes[4:6, 4:6] = classes[8:10, 8:10] = 2
    classes[14:18, 20:26], instances[14:18, 20:26] = 1, 7  # cell 7 without a nucleus: not a guided cell
    cells = cells_of(classes, instances, cytoplasm=1, nucleus=2, row=5)
    assert len(cells) == 1
    cell = cells[0]
    assert (cell.row, cell.instance, cell.nucleus_area, cell.cytoplasm_area) == (5, 3, 8, 92)
    assert cell.centre == pytest.approx((6.5, 6.5))


def test_scales_come_from_the_ratio_quantiles_and_grow():
    cells = [type("C", (), {"cytoplasm_area": r * 10, "nucleus_area": 10})() for r in range(1, 101)]
    scales, ratios = choose_scales(cells, 4)
    assert scales == sorted(scales) and len(scales) == 4
    assert ratios[-1] == pytest.approx(np.quantile(np.arange(1, 101), 0.98))
    assert scales[0] == pytest.approx(CONTEXT * np.sqrt(1 + ratios[0]))
    assert ratios_of(scales) == pytest.approx(ratios)  # explicit scales get the ratios they fit
    with pytest.raises(ConfigError, match="no training cell"):
        choose_scales([], 4)


def test_a_tiny_nucleus_guided_model_trains_per_fold_and_predicts_class_and_instance_maps(demo_data, demo_raw,
                                                                                          tmp_path):
    import pandas as pd
    from helpers import make_config

    from cellbench.dataset.split import make_splits
    from cellbench.images import read_png
    from cellbench.inference.ensemble import Windows
    from cellbench.inference.predict import predict_fold
    from cellbench.training import augment, models, train

    augment.augment(demo_data, tmp_path / "augmented", rotations=1, flip=False)
    config = make_config(demo_raw, split={"folds": 3}, evaluate={"objects": SPEC},
                         train={"epochs": 2, "steps_per_epoch": 2, "batch_size": 2, "crop_size": 64,
                                "monitor_scored_fold": False},
                         nucleus_guided={"input_size": 32, "stage2_arch": "Unet"})
    splits = make_splits(pd.read_parquet(demo_data / "manifest.parquet"), config["split"])
    splits.to_parquet(tmp_path / "splits.parquet", index=False)
    history = train.train_fold(config, "NucleusGuided", 1, demo_data, tmp_path / "augmented",
                               tmp_path / "splits.parquet", tmp_path / "model")
    assert np.isfinite(history["train_loss"]).all() and len(history) == 2
    net, meta = models.load_checkpoint(tmp_path / "model" / "model.pt")
    assert meta["family"] == "nucleus_guided" and type(net).__name__ == "NucleusGuidedNet"
    assert len(meta["scales"]) == 4 and meta["scales"] == sorted(meta["scales"]) and meta["scales"][0] > 1
    assert net.stage2.encoder.conv1.in_channels == 4  # RGB + the nucleus mask
    train_ids = set(splits.loc[splits["fold"] != 1, "sample_id"])
    assert set(meta["train_samples"]) == train_ids
    # a fresh run on the same fold draws the same stage-2 cells: the same weights
    train.train_fold(config, "NucleusGuided", 1, demo_data, tmp_path / "augmented", tmp_path / "splits.parquet",
                     tmp_path / "again")
    again = torch.load(tmp_path / "again" / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(again[k], v) for k, v in net.state_dict().items())
    ids = predict_fold(tmp_path / "model" / "model.pt", demo_data, splits, 1, tmp_path / "pred", "cpu", SPEC,
                       Windows(tile_size=64, overlap=0.25, amp=False),
                       {"min_size_fraction": 0, "join_pieces": False})  # every piece kept: the assembly as it is
    assert set(ids) == set(splits.loc[splits["fold"] == 1, "sample_id"])
    found = 0
    for sample in ids:
        class_map = read_png(tmp_path / "pred" / f"{sample}.png")
        cells = read_png(tmp_path / "pred" / "instances" / "cell" / f"{sample}.png")
        nuclei = read_png(tmp_path / "pred" / "instances" / "nucleus" / f"{sample}.png")
        assert class_map.max() <= 2 and cells.shape == class_map.shape == nuclei.shape
        assert set(np.unique(class_map[cells > 0])) <= {1, 2} and (cells[class_map > 0] > 0).all()
        assert ((class_map == 2) == (nuclei > 0)).all()  # the nuclei are stage 1's components
        found += int(cells.max())
    assert found > 0  # cells were made, so the checks above looked at some
    # stage 2 trained on stage 1's own nuclei, as it sees them at inference
    predicted = {**config, "train": {**config["train"], "epochs": 1},
                 "nucleus_guided": {**config["nucleus_guided"], "stage2_nuclei": "predicted"}}
    history = train.train_fold(predicted, "NucleusGuided", 1, demo_data, tmp_path / "augmented",
                               tmp_path / "splits.parquet", tmp_path / "predicted")
    assert np.isfinite(history["train_loss"]).all()
    assert models.load_checkpoint(tmp_path / "predicted" / "model.pt")[1]["stage2_nuclei"] == "predicted"


class _RedIsNucleus(torch.nn.Module):
    """A stand-in stage 1: nucleus wherever the (normalised) red channel is high."""

    def forward(self, x):
        return torch.stack([-x[:, 0], x[:, 0]], 1)


def test_predicted_guides_take_the_component_over_the_reference_nucleus_else_the_reference():
    from cellbench.training.nucleus_guided import predicted_guides

    picture = np.zeros((20, 20, 3), np.uint8)
    picture[3:8, 3:9, 0] = 255  # predicted nucleus A (larger than the annotated one)
    picture[12:16, 12:16, 0] = 255  # another predicted nucleus
    reference = np.zeros((20, 20), np.uint8)
    reference[4:7, 4:7] = 1
    target = np.zeros((20, 20), np.int64)
    mean, std = torch.full((3,), 0.5), torch.full((3,), 0.25)
    stage1 = _RedIsNucleus().train()
    (_, guide, _), = predicted_guides(stage1, [(picture, reference, target)], mean, std, divisor=32)
    expected = np.zeros((20, 20), np.uint8)
    expected[3:8, 3:9] = 1
    np.testing.assert_array_equal(guide, expected)
    assert stage1.training  # put back in training mode
    elsewhere = np.zeros((20, 20), np.uint8)
    elsewhere[17:19, 1:3] = 1  # stage 1 finds nothing there
    (_, guide, _), = predicted_guides(stage1, [(picture, elsewhere, target)], mean, std, divisor=32)
    np.testing.assert_array_equal(guide, elsewhere)
