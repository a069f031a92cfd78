"""Typed, frozen settings of one step, built only from what the step was sent.

The schema (workflow/schemas/config.schema.yaml) is the one source of keys and defaults. A step run
by Snakemake receives exactly the settings its rule sends (`--settings JSON`, complete sections
because Snakemake fills the schema defaults); reading a key the rule did not send raises
ConfigError instead of silently taking a default, so a rule cannot forget a setting its step uses.
Run by hand (`--config FILE`), every default is filled first and every key counts as sent.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from cellbench.errors import ConfigError


class _NotSent:
    def __repr__(self) -> str:
        return "<not sent>"


NOT_SENT: Any = _NotSent()

# train settings that do not change a model: adding an architecture or a thread retrains nothing
NOT_MODEL_SETTINGS = ("architectures", "threads", "resume_every_minutes", "fractions")


def _plain(value):
    """A copy in JSON types (nested sections as dicts of what was sent)."""
    if isinstance(value, Section):
        return value.sent()
    return copy.deepcopy(value)


class Section(Mapping):
    """Base of every settings class: frozen fields (each holds its own copy of the value); a field
    that was not sent raises ConfigError when read, as an attribute or as a key (``settings["train"]
    ["epochs"]``: the library's functions take these like the plain config mapping)."""

    section: ClassVar[str] = ""
    nested: ClassVar[dict[str, type[Section]]] = {}

    def __getattribute__(self, name: str):
        value = object.__getattribute__(self, name)
        if value is NOT_SENT:
            where = f"{type(self).section}.{name}" if type(self).section else name
            raise ConfigError(f"setting {where} was not sent to this step: the rule (or caller) that runs "
                              "it must pass every setting the step reads")
        return value

    @classmethod
    def build(cls, values: Mapping | None):
        """Settings from a (possibly partial) mapping; keys it lacks are 'not sent'."""
        values = dict(values or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            where = f" in {cls.section}" if cls.section else ""
            raise ConfigError(f"unknown setting{'s' if len(unknown) > 1 else ''}{where}: {', '.join(unknown)}")
        built = {}
        for name in names:
            if name in cls.nested:
                built[name] = cls.nested[name].build(values.get(name))
            else:
                built[name] = copy.deepcopy(values[name]) if name in values else NOT_SENT
        return cls(**built)

    def is_sent(self, name: str) -> bool:
        """Whether ``name`` was sent (a nested section: whether any of its settings was)."""
        value = object.__getattribute__(self, name)
        return value is not NOT_SENT and not (isinstance(value, Section) and not len(value))

    def sent(self) -> dict:
        """The settings that were sent, as plain JSON types (nested sections only if anything was sent)."""
        out = {}
        for field in dataclasses.fields(self):
            value = object.__getattribute__(self, field.name)
            if value is NOT_SENT:
                continue
            plain = _plain(value)
            if isinstance(value, Section) and not plain:
                continue
            out[field.name] = plain
        return out

    def __getitem__(self, name: str):
        if name not in self._names():
            raise KeyError(name)
        return getattr(self, name)

    def __contains__(self, name) -> bool:
        return name in self._names() and self.is_sent(name)

    def __iter__(self) -> Iterator[str]:
        return (name for name in self._names() if self.is_sent(name))

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @classmethod
    def _names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sent()!r})"

    def __eq__(self, other) -> bool:
        if isinstance(other, Section):
            return type(self) is type(other) and self.sent() == other.sent()
        return isinstance(other, Mapping) and self.sent() == dict(other)

    __hash__ = None


def _settings(cls):
    return dataclasses.dataclass(frozen=True, eq=False, repr=False)(cls)


@_settings
class DataSettings(Section):
    section: ClassVar[str] = "data"
    format: str
    annotations: str | None
    images: str | None
    demo: bool
    grey_levels: Mapping[str, int]
    stray_levels: str
    label_aliases: Mapping[str, str]
    instance_mode: str
    object_class: str | None
    sample_folders: Mapping[str, str] | None
    mask_suffix: str
    mask_extension: str
    mask_values: str
    max_pixels: int
    unknown_labels: str


@_settings
class SplitSettings(Section):
    section: ClassVar[str] = "split"
    folds: int
    seed: int
    metadata: str | None
    id_column: str | None
    stratify_column: str | None
    group_column: str | None
    group_near_duplicates: bool


@_settings
class AugmentSettings(Section):
    section: ClassVar[str] = "augment"
    rotations: int
    flip: bool


@_settings
class TrainSettings(Section):
    section: ClassVar[str] = "train"
    architectures: list[str]
    encoder: str
    encoder_weights: str | None
    epochs: int
    steps_per_epoch: int | None
    batch_size: int
    crop_size: int
    learning_rate: float
    weight_decay: float
    lr_schedule: str
    lr_min_ratio: float
    plateau_patience: int
    plateau_factor: float
    selection: str
    inner_fraction: float
    fractions: list[float] | None
    monitor_scored_fold: bool
    early_stopping_patience: int | None
    dice_weight: float
    target: str
    seed: int
    device: str
    amp: bool
    compile: bool
    deterministic: bool
    in_memory: bool | str
    resume_every_minutes: float
    threads: int


@_settings
class MaskRCNNSettings(Section):
    section: ClassVar[str] = "maskrcnn"
    learning_rate: float
    score_threshold: float
    mask_threshold: float
    detections_per_image: int
    proposals_per_image: int
    rois_per_image: int


@_settings
class NucleusGuidedSettings(Section):
    section: ClassVar[str] = "nucleus_guided"
    nucleus_class: str
    cytoplasm_class: str
    stage1_arch: str
    stage2_arch: str
    input_size: int
    scales: list[float] | None
    n_scales: int
    aggregation: str
    ratio_threshold: float
    stage2_nuclei: str


@_settings
class EvaluateSettings(Section):
    section: ClassVar[str] = "evaluate"
    regions: Mapping[str, list[str]]
    boundary: bool
    objects: Mapping[str, Mapping[str, Any]]
    min_size_fraction: float
    join_pieces: bool
    thresholds: list[float]
    object_hausdorff: bool
    bootstrap_resamples: int
    seed: int


@_settings
class MeasureSettings(Section):
    section: ClassVar[str] = "measure"
    bin_width: int


@_settings
class ReportSettings(Section):
    section: ClassVar[str] = "report"
    overlay_samples: int


@_settings
class InferSettings(Section):
    section: ClassVar[str] = "infer"
    images: str | list[str] | None
    architectures: list[str]
    folds: str | list[int]
    tta: str
    tile_size: int | None
    overlap: float
    batch_size: int
    block_size: int
    whole_slide: str
    slide_format: str
    object_margin: int
    save_probabilities: bool
    device: str

    def windows(self):
        """The tiling of these settings (test-time augmentation included when it was sent)."""
        from cellbench.inference.ensemble import Windows
        tta = self.tta if self.is_sent("tta") else "none"
        return Windows(self.tile_size, self.overlap, self.batch_size, tta, True, self.block_size)

    def slides(self):
        """How whole slides are read and written."""
        from cellbench.inference.slide import SlideOptions
        return SlideOptions(self.whole_slide == "every_tiff", self.slide_format, self.object_margin)


@_settings
class Settings(Section):
    """Everything one step was sent: top-level keys plus one object per config section."""

    nested: ClassVar[dict[str, type[Section]]] = {
        "data": DataSettings, "split": SplitSettings, "augment": AugmentSettings, "train": TrainSettings,
        "maskrcnn": MaskRCNNSettings, "nucleus_guided": NucleusGuidedSettings, "evaluate": EvaluateSettings,
        "measure": MeasureSettings,
        "report": ReportSettings, "infer": InferSettings}
    dataset: str
    results: str
    data: DataSettings
    classes: list[str]
    class_priority: list[str] | str | None
    split: SplitSettings
    augment: AugmentSettings
    train: TrainSettings
    evaluate: EvaluateSettings
    maskrcnn: MaskRCNNSettings
    nucleus_guided: NucleusGuidedSettings
    measure: MeasureSettings
    report: ReportSettings
    infer: InferSettings

    def to_json(self) -> str:
        return json.dumps(self.sent(), sort_keys=True)
