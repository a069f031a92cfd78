import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from cellbench import labelme
from cellbench.classmaps import IGNORE_INDEX

CLASSES = ["background", "cytoplasm", "nucleus"]


def write_labelme(folder, shapes, name="a", size=(20, 30), image=True, **fields):
    """A LabelMe file with a grey image beside it; extra fields override the JSON."""
    if image:
        Image.fromarray(np.full((*size, 3), 200, np.uint8)).save(folder / f"{name}.png")
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png",
           "imageData": None, "imageHeight": size[0], "imageWidth": size[1], **fields}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def shape(label, points, shape_type="polygon", group_id=None):
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


CELL = shape("cytoplasm", [[2, 2], [17, 2], [17, 17], [2, 17]], group_id=1)
NUCLEUS = shape("nucleus", [[6, 6], [11, 6], [11, 11], [6, 11]], group_id=1)


def read(path, **kwargs):
    annotation, problems = labelme.read_annotation(path, CLASSES, **kwargs)
    return annotation, problems


def maps(annotation, priority=None):
    return labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES, priority)


def test_rectangle_includes_both_corners():
    rect = labelme.Shape(0, "cytoplasm", "rectangle", [(5, 4), (2, 1)], None)
    mask = labelme.rasterise(rect, 10, 10)
    assert mask.sum() == 4 * 4 and mask[1, 2] and mask[4, 5]


def test_circle_from_centre_and_rim_point():
    circle = labelme.Shape(0, "nucleus", "circle", [(10, 10), (10, 14)], None)
    mask = labelme.rasterise(circle, 21, 21)
    ys, xs = np.nonzero(mask)
    assert (ys.min(), ys.max(), xs.min(), xs.max()) == (6, 14, 6, 14)


def test_polygon_includes_its_outline():
    square = labelme.Shape(0, "cytoplasm", "polygon", [(1, 1), (4, 1), (4, 4), (1, 4)], None)
    assert labelme.rasterise(square, 6, 6).sum() == 16


def test_class_priority_not_file_order_decides_the_top(tmp_path):
    nucleus_first = write_labelme(tmp_path, [NUCLEUS, CELL], "first")
    cell_first = write_labelme(tmp_path, [CELL, NUCLEUS], "second")
    a, _ = read(nucleus_first)
    b, _ = read(cell_first)
    class_a, inst_a = maps(a)
    class_b, inst_b = maps(b)
    assert np.array_equal(class_a, class_b)
    assert (class_a == 2).sum() == 36 and class_a[8, 8] == 2
    assert np.array_equal(inst_a, inst_b) and set(np.unique(inst_a)) == {0, 1}


def test_priority_can_put_cytoplasm_on_top(tmp_path):
    annotation, _ = read(write_labelme(tmp_path, [NUCLEUS, CELL]))
    class_map, _ = maps(annotation, priority=["cytoplasm", "nucleus"])
    assert not (class_map == 2).any()


def test_group_ids_make_one_instance_per_cell(tmp_path):
    other_cell = shape("cytoplasm", [[20, 2], [28, 2], [28, 10], [20, 10]], group_id=2)
    other_nucleus = shape("nucleus", [[23, 5], [25, 5], [25, 7]], group_id=2)
    annotation, _ = read(write_labelme(tmp_path, [CELL, other_nucleus, NUCLEUS, other_cell]))
    _, instances = maps(annotation)
    assert instances.dtype == np.uint16
    assert instances[8, 8] == instances[3, 3] == 1
    assert instances[5, 24] == instances[3, 21] == 2


def test_ungrouped_nucleus_joins_the_cell_containing_it(tmp_path):
    cell = {**CELL, "group_id": None}
    nucleus = {**NUCLEUS, "group_id": None}
    annotation, _ = read(write_labelme(tmp_path, [nucleus, cell]))
    _, instances = maps(annotation)
    assert set(np.unique(instances)) == {0, 1}


def test_labels_are_case_and_space_insensitive_and_aliases_apply(tmp_path):
    shapes = [{**CELL, "label": " Cyto plasm"}, {**NUCLEUS, "label": "Nuclei"}]
    annotation, problems = read(write_labelme(tmp_path, shapes), aliases={"nuclei": "nucleus"})
    assert problems == []
    assert [s.class_name for s in annotation.shapes] == ["cytoplasm", "nucleus"]


def test_unknown_labels_can_be_ignored(tmp_path):
    path = write_labelme(tmp_path, [CELL, {**NUCLEUS, "label": "platelet"}])
    annotation, problems = read(path, unknown_labels="ignore")
    assert problems == [] and len(annotation.shapes) == 1


def test_embedded_image_data_is_used(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), 99, np.uint8)).save(buffer, format="PNG")
    path = write_labelme(tmp_path, [CELL], image=False, imagePath="missing.png",
                         imageData=base64.b64encode(buffer.getvalue()).decode())
    annotation, problems = read(path)
    assert problems == [] and annotation.image.rgb[0, 0, 0] == 99


def test_windows_backslashes_in_image_path(tmp_path):
    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "imgs" / "w.png")
    path = write_labelme(tmp_path, [CELL], image=False, imagePath="imgs\\w.png")
    assert read(path)[1] == []


def test_mask_shape_is_placed_at_its_corner(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.ones((3, 4), np.uint8) * 255).save(buffer, format="PNG")
    mask_shape = {**shape("nucleus", [[5, 2], [8, 4]], "mask"), "mask": base64.b64encode(buffer.getvalue()).decode()}
    annotation, problems = read(write_labelme(tmp_path, [mask_shape]))
    assert problems == []
    class_map, _ = maps(annotation)
    assert class_map[2:5, 5:9].min() == 2 and (class_map == 2).sum() == 12


# ---- malformed input: one clear message naming the file (and the shape) ----

MALFORMED = {
    "unknown label": ([{**CELL, "label": "platelet"}], {}, "shape 0: unknown label 'platelet'"),
    "too few polygon points": ([shape("cytoplasm", [[1, 1], [3, 3]])], {}, "needs at least 3 points"),
    "rectangle with three points": ([shape("cytoplasm", [[1, 1], [3, 3], [4, 4]], "rectangle")], {},
                                    "exactly 2 points"),
    "unsupported shape type": ([shape("cytoplasm", [[1, 1], [3, 3]], "ellipse")], {}, "unsupported shape_type"),
    "non-numeric point": ([shape("cytoplasm", [[1, 1], ["a", 3], [4, 4]])], {}, "not a pair of finite numbers"),
    "nan point": ([shape("cytoplasm", [[1, 1], [float("nan"), 3], [4, 4]])], {}, "not a pair of finite numbers"),
    "missing label": ([{"points": [[1, 1], [2, 2], [3, 1]]}], {}, "missing label"),
    "shape not an object": (["cytoplasm"], {}, "shape 0: not an object"),
    "points not a list": ([shape("cytoplasm", "1,2")], {}, "points is not a list"),
    "bad group id": ([shape("cytoplasm", [[1, 1], [5, 1], [5, 5]], group_id="one")], {}, "group_id"),
    "image missing": ([CELL], {"imagePath": "nowhere.png"}, "image not found"),
    "no image at all": ([CELL], {"imagePath": None}, "no imagePath and no imageData"),
    "size mismatch": ([CELL], {"imageHeight": 99}, "imageHeight x imageWidth = 99 x 30"),
    "undecodable image data": ([CELL], {"imageData": "bm90IGFuIGltYWdl"}, "imageData cannot be decoded"),
    "bad mask patch": ([{**shape("nucleus", [[1, 1], [3, 3]], "mask"), "mask": "xx"}], {}, "mask patch"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_shapes_and_fields_are_reported(tmp_path, case):
    shapes, fields, expected = MALFORMED[case]
    path = write_labelme(tmp_path, shapes, **fields)
    annotation, problems = read(path)
    assert annotation is None
    assert len(problems) == 1, problems
    assert problems[0].file == path
    assert expected in str(problems[0])


def test_malformed_json_gives_line_and_column(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"shapes": [\n  {"label": "cytoplasm",,}\n]}')
    annotation, problems = read(path)
    assert annotation is None and "malformed JSON at line 2" in str(problems[0])
    assert str(path) in str(problems[0])


@pytest.mark.parametrize("content, expected", [("[1, 2]", "top level is not an object"),
                                               ('{"version": "5"}', "'shapes' list missing")])
def test_not_a_labelme_file(tmp_path, content, expected):
    path = tmp_path / "x.json"
    path.write_text(content)
    assert expected in str(read(path)[1][0])


def test_every_problem_of_a_file_is_reported(tmp_path):
    path = write_labelme(tmp_path, [{**CELL, "label": "platelet"}, shape("nucleus", [[1, 1]])],
                         imagePath="nowhere.png")
    _, problems = read(path)
    assert len(problems) == 3


def test_alias_to_unknown_class_is_a_config_error():
    with pytest.raises(ValueError, match="not a class"):
        labelme.label_lookup(CLASSES, {"cell": "membrane"})


def test_relabel_sequential_keeps_order():
    out = labelme.relabel_sequential(np.array([[0, 7, 3], [7, 0, 3]]))
    assert out.tolist() == [[0, 2, 1], [2, 0, 1]] and out.dtype == np.uint16


# ---- ignore regions, file order, LabelMe's object grouping ----

IGNORE = shape("__ignore__", [[0, 0], [4, 0], [4, 4], [0, 4]])


def test_ignore_label_becomes_the_ignore_index_and_no_object(tmp_path):
    annotation, problems = read(write_labelme(tmp_path, [IGNORE, CELL]))
    assert problems == []
    class_map, instances = maps(annotation)
    assert class_map[1, 1] == IGNORE_INDEX and class_map[3, 3] == IGNORE_INDEX  # on top of the cell
    assert instances[3, 3] == 0 and instances[8, 8] == 1


def test_file_order_paints_later_shapes_on_top(tmp_path):
    annotation, _ = read(write_labelme(tmp_path, [NUCLEUS, CELL]))
    class_map, _ = maps(annotation, priority="file")
    assert not (class_map == 2).any()  # the cytoplasm listed last covers the nucleus, as in LabelMe


def test_labelme_instance_mode_keeps_labels_apart(tmp_path):
    annotation, _ = read(write_labelme(tmp_path, [CELL, NUCLEUS]))
    _, cells = labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES, None, "cell")
    _, objects = labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES, None, "labelme")
    assert cells.max() == 1 and objects.max() == 2 and objects[8, 8] != objects[3, 3]
