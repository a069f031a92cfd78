"""What is scored: the regions and object types of the evaluate section that fit the classes.

One resolution step, shared by predict, evaluate and report, and callable on a configuration
before anything runs (``resolve(config["classes"], config["evaluate"])``):

- an entry of ``evaluate.regions`` or ``evaluate.objects`` equal to the schema's default entry
  that does not fit the classes (a region with the name of a class, a class that does not exist)
  is skipped, with one note saying so;
- an entry the user wrote that does not fit is a ``ConfigError`` naming the key, the class and
  the classes there are;
- when no object type applies, one is derived per foreground class: its connected components.
"""

from __future__ import annotations

import copy
import functools
import logging
from dataclasses import dataclass

from cellbench.errors import ConfigError


@dataclass(frozen=True)
class Scope:
    """The regions and object types that apply to ``classes``, and notes on what was skipped or derived."""

    classes: list[str]
    regions: dict[str, list[str]]  # unions of classes scored besides every foreground class
    objects: dict[str, dict]  # object type -> {"classes": [...], optional "seed_class"}
    skipped: list[str]  # one line per default left out
    derived: list[str]  # one line per object type (or set of them) made from the classes

    @property
    def notes(self) -> list[str]:
        return [*self.skipped, *self.derived]

    def settings(self, evaluate: dict) -> dict:
        """A copy of the evaluate section with only the regions and object types that apply."""
        return {**evaluate, "regions": copy.deepcopy(self.regions), "objects": copy.deepcopy(self.objects)}

    def region_indices(self) -> dict[str, list[int]]:
        """Scored classes and regions: every foreground class, then the regions, as class indices."""
        out = {name: [i] for i, name in enumerate(self.classes) if i > 0}
        out.update({name: [self.classes.index(m) for m in members] for name, members in self.regions.items()})
        return out

    def object_indices(self) -> dict[str, dict]:
        """Object types as class indices: name -> {classes: [indices], seeds: [indices], min_size,
        min_size_set (whether the config set it), fill_holes}."""
        return {name: _indices(self.classes, entry) for name, entry in self.objects.items()}

    def log(self, logger: logging.Logger) -> None:
        """Skipped defaults as warnings, derived object types as information, one line each."""
        for line in self.skipped:
            logger.warning("%s", line)
        for line in self.derived:
            logger.info("%s", line)

    def describe(self) -> list[str]:
        """What is scored, in words: classes, regions, object types (one line each)."""
        foreground = self.classes[1:]
        regions = "; ".join(f"{name} = {' + '.join(members)}" for name, members in self.regions.items())
        types = "; ".join(f"{name} ({_object_words(entry)})" for name, entry in self.objects.items())
        return [f"Classes: {', '.join(foreground)} ({self.classes[0]} is not scored).",
                f"Regions: {regions or 'none'}.",
                f"Object types: {types or 'none'}."]


def resolve(classes: list[str], evaluate: dict | None = None) -> Scope:
    """The regions and object types of the evaluate section (keys left out: the schema defaults)
    that apply to ``classes``. Raises ConfigError for an entry the user chose that does not fit."""
    classes = list(classes)
    evaluate = evaluate or {}
    defaults = _defaults()
    regions, skipped, errors = _regions(classes, evaluate["regions"] if "regions" in evaluate
                                        else defaults["regions"])
    spec = evaluate["objects"] if "objects" in evaluate else defaults["objects"]
    objects, skipped_objects, derived, object_errors = _objects(classes, spec)
    _raise(errors + object_errors)
    return Scope(classes, regions, objects, skipped + skipped_objects, derived)


def _raise(errors: list[str]) -> None:
    """One ConfigError naming every entry that does not fit (a line each)."""
    if errors:
        raise ConfigError("\n  - ".join(errors))


def applicable_regions(classes: list[str], regions: dict[str, list[str]] | None) -> tuple[dict, list[str]]:
    """(regions that apply, notes on the defaults skipped) of ``evaluate.regions``."""
    out, skipped, errors = _regions(classes, regions)
    _raise(errors)
    return out, skipped


def _regions(classes: list[str], regions: dict[str, list[str]] | None) -> tuple[dict, list[str], list[str]]:
    defaults = _defaults()["regions"]
    out, skipped, errors = {}, [], []
    for name, members in (regions or {}).items():
        members = list(members)
        is_default = defaults.get(name) == members
        if name in classes:
            if not is_default:
                errors.append(f"evaluate.regions.{name}: a region cannot have the name of a class ({name!r} is "
                              f"in classes {_listed(classes)}); give the region another name or leave it out")
            else:
                skipped.append(f"region {name!r} skipped: it is the name of a class")
            continue
        missing = _missing(members, classes)
        if missing:
            if not is_default:
                errors.append(f"evaluate.regions.{name}: {_no_class(missing, classes)}; name classes that "
                              "exist or leave the region out")
            else:
                skipped.append(f"region {name!r} skipped: {_no_class(missing, classes)}")
            continue
        out[name] = members
    return out, skipped, errors


def applicable_objects(classes: list[str], spec: dict[str, dict] | None) -> tuple[dict, list[str], list[str]]:
    """(object types that apply, notes on the defaults skipped, notes on the types derived) of
    ``evaluate.objects``; with none that applies, one type per foreground class (its connected
    components)."""
    out, skipped, derived, errors = _objects(classes, spec)
    _raise(errors)
    return out, skipped, derived


def _objects(classes: list[str], spec: dict[str, dict] | None) -> tuple[dict, list[str], list[str], list[str]]:
    defaults = _defaults()["objects"]
    out, skipped, errors = {}, [], []
    for name, entry in (spec or {}).items():
        members, seed = list(entry["classes"]), entry.get("seed_class")
        is_default = name in defaults and _same_object(defaults[name], entry)
        missing = _missing(members + ([seed] if seed else []), classes)
        if missing:
            if not is_default:
                key = "classes" if _missing(members, classes) else "seed_class"
                errors.append(f"evaluate.objects.{name}.{key}: {_no_class(missing, classes)}; name classes "
                              "that exist or leave the object type out")
            else:
                skipped.append(f"object type {name!r} skipped: {_no_class(missing, classes)}")
            continue
        out[name] = copy.deepcopy(dict(entry))
    derived = []
    if not out:
        foreground = list(classes[1:])
        out = {type_name(name): {"classes": [name]} for name in foreground}
        why = ("evaluate.objects is empty" if not spec
               else f"no object type of evaluate.objects fits classes {_listed(classes)}")
        if len(foreground) == 1:
            derived.append(f"object type {type_name(foreground[0])!r} derived: the connected components of class "
                           f"{foreground[0]!r} ({why})")
        elif foreground:
            derived.append(f"object types {', '.join(repr(type_name(c)) for c in foreground)} derived: the connected "
                           f"components of each foreground class ({why})")
    return out, skipped, derived, errors


def type_name(class_name: str) -> str:
    """The object type derived from a class: its name, made a folder name (object types name folders
    of the outputs; a class may be called tv/monitor, or ../x)."""
    name = class_name.replace("/", "_").replace("\\", "_")
    return name if name not in (".", "..") else f"class{name}"


@functools.cache
def _defaults() -> dict:
    """The schema's default evaluate.regions and evaluate.objects (read once; not to be changed)."""
    from cellbench.config import load_schema
    section = load_schema()["properties"]["evaluate"]["properties"]
    return {"regions": section["regions"]["default"], "objects": section["objects"]["default"]}


def _same_object(a: dict, b: dict) -> bool:
    return list(a["classes"]) == list(b["classes"]) and (a.get("seed_class") or None) == (b.get("seed_class") or None)


def _indices(classes: list[str], entry: dict) -> dict:
    seeds = [entry["seed_class"]] if entry.get("seed_class") else []
    return {"classes": [classes.index(c) for c in entry["classes"]], "seeds": [classes.index(c) for c in seeds],
            "min_size": int(entry.get("min_size", 0)), "min_size_set": "min_size" in entry,
            "fill_holes": bool(entry.get("fill_holes", False))}


def _object_words(entry: dict) -> str:
    members = " + ".join(entry["classes"])
    if entry.get("seed_class") and not {entry["seed_class"]} >= set(entry["classes"]):
        return f"{members}, touching ones split by a {entry['seed_class']}-seeded watershed"
    return f"connected components of {members}"


def _missing(names: list[str], classes: list[str]) -> list[str]:
    return list(dict.fromkeys(n for n in names if n not in classes))


def _listed(classes: list[str]) -> str:
    return "[" + ", ".join(classes) + "]"


def _no_class(missing: list[str], classes: list[str]) -> str:
    return f"no class {' or '.join(map(repr, missing))} in classes {_listed(classes)}"
