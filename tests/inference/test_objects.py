import numpy as np
import pytest

from cellbench.errors import ConfigError
from cellbench.inference.objects import object_types, predicted_objects, truth_objects

CLASSES = ["background", "cytoplasm", "nucleus"]
SPEC = {"cell": {"classes": ["cytoplasm", "nucleus"], "seed_class": "nucleus"}, "nucleus": {"classes": ["nucleus"]}}


def two_touching_cells():
    class_map = np.zeros((20, 40), np.uint8)
    class_map[2:18, 2:38] = 1  # one blob of cytoplasm ...
    class_map[8:12, 8:12] = 2  # ... holding two nuclei
    class_map[8:12, 28:32] = 2
    return class_map


def test_object_types_as_class_indices():
    types = object_types(CLASSES, SPEC)
    assert types == {"cell": {"classes": [1, 2], "seeds": [2]}, "nucleus": {"classes": [2], "seeds": []}}


def test_default_object_types_that_do_not_fit_are_skipped_and_chosen_ones_are_errors():
    assert object_types(["background", "nucleus"], SPEC) == {"nucleus": {"classes": [1], "seeds": []}}
    assert object_types(["background", "cell"], SPEC) == {"cell": {"classes": [1], "seeds": []}}  # derived
    with pytest.raises(ConfigError, match="evaluate.objects.membrane.classes: no class 'membrane'"):
        object_types(CLASSES, {**SPEC, "membrane": {"classes": ["membrane"]}})


def test_nuclei_split_touching_cells():
    cells = predicted_objects(two_touching_cells(), [1, 2], seeds=[2])
    assert cells.max() == 2 and cells[10, 10] != cells[10, 30]
    assert cells[10, 19] == cells[10, 10] and cells[10, 21] == cells[10, 30]  # split half-way
    assert (cells > 0).sum() == 16 * 36


def test_a_cell_without_nucleus_stays_one_object():
    class_map = two_touching_cells()
    class_map[19, :] = 0
    class_map[18:20, 2:5] = 0
    lonely = np.zeros((25, 40), np.uint8)
    lonely[:20] = class_map
    lonely[21:24, 30:36] = 1  # cytoplasm only
    cells = predicted_objects(lonely, [1, 2], seeds=[2])
    assert cells.max() == 3 and len(np.unique(cells[21:24, 30:36])) == 1


def test_without_seeds_objects_are_components():
    nuclei = predicted_objects(two_touching_cells(), [2])
    assert nuclei.max() == 2 and nuclei.dtype == np.int32


def test_truth_objects_keep_the_annotated_ids_of_their_classes():
    class_map = two_touching_cells()
    instances = np.where(class_map > 0, 7, 0)
    assert set(np.unique(truth_objects(class_map, instances, [2]))) == {0, 7}
    assert (truth_objects(class_map, instances, [2]) > 0).sum() == 32
