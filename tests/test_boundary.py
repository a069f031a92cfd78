import math

import numpy as np
import pytest

from cellbench.boundary import hd95_assd, surface


def square(shape, r0, r1, c0, c1):
    mask = np.zeros(shape, bool)
    mask[r0:r1, c0:c1] = True
    return mask


def test_surface_is_the_outline():
    assert len(surface(square((10, 10), 2, 6, 2, 6))) == 12  # a 4 x 4 square has 12 outline pixels


def test_identical_masks_are_zero_apart():
    mask = square((20, 20), 3, 12, 4, 15)
    assert hd95_assd(mask, mask) == (0.0, 0.0)


def test_shift_by_one_pixel():
    a, b = square((20, 20), 3, 12, 4, 15), square((20, 20), 3, 12, 5, 16)
    hd95, assd = hd95_assd(a, b)
    assert hd95 == pytest.approx(1.0) and 0 < assd <= 1


def test_empty_cases():
    mask = square((30, 40), 3, 12, 4, 15)
    empty = np.zeros_like(mask)
    assert all(math.isnan(v) for v in hd95_assd(empty, empty))
    assert hd95_assd(mask, empty) == hd95_assd(empty, mask) == (50.0, 50.0)  # the diagonal
