"""The images infer is asked to segment (kept free of torch: the Snakefile reads it while parsing)."""

from __future__ import annotations

import glob
from pathlib import Path

from cellbench.errors import ConfigError
from cellbench.images import IMAGE_SUFFIXES


def find_images(spec: str | list[str] | None, base: Path = Path(".")) -> list[Path]:
    """The images named by infer.images: a folder (its image files, not recursive) or glob patterns."""
    if not spec:
        raise ConfigError("infer.images is not set: name a folder of images or a list of glob patterns")
    patterns = [spec] if isinstance(spec, str) else list(spec)
    found: list[Path] = []
    for pattern in patterns:
        path = base / pattern
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            found += sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_file())
    found = list(dict.fromkeys(found))
    if not found:
        raise ConfigError(f"infer.images {spec!r} names no image file ({', '.join(IMAGE_SUFFIXES)})")
    return found
