import json

import numpy as np
import pytest
from helpers import reference, shared
from PIL import Image

from cellbench.cli import main
from cellbench.errors import InputError
from cellbench.formats import labelme
from cellbench.formats.class_masks import grey_levels, read_class_mask
from cellbench.formats.labelme.export import export, map_shapes, mask_polygons

CLASSES = ["background", "cytoplasm", "nucleus"]
PRIORITY = ["nucleus", "cytoplasm"]


def disc(shape, centre, radius):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def cells_map(shape=(80, 120)):
    """Two cells, each a cytoplasm disc with a nucleus inside; the second has two nucleus lobes."""
    class_map = np.zeros(shape, np.uint8)
    class_map[disc(shape, (40, 30), 22)] = 1
    class_map[disc(shape, (40, 30), 9)] = 2
    class_map[disc(shape, (40, 90), 20)] = 1
    class_map[disc(shape, (34, 84), 6)] = 2
    class_map[disc(shape, (46, 97), 5)] = 2
    return class_map


def reimport(shapes, shape_hw):
    return labelme.to_maps(labelme.parse_shapes(shapes, CLASSES), shape_hw, CLASSES, PRIORITY)


def dice(a, b):
    return 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))


def test_unsimplified_polygons_give_the_mask_back_exactly():
    mask = disc((40, 40), (20, 18), 11) | disc((40, 40), (5, 34), 2)
    polygons = mask_polygons(mask, tolerance=0)
    assert len(polygons) == 2
    shapes = [{"label": "nucleus", "points": p, "shape_type": "polygon"} for p in polygons]
    class_map, _ = reimport(shapes, mask.shape)
    assert np.array_equal(class_map == 2, mask)


def test_tiny_objects_survive():
    mask = np.zeros((10, 10), bool)
    mask[2, 2] = mask[6, 6:8] = True
    shapes = [{"label": "nucleus", "points": p, "shape_type": "polygon"} for p in mask_polygons(mask)]
    class_map, _ = reimport(shapes, mask.shape)
    assert np.array_equal(class_map == 2, mask)


def test_one_group_per_cell_with_the_cytoplasm_as_the_cell_outline():
    class_map = cells_map()
    shapes = map_shapes(class_map, CLASSES, PRIORITY, tolerance=0)
    assert [(s["label"], s["group_id"]) for s in shapes] == [
        ("cytoplasm", 1), ("nucleus", 1), ("cytoplasm", 2), ("nucleus", 2), ("nucleus", 2)]
    back, instances = reimport(shapes, class_map.shape)
    assert np.array_equal(back, class_map)
    assert instances.max() == 2 and instances[40, 30] == instances[40, 10] != instances[40, 90]


def test_simplified_polygons_stay_close():
    class_map = cells_map()
    shapes = map_shapes(class_map, CLASSES, PRIORITY)  # default tolerance: 1 px
    back, _ = reimport(shapes, class_map.shape)
    assert sum(len(s["points"]) for s in shapes) < 0.5 * sum(len(s["points"]) for s in map_shapes(
        class_map, CLASSES, PRIORITY, tolerance=0))
    assert dice(back == 1, class_map == 1) > 0.95 and dice(back == 2, class_map == 2) > 0.95


def write_inputs(tmp_path, class_map):
    (tmp_path / "masks").mkdir()
    (tmp_path / "images").mkdir()
    Image.fromarray(class_map).save(tmp_path / "masks" / "s1.png")
    Image.fromarray(np.full((*class_map.shape, 3), 180, np.uint8)).save(tmp_path / "images" / "s1.png")
    return sorted((tmp_path / "masks").glob("*.png")), {"s1": tmp_path / "images" / "s1.png"}


def test_export_writes_files_that_import_with_a_relative_image_path(tmp_path):
    masks, images = write_inputs(tmp_path, cells_map())
    assert export(masks, images, tmp_path / "out", CLASSES, PRIORITY) == 1
    doc = json.loads((tmp_path / "out" / "s1.json").read_text())
    assert doc["imagePath"] == "../images/s1.png" and doc["imageData"] is None
    annotation, problems = labelme.read_annotation(tmp_path / "out" / "s1.json", CLASSES)
    assert problems == [] and annotation.shape_hw == (80, 120)


def test_exported_file_opens_in_labelme(tmp_path):
    lm = reference("labelme")
    masks, images = write_inputs(tmp_path, cells_map())
    export(masks, images, tmp_path / "out", CLASSES, PRIORITY)
    label_file = lm.LabelFile(filename=str(tmp_path / "out" / "s1.json"))
    assert len(label_file.shapes) == 5 and {s["group_id"] for s in label_file.shapes} == {1, 2}


@pytest.mark.parametrize("problem", ["bad values", "missing image", "size mismatch"])
def test_export_problems_name_the_file_and_write_nothing(tmp_path, problem):
    class_map = cells_map()
    if problem == "bad values":
        class_map[0, 0] = 7
    masks, images = write_inputs(tmp_path, class_map)
    if problem == "missing image":
        images = {}
    elif problem == "size mismatch":
        Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(images["s1"])
    with pytest.raises(InputError) as err:
        export(masks, images, tmp_path / "out", CLASSES, PRIORITY)
    assert "s1.png" in str(err.value)
    assert not (tmp_path / "out").exists()


def test_export_command(tmp_path):
    write_inputs(tmp_path, cells_map())
    status = main(["export-labelme", "--masks", str(tmp_path / "masks"), "--images", str(tmp_path / "images"),
                   "--out", str(tmp_path / "out"), "--config-json", json.dumps({"results": str(tmp_path)})])
    assert status == 0 and (tmp_path / "out" / "s1.json").is_file()


def test_wbc_expert_masks_round_trip_through_labelme_files():
    root = shared("wbc", "masks")
    table = grey_levels({"background": 0, "cytoplasm": 128, "nucleus": 255}, CLASSES)
    scores = {1: [], 2: []}
    for path in sorted(root.glob("*.png")):
        class_map, _, _ = read_class_mask(path, table)
        back, _ = reimport(map_shapes(class_map, CLASSES, PRIORITY), class_map.shape)
        for c in scores:
            scores[c].append(dice(back == c, class_map == c))
    assert len(scores[1]) == 100 and min(scores[2]) > 0.8  # no nucleus lost
    assert np.mean(scores[1]) >= 0.98 and np.mean(scores[2]) >= 0.98  # measured: 0.9861 and 0.9917
