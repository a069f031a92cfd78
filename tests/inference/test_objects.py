import numpy as np
import pytest
from scipy import ndimage

from cellbench.errors import ConfigError
from cellbench.inference.objects import object_types, objects_of, post_process, predicted_objects, truth_objects

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
    assert types == {"cell": {"classes": [1, 2], "seeds": [2], "min_size": 0, "min_size_set": False,
                              "fill_holes": False},
                     "nucleus": {"classes": [2], "seeds": [], "min_size": 0, "min_size_set": False,
                                 "fill_holes": False}}


def test_default_object_types_that_do_not_fit_are_skipped_and_chosen_ones_are_errors():
    plain = {"seeds": [], "min_size": 0, "min_size_set": False, "fill_holes": False}
    assert object_types(["background", "nucleus"], SPEC) == {"nucleus": {"classes": [1], **plain}}
    assert object_types(["background", "cell"], SPEC) == {"cell": {"classes": [1], **plain}}  # derived
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


def test_post_processing_fills_each_objects_holes_then_drops_small_ones():
    instances = np.zeros((20, 30), np.int32)
    instances[2:9, 2:9] = 1
    instances[4:6, 4:6] = 0  # a 4-pixel hole inside object 1
    instances[12:18, 2:8] = 2
    instances[12:18, 8:14] = 3  # touches 2: the gap below is enclosed by both, not by either alone
    instances[14, 7:9] = 0
    instances[1:3, 20:22] = 4  # 4 pixels: below min_size
    instances[10:19, 20:29] = 5
    instances[14, 24] = 0  # a one-pixel hole of 5
    out = post_process(instances, min_size=5, fill_holes=True)
    assert out.max() == 4  # object 4 dropped, ids made 1..N again
    assert (out[2:9, 2:9] == 1).all()
    assert out[14, 24] == 4 and (out[10:19, 20:29] == 4).all()
    assert (out[1:3, 20:22] == 0).all()
    assert out[14, 7] == 0 and out[14, 8] == 0  # no single object encloses this gap
    assert np.array_equal(post_process(instances), instances)  # nothing asked, nothing changed


def test_post_processing_applies_to_predicted_objects():
    class_map = np.zeros((12, 12), np.uint8)
    class_map[1:8, 1:8] = 1
    class_map[3, 3] = 0
    class_map[10, 10] = 1
    plain = predicted_objects(class_map, [1])
    assert plain.max() == 2 and plain[3, 3] == 0
    cleaned = objects_of(class_map, {"classes": [1], "seeds": [], "min_size": 2, "fill_holes": True})
    assert cleaned.max() == 1 and cleaned[3, 3] == 1 and cleaned[10, 10] == 0


def test_whole_slides_split_cells_one_object_at_a_time_like_the_whole_image(monkeypatch):
    """Above WHOLE_IMAGE_WATERSHED_PIXELS each seeded component is flooded in its own box (bounded
    memory): the same objects, up to the order of pixels of equal priority."""
    from cellbench.inference import objects
    rng = np.random.default_rng(3)
    class_map = np.zeros((160, 200), np.uint8)
    for _ in range(40):
        y, x, r = rng.integers(10, 150), rng.integers(10, 190), rng.integers(5, 12)
        yy, xx = np.ogrid[:160, :200]
        class_map[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = 1
        class_map[(yy - y) ** 2 + (xx - x) ** 2 < (r // 3) ** 2] = 2
    whole = predicted_objects(class_map, [1, 2], [2])
    monkeypatch.setattr(objects, "WHOLE_IMAGE_WATERSHED_PIXELS", 0)
    boxed = predicted_objects(class_map, [1, 2], [2])
    assert whole.max() == boxed.max() > 20 and np.array_equal(whole > 0, boxed > 0)
    assert (whole == boxed).mean() > 0.999
    components, n = ndimage.label(class_map > 0)
    alone = [ids for c in range(1, n + 1) if len(ids := np.unique(boxed[components == c])) == 1]
    assert alone and all(np.array_equal(whole == i, boxed == i) for (i,) in alone)  # one seed: flooded whole


def test_border_output_parts_touching_objects_without_seeds():
    class_map = np.zeros((12, 20), np.uint8)
    class_map[2:10, 2:18] = 1
    assert predicted_objects(class_map, [1]).max() == 1  # classes alone: one blob
    class_map[2:10, 9:11] = 2  # the border output of a boundary-target model
    nuclei = predicted_objects(class_map, [1], border=2)
    assert nuclei.max() == 2 and nuclei[5, 3] != nuclei[5, 16]
    assert (nuclei > 0).sum() == 8 * 16  # the border pixels are given to the objects they separate
    assert nuclei[5, 9] == nuclei[5, 3] and nuclei[5, 10] == nuclei[5, 16]
