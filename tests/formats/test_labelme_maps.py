import base64
import io

import numpy as np
from helpers import CELL, NUCLEUS, shape, write_labelme
from PIL import Image

from cellbench.classmaps import IGNORE_INDEX
from cellbench.formats import labelme

CLASSES = ["background", "cytoplasm", "nucleus"]


def read(path, **kwargs):
    annotation, problems = labelme.read_annotation(path, CLASSES, **kwargs)
    return annotation, problems


def maps(annotation, priority=None):
    return labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES, priority)


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


def test_mask_shape_is_placed_at_its_corner(tmp_path):
    buffer = io.BytesIO()
    Image.fromarray(np.ones((3, 4), np.uint8) * 255).save(buffer, format="PNG")
    mask_shape = {**shape("nucleus", [[5, 2], [8, 4]], "mask"), "mask": base64.b64encode(buffer.getvalue()).decode()}
    annotation, problems = read(write_labelme(tmp_path, [mask_shape]))
    assert problems == []
    class_map, _ = maps(annotation)
    assert class_map[2:5, 5:9].min() == 2 and (class_map == 2).sum() == 12


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


def test_ungrouped_shapes_join_the_same_containers_as_a_search_over_every_shape():
    """The grid index of maps._object_keys finds exactly what comparing every pair finds."""
    from cellbench.formats.labelme.maps import _object_keys
    from cellbench.formats.labelme.painting import rasterise
    rng = np.random.default_rng(5)
    classes = ["background", "cytoplasm", "nucleus"]
    raw = []
    for _ in range(300):  # nested, overlapping, huge and tiny shapes over several grid cells
        cx, cy, r = rng.uniform(0, 400), rng.uniform(0, 300), rng.choice([3.0, 15.0, 60.0, 200.0])
        label = "nucleus" if rng.random() < 0.5 else "cytoplasm"
        angles = np.linspace(0, 2 * np.pi, 9, endpoint=False)
        raw.append({"label": label, "points": [[cx + r * np.cos(a), cy + r * np.sin(a)] for a in angles],
                    "group_id": None, "shape_type": "polygon"})
    shapes = labelme.parse_shapes(raw, classes)
    footprints = [rasterise(s.shape_type, s.points, 300, 400, s.mask) for s in shapes]
    rank = labelme.paint_order(classes, None)
    keys = _object_keys(shapes, footprints, rank, "cell")
    expected = [("shape", s.index) for s in shapes]
    for i, one in enumerate(shapes):
        centre = footprints[i].centre()
        if centre is None:
            continue
        containers = [j for j, other in enumerate(shapes)
                      if rank[other.class_name] < rank[one.class_name] and footprints[j].contains(*centre)]
        if containers:
            expected[i] = expected[min(containers, key=lambda j: footprints[j].area)]
    assert keys == expected
    assert sum(k != ("shape", s.index) for k, s in zip(keys, shapes, strict=True)) > 50  # many joined
