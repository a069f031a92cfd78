import numpy as np
import pytest

from cellbench.classmaps import in_classes, relabel_sequential, renumbered


def test_relabel_sequential_keeps_order():
    out = relabel_sequential(np.array([[0, 7, 3], [7, 0, 3]]))
    assert out.tolist() == [[0, 2, 1], [2, 0, 1]] and out.dtype == np.uint16


def test_relabel_sequential_of_background_only():
    assert relabel_sequential(np.zeros((3, 3), dtype=np.int32)).max() == 0


def test_too_many_instances_for_uint16():
    with pytest.raises(ValueError, match="do not fit"):
        relabel_sequential(np.arange(70_000).reshape(700, 100))


@pytest.mark.parametrize("members", [[2], [1, 2], [2, 1, 3], [1, 3], [0, 4, 7], []])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32])
def test_in_classes_equals_isin(members, dtype):
    class_map = np.random.default_rng(0).integers(0, 9, (13, 17)).astype(dtype)
    class_map[0, 0] = 255 if dtype == np.uint8 else 300  # the ignore value, or a large class
    np.testing.assert_array_equal(in_classes(class_map, members), np.isin(class_map, members))


def test_renumbered_skips_the_lookup_only_for_ids_one_to_n():
    labels = np.array([[0, 5, 9], [9, 0, 5]], dtype=np.uint16)
    assert renumbered(labels, np.array([5, 9])).tolist() == [[0, 1, 2], [2, 0, 1]]
    same = renumbered(labels - (labels > 0) * 4, np.array([1, 5]))  # ids 1 and 5: still renumbered
    assert same.tolist() == [[0, 1, 2], [2, 0, 1]] and same.dtype == np.int32
    assert renumbered(np.array([[2, 1, 0]]), np.array([1, 2])).tolist() == [[2, 1, 0]]
