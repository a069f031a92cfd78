"""ONNX files of every fold: run back with onnxruntime, their probabilities and their mean are
cellbench's own (within 1e-4) on real images, at sizes other than those they were traced and checked on."""

import hashlib
import json

import numpy as np
import pytest
import torch
from fold_checkpoints import CLASSES, save_fold
from helpers import shared

from cellbench.errors import ConfigError
from cellbench.export.export import export
from cellbench.images import read_image
from cellbench.inference.ensemble import Windows, probabilities
from cellbench.inference.segment import load_models

onnxruntime = pytest.importorskip("onnxruntime", reason="the export extra: pip install 'cellbench[export]'")
ONE_WINDOW = Windows(tile_size=None, tta="none", amp=False)


def images_of(source: str, request) -> list:
    if source == "wbc":
        return sorted(shared("wbc", "images").glob("*.bmp"))[:2]
    return sorted(request.getfixturevalue("demo_raw").glob("*.png"))[:2]


@pytest.mark.parametrize("source", ["wbc", "demo"])
def test_onnx_folds_reproduce_cellbench_probabilities(source, unet_folds, tmp_path, request):
    images = images_of(source, request)
    out = tmp_path / "onnx"
    record = export(unet_folds, "onnx", out, images, parity_side=192)
    assert sorted(p.name for p in out.iterdir()) == [".cellbench-output", "fold0.onnx", "fold1.onnx", "manifest.json"]
    assert json.loads((out / "manifest.json").read_text()) == record
    results = record["parity"]["results"]
    assert set(results) == {"fold0", "fold1", "ensemble"}
    assert all(r["max_abs_diff"] <= 1e-4 and r["batch_of_two_max_abs_diff"] <= 1e-4 for r in results.values())
    assert record["parity"]["images"] == [str(p) for p in images]

    # independently of the export's own check: plain onnxruntime on a crop of another (non-square) size
    crop = read_image(images[0]).rgb[:64, :96]
    batch = crop.transpose(2, 0, 1)[None].astype(np.float32)
    sessions = [onnxruntime.InferenceSession(str(out / f"fold{k}.onnx"), providers=["CPUExecutionProvider"])
                for k in range(2)]
    got = np.mean([s.run(None, {"image": batch})[0][0] for s in sessions], axis=0)
    expected = probabilities(crop, load_models(unet_folds, "cpu"), ONE_WINDOW, torch.device("cpu")).mean
    assert got.shape == (3, 64, 96) and np.abs(got - expected).max() <= 1e-4

    # what a user needs to use them
    assert record["classes"] == record["outputs"] == CLASSES
    assert record["input"]["value_range"] == [0, 255] and record["input"]["layout"] == "NCHW"
    assert record["normalisation"]["baked_in"] and record["folds"][1]["mean"] == [0.8, 0.66, 0.68]
    assert record["size"] == {**record["size"], "divisor": 32, "min_side": 32}
    assert (record["tiling"]["tile_size"], record["tiling"]["overlap"], record["tta"]["choice"]) == (512, 0.25, "none")
    assert record["ensemble"]["rule"].endswith("argmax after averaging")
    assert [f["file"] for f in record["folds"]] == ["fold0.onnx", "fold1.onnx"]
    assert record["folds"][0]["checkpoint_sha256"] == hashlib.sha256(unet_folds[0].read_bytes()).hexdigest()
    assert record["files"]["fold1.onnx"]["sha256"] == hashlib.sha256((out / "fold1.onnx").read_bytes()).hexdigest()
    assert record["versions"]["opset"] == "17"


def test_an_architecture_onnx_cannot_express_is_refused_for_onnx(tmp_path, parity_images):
    """PSPNet's pyramid pooling (adaptive average pooling over an input of unknown size) has no ONNX form."""
    checkpoint = save_fold(tmp_path / "PSPNet" / "model.pt", arch="PSPNet")
    with pytest.raises(ConfigError, match="PSPNet cannot be exported to ONNX.*torchscript"):
        export([checkpoint], "onnx", tmp_path / "out", parity_images)
    assert not (tmp_path / "out").exists()
