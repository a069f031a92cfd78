"""LabelMe JSON: reading, checking and rasterising shapes the way LabelMe draws them."""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from cellbench.classmaps import IGNORE_INDEX, IGNORE_LABEL
from cellbench.errors import InputProblem
from cellbench.images import LoadedImage, read_image

LINE_WIDTH = 10  # LabelMe draws line and linestrip shapes 10 px wide
POINT_RADIUS = 5  # and points as discs of radius 5

# shape type -> (minimum points, exact count or None)
_POINT_COUNTS = {
    "polygon": (3, None),
    "rectangle": (2, 2),
    "circle": (2, 2),
    "line": (2, 2),
    "linestrip": (2, None),
    "point": (1, 1),
    "mask": (2, 2),
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
        except (binascii.Error, OSError, ValueError) as err:
            problems.append(InputProblem(path, f"embedded imageData cannot be decoded ({err})",
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


def _parse_points(raw, shape_type: str) -> list[tuple[float, float]] | str:
    if not isinstance(raw, list):
        return "points is not a list"
    points = []
    for point in raw:
        if (not isinstance(point, (list, tuple)) or len(point) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in point)
                or not all(math.isfinite(v) for v in point)):
            return f"point {point!r} is not a pair of finite numbers"
        points.append((float(point[0]), float(point[1])))
    least, exact = _POINT_COUNTS[shape_type]
    if exact is not None and len(points) != exact:
        return f"a {shape_type} needs exactly {exact} points, got {len(points)}"
    if len(points) < least:
        return f"a {shape_type} needs at least {least} points, got {len(points)}"
    return points


def _decode_mask_patch(data) -> np.ndarray | str:
    if not isinstance(data, str) or not data:
        return "a mask shape needs a base64 PNG in 'mask'"
    try:
        with Image.open(io.BytesIO(base64.b64decode(data))) as pil:
            return np.asarray(pil.convert("L")) > 0
    except (binascii.Error, OSError, ValueError) as err:
        return f"mask patch cannot be decoded ({err})"


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
    if class_name is None:
        if unknown_labels == "ignore":
            return None
        known = ", ".join(sorted(set(lookup.values())))
        problems.append(InputProblem(
            path, f"{where}: unknown label {label!r}",
            f"known classes: {known}; add it to data.label_aliases or set data.unknown_labels: ignore"))
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
        mask = _decode_mask_patch(raw.get("mask"))
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
    problems = [] if problems is None else problems
    parsed = (_parse_shape(i, raw, lookup, unknown_labels, path, problems)
              for i, raw in enumerate(raw_shapes))
    return [s for s in parsed if s is not None]


def rasterise(shape: Shape, height: int, width: int) -> np.ndarray:
    """Boolean mask of one shape, drawn with PIL as LabelMe draws it."""
    if shape.shape_type == "mask":
        out = np.zeros((height, width), dtype=bool)
        x0, y0 = (int(round(v)) for v in shape.points[0])
        patch = shape.mask
        ys = slice(max(y0, 0), min(y0 + patch.shape[0], height))
        xs = slice(max(x0, 0), min(x0 + patch.shape[1], width))
        out[ys, xs] = patch[ys.start - y0: ys.stop - y0, xs.start - x0: xs.stop - x0]
        return out
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    xy = shape.points
    if shape.shape_type == "circle":
        (cx, cy), (px, py) = xy
        r = math.hypot(cx - px, cy - py)
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    elif shape.shape_type == "rectangle":
        (x0, y0), (x1, y1) = xy
        draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=1, fill=1)
    elif shape.shape_type in ("line", "linestrip"):
        draw.line(xy=xy, fill=1, width=LINE_WIDTH)
    elif shape.shape_type == "point":
        (cx, cy), r = xy[0], POINT_RADIUS
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=1, fill=1)
    else:
        draw.polygon(xy=xy, outline=1, fill=1)
    return np.asarray(canvas, dtype=bool)


def paint_order(classes: list[str], priority: list[str] | str | None) -> dict[str, int]:
    """Rank of each class when painting: higher ranks lie on top (`__ignore__` above all).

    ``priority`` lists classes highest first; None puts later classes on top; "file" ranks all
    classes equally, so that shapes are painted in file order as LabelMe does.
    """
    if priority == "file":
        return {name: 0 for name in [*classes, IGNORE_LABEL]}
    top_first = list(priority or [])
    unknown = [c for c in top_first if c not in classes]
    if unknown:
        raise ValueError(f"class_priority names unknown classes: {unknown}")
    rest = [c for c in reversed(classes) if c not in top_first]  # later classes on top by default
    bottom_to_top = [*reversed(top_first + rest), IGNORE_LABEL]
    return {name: rank for rank, name in enumerate(bottom_to_top)}


def _instance_keys(shapes: list[Shape], masks: list[np.ndarray], rank: dict[str, int],
                   mode: str) -> list[tuple]:
    """Group shapes into objects.

    cell: a shared group_id across labels (a cell is its cytoplasm and nucleus), else an ungrouped
    shape joins the smallest lower-ranked shape containing its centre. labelme: one object per
    (label, group_id), as LabelMe's own export.
    """
    if mode == "labelme":
        return [(s.class_name, s.group_id) if s.group_id is not None else ("shape", s.index) for s in shapes]
    keys: list[tuple] = [("group", s.group_id) if s.group_id is not None else ("shape", s.index)
                         for s in shapes]
    for i, shape in enumerate(shapes):
        if shape.group_id is not None or not masks[i].any():
            continue
        ys, xs = np.nonzero(masks[i])
        cy, cx = int(round(ys.mean())), int(round(xs.mean()))
        containers = [j for j, other in enumerate(shapes)
                      if rank[other.class_name] < rank[shape.class_name] and masks[j][cy, cx]]
        if containers:
            smallest = min(containers, key=lambda j: masks[j].sum())
            keys[i] = keys[smallest]
    return keys


def to_maps(shapes: list[Shape], shape_hw: tuple[int, int], classes: list[str],
            priority: list[str] | str | None = None, instance_mode: str = "cell") -> tuple[np.ndarray, np.ndarray]:
    """Class-index map (uint8) and instance map (uint16, 1..N in order of first appearance).

    Class priority decides which class lies on top (see paint_order; "file" = LabelMe's file
    order). `__ignore__` regions become IGNORE_INDEX in the class map and 0 in the instance map.
    Objects are formed as _instance_keys describes.
    """
    height, width = shape_hw
    rank = paint_order(classes, priority)
    value = {**{name: i for i, name in enumerate(classes)}, IGNORE_LABEL: IGNORE_INDEX}
    masks = [rasterise(s, height, width) for s in shapes]
    containment_rank = rank if priority != "file" else paint_order(classes, None)
    keys = _instance_keys(shapes, masks, containment_rank, instance_mode)
    ids: dict[tuple, int] = {}
    for key in keys:
        ids.setdefault(key, len(ids) + 1)
    class_map = np.zeros((height, width), dtype=np.uint8)
    instance_map = np.zeros((height, width), dtype=np.int64)
    order = sorted(range(len(shapes)), key=lambda i: (rank[shapes[i].class_name], i))
    for i in order:
        class_value = value[shapes[i].class_name]
        class_map[masks[i]] = class_value
        is_object = class_value not in (0, IGNORE_INDEX)
        instance_map[masks[i]] = ids[keys[i]] if is_object else 0
    return class_map, relabel_sequential(instance_map)


def relabel_sequential(instance_map: np.ndarray) -> np.ndarray:
    """Ids 1..N keeping their order, as uint16 (0 stays background)."""
    present = np.unique(instance_map)
    present = present[present != 0]
    if len(present) > np.iinfo(np.uint16).max:
        raise ValueError(f"{len(present)} instances do not fit a uint16 instance map")
    lut = np.zeros(int(instance_map.max()) + 1, dtype=np.uint16)
    lut[present] = np.arange(1, len(present) + 1, dtype=np.uint16)
    return lut[instance_map]
