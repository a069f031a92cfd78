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


def _whole_image_watershed(class_map, members, seeds):
    """The reference: one seeded watershed of the whole image's distance map (what cellbench did
    for every image below 4096 x 4096 until 2026-12)."""
    from skimage.segmentation import watershed

    from cellbench.classmaps import sequential
    region = np.isin(class_map, members)
    components, _ = ndimage.label(region)
    markers, n_markers = ndimage.label(np.isin(class_map, seeds) & region)
    seeded = np.zeros(components.max() + 1, bool)
    seeded[components[markers > 0]] = True
    seeded[0] = False
    cells = np.where(seeded[components] | (components == 0), 0, components + n_markers)
    markers = np.where(cells > 0, cells, markers)
    return sequential(watershed(-ndimage.distance_transform_edt(region), markers, mask=region))[0]


def test_one_component_at_a_time_gives_the_objects_of_one_watershed_of_the_whole_image():
    """Each seeded component is flooded alone in its box (one seed: no flooding at all): the same
    objects as one watershed of the whole image, with the same ids, and the same pixels but where two
    seeds are equally far (the queue decides those ties). Touching cells, cells with up to three
    nuclei, cells without one, cells cut by the image border, 40 random images."""
    objects = agree = total = exact = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        height, width = rng.integers(50, 220, 2)
        class_map = np.zeros((height, width), np.uint8)
        yy, xx = np.ogrid[:height, :width]
        for _ in range(rng.integers(5, 80)):
            y, x, r = rng.integers(-5, height + 5), rng.integers(-5, width + 5), rng.integers(3, 16)
            class_map[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = 1
            for _ in range(rng.integers(0, 4)):
                dy, dx = rng.integers(-r // 2, r // 2 + 1, 2)
                class_map[(yy - y - dy) ** 2 + (xx - x - dx) ** 2 < max(r // 3, 1) ** 2] = 2
        ours = predicted_objects(class_map, [1, 2], [2])
        theirs = _whole_image_watershed(class_map, [1, 2], [2])
        assert ours.max() == theirs.max() and np.array_equal(ours > 0, theirs > 0)
        objects += ours.max()
        agree += np.count_nonzero((ours == theirs) & (ours > 0))
        total += np.count_nonzero(ours)
        exact += np.array_equal(ours, theirs)
    assert objects > 1000 and agree / total > 0.999 and exact >= 30


def test_a_component_alone_has_the_distances_of_the_whole_image():
    from cellbench.inference.objects import own_distance
    rng = np.random.default_rng(0)
    for _ in range(20):
        region = ndimage.binary_opening(rng.random((60, 70)) < 0.6)
        whole = ndimage.distance_transform_edt(region)
        components, _ = ndimage.label(region)
        for index, box in enumerate(ndimage.find_objects(components), start=1):
            mine = components[box] == index
            np.testing.assert_array_equal(own_distance(mine, box, region.shape)[mine], whole[box][mine])


def test_border_output_parts_touching_objects_without_seeds():
    class_map = np.zeros((12, 20), np.uint8)
    class_map[2:10, 2:18] = 1
    assert predicted_objects(class_map, [1]).max() == 1  # classes alone: one blob
    class_map[2:10, 9:11] = 2  # the border output of a boundary-target model
    nuclei = predicted_objects(class_map, [1], border=2)
    assert nuclei.max() == 2 and nuclei[5, 3] != nuclei[5, 16]
    assert (nuclei > 0).sum() == 8 * 16  # the border pixels are given to the objects they separate
    assert nuclei[5, 9] == nuclei[5, 3] and nuclei[5, 10] == nuclei[5, 16]
