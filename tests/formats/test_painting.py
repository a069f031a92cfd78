from pathlib import Path

import numpy as np
import pytest
from helpers import reference, shared

from cellbench.classmaps import IGNORE_INDEX, relabel_sequential
from cellbench.formats import labelme
from cellbench.formats.labelme.painting import Footprint, rasterise


def test_rectangle_includes_both_corners():
    mask = rasterise("rectangle", [(5, 4), (2, 1)], 10, 10).full(10, 10)
    assert mask.sum() == 4 * 4 and mask[1, 2] and mask[4, 5]


def test_circle_from_centre_and_rim_point():
    mask = rasterise("circle", [(10, 10), (10, 14)], 21, 21).full(21, 21)
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (6, 14, 6, 14)


def test_polygon_includes_its_outline():
    assert rasterise("polygon", [(1, 1), (4, 1), (4, 4), (1, 4)], 6, 6).area == 16


def test_oriented_rectangle_is_its_four_corner_polygon():
    corners = [(10, 2), (18, 10), (10, 18), (2, 10)]
    assert np.array_equal(rasterise("oriented_rectangle", corners, 21, 21).full(21, 21),
                          rasterise("polygon", corners, 21, 21).full(21, 21))


def test_line_is_ten_pixels_wide_and_point_a_radius_five_disc():
    line = rasterise("line", [(5, 20), (35, 20)], 40, 40).full(40, 40)
    assert line[:, 20].sum() == 10
    point = rasterise("point", [(20, 20)], 40, 40).full(40, 40)
    assert point[20].sum() == 11 and point[:, 20].sum() == 11


def test_window_is_small_and_in_the_right_place():
    footprint = rasterise("polygon", [(300, 200), (310, 200), (310, 210)], 1000, 1000)
    assert footprint.mask.shape[0] < 20 and footprint.mask.shape[1] < 20
    assert footprint.contains(201, 309) and not footprint.contains(209, 301)


def test_shapes_outside_the_image_are_clipped_or_empty():
    assert rasterise("polygon", [(-50, -50), (-40, -50), (-40, -40)], 30, 30).area == 0
    half = rasterise("rectangle", [(-5, -5), (4, 4)], 30, 30)
    assert half.area == 25 and half.full(30, 30)[:5, :5].all()


def test_mask_patch_corner_is_truncated_like_labelme():
    patch = np.ones((2, 3), dtype=bool)
    footprint = rasterise("mask", [(4.9, 1.7), (6.9, 2.7)], 10, 10, patch)
    assert (footprint.top, footprint.left) == (1, 4) and footprint.area == 6


def test_footprint_centre():
    footprint = Footprint(np.array([[0, 1, 1], [0, 1, 1]], dtype=bool), top=10, left=20)
    assert footprint.centre() == (10, 22) or footprint.centre() == (11, 22)
    assert Footprint(np.zeros((2, 2), dtype=bool), 0, 0).centre() is None


# ---- against LabelMe's own code (installed with the bench extra) ----

SHAPE_TYPES = ["polygon", "rectangle", "circle", "line", "linestrip", "point", "oriented_rectangle"]


def _random_points(rng, shape_type, extent):
    n = {"polygon": int(rng.integers(3, 12)), "linestrip": int(rng.integers(2, 6)),
         "point": 1, "oriented_rectangle": 4}.get(shape_type, 2)
    points = rng.uniform(-20, extent + 20, (n, 2))
    if rng.random() < 0.5:  # whole and half pixels, where rounding ties live
        points = np.round(points * 2) / 2
    return points.tolist()


@pytest.mark.parametrize("shape_type", SHAPE_TYPES)
def test_random_shapes_match_labelme_shape_to_mask(shape_type):
    lm_utils = reference("labelme.utils")
    rng = np.random.default_rng(SHAPE_TYPES.index(shape_type))
    for _ in range(300):
        height, width = (int(v) for v in rng.integers(5, 90, 2))
        points = _random_points(rng, shape_type, max(height, width))
        expected = lm_utils.shape_to_mask((height, width), points, shape_type)
        got = rasterise(shape_type, [tuple(p) for p in points], height, width).full(height, width)
        assert np.array_equal(got, expected), (height, width, points)


def test_every_primitive_rasterises_as_labelme_does():
    reference("labelme")
    path = shared("labelme-examples", "primitives") / "primitives.json"
    assert_rasterised_as_labelme(path, {"rectangle", "circle", "polygon", "line", "point", "linestrip", "mask"})


def test_every_primitive_of_the_authored_file_rasterises_as_labelme_does():
    """tests/data/labelme/primitives.json: every shape type, the image embedded, an ignored rectangle."""
    reference("labelme")
    path = Path(__file__).resolve().parents[1] / "data" / "labelme" / "primitives.json"
    assert_rasterised_as_labelme(path, {*SHAPE_TYPES, "mask"}, ignored=["__ignore__"])


def assert_rasterised_as_labelme(path, shape_types, ignored=()):
    lm = reference("labelme")
    label_file = lm.LabelFile(filename=str(path))
    labels = list(dict.fromkeys(s["label"] for s in label_file.shapes if s["label"] not in ignored))
    classes = ["_background_", *labels]
    image = lm.utils.img_data_to_arr(label_file.image_data)
    expected_class, expected_objects = lm.utils.shapes_to_label(
        image.shape, label_file.shapes, {name: i for i, name in enumerate(classes)} | dict.fromkeys(ignored, -1))
    expected_objects[expected_class == -1] = 0

    annotation, problems = labelme.read_annotation(path, classes)
    assert problems == []
    assert {s.shape_type for s in annotation.shapes} == shape_types
    class_map, objects = labelme.to_maps(annotation.shapes, annotation.shape_hw, classes, "file", "labelme")
    assert np.array_equal(class_map, np.where(expected_class == -1, IGNORE_INDEX, expected_class))
    assert np.array_equal(objects, relabel_sequential(expected_objects))
    for shape, raw in zip(annotation.shapes, label_file.shapes, strict=True):  # and shape by shape
        alone_class, _ = lm.utils.shapes_to_label(image.shape, [raw], {raw["label"]: 1})
        footprint = rasterise(shape.shape_type, shape.points, *annotation.shape_hw, shape.mask)
        assert np.array_equal(footprint.full(*annotation.shape_hw), alone_class == 1), shape.shape_type
