"""Typed, frozen settings of one step, built only from what the step was sent.

The schema (workflow/schemas/config.schema.yaml) is the one source of keys and defaults. A step run
by Snakemake receives exactly the settings its rule sends (`--settings JSON`, complete sections
because Snakemake fills the schema defaults); reading a key the rule did not send raises
ConfigError instead of silently taking a default, so a rule cannot forget a setting its step uses.
Run by hand (`--config FILE`), every default is filled first and every key counts as sent.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from cellbench.errors import ConfigError


class _NotSent:
    def __repr__(self) -> str:
        return "<not sent>"


NOT_SENT: Any = _NotSent()

# train settings that do not change a model: adding an architecture or a thread retrains nothing
NOT_MODEL_SETTINGS = ("architectures", "threads", "resume_every_minutes")


def _frozen(value):
    if isinstance(value, Mapping):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    return value


def _plain(value):
    """Back to JSON types (mappings -> dicts, tuples -> lists)."""
    if isinstance(value, Section):
        return value.sent()
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


class Section:
    """Base of every settings class: frozen fields; a field that was not sent raises when read."""

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
                built[name] = _frozen(values[name]) if name in values else NOT_SENT
        return cls(**built)

    def is_sent(self, name: str) -> bool:
        return object.__getattribute__(self, name) is not NOT_SENT

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

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.sent()!r})"

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and self.sent() == other.sent()

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
    architectures: tuple[str, ...]
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
    monitor_scored_fold: bool
    early_stopping_patience: int | None
    dice_weight: float
    seed: int
    device: str
    amp: bool
    compile: bool
    deterministic: bool
    in_memory: bool | str
    resume_every_minutes: float
    threads: int


@_settings
class EvaluateSettings(Section):
    section: ClassVar[str] = "evaluate"
    regions: Mapping[str, tuple[str, ...]]
    boundary: bool
    objects: Mapping[str, Mapping[str, Any]]
    thresholds: tuple[float, ...]
    object_hausdorff: bool
    bootstrap_resamples: int
    seed: int


@_settings
class ReportSettings(Section):
    section: ClassVar[str] = "report"
    overlay_samples: int


@_settings
class Settings(Section):
    """Everything one step was sent: top-level keys plus one object per config section."""

    nested: ClassVar[dict[str, type[Section]]] = {
        "data": DataSettings, "split": SplitSettings, "augment": AugmentSettings, "train": TrainSettings,
        "evaluate": EvaluateSettings, "report": ReportSettings}
    dataset: str
    results: str
    classes: tuple[str, ...]
    class_priority: tuple[str, ...] | str | None
    data: DataSettings
    split: SplitSettings
    augment: AugmentSettings
    train: TrainSettings
    evaluate: EvaluateSettings
    report: ReportSettings

    def to_json(self) -> str:
        return json.dumps(self.sent(), sort_keys=True)
