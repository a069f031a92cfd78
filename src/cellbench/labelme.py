"""LabelMe JSON files: reading and checking them, and resolving labels to classes."""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from cellbench.classmaps import IGNORE_LABEL
from cellbench.errors import InputProblem
from cellbench.images import LoadedImage, read_image

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
            raise ValueError(f"label alias {alias!r} points at {target!r}, which is not a class")
        lookup[normalise_label(alias)] = target
    return lookup


def _resolve_image(path: Path, doc: dict, problems: list[InputProblem]) -> LoadedImage | None:
    data = doc.get("imageData")
    if data:
        try:
            return read_image(base64.b64decode(data, validate=False))
        except UnidentifiedImageError:
            reason = "the decoded bytes are no image format Pillow knows"
        except (binascii.Error, OSError, ValueError) as err:
            reason = str(err)
        problems.append(InputProblem(path, f"embedded imageData cannot be decoded ({reason})",
                                     "re-save the file in LabelMe or set imageData to null"))
        return None
    image_path = doc.get("imagePath")
    if not isinstance(image_path, str) or not image_path:
        problems.append(InputProblem(path, "no imagePath and no imageData",
                                     "set imagePath to the image file, relative to the JSON"))
        return None
    candidate = Path(image_path.replace("\\", "/"))
    if not candidate.is_absolute():
        candidate = path.parent / candidate
    if not candidate.is_file():
        problems.append(InputProblem(path, f"image not found: {candidate}",
                                     "imagePath is resolved relative to the JSON file"))
        return None
    try:
        return read_image(candidate)
    except (OSError, ValueError) as err:
        problems.append(InputProblem(path, f"image {candidate} cannot be read ({err})"))
        return None


def _point_pairs(raw: list) -> list[tuple[float, float]] | str:
    try:  # fast path: a well-formed list of numeric pairs
        array = np.asarray(raw)
    except ValueError:  # ragged
        array = None
    if array is not None and array.dtype.kind in "iuf" and array.ndim == 2 and array.shape[1] == 2 \
            and np.isfinite(array).all():
        return [tuple(p) for p in array.astype(float).tolist()]
    for point in raw:
        if (not isinstance(point, (list, tuple)) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
                or not all(math.isfinite(v) for v in point)):
            return f"point {point!r} is not a pair of finite numbers"
    return [(float(x), float(y)) for x, y in raw]


def _parse_points(raw, shape_type: str) -> list[tuple[float, float]] | str:
    if not isinstance(raw, list):
        return "points is not a list"
    points = _point_pairs(raw) if raw else []
    if isinstance(points, str):
        return points
    least, exact = _POINT_COUNTS[shape_type]
    if exact is not None and len(points) != exact:
        return f"a {shape_type} needs exactly {exact} points, got {len(points)}"
    if len(points) < least:
        return f"a {shape_type} needs at least {least} points, got {len(points)}"
    return points


def _decode_mask_patch(data, points: list[tuple[float, float]]) -> np.ndarray | str:
    if not isinstance(data, str) or not data:
        return "a mask shape needs a base64 PNG in 'mask'"
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as pil:
            patch = np.asarray(pil.convert("L")) > 0
    except UnidentifiedImageError:
        return "mask patch cannot be decoded (the decoded bytes are no PNG)"
    except (binascii.Error, OSError, ValueError) as err:
        return f"mask patch cannot be decoded ({err})"
    (x0, y0), (x1, y1) = ((int(x), int(y)) for x, y in points)  # LabelMe truncates the box corners
    if patch.shape != (y1 - y0 + 1, x1 - x0 + 1):
        return (f"mask patch is {patch.shape[0]} x {patch.shape[1]} px but its box "
                f"({x0}, {y0})-({x1}, {y1}) is {y1 - y0 + 1} x {x1 - x0 + 1} px")
    return patch


def _parse_shape(index: int, raw, lookup: dict[str, str], unknown_labels: str,
                 path: Path, problems: list[InputProblem]) -> Shape | None:
    where = f"shape {index}"
    if not isinstance(raw, dict):
        problems.append(InputProblem(path, f"{where}: not an object"))
        return None
    label = raw.get("label")
    if not isinstance(label, str):
        problems.append(InputProblem(path, f"{where}: missing label"))
        return None
    class_name = lookup.get(normalise_label(label))
    if class_name is None and unknown_labels not in ("error", "ignore"):
        class_name = unknown_labels  # mapped to a class
    if class_name is None:
        if unknown_labels == "ignore":
            return None
        known = ", ".join(sorted(set(lookup.values())))
        problems.append(InputProblem(
            path, f"{where}: unknown label {label!r}",
            f"known classes: {known}; add it to data.label_aliases, or set data.unknown_labels "
            "to ignore or to a class"))
        return None
    shape_type = raw.get("shape_type") or "polygon"
    if shape_type not in _POINT_COUNTS:
        problems.append(InputProblem(
            path, f"{where} ({label!r}): unsupported shape_type {shape_type!r}",
            f"supported: {', '.join(_POINT_COUNTS)}"))
        return None
    points = _parse_points(raw.get("points"), shape_type)
    if isinstance(points, str):
        problems.append(InputProblem(path, f"{where} ({label!r}): {points}"))
        return None
    group_id = raw.get("group_id")
    if group_id is not None and (not isinstance(group_id, int) or isinstance(group_id, bool)):
        problems.append(InputProblem(path, f"{where} ({label!r}): group_id {group_id!r} is not an integer"))
        return None
    mask = None
    if shape_type == "mask":
        mask = _decode_mask_patch(raw.get("mask"), points)
        if isinstance(mask, str):
            problems.append(InputProblem(path, f"{where} ({label!r}): {mask}"))
            return None
    return Shape(index, class_name, shape_type, points, group_id, mask)


def read_annotation(path: Path, classes: list[str], aliases: dict[str, str] | None = None,
                    unknown_labels: str = "error") -> tuple[Annotation | None, list[InputProblem]]:
    """Parse and check one LabelMe file; return the annotation (or None) and every problem found."""
    path = Path(path)
    problems: list[InputProblem] = []
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        return None, [InputProblem(path, f"malformed JSON at line {err.lineno} column {err.colno}: {err.msg}")]
    except (OSError, UnicodeDecodeError) as err:
        return None, [InputProblem(path, f"cannot be read ({err})")]
    if not isinstance(doc, dict):
        return None, [InputProblem(path, "not a LabelMe file (top level is not an object)")]
    raw_shapes = doc.get("shapes")
    if not isinstance(raw_shapes, list):
        return None, [InputProblem(path, "not a LabelMe file ('shapes' list missing)")]
    shapes = parse_shapes(raw_shapes, classes, aliases, unknown_labels, path, problems)
    image = _resolve_image(path, doc, problems)
    if image is not None:
        height, width = image.rgb.shape[:2]
        declared = (doc.get("imageHeight"), doc.get("imageWidth"))
        if declared != (None, None) and declared != (height, width):
            problems.append(InputProblem(
                path, f"imageHeight x imageWidth = {declared[0]} x {declared[1]} but the image is "
                      f"{height} x {width}", "the JSON belongs to another image or the image was resized"))
    if problems:
        return None, problems
    return Annotation(path, image, shapes), []


def parse_shapes(raw_shapes: list, classes: list[str], aliases: dict[str, str] | None = None,
                 unknown_labels: str = "error", path: Path = Path("<shapes>"),
                 problems: list[InputProblem] | None = None) -> list[Shape]:
    """Check LabelMe shape dicts and resolve their labels; problems are appended to ``problems``."""
    lookup = label_lookup(classes, aliases or {})
    if unknown_labels not in ("error", "ignore", *classes, IGNORE_LABEL):
        raise ValueError(f"unknown_labels must be error, ignore, {IGNORE_LABEL} or a class name, "
                         f"not {unknown_labels!r}")
    problems = [] if problems is None else problems
    parsed = (_parse_shape(i, raw, lookup, unknown_labels, path, problems)
              for i, raw in enumerate(raw_shapes))
    return [s for s in parsed if s is not None]
