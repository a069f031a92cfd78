"""Property-based fuzzing of the LabelMe reader (issue 12): valid documents, mutated anywhere (any
JSON type at any path, huge/tiny/non-finite numbers, huge ints, deep nesting, long lists, deleted
keys, wrong images), are either accepted and rasterised, or give InputProblems naming the file,
never another exception, and never the last-resort "internal error" message.

CELLBENCH_FUZZ_EXAMPLES=5000 runs a longer search than the default 200 (+ 40 folders).
"""

import base64
import copy
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from helpers import EPS, make_config, png_bomb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from PIL import Image

from cellbench.dataset.ingest import find_problems
from cellbench.errors import InputProblem
from cellbench.formats import labelme

CLASSES = ["background", "cytoplasm", "nucleus"]
HEIGHT, WIDTH = 24, 32
EXAMPLES = int(os.environ.get("CELLBENCH_FUZZ_EXAMPLES", "200"))
FUZZ = settings(deadline=None, database=None, max_examples=EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _encode(array: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


IMAGE = _encode(np.full((HEIGHT, WIDTH, 3), 180, np.uint8))
PATCH = _encode(np.eye(4, 5, dtype=np.uint8) * 255)  # a mask patch for the box (3, 2)-(7, 5)
OTHER_IMAGES = [  # what may replace the image file, the imageData or a mask patch
    IMAGE, PATCH, png_bomb(30000, 30000), png_bomb(60000, 1), EPS, b"", b"\x89PNG\r\n\x1a\n", IMAGE[:60],
    b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", b"%PDF-1.4\n", _encode(np.zeros((HEIGHT, WIDTH), np.uint16)),
    _encode(np.zeros((HEIGHT, WIDTH, 3), np.uint8), "JPEG"), _encode(np.zeros((HEIGHT, WIDTH, 3), np.uint8), "BMP"),
    _encode(np.zeros((HEIGHT, WIDTH), np.float32), "TIFF"), _encode(np.zeros((7, 5, 4), np.uint8)),
]


def _shape(label, points, shape_type, group_id=None, **extra):
    return {"label": label, "points": points, "group_id": group_id, "description": "", "shape_type": shape_type,
            "flags": {}, "mask": None, **extra}


def _document(shapes, image_data=None):
    return {"version": "5.7.0", "flags": {}, "shapes": shapes, "imagePath": "a.png",
            "imageData": image_data, "imageHeight": HEIGHT, "imageWidth": WIDTH}


BASES = [
    _document([_shape("cytoplasm", [[2, 2], [20, 3], [18, 19], [3, 17]], "polygon", 1),
               _shape("nucleus", [[8, 8], [8, 12]], "circle", 1),
               _shape("Nucleus", [[22, 2], [30, 9]], "rectangle"),
               _shape("cytoplasm", [[1, 22], [30, 22]], "line"),
               _shape("__ignore__", [[25, 15]], "point")]),
    _document([_shape("cytoplasm", [[2.5, 2.5], [12.25, 2], [20, 10.5]], "linestrip"),
               _shape("nucleus", [[10, 2], [18, 10], [10, 18], [2, 10]], "oriented_rectangle", 3),
               _shape("nucleus", [[3, 2], [7, 5]], "mask", mask=base64.b64encode(PATCH).decode())],
              image_data=base64.b64encode(IMAGE).decode()),
    {"version": "3.16.7", "shapes": [{"label": "cytoplasm", "line_color": None, "fill_color": None,
                                      "points": [[2, 2], [17, 2], [17, 17], [2, 17]]}],
     "lineColor": [0, 255, 0, 128], "imagePath": "a.png", "imageData": None},
]

DEEP, BIG_INT = "\u0000deep\u0000", "\u0000bigint\u0000"  # replaced in the JSON text by what json.dumps cannot write
NUMBERS = st.one_of(
    st.integers(-40, 40), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -1, 1e6, 1e6 + 1, -1e6 - 0.5, 1e5, 100_001, 2 ** 31, 2 ** 63, -2 ** 64, 10 ** 30, 10 ** 400,
                     -10 ** 4000, 1e308, -1e308, 5e-324, 1e-300, float("nan"), float("inf"), float("-inf"), 0.5]))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12),
                    st.sampled_from(["", "polygon", "circle", "mask", "rectangle", "point", "cytoplasm", "nucleus",
                                     "__ignore__", "a.png", "../a.png", "/", ".", "a\u0000.png", "x" * 5000, "é",
                                     "iVBORw0KGgo=", DEEP, BIG_INT]))
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=6), inner, max_size=3)),
                      max_leaves=8)


def _paths(value, path=()):
    """Every path (keys and indices) in a JSON value, the root included."""
    yield path
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        yield from _paths(child, (*path, key))


def _get(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@st.composite
def mutated(draw):
    """(JSON bytes, the image file beside it): a valid document after one to four mutations."""
    doc = copy.deepcopy(draw(st.sampled_from(BASES)))
    image = IMAGE
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["replace", "replace", "number", "delete", "repeat", "wrap", "string",
                                   "image", "imageData", "patch", "size"]))
        path = draw(st.sampled_from(list(_paths(doc))))
        if op == "image":
            image = draw(st.sampled_from(OTHER_IMAGES))
        elif op in ("imageData", "patch"):
            data = base64.b64encode(draw(st.sampled_from(OTHER_IMAGES))).decode()
            masks = [s for s in doc.get("shapes", []) if isinstance(s, dict) and "mask" in s] \
                if isinstance(doc, dict) and isinstance(doc.get("shapes"), list) else []
            if op == "imageData" and isinstance(doc, dict):
                doc["imageData"] = data
            elif masks:
                draw(st.sampled_from(masks))["mask"] = data
        elif op == "size" and isinstance(doc, dict):
            doc[draw(st.sampled_from(["imageHeight", "imageWidth"]))] = draw(NUMBERS | SCALARS)
        elif not path:
            doc = draw(VALUES) if op == "replace" else doc
        else:
            parent, key = _get(doc, path[:-1]), path[-1]
            value = parent[key]
            if op == "replace":
                parent[key] = draw(VALUES)
            elif op == "number":
                parent[key] = draw(NUMBERS)
            elif op == "delete":
                del parent[key]
            elif op == "repeat" and isinstance(value, list) and value:
                value.extend(value * draw(st.sampled_from([1, 2, 50, 2000 // len(value)])))
            elif op == "wrap":
                parent[key] = draw(st.sampled_from([[value], {"value": value}, [value, value]]))
            elif op == "string" and not isinstance(value, (dict, list)):
                parent[key] = str(value)
    text = json.dumps(doc).replace(json.dumps(DEEP), "[" * 100_000 + "]" * 100_000)
    text = text.replace(json.dumps(BIG_INT), "9" * 5000)
    raw = text.encode()
    damage = draw(st.sampled_from(["none"] * 6 + ["bom", "truncate", "latin-1"]))
    if damage == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif damage == "truncate":
        raw = raw[:draw(st.integers(0, len(raw)))]
    elif damage == "latin-1":
        raw = raw.replace(b"a", b"\xe4", 1)
    return raw, image


def _check(path: Path, annotation, problems):
    assert all(isinstance(p, InputProblem) for p in problems)
    messages = "\n".join(str(p) for p in problems)
    assert "internal error" not in messages, messages
    if annotation is None:
        assert problems and all(p.file == path for p in problems), messages
        event("reported: " + problems[0].message.split(" (")[0].split(": ")[-1][:40])
        return
    event("accepted")
    assert problems == []
    class_map, instance_map = labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES)
    assert class_map.shape == instance_map.shape == annotation.shape_hw


@FUZZ
@given(mutated())
def test_one_mutated_file_is_read_or_reported(case):
    raw, image = case
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "a.json"
        path.write_bytes(raw)
        (Path(folder) / "a.png").write_bytes(image)
        _check(path, *labelme.read_annotation(path, CLASSES))


@settings(FUZZ, max_examples=max(40, EXAMPLES // 5))
@given(st.lists(mutated(), min_size=2, max_size=4))
def test_a_folder_of_mutated_files_lists_each_files_problems(cases):
    with tempfile.TemporaryDirectory() as folder:
        files = []
        for number, (raw, image) in enumerate(cases):
            sub = Path(folder) / f"f{number}.json"  # the JSON names a.png: one image per subfolder is not
            sub.write_bytes(raw)                    # possible in a flat folder, so all share the last one
            files.append(sub)
            (Path(folder) / "a.png").write_bytes(image)
        found = find_problems(make_config(Path(folder)))
        good, problems = found.good, found.problems
        messages = "\n".join(str(p) for p in problems)
        assert "internal error" not in messages, messages
        assert {p.file for p in problems} <= set(files), messages
        assert good + len({p.file for p in problems}) == len(files)
