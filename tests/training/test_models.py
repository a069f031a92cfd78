import time

import pytest
import torch

from cellbench.training import models


@pytest.mark.parametrize("arch, divisor", [("Unet", 32), ("FPN", 32), ("PSPNet", 8),
                                           ("DeepLabV3Plus", 16), ("PAN", 16)])
def test_size_divisor_is_accepted_by_the_model(arch, divisor):
    model = models.build(arch, "resnet18", 3).eval()
    assert models.size_divisor(model) == divisor
    side = 128 + divisor if divisor < 32 else 96  # a multiple of the divisor, not always of 32
    with torch.no_grad():
        assert model(torch.zeros(1, 3, side, side)).shape == (1, 3, side, side)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        models.build("NotANet", "resnet18", 3)


def test_offline_pretrained_weights_fail_fast_and_clearly(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="encoder_weights: null"):
        models.build("Unet", "resnet18", 3, encoder_weights="imagenet")
    assert time.perf_counter() - started < 20  # generous: a network timeout would take far longer


def test_checkpoint_round_trip(tmp_path):
    model = models.build("Unet", "resnet18", 3)
    meta = {"arch": "Unet", "encoder": "resnet18", "classes": ["bg", "a", "b"], "in_channels": 3}
    models.save_checkpoint(tmp_path / "m.pt", model, meta)
    loaded, back = models.load_checkpoint(tmp_path / "m.pt")
    assert back == meta and not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key])
