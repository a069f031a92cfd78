"""Sliding windows (MONAI), blocks, fold ensembles and test-time augmentation give the probabilities
a whole-image pass gives, wherever the model cannot tell the difference."""

import numpy as np
import pytest
import torch

from cellbench.inference.ensemble import (
    FoldModel,
    Windows,
    argmax_channels,
    blocks,
    probabilities,
    reading_span,
    window_starts,
)
from cellbench.inference.segment import segment
from cellbench.training import models

CPU = torch.device("cpu")


class Pointwise(torch.nn.Module):
    """A 1x1 convolution: each pixel's logits depend on that pixel only, so any tiling is exact."""

    def __init__(self, seed: int, classes: int = 3):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, classes, 1)
        with torch.no_grad():
            generator = torch.Generator().manual_seed(seed)
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=generator) * 3)

    def forward(self, x):
        assert x.shape[-2] % 32 == 0 and x.shape[-1] % 32 == 0, x.shape
        return self.conv(x)


class Constant(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.tensor(logits, dtype=torch.float32)

    def forward(self, x):
        return self.logits.view(1, -1, 1, 1).expand(x.shape[0], -1, *x.shape[2:]).clone()


def fold_model(net, classes=3) -> FoldModel:
    return FoldModel(net.eval(), {"classes": [f"c{i}" for i in range(classes)], "mean": [0.5] * 3,
                                  "std": [0.25] * 3, "size_divisor": 32})


def image(height, width, seed=0):
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


@pytest.mark.parametrize("size", [(17, 23), (64, 64), (150, 97), (300, 333)])
def test_tiles_and_blocks_match_the_whole_image_for_a_pointwise_model(size):
    """Odd sizes, smaller than a tile and not a multiple of the divisor: windows, Gaussian blending and
    blocks must reproduce the whole-image probabilities exactly (up to float rounding)."""
    model = [fold_model(Pointwise(0))]
    picture = image(*size)
    whole = probabilities(picture, model, Windows(tile_size=None), CPU)
    for windows in (Windows(tile_size=64, overlap=0.5, batch_size=3), Windows(tile_size=96, overlap=0.25),
                    Windows(tile_size=64, overlap=0.25, block_size=256 if max(size) > 256 else 64)):
        tiled = probabilities(picture, model, windows, CPU)
        assert tiled.mean.shape == (3, *size)
        np.testing.assert_allclose(tiled.mean, whole.mean, atol=2e-5)
    np.testing.assert_allclose(whole.mean.sum(0), 1, atol=1e-5)


def test_blocks_cover_the_image_once_and_read_the_windows_that_touch_them():
    covered = np.zeros((700, 500), int)
    for (top, bottom, left, right), (o_top, o_bottom, o_left, o_right) in blocks(700, 500, 256, 64, 0.25):
        covered[top:bottom, left:right] += 1
        assert o_top <= top and o_bottom >= bottom and o_left <= left and o_right >= right
        assert top - o_top < 64 and o_bottom - bottom < 64  # never more than a window of context
        assert o_top % 48 == 0 and (o_bottom % 48 == 16 or o_bottom == 700)  # on the image's window grid
    assert (covered == 1).all()
    assert window_starts(700, 64, 0.25)[-1] == 636 and window_starts(50, 64, 0.25) == [0]
    assert reading_span(0, 700, 700, 64, 0.25) == (0, 700)


def test_blocks_give_exactly_the_whole_image_probabilities():
    torch.manual_seed(0)
    model = [FoldModel(models.build("Unet", "resnet18", 3).eval(), {"classes": ["a", "b", "c"], "mean": [0.5] * 3,
                                                                    "std": [0.25] * 3, "size_divisor": 32})]
    picture = image(230, 300)
    for tile, overlap in ((64, 0.25), (96, 0.5)):
        whole = probabilities(picture, model, Windows(tile_size=tile, overlap=overlap, block_size=4096), CPU)
        blocked = probabilities(picture, model, Windows(tile_size=tile, overlap=overlap, block_size=100), CPU)
        np.testing.assert_allclose(blocked.mean, whole.mean, atol=1e-6)
        assert (blocked.mean.argmax(0) == whole.mean.argmax(0)).all()


def test_real_model_tiled_and_whole_agree():
    torch.manual_seed(0)
    model = [FoldModel(models.build("Unet", "resnet18", 3).eval(), {"classes": ["a", "b", "c"], "mean": [0.5] * 3,
                                                                    "std": [0.25] * 3, "size_divisor": 32})]
    picture = image(200, 260)
    whole = probabilities(picture, model, Windows(tile_size=None), CPU).mean.argmax(0)
    tiled = probabilities(picture, model, Windows(tile_size=128, overlap=0.5), CPU).mean.argmax(0)
    assert (whole == tiled).mean() > 0.95  # random weights: borders of windows differ a little


def test_the_ensemble_averages_probabilities_not_logits():
    """Softmax of (4, 0) and of (0, 1): the mean of the probabilities decides (0.5 * (0.982 + 0.269) > 0.5
    for class 0), where the mean of the logits (2, 0.5) would too, but with another value."""
    a, b = fold_model(Constant([4.0, 0.0]), 2), fold_model(Constant([0.0, 1.0]), 2)
    out = probabilities(image(40, 50), [a, b], Windows(tile_size=32), CPU)
    expected = (torch.softmax(torch.tensor([4.0, 0.0]), 0) + torch.softmax(torch.tensor([0.0, 1.0]), 0)) / 2
    np.testing.assert_allclose(out.mean[:, 7, 9], expected.numpy(), atol=1e-6)
    np.testing.assert_allclose(out.votes[:, 7, 9], [0.5, 0.5], atol=1e-6)


def test_uncertainty_scores():
    picture = image(40, 50)
    sure = segment(picture, [fold_model(Constant([30.0, 0.0]), 2)])
    assert sure.entropy == pytest.approx(0, abs=1e-6) and sure.disagreement == 0
    split = segment(picture, [fold_model(Constant([0.0, 2.0]), 2), fold_model(Constant([3.0, 0.0]), 2)])
    assert split.disagreement == pytest.approx(0.5, abs=1e-6)
    uniform = segment(picture, [fold_model(Constant([1.0, 1.0, 1.0]))])
    assert uniform.entropy == pytest.approx(1, abs=1e-5)


def test_test_time_augmentation_averages_the_transformed_predictions():
    """A model that is not symmetric (it sees the row index): d4 averages its 8 views, mapped back."""

    class Ramp(torch.nn.Module):
        def forward(self, x):
            rows = torch.linspace(-3, 3, x.shape[-2]).view(1, 1, -1, 1).expand(x.shape[0], 1, -1, x.shape[-1])
            return torch.cat([rows, -rows], dim=1)

    picture = image(64, 64)
    model = fold_model(Ramp(), 2)
    plain = probabilities(picture, [model], Windows(tile_size=None), CPU).mean
    d4 = probabilities(picture, [model], Windows(tile_size=None, tta="d4"), CPU).mean
    flipped = np.flip(plain, axis=1)  # the up-down view, mapped back: the ramp reversed
    columns = np.swapaxes(plain, 1, 2)  # the quarter-turn views, mapped back: a ramp over columns
    np.testing.assert_allclose(d4, (2 * plain + 2 * flipped + 2 * columns + 2 * np.flip(columns, 2)) / 8, atol=1e-5)


@pytest.mark.parametrize("channels", [1, 2, 3, 5])
def test_argmax_over_channels_equals_torchs_ties_included(channels):
    generator = torch.Generator().manual_seed(channels)
    coarse = torch.randint(0, 3, (4, channels, 33, 47), generator=generator).float()  # many ties
    for x in (coarse, coarse.contiguous(memory_format=torch.channels_last), torch.rand(4, channels, 9, 7)):
        assert torch.equal(argmax_channels(x, 1), x.argmax(1))
        assert torch.equal(argmax_channels(x[0], 0), x[0].argmax(0))
