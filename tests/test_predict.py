import numpy as np
import torch

from cellbench import models
from cellbench.predict import predict_image


class Echo(torch.nn.Module):
    """'Predicts' class 1 where the red channel is high; shows padding and cropping."""

    def forward(self, x):
        assert x.shape[-2] % 32 == 0 and x.shape[-1] % 32 == 0
        red = x[:, :1]
        return torch.cat([-red, red], dim=1)


def test_any_size_is_padded_and_cropped_back():
    image = np.zeros((45, 70, 3), np.uint8)
    image[10:20, 30:60, 0] = 255
    out = predict_image(Echo(), image, [0.5] * 3, [0.5] * 3, 32, torch.device("cpu"))
    assert out.shape == (45, 70) and out.dtype == np.uint8
    assert out[10:20, 30:60].all() and out.sum() == 10 * 30


def test_real_model_output_shape():
    model = models.build("FPN", "resnet18", 3).eval()
    out = predict_image(model, np.zeros((100, 140, 3), np.uint8), [0.5] * 3, [0.2] * 3, 32, torch.device("cpu"))
    assert out.shape == (100, 140) and out.max() < 3
