import numpy as np
import pytest

from cellbench.greymasks import cell_instances, level_lookup

CLASSES = ["background", "cytoplasm", "nucleus"]


def test_nearest_level_with_ties_to_the_lower_level():
    lut, exact = level_lookup({"background": 0, "cytoplasm": 128, "nucleus": 255}, CLASSES)
    assert lut[[0, 3, 63, 64, 65, 128, 191, 192, 255]].tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2]
    assert exact.sum() == 3 and exact[[0, 128, 255]].all()


@pytest.mark.parametrize("levels, message", [({"background": 0, "membrane": 9}, "not in `classes`"),
                                             ({"background": 0, "nucleus": 0}, "two classes")])
def test_bad_levels(levels, message):
    with pytest.raises(ValueError, match=message):
        level_lookup(levels, CLASSES)


def test_instances_are_foreground_components():
    class_map = np.array([[1, 2, 0, 1], [1, 1, 0, 0]], np.uint8)
    instances = cell_instances(class_map)
    assert instances.dtype == np.uint16 and instances.max() == 2
    assert instances[0, 0] == instances[0, 1] != instances[0, 3]
