"""Configuration: the schema in workflow/schemas is the single source of keys and defaults."""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from cellbench.errors import ConfigError

_REPO_SCHEMA = Path(__file__).resolve().parents[2] / "workflow" / "schemas" / "config.schema.yaml"


def schema_path() -> Path:
    """Location of config.schema.yaml (packaged copy in a wheel, the repo file in a checkout)."""
    packaged = resources.files("cellbench") / "config.schema.yaml"
    if packaged.is_file():
        return Path(str(packaged))
    if _REPO_SCHEMA.is_file():
        return _REPO_SCHEMA
    raise FileNotFoundError("config.schema.yaml not found in the package or the repository")


def load_schema() -> dict:
    return yaml.safe_load(schema_path().read_text())


def _fill_defaults(schema: dict, instance: dict) -> None:
    for key, sub in schema.get("properties", {}).items():
        if key not in instance and "default" in sub:
            instance[key] = copy.deepcopy(sub["default"])
        if isinstance(instance.get(key), dict) and sub.get("type") == "object":
            _fill_defaults(sub, instance[key])


def _not_finite(value: Any, where: str = "") -> list[str]:
    """Where ``value`` holds NaN or an infinity (YAML's .nan, .inf): no setting means them, and a
    comparison with NaN passes every bound of the schema."""
    if isinstance(value, float) and not math.isfinite(value):
        return [f"invalid configuration at {where or '<top>'}: {value!r} is not a number a setting can have"]
    if isinstance(value, dict):
        return [line for key, item in value.items() for line in _not_finite(item, f"{where}/{key}".lstrip("/"))]
    if isinstance(value, list):
        return [line for i, item in enumerate(value) for line in _not_finite(item, f"{where}/{i}".lstrip("/"))]
    return []


def _schema_message(err: jsonschema.ValidationError) -> str:
    where = "/".join(str(p) for p in err.absolute_path) or "<top>"
    message = err.message
    if err.validator == "pattern" and isinstance(err.schema, dict) and "$comment" in err.schema:
        message = f"{err.instance!r} {err.schema['$comment']}"
    return f"invalid configuration at {where}: {message}"


def check(config: dict) -> None:
    """Validate ``config`` (complete or only some keys) against the schema; one ConfigError names every
    key that is wrong."""
    schema = load_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    found = sorted(validator.iter_errors(config), key=lambda err: list(map(str, err.absolute_path)))
    lines = [*map(_schema_message, found), *_not_finite(config)]
    if len(lines) == 1:
        raise ConfigError(lines[0])
    if lines:
        raise ConfigError("the configuration has " + str(len(lines)) + " invalid settings:\n"
                          + "\n".join(f"  - {line.removeprefix('invalid configuration at ')}" for line in lines))


# A name that becomes a folder or file name (classes, object types, infer's run name): never a path
# (the schema's pattern for names; Snakemake reads { } and < > in paths as wildcards and variables).
SAFE_NAME = re.compile(r"^(?!\.\.?$)[^/\\<>{}\x00-\x1f]+$")


def check_name(value: str, what: str) -> str:
    """``value`` if it is a safe name (SAFE_NAME), else a ConfigError naming ``what``."""
    if not isinstance(value, str) or not SAFE_NAME.match(value):
        raise ConfigError(f"{what} {value!r} is not a name: it must not contain / \\ < > {{ }} or control characters, "
                          "nor be . or .. (it becomes a folder name under the results folder)")
    return value


# what only the demo means: its generated cell-type table stratifies its folds (a user's config
# without metadata must not inherit this)
DEMO_SETTINGS = {"split": {"stratify_column": "cell_type"}}
GENERIC_FOLDER_NAMES = frozenset({"annotations", "annotation", "masks", "mask", "labels", "label", "labelme", "json",
                                  "gt", "ground_truth", "groundtruth", "images", "data", "train", "test"})


def dataset_name(annotations: str | Path) -> str:
    """A results folder name for the data in ``annotations``: the folder's (or CSV's) name, its
    parent's where the name says nothing (masks, annotations, ...), characters other than letters,
    digits, ``_ . -`` replaced by ``_``."""
    path = Path(os.path.normpath(Path(annotations).expanduser().absolute()))
    name = path.stem if path.suffix.lower() == ".csv" else path.name
    if name.lower() in GENERIC_FOLDER_NAMES and path.parent.name:
        name = path.parent.name
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", name).strip(".")
    return "dataset" if not name else f"{name}_data" if name == "demo" else name  # results/demo is the demo's


def apply_data_defaults(config: dict) -> dict:
    """Settle what depends on where the data is, before the schema's defaults are filled in (so
    that a key the user wrote, even as null, is never replaced): ``data.demo`` unset or null means
    the demo exactly when no data is described (no annotations, images or sample folders, and the
    demo's LabelMe format); ``dataset`` unset names the results folder (``demo``, else after the
    annotation folder); the demo alone gets DEMO_SETTINGS.
    Changes ``config`` in place (Snakemake's config object) and returns it."""
    data = config.get("data")
    if data is None or not isinstance(data, dict):
        if data is not None:
            return config  # not a mapping: the schema check names it
        data = config["data"] = {}
    if data.get("demo") is None:  # the demo is LabelMe; a config naming another layout wants its own data
        data["demo"] = data.get("annotations") is None and data.get("format", "labelme") == "labelme" and not (
            data.get("images") or data.get("sample_folders"))
    if config.get("dataset") is None:
        annotations = data.get("annotations")
        config["dataset"] = "demo" if data["demo"] or not isinstance(annotations, str) else dataset_name(annotations)
    split = config.get("split")
    if data["demo"] is True and not (isinstance(split, dict) and split.get("metadata")):
        for section, values in DEMO_SETTINGS.items():
            if isinstance(config.setdefault(section, {}), dict):
                for key, value in values.items():
                    config[section].setdefault(key, copy.deepcopy(value))
    return config


def complete(config: dict) -> dict:
    """Return a validated copy of ``config`` with every default filled in."""
    full = apply_data_defaults(copy.deepcopy(config))
    _fill_defaults(load_schema(), full)
    check(full)
    return full


def defaults() -> dict:
    """Every key with its schema default."""
    return complete({})


def merge(base: dict, override: dict) -> dict:
    """Recursive dict merge (as Snakemake merges --configfile onto the default config)."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load(*paths: str | Path, overrides: dict | None = None) -> dict:
    """Load YAML config files in order (later ones win), apply overrides, fill defaults."""
    config: dict[str, Any] = {}
    for path in paths:
        try:
            loaded = yaml.safe_load(Path(path).read_text())
        except OSError as err:
            raise ConfigError(f"config file {path} cannot be read: {err.strerror or err}") from None
        except yaml.YAMLError as err:
            raise ConfigError(f"config file {path} is not valid YAML: {err}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of settings, not {type(loaded).__name__}")
        config = merge(config, loaded or {})
    if overrides:
        config = merge(config, overrides)
    return complete(config)


def digest(section: Any) -> str:
    """Short stable hash of a JSON-serialisable config section."""
    blob = json.dumps(section, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
