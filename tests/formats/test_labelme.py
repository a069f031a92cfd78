import base64
import io
import json

import numpy as np
import pytest
from helpers import CELL, NUCLEUS, make_config, shape, write_labelme
from PIL import Image

from cellbench.dataset.ingest import ingest
from cellbench.errors import InputError
from cellbench.formats import labelme

CLASSES = ["background", "cytoplasm", "nucleus"]


def read(path, **kwargs):
    annotation, problems = labelme.read_annotation(path, CLASSES, **kwargs)
    return annotation, problems


def test_labels_are_case_and_space_insensitive_and_aliases_apply(tmp_path):
    shapes = [{**CELL, "label": " Cyto plasm"}, {**NUCLEUS, "label": "Nuclei"}]
    annotation, problems = read(write_labelme(tmp_path, shapes), aliases={"nuclei": "nucleus"})
    assert problems == []
    assert [s.class_name for s in annotation.shapes] == ["cytoplasm", "nucleus"]


def test_unknown_labels_can_be_ignored(tmp_path):
    path = write_labelme(tmp_path, [CELL, {**NUCLEUS, "label": "platelet"}])
    annotation, problems = read(path, unknown_labels="ignore")
    assert problems == [] and len(annotation.shapes) == 1


def test_unknown_labels_can_be_mapped_to_a_class(tmp_path):
    path = write_labelme(tmp_path, [CELL, {**NUCLEUS, "label": "platelet"}, {**NUCLEUS, "label": "debris"}])
    annotation, problems = read(path, unknown_labels="__ignore__")
    assert problems == [] and [s.class_name for s in annotation.shapes] == ["cytoplasm", "__ignore__", "__ignore__"]


def test_unknown_label_policy_must_name_a_class(tmp_path):
    with pytest.raises(ValueError, match="unknown_labels must be"):
        read(write_labelme(tmp_path, [CELL]), unknown_labels="platelets")


def test_unknown_labels_are_each_reported_with_their_shape(tmp_path):
    path = write_labelme(tmp_path, [{**CELL, "label": "platelet"}, CELL, {**NUCLEUS, "label": "Debris"}])
    _, problems = read(path)
    assert [p.message for p in problems] == ["shape 0: unknown label 'platelet'", "shape 2: unknown label 'Debris'"]
    assert "label_aliases" in problems[0].hint


# ---- files written by every LabelMe generation ----

SQUARE = [[2, 2], [17, 2], [17, 17], [2, 17]]
GENERATIONS = {  # version -> (shape as that version wrote it, top-level fields, top-level keys it lacked)
    # 3.x: no shape_type, no group_id, colours per shape and file, no image size, integer points
    "3.16.7": ({"label": "cytoplasm", "line_color": None, "fill_color": None, "points": SQUARE},
               {"lineColor": [0, 255, 0, 128], "fillColor": [255, 0, 0, 128]}, ("imageHeight", "imageWidth")),
    # 4.x: shape_type, group_id and flags appear
    "4.5.13": ({"label": "cytoplasm", "points": SQUARE, "group_id": None, "shape_type": "polygon", "flags": {}},
               {}, ()),
    # 5.x: description and mask appear
    "5.4.1": ({**shape("cytoplasm", SQUARE), "description": "", "mask": None}, {}, ()),
    # 7.x: extra keys we do not use are kept out of the way
    "7.1.0": ({**shape("cytoplasm", [[float(x), float(y)] for x, y in SQUARE]), "description": None,
               "mask": None, "other": {"score": 0.9}}, {"flags": None}, ()),
}


@pytest.mark.parametrize("version", sorted(GENERATIONS))
def test_files_of_every_labelme_generation_read_alike(tmp_path, version):
    raw_shape, fields, lacking = GENERATIONS[version]
    path = write_labelme(tmp_path, [raw_shape], version=version, **fields)
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({k: v for k, v in doc.items() if k not in lacking}))
    annotation, problems = read(path)
    assert problems == []
    [parsed] = annotation.shapes
    assert (parsed.class_name, parsed.shape_type, parsed.group_id) == ("cytoplasm", "polygon", None)
    assert parsed.points == [(float(x), float(y)) for x, y in SQUARE]


def test_oriented_rectangle_shape_is_read(tmp_path):
    corners = [[10, 2], [18, 10], [10, 18], [2, 10]]
    annotation, problems = read(write_labelme(tmp_path, [shape("nucleus", corners, "oriented_rectangle")]))
    assert problems == [] and annotation.shapes[0].shape_type == "oriented_rectangle"

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
    "undecodable image data": ([CELL], {"imageData": "bm90IGFuIGltYWdl"}, "imageData cannot be read"),
    "bad mask patch": ([{**shape("nucleus", [[1, 1], [3, 3]], "mask"), "mask": "xx"}], {}, "mask patch"),
    "mask patch of the wrong size": ([{**shape("nucleus", [[1, 1], [3, 3]], "mask"), "mask": "PATCH_2x5"}], {},
                                     "mask patch is 2 x 5 px but its box (1, 1)-(3, 3) is 3 x 3 px"),
    "oriented rectangle with three points": ([shape("cytoplasm", [[1, 1], [5, 1], [5, 5]], "oriented_rectangle")],
                                             {}, "exactly 4 points"),
    "empty points": ([shape("cytoplasm", [])], {}, "needs at least 3 points, got 0"),
    "label not a string": ([{**CELL, "label": 3}], {}, "shape 0: label is the number 3, not a string"),
    "declared width mismatch": ([CELL], {"imageWidth": 31}, "imageHeight x imageWidth = 20 x 31"),
}


def _png_b64(array: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_shapes_and_fields_are_reported(tmp_path, case):
    shapes, fields, expected = MALFORMED[case]
    shapes = [{**s, "mask": _png_b64(np.ones((2, 5), np.uint8))} if isinstance(s, dict) and s.get("mask") == "PATCH_2x5"
              else s for s in shapes]
    folder = tmp_path / "annotations"
    folder.mkdir()
    write_labelme(folder, [CELL, NUCLEUS], name="good")
    path = write_labelme(folder, shapes, **fields)
    annotation, problems = read(path)
    assert annotation is None
    assert len(problems) == 1, problems
    assert problems[0].file == path
    assert expected in str(problems[0])

    before = {p.name: p.read_bytes() for p in folder.iterdir()}  # and through ingest: one message, no output
    with pytest.raises(InputError) as err:
        ingest(make_config(folder), tmp_path / "data")
    assert [str(p) for p in err.value.problems] == [str(problems[0])]
    assert not (tmp_path / "data").exists() and not list(tmp_path.glob(".data*"))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


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


