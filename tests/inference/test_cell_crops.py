"""Crops centred on a nucleus: where they come from and where their predictions go back."""

import numpy as np
import torch

from cellbench.inference.cell_crops import CropBox, cut, paste, resize


def test_a_crop_side_is_scale_times_nucleus_size_centred_on_the_nucleus():
    box = CropBox.around((20.4, 30.6), nucleus_area=100, scale=3.0)  # nucleus size 10
    assert box == CropBox(20 - 15, 31 - 15, 30)
    assert CropBox.around((5, 5), 0, 1.0).side == 4  # never a degenerate crop


def test_a_crop_pasted_back_lands_where_it_came_from_also_at_the_image_edges():
    image = np.arange(40 * 50, dtype=np.float32).reshape(40, 50)
    for centre in [(20, 25), (2, 3), (38, 48), (0, 49)]:
        for scale in (1.5, 2.0, 3.7):
            box = CropBox.around(centre, 64, scale)
            crop = cut(image, box, fill=-1)
            assert crop.shape == (box.side, box.side)
            placed = paste(torch.from_numpy(crop), box, 40, 50)
            (rows, cols), values = placed
            np.testing.assert_array_equal(values.numpy(), image[rows, cols])  # exactly where it was cut
            assert (crop == -1).sum() == box.side ** 2 - values.numel()  # the rest lay outside


def test_a_prediction_at_the_network_size_is_resized_back_onto_its_crop():
    box = CropBox(10, 12, 32)
    marked = np.zeros((64, 64), np.float32)
    marked[20:30, 14:18] = 1  # in image coordinates
    at_input = resize(torch.from_numpy(cut(marked, box))[None], 128, "nearest")[0]  # 4x larger, as a network sees it
    (rows, cols), back = paste(at_input, box, 64, 64)
    np.testing.assert_array_equal(back.numpy() >= 0.5, marked[rows, cols] == 1)  # same pixels, blurred edges only
    assert abs(back.sum() - marked.sum()) < 1
    assert paste(at_input, CropBox(100, 100, 8), 64, 64) is None  # a crop outside the image gives nothing back


def test_cut_keeps_channels_and_fills_outside():
    image = np.full((10, 10, 3), 7, np.uint8)
    crop = cut(image, CropBox(-4, -4, 8))
    assert crop.shape == (8, 8, 3) and crop[:4].max() == 0 and crop[4:, 4:].min() == 7
