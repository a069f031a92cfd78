"""Which data settings a folder looks like, from its file names alone: the hint that validate and
the preflight check give when the configured format finds nothing usable there."""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from cellbench.images import IMAGE_SUFFIXES

MAX_ENTRIES = 5000  # a look at the names, not a crawl of a whole disk
LABEL_WORDS = ("label", "mask", "seg", "gt", "ids", "instance", "annot", "truth", "class")
MASK_SUFFIXES = ("_mask", "_masks", "-mask", "_label", "_labels", "_seg", "_gt", "_ids", "_instances", "_annotation")
MASK_EXTENSIONS = (".png", ".tif", ".tiff")


def _entries(folder: Path) -> list[Path]:
    try:
        return sorted(itertools.islice(folder.iterdir(), MAX_ENTRIES))
    except OSError:
        return []


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _looks_like_labels(name: str) -> bool:
    return any(word in name.lower() for word in LABEL_WORDS)


def _side_by_side(images: list[Path]) -> str | None:
    """Images and masks in one folder: x.bmp + x.png, or x.png + x_mask.png."""
    stems = Counter(path.stem for path in images)
    by_stem = {path.stem: path for path in images}
    pairs_by_extension = [path for path in images if stems[path.stem] > 1 and path.suffix.lower() in MASK_EXTENSIONS]
    if len(pairs_by_extension) >= 2:
        extensions = Counter(path.suffix for path in pairs_by_extension).most_common(1)[0][0]
        return (f"images and masks side by side, told apart by extension: data.format mask_pairs "
                f"(mask_suffix '', mask_extension '{extensions}')")
    for suffix in MASK_SUFFIXES:
        masks = [path for path in images if path.stem.lower().endswith(suffix)
                 and path.stem[: -len(suffix)] in by_stem]
        if len(masks) >= 2:
            real = masks[0].stem[len(masks[0].stem) - len(suffix):]
            return (f"images and masks side by side: data.format mask_pairs (mask_suffix '{real}', "
                    f"mask_extension '{masks[0].suffix}')")
    return None


def _folders_with_images(folders: list[Path], depth: int = 3, limit: int = 50) -> list[Path]:
    """Up to ``limit`` folders holding image files, at most ``depth`` levels below ``folders``."""
    found, level = [], list(folders)
    for _ in range(depth):
        below = []
        for folder in level:
            entries = _entries(folder)
            if any(_is_image(path) for path in entries):
                found.append(folder)
            below += [path for path in entries if path.is_dir()]
            if len(found) >= limit:
                return found
        level = below[:limit * 4]
    return found


def _sample_folders(folders: list[Path]) -> str | None:
    """One folder per sample holding the same file names (set1/raw.tif + set1/instances_ids.png, ...),
    at any of the first levels (plate_a/set1/...)."""
    names: Counter[str] = Counter()
    checked = _folders_with_images(folders)
    for folder in checked:
        names.update({path.name for path in _entries(folder) if _is_image(path)})
    common = [name for name, count in names.most_common() if count * 2 >= len(checked)]
    labels = [name for name in common if _looks_like_labels(name)]
    images = [name for name in common if not _looks_like_labels(name)]
    if not (labels and images):
        return None
    kind = ("instance_labels (object ids)" if any(w in labels[0].lower() for w in ("id", "instance", "label"))
            else "grey_masks or class_index_png (classes)")
    return (f"one folder per sample: data.sample_folders {{image: {images[0]}, labels: {labels[0]}}} with data.format "
            f"{kind}")


def suggestion(folder: Path, data) -> str | None:
    """One sentence on which other data settings fit ``folder``, or None when nothing is recognisable
    (or the folder looks like what the settings already say)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    entries = _entries(folder)
    files = [path for path in entries if path.is_file()]
    folders = [path for path in entries if path.is_dir()]
    fmt, in_folders = data["format"], bool(data.get("sample_folders"))
    if any(path.suffix.lower() == ".json" for path in files):
        return None if fmt == "labelme" else \
            "it holds *.json files: LabelMe annotations are read with data.format labelme"
    if folders and sum((f / "images").is_dir() and (f / "masks").is_dir() for f in folders[:50]) * 2 >= min(
            len(folders), 50):
        return None if fmt == "instance_folders" else \
            "it holds <id>/images + <id>/masks folders: the DSB 2018 layout, data.format instance_folders"
    named = {path.name.lower(): path for path in folders}
    label_folders = [path for name, path in named.items() if _looks_like_labels(name)]
    if "images" in named and label_folders and not files:
        return (f"it holds images/ and {label_folders[0].name}/: data.annotations {label_folders[0]} and "
                f"data.images {named['images']} (grey_masks, class_index_png or instance_labels)")
    images = [path for path in files if _is_image(path)]
    if (found := _side_by_side(images)) is not None:
        return None if fmt == "mask_pairs" and not in_folders else f"it holds {found}"
    if folders and (found := _sample_folders(folders)) is not None:
        return None if in_folders else f"it holds {found}"
    if images and not _looks_like_labels(folder.name) and not any(_looks_like_labels(path.name) for path in images):
        return (f"it holds {len(images)} images and nothing that looks like masks: data.annotations must name the "
                "masks or label images, data.images the images")
    return None
