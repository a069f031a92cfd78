"""Checks that fail in seconds, before any heavy job, instead of after hours of training.

``check(config)`` is cheap (no torch): the workflow runs it when it reads the configuration, and
``cellbench validate`` runs it too. ``check_models(config)`` builds every architecture on PyTorch's
meta device (no memory, no weights) to catch an unknown encoder, an architecture that refuses the
encoder, or a crop size that is not a multiple of a model's size divisor; the workflow runs it once
when it starts executing (``onstart``), not on dry runs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cellbench.errors import ConfigError

log = logging.getLogger(__name__)


def _count_samples(config: dict) -> int | None:
    """How many images the annotations hold, known without decoding them (None when unknown)."""
    from cellbench.dataset import demo, ingest

    if config["data"]["demo"]:
        return demo.N_IMAGES
    try:
        files = ingest.annotation_files(config)
    except (OSError, ValueError):
        return None
    if config["data"]["format"] == "instance_folders":
        return len({path.parent.parent for path in files})
    if config["data"]["format"] == "rle_csv":
        try:
            return int(pd.read_csv(files[0], usecols=[0]).iloc[:, 0].nunique()) if files else None
        except (OSError, ValueError, IndexError, pd.errors.ParserError):
            return None
    return len(files)


def _metadata_counts(config: dict) -> tuple[int | None, dict[str, int]]:
    """(number of groups, images per stratum) from the metadata CSV, when the split uses them."""
    from cellbench.dataset.split import metadata_path

    split = config["split"]
    path = metadata_path(config)
    if not path or not (split["group_column"] or split["stratify_column"]) or not Path(path).is_file():
        return None, {}
    try:
        table = pd.read_csv(path, dtype=str, skipinitialspace=True)
    except (OSError, ValueError, pd.errors.ParserError, UnicodeDecodeError):
        return None, {}  # the split step names the file and what is wrong with it
    table.columns = [c.strip() for c in table.columns]
    groups = None
    if split["group_column"] in table.columns:
        groups = int(table[split["group_column"]].fillna("NA").nunique())
    strata = {}
    if split["stratify_column"] in table.columns:
        strata = table[split["stratify_column"]].fillna("NA").value_counts().sort_index().to_dict()
    return groups, strata


def _infer_problems(config: dict) -> list[str]:
    """infer may only name architectures and folds the benchmark trains."""
    chosen, problems = config.get("infer") or {}, []
    unknown = [a for a in chosen.get("architectures", []) if a != "best" and a not in config["train"]["architectures"]]
    if unknown:
        problems.append(f"infer.architectures names {', '.join(unknown)}, not in train.architectures "
                        f"{config['train']['architectures']} (or `best`)")
    folds = chosen.get("folds", "all")
    if folds != "all" and (outside := [k for k in folds if k >= config["split"]["folds"]]):
        problems.append(f"infer.folds names fold {', '.join(map(str, outside))} but split.folds is "
                        f"{config['split']['folds']} (folds 0 to {config['split']['folds'] - 1})")
    return problems


def check(config: dict) -> list[str]:
    """Raise ConfigError listing every problem of a complete configuration that can be seen without
    reading the images; return warnings (one line each) for what works but deserves a look."""
    from cellbench.evaluation.scope import resolve

    errors, warnings = [], []
    train, split = config["train"], config["split"]
    if train["early_stopping_patience"] is not None and train["selection"] == "last":
        errors.append("train.early_stopping_patience needs a signal that is not the scored fold: set "
                      "train.selection: inner (or early_stopping_patience: null)")
    if train["selection"] == "scored_fold_best":
        warnings.append("train.selection is scored_fold_best: the kept epoch is chosen on the images it is scored "
                        "on, so every score is OPTIMISTIC (use it only to reproduce published numbers)")
    try:
        scope = resolve(config["classes"], config["evaluate"])
        warnings += scope.notes
    except ConfigError as err:
        errors.append(str(err))
    priority = config["class_priority"]
    if isinstance(priority, list) and (unknown := [c for c in priority if c not in config["classes"]]):
        errors.append(f"class_priority names classes that are not in classes {config['classes']}: {unknown}")
    n_samples = _count_samples(config)
    n_groups, strata = _metadata_counts(config)
    folds = split["folds"]
    if n_samples is not None and n_samples < folds:
        errors.append(f"split.folds is {folds} but the annotations hold {n_samples} image"
                      f"{'s' if n_samples != 1 else ''}: every fold needs at least one")
    elif n_groups is not None and n_groups < folds:
        errors.append(f"split.folds is {folds} but split.group_column {split['group_column']!r} has only "
                      f"{n_groups} groups: every fold needs at least one")
    for stratum, count in strata.items():
        if count < folds:
            warnings.append(f"stratum {stratum!r} of split.stratify_column {split['stratify_column']!r} has "
                            f"{count} image{'s' if count != 1 else ''}, fewer than the {folds} folds: some folds "
                            "will have none of it")
    errors += _infer_problems(config)
    if errors:
        raise ConfigError("the configuration cannot work:\n" + "\n".join(f"  - {e}" for e in errors))
    return warnings


def check_models(config: dict) -> None:
    """Build every architecture with the encoder on the meta device; raise ConfigError listing each
    one that cannot be built or whose size divisor does not divide train.crop_size (or, for
    NucleusGuided's second stage, nucleus_guided.input_size)."""
    import torch

    from cellbench.training import maskrcnn, models, nucleus_guided

    train = config["train"]
    errors = []
    for arch in train["architectures"]:
        sizes = [("train.crop_size", train["crop_size"])]
        try:
            with torch.device("meta"):
                if arch == maskrcnn.ARCH:
                    maskrcnn.detection_types(list(config["classes"]), config["evaluate"]["objects"])
                    parts = [(arch, 32)]
                elif arch == nucleus_guided.ARCH:
                    guided = config["nucleus_guided"]
                    nucleus_guided.roles(list(config["classes"]), guided)
                    net = nucleus_guided.NucleusGuidedNet(guided["stage1_arch"], guided["stage2_arch"],
                                                          train["encoder"])
                    parts = [(guided["stage1_arch"], models.size_divisor(net.stage1)),
                             (guided["stage2_arch"], models.size_divisor(net.stage2))]
                    sizes.append(("nucleus_guided.input_size", guided["input_size"]))
                else:
                    model = models.build(arch, train["encoder"], len(config["classes"]), None)
                    parts = [(arch, models.size_divisor(model))]
        except ConfigError as err:
            errors.append(str(err))
            continue
        except (ValueError, TypeError, RuntimeError, AttributeError) as err:  # smp refusing a combination
            errors.append(f"{arch} cannot be built with encoder {train['encoder']!r}: {err}")
            continue
        for (name, divisor), (key, size) in zip(parts, sizes, strict=False):
            if size % divisor:
                below = size - size % divisor
                errors.append(f"{key} {size} is not a multiple of {divisor}, which {name} needs: use "
                              f"{below} or {below + divisor}")
    if errors:
        raise ConfigError("the models cannot be trained as configured:\n" + "\n".join(f"  - {e}" for e in errors))
