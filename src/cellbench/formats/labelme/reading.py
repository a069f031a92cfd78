"""LabelMe JSON files: reading and checking them, and resolving labels to classes.

A file is input, not trusted code: whatever it holds (any JSON type in any place, huge or
non-finite numbers, deep nesting, images that are no image) ends as InputProblems naming the
file and the shape, never as an exception that hides the other files' problems.
"""

from __future__ import annotations

import base64
import json
import math
import reprlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cellbench.classmaps import IGNORE_LABEL
from cellbench.errors import ConfigError, InputProblem, internal_error
from cellbench.images import MAX_PIXELS, ImageReadError, LoadedImage, opened, read_image

# shape type -> (minimum points, exact count or None)
_POINT_COUNTS = {
    "polygon": (3, None),
    "rectangle": (2, 2),
    "circle": (2, 2),
    "line": (2, 2),
    "linestrip": (2, None),
    "point": (1, 1),
    "mask": (2, 2),
    "oriented_rectangle": (4, 4),
}

# Coordinates are image pixels. 1e6 is 100 times the side of the largest image data.max_pixels
# lets through by default, yet keeps every value exact in the C ints Pillow draws with (a point at
# 1e308 overflows them). Circles get a tighter bound: Pillow's ellipse squares its diameter twice
# in 64-bit integers, which stops being exact (and can take minutes) beyond a radius of ~5e5 px.
COORDINATE_LIMIT = 1_000_000
CIRCLE_RADIUS_LIMIT = 100_000

_SHOW = reprlib.Repr()  # values from the file in messages: short, whatever their size or depth
_SHOW.maxstring, _SHOW.maxlong, _SHOW.maxother, _SHOW.maxlevel = 60, 40, 60, 3
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = 6
_RESAVE = "re-save the file in LabelMe or set imageData to null"


def _show(value) -> str:
    return _SHOW.repr(value)


def _json_type(value) -> str:
    """The JSON name of a parsed value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return f"the number {_show(value)}"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object" if isinstance(value, dict) else type(value).__name__


def _show_path(path: Path | str) -> str:
    text = str(path)
    return text if text.isprintable() and len(text) <= 300 else _show(text)


@dataclass
class Shape:
    """One LabelMe shape resolved to a class."""

    index: int
    class_name: str
    shape_type: str
    points: list[tuple[float, float]]
    group_id: int | None
    mask: np.ndarray | None = None  # boolean patch of a "mask" shape


@dataclass
class Annotation:
    """One LabelMe file with its image."""

    path: Path
    image: LoadedImage
    shapes: list[Shape] = field(default_factory=list)

    @property
    def shape_hw(self) -> tuple[int, int]:
        return self.image.rgb.shape[:2]


def normalise_label(label: str) -> str:
    """Case- and whitespace-insensitive form of a label."""
    return "".join(str(label).lower().split())


def label_lookup(classes: list[str], aliases: dict[str, str]) -> dict[str, str]:
    """Map normalised labels (class names, aliases and `__ignore__`) to class names."""
    lookup = {normalise_label(name): name for name in classes}
    lookup[normalise_label(IGNORE_LABEL)] = IGNORE_LABEL
    for alias, target in aliases.items():
        if target not in classes:
            raise ConfigError(f"label alias {alias!r} points at {target!r}, which is not a class")
        lookup[normalise_label(alias)] = target
    return lookup


def checked_lookup(classes: list[str], aliases: dict[str, str] | None, unknown_labels: str) -> dict[str, str]:
    """The label lookup; raises ValueError for a configuration that cannot work (not an input problem)."""
    lookup = label_lookup(classes, aliases or {})
    if unknown_labels not in ("error", "ignore", *classes, IGNORE_LABEL):
        raise ConfigError(f"unknown_labels must be error, ignore, {IGNORE_LABEL} or a class name, "
                         f"not {unknown_labels!r}")
    return lookup


def _embedded_image(path: Path, data, max_pixels: int | None, problems: list[InputProblem]) -> LoadedImage | None:
    if not isinstance(data, str):
        problems.append(InputProblem(path, f"imageData is {_json_type(data)}, not a base64 string", _RESAVE))
        return None
    try:
        encoded = base64.b64decode(data, validate=False)
    except ValueError as err:  # binascii.Error, or characters outside ASCII
        problems.append(InputProblem(path, f"embedded imageData cannot be read (not base64: {err})", _RESAVE))
        return None
    try:
        return read_image(encoded, max_pixels, "embedded imageData")
    except ImageReadError as err:
        problems.append(InputProblem(path, str(err), err.hint or _RESAVE))
        return None


def _resolve_image(path: Path, doc: dict, max_pixels: int | None,
                   problems: list[InputProblem]) -> LoadedImage | None:
    data = doc.get("imageData")
    if data:
        return _embedded_image(path, data, max_pixels, problems)
    image_path = doc.get("imagePath")
    if image_path is None or image_path == "":
        problems.append(InputProblem(path, "no imagePath and no imageData",
                                     "set imagePath to the image file, relative to the JSON"))
        return None
    if not isinstance(image_path, str):
        problems.append(InputProblem(path, f"imagePath is {_json_type(image_path)}, not a file name",
                                     "set imagePath to the image file, relative to the JSON"))
        return None
    candidate = Path(image_path.replace("\\", "/"))
    if not candidate.is_absolute():
        candidate = path.parent / candidate
    try:
        found = candidate.is_file()
    except OSError as err:  # e.g. a name too long for the file system
        problems.append(InputProblem(path, f"image {_show_path(candidate)} cannot be read ({err.strerror or err})"))
        return None
    if not found:
        problems.append(InputProblem(path, f"image not found: {_show_path(candidate)}",
                                     "imagePath is resolved relative to the JSON file"))
        return None
    try:
        return read_image(candidate, max_pixels, f"image {_show_path(candidate)}")
    except ImageReadError as err:
        problems.append(InputProblem(path, str(err), err.hint))
        return None


def _is_number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _is_finite(value) -> bool:
    return isinstance(value, (int, np.integer)) or math.isfinite(value)  # a huge int would overflow isfinite


_PLAIN_NUMBERS = (int, float)  # exact types: bool is an int subclass, and True is no coordinate


def _point_pairs(raw: list) -> list[tuple[float, float]] | str:
    pairs = []
    for point in raw:  # a plain loop: the common case costs a few type checks and two comparisons
        if not (type(point) is list or isinstance(point, tuple)) or len(point) != 2:
            return f"point {_show(point)} is not a pair of finite numbers"
        x, y = point
        if (type(x) not in _PLAIN_NUMBERS or type(y) not in _PLAIN_NUMBERS) \
                and not (_is_number(x) and _is_number(y)):
            return f"point {_show(point)} is not a pair of finite numbers"
        if not (-COORDINATE_LIMIT <= x <= COORDINATE_LIMIT and -COORDINATE_LIMIT <= y <= COORDINATE_LIMIT):
            if not (_is_finite(x) and _is_finite(y)):  # NaN fails every comparison, so it lands here too
                return f"point {_show(point)} is not a pair of finite numbers"
            return f"point {_show(point)} lies more than {COORDINATE_LIMIT} px from the image"
        pairs.append((float(x), float(y)))
    return pairs


def _parse_points(raw, shape_type: str) -> list[tuple[float, float]] | str:
    if not isinstance(raw, list):
        return f"points is not a list of [x, y] pairs ({_json_type(raw)})"
    points = _point_pairs(raw)
    if isinstance(points, str):
        return points
    least, exact = _POINT_COUNTS[shape_type]
    if exact is not None and len(points) != exact:
        return f"a {shape_type} needs exactly {exact} points, got {len(points)}"
    if len(points) < least:
        return f"a {shape_type} needs at least {least} points, got {len(points)}"
    if shape_type == "circle":
        radius = math.dist(*points)
        if radius > CIRCLE_RADIUS_LIMIT:
            return f"circle radius {radius:.0f} px is more than {CIRCLE_RADIUS_LIMIT} px"
    return points


def _decode_mask_patch(data, points: list[tuple[float, float]], max_pixels: int | None
                       ) -> np.ndarray | tuple[str, str]:
    """The boolean patch, or (message, hint). Its size is checked against its box before decoding."""
    if not isinstance(data, str) or not data:
        return "a mask shape needs a base64 PNG in 'mask'", ""
    (x0, y0), (x1, y1) = ((int(x), int(y)) for x, y in points)  # LabelMe truncates the box corners
    try:
        encoded = base64.b64decode(data)
    except ValueError as err:
        return f"mask patch cannot be read (not base64: {err})", ""
    try:
        with opened(encoded, max_pixels, "mask patch") as pil:
            width, height = pil.size
            if (height, width) != (y1 - y0 + 1, x1 - x0 + 1):
                return (f"mask patch is {height} x {width} px but its box ({x0}, {y0})-({x1}, {y1}) is "
                        f"{y1 - y0 + 1} x {x1 - x0 + 1} px"), ""
            return np.asarray(pil.convert("L")) > 0
    except ImageReadError as err:
        return str(err), err.hint


def _parse_shape(index: int, raw, lookup: dict[str, str], unknown_labels: str, path: Path,
                 max_pixels: int | None, problems: list[InputProblem]) -> Shape | None:
    where = f"shape {index}"
    if not isinstance(raw, dict):
        problems.append(InputProblem(path, f"{where}: not an object ({_json_type(raw)})"))
        return None
    label = raw.get("label")
    if label is None:
        problems.append(InputProblem(path, f"{where}: missing label"))
        return None
    if not isinstance(label, str):
        problems.append(InputProblem(path, f"{where}: label is {_json_type(label)}, not a string",
                                     "a label is text: a class name or one of data.label_aliases"))
        return None
    where = f"{where} ({_show(label)})"
    class_name = lookup.get(normalise_label(label))
    if class_name is None and unknown_labels not in ("error", "ignore"):
        class_name = unknown_labels  # mapped to a class
    if class_name is None:
        if unknown_labels == "ignore":
            return None
        known = ", ".join(sorted(set(lookup.values())))
        problems.append(InputProblem(
            path, f"shape {index}: unknown label {_show(label)}",
            f"known classes: {known}; add it to data.label_aliases, or set data.unknown_labels "
            "to ignore or to a class"))
        return None
    shape_type = raw.get("shape_type")
    if shape_type is None or shape_type == "":  # LabelMe 3 wrote no shape_type: polygons
        shape_type = "polygon"
    if not isinstance(shape_type, str) or shape_type not in _POINT_COUNTS:
        problems.append(InputProblem(path, f"{where}: unsupported shape_type {_show(shape_type)}",
                                     f"supported: {', '.join(_POINT_COUNTS)}"))
        return None
    points = _parse_points(raw.get("points"), shape_type)
    if isinstance(points, str):
        problems.append(InputProblem(path, f"{where}: {points}",
                                     "points are [x, y] image pixels; fix or delete the shape in LabelMe"))
        return None
    group_id = raw.get("group_id")
    if group_id is not None and (not isinstance(group_id, int) or isinstance(group_id, bool)):
        problems.append(InputProblem(path, f"{where}: group_id {_show(group_id)} is not an integer"))
        return None
    mask = None
    if shape_type == "mask":
        mask = _decode_mask_patch(raw.get("mask"), points, max_pixels)
        if isinstance(mask, tuple):
            problems.append(InputProblem(path, f"{where}: {mask[0]}", mask[1]))
            return None
    return Shape(index, class_name, shape_type, points, group_id, mask)


def _load_json(path: Path) -> object | InputProblem:
    """The parsed document, or the one problem that stops it being read at all."""
    if path.is_dir():
        return InputProblem(path, "is a folder, not a LabelMe file", "move it out of the annotation folder")
    if path.is_symlink() and not path.exists():
        return InputProblem(path, "is a broken link", "point it at an existing file or delete it")
    if path.exists() and not path.is_file():  # reading a pipe or a device could block or never end
        return InputProblem(path, "is not a regular file (a pipe, socket or device)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        return InputProblem(path, f"cannot be read ({err.strerror or err})")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark, as some Windows editors write, is accepted
    except UnicodeDecodeError as err:
        return InputProblem(path, f"is not UTF-8 text (byte {err.start})", "LabelMe writes UTF-8; re-save it so")
    if not text.strip():
        return InputProblem(path, "is empty", "delete it or re-save the annotation in LabelMe")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        return InputProblem(path, f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}")
    except RecursionError:
        return InputProblem(path, "JSON is nested too deeply to be a LabelMe file")
    except ValueError as err:  # an integer beyond Python's digit limit (sys.get_int_max_str_digits)
        return InputProblem(path, f"JSON holds a number too long to read ({str(err).split(';')[0]})",
                            "no LabelMe value needs that many digits; the file is damaged")


def _read_annotation(path: Path, lookup: dict[str, str], unknown_labels: str, max_pixels: int | None
                     ) -> tuple[Annotation | None, list[InputProblem]]:
    doc = _load_json(path)
    if isinstance(doc, InputProblem):
        return None, [doc]
    if not isinstance(doc, dict):
        return None, [InputProblem(path, "not a LabelMe file (top level is not an object)")]
    raw_shapes = doc.get("shapes")
    if not isinstance(raw_shapes, list):
        return None, [InputProblem(path, "not a LabelMe file ('shapes' list missing)")]
    problems: list[InputProblem] = []
    shapes = _parse_shapes(raw_shapes, lookup, unknown_labels, path, max_pixels, problems)
    image = _resolve_image(path, doc, max_pixels, problems)
    declared = (doc.get("imageHeight"), doc.get("imageWidth"))
    for key, value in zip(("imageHeight", "imageWidth"), declared, strict=True):
        if value is not None and not (_is_number(value) and _is_finite(value) and value == int(value)):
            problems.append(InputProblem(path, f"{key} is {_json_type(value)}, not a whole number of pixels",
                                         f"set it to the image's {key[5:].lower()} or delete it"))
            image = None  # the size cannot be compared
    if image is not None:
        height, width = image.rgb.shape[:2]
        if declared != (None, None) and declared != (height, width):
            problems.append(InputProblem(
                path, f"imageHeight x imageWidth = {_show(declared[0])} x {_show(declared[1])} but the image is "
                      f"{height} x {width}", "the JSON belongs to another image or the image was resized"))
    if problems:
        return None, problems
    return Annotation(path, image, shapes), []


def read_annotation(path: Path, classes: list[str], aliases: dict[str, str] | None = None,
                    unknown_labels: str = "error", max_pixels: int | None = MAX_PIXELS
                    ) -> tuple[Annotation | None, list[InputProblem]]:
    """Parse and check one LabelMe file; return the annotation (or None) and every problem found.

    Raises only for a configuration that cannot work (ValueError); anything about the file is a problem.
    """
    path = Path(path)
    lookup = checked_lookup(classes, aliases, unknown_labels)
    try:
        return _read_annotation(path, lookup, unknown_labels, max_pixels)
    except Exception as err:  # last resort: one file's surprise must not hide the others
        return None, [internal_error(path, err)]


def _parse_shapes(raw_shapes: list, lookup: dict[str, str], unknown_labels: str, path: Path,
                  max_pixels: int | None, problems: list[InputProblem]) -> list[Shape]:
    parsed = (_parse_shape(i, raw, lookup, unknown_labels, path, max_pixels, problems)
              for i, raw in enumerate(raw_shapes))
    return [s for s in parsed if s is not None]


def parse_shapes(raw_shapes: list, classes: list[str], aliases: dict[str, str] | None = None,
                 unknown_labels: str = "error", path: Path = Path("<shapes>"),
                 problems: list[InputProblem] | None = None, max_pixels: int | None = MAX_PIXELS) -> list[Shape]:
    """Check LabelMe shape dicts and resolve their labels; problems are appended to ``problems``."""
    lookup = checked_lookup(classes, aliases, unknown_labels)
    problems = [] if problems is None else problems
    return _parse_shapes(raw_shapes, lookup, unknown_labels, path, max_pixels, problems)
