"""Configuration: the schema in workflow/schemas is the single source of keys and defaults."""

from __future__ import annotations

import copy
import hashlib
import json
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


def check(config: dict) -> None:
    """Validate ``config`` (complete or only some keys) against the schema; ConfigError names the key."""
    try:
        jsonschema.validate(config, load_schema())
    except jsonschema.ValidationError as err:
        where = "/".join(str(p) for p in err.absolute_path) or "<top>"
        raise ConfigError(f"invalid configuration at {where}: {err.message}") from None


def complete(config: dict) -> dict:
    """Return a validated copy of ``config`` with every default filled in."""
    full = copy.deepcopy(config)
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
