"""Cells and their compartments: a ring (cytoplasm) around a disc (nucleus), nucleus counts, ratios,
which object types are measured, and the link to the matched reference object."""

import numpy as np
import pytest
from skimage.draw import disk

from cellbench.measure.cells import Compartments, matches, measure_objects, measured_types
from cellbench.measure.measure import object_types

CLASSES = ["background", "cytoplasm", "nucleus"]


def _cell(size=80, centre=(40, 40), outer=25, inner=10, image=None):
    """A disc cell (cytoplasm) with a disc nucleus; grey 200 cytoplasm, 50 nucleus."""
    class_map = np.zeros((size, size), np.uint8)
    class_map[disk(centre, outer, shape=class_map.shape)] = 1
    class_map[disk(centre, inner, shape=class_map.shape)] = 2
    if image is None:
        image = np.zeros((size, size, 3), np.uint8)
    image[class_map == 1] = 200
    image[class_map == 2] = 50
    return class_map, image


def test_default_types_measure_cells_with_nucleus_and_cytoplasm():
    types = object_types(CLASSES, None)
    measured = measured_types(CLASSES, types)
    assert list(measured) == ["cell"]  # nuclei are each cell's nucleus compartment
    assert measured["cell"] == Compartments("cell", "nucleus", "cytoplasm", (2,))


def test_a_nucleus_only_dataset_measures_nuclei_without_compartments():
    classes = ["background", "nucleus"]
    measured = measured_types(classes, object_types(classes, None))
    assert measured == {"nucleus": Compartments("nucleus")}


def test_ring_and_disc_areas_ratios_and_counts():
    class_map, image = _cell()
    objects = (class_map > 0).astype(np.int32) * 5
    table = measure_objects(image, class_map, objects, Compartments("cell", "nucleus", "cytoplasm", (2,)))
    row = table.loc[5]
    n_cell, n_nucleus = np.count_nonzero(class_map), np.count_nonzero(class_map == 2)
    assert row["cell_area"] == n_cell
    assert row["nucleus_area"] == n_nucleus
    assert row["cytoplasm_area"] == n_cell - n_nucleus
    assert row["nc_ratio"] == pytest.approx(n_nucleus / n_cell)
    assert row["nucleus_count"] == 1
    assert row["nucleus_grey_mean"] == 50 and row["cytoplasm_grey_mean"] == 200
    assert row["nc_intensity_ratio"] == pytest.approx(0.25)
    assert row["cell_grey_mean"] == pytest.approx((50 * n_nucleus + 200 * (n_cell - n_nucleus)) / n_cell)
    assert row["nucleus_circularity"] == pytest.approx(1, abs=0.05)
    assert row["cytoplasm_solidity"] < 0.9  # a ring is not convex
    assert (row["centroid_row"], row["centroid_column"]) == pytest.approx((40, 40))


def test_nuclei_are_counted_per_cell_even_when_two_cells_touch():
    class_map = np.zeros((40, 80), np.uint8)
    class_map[5:35, 5:40] = 1
    class_map[5:35, 40:75] = 1
    class_map[10:15, 10:15] = 2  # cell 1: two nuclei
    class_map[20:25, 20:25] = 2
    class_map[15:20, 35:45] = 2  # one nucleus across the border: one piece in each cell
    objects = np.zeros(class_map.shape, np.int32)
    objects[5:35, 5:40], objects[5:35, 40:75] = 1, 2
    image = np.full((40, 80, 3), 128, np.uint8)
    table = measure_objects(image, class_map, objects, Compartments("cell", "nucleus", "cytoplasm", (2,)))
    assert table.loc[1, "nucleus_count"] == 3 and table.loc[2, "nucleus_count"] == 1


def test_a_cell_without_nucleus_has_nucleus_area_zero_and_no_nucleus_shape():
    class_map = np.zeros((30, 30), np.uint8)
    class_map[5:20, 5:20] = 1
    objects = (class_map > 0).astype(np.int32)
    table = measure_objects(np.zeros((30, 30, 3), np.uint8), class_map, objects,
                            Compartments("cell", "nucleus", "cytoplasm", (2,)))
    assert table.loc[1, "nucleus_area"] == 0 and table.loc[1, "nc_ratio"] == 0
    assert table.loc[1, "nucleus_count"] == 0
    assert np.isnan(table.loc[1, "nucleus_circularity"])


def test_an_image_without_objects_gives_no_rows():
    class_map, image = np.zeros((20, 20), np.uint8), np.zeros((20, 20, 3), np.uint8)
    table = measure_objects(image, class_map, np.zeros((20, 20), np.int32),
                            Compartments("cell", "nucleus", "cytoplasm", (2,)))
    assert table.empty and "nc_ratio" in table.columns and "nucleus_grey_p98" in table.columns


def test_matches_link_each_predicted_object_to_its_reference_object():
    reference = np.zeros((40, 40), np.int32)
    reference[2:12, 2:12], reference[20:30, 20:30], reference[32:38, 2:8] = 7, 9, 11
    predicted = np.zeros((40, 40), np.int32)
    predicted[3:13, 2:12] = 1  # IoU 90/110 with 7
    predicted[20:30, 26:36] = 2  # IoU 40/160 with 9: not matched
    found = matches(reference, predicted)
    assert found.index.tolist() == [1]
    assert found.loc[1, "reference_id"] == 7
    assert found.loc[1, "match_iou"] == pytest.approx(90 / 110)
