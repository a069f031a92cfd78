import numpy as np
import pytest

from cellbench.classmaps import relabel_sequential


def test_relabel_sequential_keeps_order():
    out = relabel_sequential(np.array([[0, 7, 3], [7, 0, 3]]))
    assert out.tolist() == [[0, 2, 1], [2, 0, 1]] and out.dtype == np.uint16


def test_relabel_sequential_of_background_only():
    assert relabel_sequential(np.zeros((3, 3), dtype=np.int32)).max() == 0


def test_too_many_instances_for_uint16():
    with pytest.raises(ValueError, match="do not fit"):
        relabel_sequential(np.arange(70_000).reshape(700, 100))
