"""Hostile but well-formed input: every case is one problem naming the file (and the shape), never
an exception, and the other files' problems are still all listed (issue 12)."""

import base64
import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from helpers import CELL, EPS, NUCLEUS, make_config, png_bomb, shape, write_labelme
from PIL import Image

from cellbench.cli import main
from cellbench.dataset.ingest import find_problems
from cellbench.formats import labelme

CLASSES = ["background", "cytoplasm", "nucleus"]
TOO_MANY = "more than data.max_pixels = 100000000"


def _text(folder, text, name="a"):
    """A LabelMe file written as raw JSON text (for what json.dumps cannot write), grey image beside it."""
    write_labelme(folder, [], name=name)
    path = folder / f"{name}.json"
    path.write_text(text)
    return path


def _doc_text(**fields_as_json):
    """A valid document's JSON text with some fields replaced by raw JSON text."""
    doc = {"version": "5.4.1", "flags": {}, "shapes": [CELL], "imagePath": "a.png", "imageData": None,
           "imageHeight": 20, "imageWidth": 30}
    parts = [f"{json.dumps(k)}: {fields_as_json.get(k, json.dumps(v))}" for k, v in doc.items()]
    return "{" + ", ".join(parts) + "}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _mask_shape(patch: bytes, box):
    return {**shape("nucleus", box, "mask"), "mask": _b64(patch)}


def _image_file(folder, name, content: bytes):
    (folder / name).write_bytes(content)
    return write_labelme(folder, [CELL], image=False, imagePath=name)


# name -> (writes the file into folder and returns its path, text the single problem must contain)
CASES = {
    "circle at 1e308": (lambda d: write_labelme(d, [shape("cytoplasm", [[10, 10], [1e308, 1e308]], "circle")]),
                        "shape 0 ('cytoplasm'): point [1e+308, 1e+308] lies more than 1000000 px from the image"),
    "circle radius beyond Pillow's exact range": (
        lambda d: write_labelme(d, [shape("cytoplasm", [[-900000, -900000], [900000, 900000]], "circle")]),
        "shape 0 ('cytoplasm'): circle radius 2545584 px is more than 100000 px"),
    "400-digit coordinate": (lambda d: write_labelme(d, [shape("nucleus", [[1, 1], [10 ** 400, 2], [3, 3]])]),
                             "shape 0 ('nucleus'): point [100000000000000000...0000000000000000000, 2] lies more"),
    "5000-digit integer": (lambda d: _text(d, _doc_text(imageHeight="1" * 5000)),
                           "JSON holds a number too long to read (Exceeds the limit (4300 digits)"),
    "imageData a number": (lambda d: write_labelme(d, [CELL], imageData=12345),
                           "imageData is the number 12345, not a base64 string"),
    "imageData not ASCII": (lambda d: write_labelme(d, [CELL], imageData="é" * 8),
                            "embedded imageData cannot be read (not base64"),
    "shape_type a list": (lambda d: write_labelme(d, [{**CELL, "shape_type": ["polygon"]}]),
                          "shape 0 ('cytoplasm'): unsupported shape_type ['polygon']"),
    "nested 100000 deep": (lambda d: _text(d, _doc_text(flags="[" * 100_000 + "]" * 100_000)),
                           "JSON is nested too deeply"),
    "20000 x 20000 image": (lambda d: _image_file(d, "big.png", png_bomb(20000, 20000, complete=True)),
                            f"big.png is 20000 x 20000 = 400000000 pixels, {TOO_MANY}"),
    "bomb as the image file": (lambda d: _image_file(d, "bomb.png", png_bomb(30000, 30000)),
                               f"bomb.png is 30000 x 30000 = 900000000 pixels, {TOO_MANY}"),
    "bomb in imageData": (lambda d: write_labelme(d, [CELL], imageData=_b64(png_bomb(30000, 30000))),
                          f"embedded imageData is 30000 x 30000 = 900000000 pixels, {TOO_MANY}"),
    "bomb as a mask patch": (
        lambda d: write_labelme(d, [_mask_shape(png_bomb(30000, 30000), [[0, 0], [29999, 29999]])]),
                             f"shape 0 ('nucleus'): mask patch is 30000 x 30000 = 900000000 pixels, {TOO_MANY}"),
    "mask patch larger than its box": (
        lambda d: write_labelme(d, [_mask_shape(png_bomb(9000, 9000), [[0, 0], [2, 2]])]),
        "shape 0 ('nucleus'): mask patch is 9000 x 9000 px but its box (0, 0)-(2, 2) is 3 x 3 px"),
    "EPS named .png": (lambda d: _image_file(d, "image.png", EPS),
                       "cannot be read: it is not a PNG, JPEG, BMP or TIFF image (it looks like PostScript/EPS)"),
    "EPS in imageData": (lambda d: write_labelme(d, [CELL], imageData=_b64(EPS)),
                         "embedded imageData cannot be read: it is not a PNG, JPEG, BMP or TIFF image"),
    "GIF": (lambda d: _image_file(d, "image.gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
            "it looks like GIF"),
    "label a number": (lambda d: write_labelme(d, [{**CELL, "label": 7}]), "shape 0: label is the number 7, not"),
    "points as dicts": (lambda d: write_labelme(d, [{**CELL, "points": [{"x": 1, "y": 2}] * 3}]),
                        "point {'x': 1, 'y': 2} is not a pair of finite numbers"),
    "points an object": (lambda d: write_labelme(d, [{**CELL, "points": {"x": 1}}]),
                         "points is not a list of [x, y] pairs (an object)"),
    "boolean coordinate": (lambda d: write_labelme(d, [shape("cytoplasm", [[True, 2], [9, 2], [9, 9]])]),
                           "point [True, 2] is not a pair of finite numbers"),
    "Infinity literal": (lambda d: _text(d, _doc_text(shapes='[{"label": "nucleus", "points": '
                                                            '[[1, 1], [Infinity, 2], [3, 3]]}]')),
                         "point [inf, 2] is not a pair of finite numbers"),
    "NaN literal": (lambda d: _text(d, _doc_text(shapes='[{"label": "nucleus", "points": '
                                                       '[[1, NaN], [2, 2], [3, 3]]}]')),
                    "point [1, nan] is not a pair of finite numbers"),
    "imageHeight a string": (lambda d: write_labelme(d, [CELL], imageHeight="20"),
                             "imageHeight is a string, not a whole number of pixels"),
    "imageWidth NaN": (lambda d: write_labelme(d, [CELL], imageWidth=float("nan")),
                       "imageWidth is the number nan, not a whole number of pixels"),
    "imagePath a number": (lambda d: write_labelme(d, [CELL], image=False, imagePath=5),
                           "imagePath is the number 5, not a file name"),
    "imagePath with a NUL": (lambda d: write_labelme(d, [CELL], image=False, imagePath="a\x00.png"),
                             "image not found: "),
    "imagePath too long": (lambda d: write_labelme(d, [CELL], image=False, imagePath="x" * 5000 + ".png"),
                           "cannot be read (File name too long)"),
    "a folder named x.json": (lambda d: (d / "x.json").mkdir() or d / "x.json", "is a folder, not a LabelMe file"),
    "broken link": (lambda d: os.symlink(d / "nowhere.json", d / "x.json") or d / "x.json", "is a broken link"),
    "not UTF-8": (lambda d: (d / "x.json").write_bytes(b'{"shapes": [], "label": "\xff"}') and d / "x.json",
                  "is not UTF-8 text (byte 25)"),
    "empty file": (lambda d: (d / "x.json").write_bytes(b"") or d / "x.json", "is empty"),
    "long unknown label": (lambda d: write_labelme(d, [{**CELL, "label": "z" * 100_000}]),
                           "shape 0: unknown label 'zzzzzzzzzzzzzzzzzzzzzzzzzzz...zzzzzzzzzzzzzzzzzzzzzzzzzzzz'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_one_problem_naming_it(tmp_path, case):
    write, expected = CASES[case]
    path = write(tmp_path)
    annotation, problems = labelme.read_annotation(path, CLASSES)
    assert annotation is None
    assert [p.file for p in problems] == [path]
    assert expected in problems[0].message, problems[0].message
    assert len(str(problems[0])) < 600 + len(str(path))


ACCEPTED = {  # odd but harmless: read exactly as LabelMe would
    "byte-order mark": lambda d: (d / "a.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(
        {"shapes": [CELL], "imagePath": "a.png"}).encode()),
    "huge group_id": lambda d: write_labelme(d, [{**CELL, "group_id": 10 ** 4000},
                                                 {**NUCLEUS, "group_id": -10 ** 4000}]),
    "flags of any type": lambda d: write_labelme(d, [{**CELL, "flags": [1, None]}, {**NUCLEUS, "flags": "x"}],
                                                 flags=12.5),
    "unused fields of any type": lambda d: write_labelme(d, [{**CELL, "description": {"a": [1e308]}, "other": None}],
                                                         version=None, lineColor="red"),
    "points far outside the image": lambda d: write_labelme(
        d, [shape("cytoplasm", [[-999999, -999999], [999999, -999999], [999999, 999999]]),
            shape("nucleus", [[0, 0], [70000, 70000]], "circle"),
            shape("nucleus", [[-1e6, 5], [1e6, 5]], "line")]),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_odd_but_harmless_files_are_read(tmp_path, case):
    write_labelme(tmp_path, [], name="a")
    ACCEPTED[case](tmp_path)
    annotation, problems = labelme.read_annotation(tmp_path / "a.json", CLASSES)
    assert problems == []
    class_map, instance_map = labelme.to_maps(annotation.shapes, annotation.shape_hw, CLASSES)
    assert class_map.shape == (20, 30) and class_map.any()


def test_eps_is_refused_without_starting_any_program(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError(f"a program was started or looked for: {args}")

    for module, name in [(subprocess, "Popen"), (subprocess, "run"), (subprocess, "check_call"), (shutil, "which"),
                         (os, "system"), (os, "posix_spawn"), (os, "execv")]:
        monkeypatch.setattr(module, name, forbidden)
    for name in ("image.png", "image.eps", "image.tif"):
        (tmp_path / name).write_bytes(EPS)
        path = write_labelme(tmp_path, [CELL], image=False, imagePath=name)
        _, problems = labelme.read_annotation(path, CLASSES)
        assert "not a PNG, JPEG, BMP or TIFF image (it looks like PostScript/EPS)" in problems[0].message


def test_max_pixels_comes_from_the_config(tmp_path):
    write_labelme(tmp_path, [CELL])  # 20 x 30 = 600 pixels
    assert find_problems(make_config(tmp_path, data={"max_pixels": 600})).problems == []
    found = find_problems(make_config(tmp_path, data={"max_pixels": 599}))
    good, problems = found.good, found.problems
    assert good == 0 and [p.message for p in problems] == [
        f"image {tmp_path / 'a.png'} is 30 x 20 = 600 pixels, more than data.max_pixels = 599"]
    assert "raise data.max_pixels" in problems[0].hint


def test_validate_lists_every_hostile_file_and_the_good_one_passes(tmp_path, capsys):
    folder = tmp_path / "annotations"
    folder.mkdir()
    expected = {}
    for number, case in enumerate(sorted(CASES)):
        sub = tmp_path / f"case{number}"
        sub.mkdir()
        path = CASES[case][0](sub)
        name = f"{number:02d}_{path.name}"
        for extra in sub.iterdir():  # images beside the JSON keep their names; the JSON is renamed
            if extra != path:
                shutil.move(extra, folder / extra.name) if not (folder / extra.name).exists() else None
        if path.is_symlink():
            os.symlink(os.readlink(path), folder / name)
        else:
            shutil.move(path, folder / name)
        expected[name] = CASES[case][1]
    # the images beside a few cases share the name a.png: every case that reads one needs the same grey
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(folder / "a.png")
    write_labelme(folder, [CELL, NUCLEUS], name="zz_good")
    settings = json.dumps({"results": str(tmp_path / "results")})
    assert main(["validate", str(folder), "--config-json", settings]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith(f"NOT READY: {len(expected)} problems in {len(expected)} files; 1 image read")
    reported = {line.split(": ", 1)[0].rsplit("/", 1)[-1]: line for line in out[:-1]}
    assert sorted(reported) == sorted(expected)
    for name, text in expected.items():
        assert text in reported[name]
    assert "internal error" not in "\n".join(out)


def test_validate_prints_file_names_that_are_not_text(tmp_path, capsys):
    write_labelme(tmp_path, [{**CELL, "label": "platelet"}])
    os.rename(tmp_path / "a.json", os.fsencode(tmp_path) + b"/\xff.json")  # not UTF-8: a surrogate in Python
    settings = json.dumps({"results": str(tmp_path / "results")})
    assert main(["validate", str(tmp_path), "--config-json", settings]) == 1
    assert "\\udcff.json: shape 0: unknown label 'platelet'" in capsys.readouterr().out
