"""Touching-border targets from instance maps."""

import numpy as np
import pytest

from cellbench.classmaps import IGNORE_INDEX
from cellbench.errors import ConfigError
from cellbench.training.targets import outputs, touching_border, with_border


def two_touching_squares():
    instances = np.zeros((12, 20), np.int32)
    instances[2:10, 2:10] = 3
    instances[2:10, 10:18] = 9  # meets 3 along the line between columns 9 and 10
    return instances


def test_border_is_where_two_instances_meet_and_nowhere_else():
    border = touching_border(two_touching_squares())
    assert np.array_equal(np.argwhere(border.any(0)).ravel(), [9, 10])  # one pixel on each side
    assert border[2:10, 9].all() and border[2:10, 10].all()
    assert border.sum() == 16  # edges against background are not borders


def test_diagonal_contact_is_a_border_and_a_lone_object_has_none():
    alone = np.zeros((8, 8), np.int32)
    alone[2:6, 2:6] = 1
    assert not touching_border(alone).any()
    corner = np.zeros((6, 6), np.int32)
    corner[:3, :3], corner[3:, 3:] = 1, 2
    assert touching_border(corner).sum() == 2 and touching_border(corner)[2, 2] and touching_border(corner)[3, 3]


def test_with_border_keeps_ignored_pixels_and_never_modifies_its_input():
    instances = two_touching_squares()
    mask = (instances > 0).astype(np.uint8)
    mask[5, 9] = IGNORE_INDEX
    before = mask.copy()
    out = with_border(mask, instances, border_index=2)
    assert np.array_equal(mask, before)
    assert out[5, 9] == IGNORE_INDEX and out[4, 9] == 2 and out[4, 10] == 2 and out[4, 8] == 1
    assert (out == 2).sum() == 15


def test_outputs_add_the_border_class_last():
    assert outputs(["background", "nucleus"], "boundary") == ["background", "nucleus", "border"]
    assert outputs(["background", "nucleus"]) == ["background", "nucleus"]
    with pytest.raises(ConfigError, match="train.target"):
        outputs(["background"], "borders")
