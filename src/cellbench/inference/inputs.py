"""The images infer is asked to segment (kept free of torch: the Snakefile reads it while parsing)."""

from __future__ import annotations

import glob
import os
from collections import Counter
from pathlib import Path

from cellbench.errors import ConfigError
from cellbench.images import IMAGE_SUFFIXES


def is_zarr(path: Path) -> bool:
    """An OME-Zarr folder (read as a whole slide)."""
    return path.is_dir() and path.name.lower().endswith(".zarr")


def find_images(spec: str | list[str] | None, base: Path = Path(".")) -> list[Path]:
    """The images named by infer.images: a folder (its image files and OME-Zarr folders, not
    recursive), files, OME-Zarr folders or glob patterns."""
    if not spec:
        raise ConfigError("infer.images is not set: name a folder of images or a list of glob patterns")
    patterns = [spec] if isinstance(spec, str) else list(spec)
    found: list[Path] = []
    for pattern in patterns:
        path = base / pattern
        if is_zarr(path) or path.is_file():
            found.append(path)
        elif path.is_dir():
            found += sorted(p for p in path.iterdir()
                            if (p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES) or is_zarr(p))
        else:
            found += sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file() or is_zarr(Path(p)))
    found = list(dict.fromkeys(found))
    if not found:
        raise ConfigError(f"infer.images {spec!r} names no image file ({', '.join(IMAGE_SUFFIXES)})")
    return found


def output_names(paths: list[Path]) -> dict[Path, str]:
    """What each image's outputs are called: its path below the images' common folder, without its
    extension (set1/raw for a/set1/raw.tif beside a/set2/raw.tif; the stem for images of one folder),
    the extension kept as _<ext> where two differ only in it (a.png, a.tif -> a_png, a_tif)."""
    if not paths:
        return {}
    absolute = [Path(p).absolute() for p in paths]
    common = Path(os.path.commonpath([str(p.parent) for p in absolute]))
    relative = [p.relative_to(common) for p in absolute]
    plain = [r.with_suffix("").as_posix().removesuffix(".ome") for r in relative]  # slide.ome.tif -> slide
    taken = Counter(plain)
    return {path: name if taken[name] == 1 else f"{name}_{rel.suffix.lstrip('.').lower()}"
            for path, name, rel in zip(paths, plain, relative, strict=True)}
