"""Input formats: one module per format, each with one small record (which files, what they are,
how to read them) in a registry, as nnU-Net's imageio readers are. A reader yields every sample it
can read and appends what is wrong with the others to a list of problems, so that validate can
report every file at once.

Adding a format: a module with a ``FORMAT = Format(...)`` record, registered below, and the name
in the schema's data.format enum (a test keeps the two in step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from cellbench.errors import ConfigError, InputProblem
from cellbench.formats import pairing
from cellbench.formats.common import Sample


@dataclass(frozen=True)
class Format:
    """One input format.

    name: the data.format value. description: what the annotation files are, for messages.
    patterns: the globs of the annotation files under data.annotations, from the data settings
    (None: data.annotations is the one annotation file itself). read: (annotation files, config,
    problems) -> samples. images_apart: whether the images live in data.images, matched by stem.
    ids: (annotation files, data settings) -> the sample ids they hold, from names alone (what the
    split's metadata must list; default: the files' stems).
    """

    name: str
    description: str
    patterns: Callable[[Mapping], tuple[str, ...] | None]
    read: Callable[[list[Path], Mapping, list[InputProblem]], Iterator[Sample]]
    images_apart: bool = False
    ids: Callable[[list[Path], Mapping], list[str]] = lambda files, data: [path.stem for path in files]

    def files(self, source: Path, data: Mapping) -> list[Path]:
        """The annotation files under ``source`` (data.annotations)."""
        spec = pairing.sample_folders({**data, "format": self.name})
        patterns = pairing.folder_patterns(spec) if spec else self.patterns(data)
        if patterns is None:
            return [source] if source.is_file() else []
        return sorted({path for pattern in patterns for path in source.glob(pattern)})

    def describe(self, data: Mapping) -> str:
        """What the annotation files are, for messages, with the data settings filled in."""
        spec = pairing.sample_folders({**data, "format": self.name})
        if spec:
            return f"files matching data.sample_folders.labels {spec['labels']!r}"
        return self.description.format_map({key: data.get(key, "") for key in ("mask_suffix", "mask_extension")})

    def sample_ids(self, files: list[Path], data: Mapping) -> list[str]:
        """The ids of the samples in ``files``, known without decoding anything (unique, in order)."""
        spec = pairing.sample_folders({**data, "format": self.name})
        if spec:
            root = Path(data["annotations"])
            found = [pairing.folder_sample_id(pairing.sample_folder_of(path, spec), root) for path in files]
        else:
            found = self.ids(files, data)
        return list(dict.fromkeys(found))


def get(name: str) -> Format:
    """The registered format called ``name``."""
    if name not in FORMATS:
        raise ConfigError(f"data.format {name!r} is not a format cellbench reads: {', '.join(FORMATS)}")
    return FORMATS[name]


from cellbench.formats import (  # noqa: E402  (the modules import Format from here)
    class_index_png,
    grey_masks,
    instance_folders,
    instance_labels,
    labelme,
    mask_pairs,
    rle_csv,
)

FORMATS: dict[str, Format] = {module.FORMAT.name: module.FORMAT for module in (
    labelme, grey_masks, class_index_png, instance_folders, rle_csv, instance_labels, mask_pairs)}
