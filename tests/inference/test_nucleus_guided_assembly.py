"""The nucleus-guided method's scale aggregation and cell assembly on hand-made cases."""

import numpy as np
import torch

from cellbench.inference.cell_crops import CropBox
from cellbench.inference.nucleus_guided import assemble, combine, first_passing


def test_first_passing_takes_the_smallest_scale_whose_cell_fits():
    ratios = [1.0, 3.0, 8.0]  # what each scale was chosen for
    assert first_passing([50, 120, 200], nucleus_area=100, ratios=ratios, threshold=1.0) == 0  # 0.5 <= 1
    assert first_passing([150, 250, 300], nucleus_area=100, ratios=ratios, threshold=1.0) == 1  # cut at 0, fits 1
    assert first_passing([150, 400, 900], nucleus_area=100, ratios=ratios, threshold=1.0) == 2
    assert first_passing([150, 400, 2000], nucleus_area=100, ratios=ratios, threshold=1.0) == 2  # none: the largest
    assert first_passing([250, 400, 900], nucleus_area=100, ratios=ratios, threshold=1.0) == 2
    assert first_passing([250, 400, 900], nucleus_area=100, ratios=ratios, threshold=2.0) == 1  # a looser threshold


def _boxes():
    return [CropBox.around((20, 20), 16, s) for s in (2.0, 4.0)]  # sides 8 and 16, both centred on (20, 20)


def test_combine_first_passing_places_the_chosen_scale_on_the_largest_crop():
    small, large = _boxes()
    maps = [torch.ones(8, 8), torch.full((16, 16), 0.75)]
    chosen = combine(maps, [small, large], "first_passing", nucleus_area=16, ratios=[4.0, 15.0], threshold=1.0,
                     shape=(64, 64))  # 64 px of cytoplasm / 16 = 4 <= 4: the small scale
    assert chosen.shape == (16, 16)
    assert chosen.sum() == 64 and chosen[4:12, 4:12].min() == 1  # the small crop sits in the middle
    cut_off = combine(maps, [small, large], "first_passing", nucleus_area=16, ratios=[3.0, 15.0], threshold=1.0,
                      shape=(64, 64))
    assert torch.allclose(cut_off, torch.full((16, 16), 0.75))


def test_combine_mean_averages_the_scales_that_cover_a_pixel_and_ignores_outside_the_image():
    small, large = _boxes()
    maps = [torch.ones(8, 8), torch.zeros(16, 16)]
    mean = combine(maps, [small, large], "mean", 16, [4.0, 15.0], 1.0, shape=(64, 64))
    assert mean[4:12, 4:12].eq(0.5).all() and mean.sum() == 32  # both scales in the middle, only the large outside
    edge = [CropBox.around((0, 0), 16, s) for s in (2.0, 4.0)]  # half of each crop lies outside the image
    mean = combine([torch.ones(8, 8), torch.ones(16, 16)], edge, "mean", 16, [4.0, 15.0], 1.0, shape=(64, 64))
    assert mean[:8].sum() == 0 and mean[8:, 8:].eq(1).all()


def test_two_lobes_whose_cells_overlap_are_one_cell_and_a_contested_pixel_goes_to_the_more_probable():
    labels = np.zeros((40, 60), np.int32)
    labels[10:14, 10:14], labels[10:14, 18:22] = 1, 2  # two lobes of one nucleus
    labels[10:14, 45:49] = 3  # another cell's nucleus
    box = CropBox(0, 0, 32)
    lobe_cell = torch.zeros(32, 32)
    lobe_cell[6:18, 6:26] = 0.9
    other_box = CropBox(0, 32, 28)
    other = torch.zeros(28, 28)
    other[4:20, 0:24] = 0.6  # reaches into the first cell at columns 32..25+? no: starts at column 32
    other[4:20, 0:2] = 0.95  # and wins the two columns it contests
    cells = assemble(labels, [(box, lobe_cell), (box, lobe_cell.clone()), (other_box, other)])
    assert cells.max() == 2  # three nuclei, two cells
    assert cells[12, 12] == cells[12, 20] == cells[8, 16] != 0  # both lobes and the cytoplasm between them
    assert cells[12, 46] not in (0, cells[12, 12]) and cells[12, 33] == cells[12, 46]
    assert cells[30, 30] == 0
