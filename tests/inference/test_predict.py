import logging

import numpy as np
import pandas as pd
import torch
from helpers import make_config, relabelled

from cellbench.images import read_png
from cellbench.inference.ensemble import FoldModel, Windows
from cellbench.inference.predict import predict_fold
from cellbench.inference.segment import class_map
from cellbench.training import models


class Echo(torch.nn.Module):
    """'Predicts' class 1 where the red channel is high; shows padding and cropping."""

    def forward(self, x):
        assert x.shape[-2] % 32 == 0 and x.shape[-1] % 32 == 0
        red = x[:, :1]
        return torch.cat([-red, red], dim=1)


def echo_model() -> FoldModel:
    return FoldModel(Echo(), {"classes": ["background", "red"], "mean": [0.5] * 3, "std": [0.5] * 3,
                              "size_divisor": 32})


def test_any_size_is_padded_and_cropped_back():
    image = np.zeros((45, 70, 3), np.uint8)
    image[10:20, 30:60, 0] = 255
    for windows in (Windows(tile_size=None), Windows(tile_size=32, overlap=0.5)):
        out = class_map(image, [echo_model()], windows)
        assert out.shape == (45, 70) and out.dtype == np.uint8
        assert out[10:20, 30:60].all() and out.sum() == 10 * 30


def test_real_model_output_shape():
    model = FoldModel(models.build("FPN", "resnet18", 3).eval(), {"classes": ["a", "b", "c"], "mean": [0.5] * 3,
                                                                  "std": [0.2] * 3, "size_divisor": 32})
    out = class_map(np.zeros((100, 140, 3), np.uint8), [model])
    assert out.shape == (100, 140) and out.max() < 3


def test_predict_fold_writes_the_object_types_that_apply(demo_data, tmp_path, caplog):
    """classes [background, cell] with the default evaluate.objects: the defaults are skipped with a
    note and the derived `cell` type's instance maps are written."""
    classes = ["background", "cell"]
    data = relabelled(demo_data, tmp_path / "data", [0, 1, 1])
    torch.manual_seed(0)
    model = models.build("Unet", "resnet18", len(classes))
    meta = {"arch": "Unet", "encoder": "resnet18", "classes": classes, "in_channels": 3, "mean": [0.5] * 3,
            "std": [0.25] * 3, "size_divisor": 32, "fold": 0}
    models.save_checkpoint(tmp_path / "model.pt", model, meta)
    samples = pd.read_parquet(data / "manifest.parquet")["sample_id"].tolist()[:2]
    splits = pd.DataFrame({"sample_id": samples, "fold": 0})
    spec = make_config(None, classes=classes)["evaluate"]["objects"]
    with caplog.at_level(logging.INFO, logger="cellbench.inference.predict"):
        fold = np.int64(0)  # as a splits table gives it
        predict_fold(tmp_path / "model.pt", data, splits, fold, tmp_path / "out", "cpu", spec)
    assert sorted(p.name for p in (tmp_path / "out" / "instances").iterdir()) == ["cell"]
    for sample in samples:
        class_map = read_png(tmp_path / "out" / f"{sample}.png")
        instances = read_png(tmp_path / "out" / "instances" / "cell" / f"{sample}.png")
        assert np.array_equal(instances > 0, class_map == 1)
    messages = [r.getMessage() for r in caplog.records]
    assert "object type 'nucleus' skipped: no class 'nucleus' in classes [background, cell]" in messages
    assert any(m.startswith("object type 'cell' derived") for m in messages)
    assert not any(m.startswith("region") for m in messages)  # predict makes no regions


def test_object_rules_are_learned_from_the_model_training_images_only(demo_data, tmp_path):
    """The smallest object kept and the joining of pieces come from the images the fold's model
    trained on (its checkpoint says which), never from the fold it scores; prediction.json records them."""
    import json

    import pytest

    from cellbench.errors import InputError
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    samples = manifest["sample_id"].tolist()[:6]
    splits = pd.DataFrame({"sample_id": samples, "fold": [0, 0, 1, 1, 1, 1]})
    classes = ["background", "cytoplasm", "nucleus"]
    meta = {"arch": "Unet", "encoder": "resnet18", "classes": classes, "in_channels": 3, "mean": [0.5] * 3,
            "std": [0.25] * 3, "size_divisor": 32, "fold": 0, "train_samples": samples[2:5]}
    torch.manual_seed(0)
    models.save_checkpoint(tmp_path / "model.pt", models.build("Unet", "resnet18", 3), meta)
    predict_fold(tmp_path / "model.pt", demo_data, splits, 0, tmp_path / "out", "cpu")
    rules = json.loads((tmp_path / "out" / "prediction.json").read_text())["object_rules"]
    trained_cells = manifest.set_index("sample_id").loc[samples[2:5], "n_objects"].sum()
    assert rules["cell"]["n_objects"] == trained_cells  # neither the scored fold's cells nor samples[5]'s
    assert rules["cell"]["min_size"] > 0 and set(rules) == {"cell", "nucleus"}
    models.save_checkpoint(tmp_path / "leaky.pt", models.build("Unet", "resnet18", 3),
                           {**meta, "train_samples": samples[:3]})
    with pytest.raises(InputError, match="trained on images of fold 0 itself"):
        predict_fold(tmp_path / "leaky.pt", demo_data, splits, 0, tmp_path / "out2", "cpu")


def test_a_truncated_or_pickle_payload_checkpoint_is_named_in_one_line(demo_data, tmp_path, capsys):
    import pickle

    from cellbench import cli
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    pd.DataFrame({"sample_id": manifest["sample_id"][:4], "fold": [0, 0, 1, 1]}).to_parquet(tmp_path / "splits.parquet")
    meta = {"arch": "Unet", "encoder": "resnet18", "classes": ["background", "cytoplasm", "nucleus"],
            "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3, "size_divisor": 32, "fold": 0}
    models.save_checkpoint(tmp_path / "whole.pt", models.build("Unet", "resnet18", 3), meta)
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])

    class Payload:
        def __reduce__(self):
            return (print, ("this ran",))
    torch.save({"state_dict": {}, **meta, "extra": Payload()}, tmp_path / "payload.pt")
    (tmp_path / "pickled.pt").write_bytes(pickle.dumps({"a": Payload()}))
    for name, reason in (("truncated.pt", "truncated or damaged"), ("payload.pt", "refused without running them"),
                         ("pickled.pt", "is not a cellbench checkpoint")):
        status = cli.main(["predict", "--checkpoint", str(tmp_path / name), "--data", str(demo_data), "--splits",
                           str(tmp_path / "splits.parquet"), "--arch", "Unet", "--fold", "0", "--out",
                           str(tmp_path / f"out_{name}"), "--config-json", '{"train": {"device": "cpu"}}'])
        captured = capsys.readouterr()
        assert status == 1 and f"{tmp_path / name}: is not a cellbench checkpoint" in captured.err
        assert reason in captured.err and "Traceback" not in captured.err and "this ran" not in captured.out
        assert len(captured.err.strip().splitlines()) == 2  # "1 problem in the input:" and the file's line
        assert not (tmp_path / f"out_{name}").exists()
