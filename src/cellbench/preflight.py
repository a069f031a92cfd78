"""Checks that fail in seconds, before any job, instead of after ingest, augment or hours of training.

``check(config)`` reads names only (the annotation files found, the metadata CSV; no image is
decoded): the workflow runs it when it reads the configuration and `cellbench validate` / `check`
run it too. Every setting a later step would reject is here, and every problem is listed in one
message: the data section against the format and the classes, the split against the metadata and
the samples, the evaluation scope, the model-selection protocol and what infer may choose.
``check_models(config)`` builds every architecture on PyTorch's meta device (no memory, no
weights) to catch an unknown encoder, an architecture that refuses it, or a crop size that is not
a multiple of a model's size divisor; it costs seconds of imports, so the workflow runs it when it
starts executing (``onstart``), and ``check(config, models=None)`` adds its problems only to a
message that already has some.
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

from cellbench.errors import ConfigError, InputError

log = logging.getLogger(__name__)

IMAGE_FOLDER_FORMATS = ("grey_masks", "class_index_png", "instance_labels", "rle_csv")
INSTANCE_FORMATS = ("instance_folders", "rle_csv", "instance_labels")


def sample_ids(config: dict) -> list[str] | None:
    """The sample ids of the annotations, from file names alone (None when they cannot be listed)."""
    from cellbench import formats
    from cellbench.dataset import demo, ingest

    if config["data"]["demo"]:
        return demo.sample_names()
    try:
        files = ingest.annotation_files(config)
    except (OSError, ValueError):
        return None
    ids = formats.get(config["data"]["format"]).sample_ids(files, config["data"])
    return [sample_id for sample_id in ids if ingest.is_text(sample_id)]  # validate names the others


def data_problems(config: dict) -> list[str]:
    """What the data section asks that its format, its classes or the file system cannot give."""
    from cellbench import formats
    from cellbench.dataset import ingest
    from cellbench.formats import class_masks, pairing, sniff
    from cellbench.formats.instance_masks import object_class_index
    from cellbench.formats.labelme.reading import checked_lookup

    data, classes, errors = config["data"], list(config["classes"]), []
    fmt = data["format"]
    if data["sample_folders"] and fmt not in pairing.SAMPLE_FOLDER_FORMATS:
        errors.append(f"data.sample_folders is for {', '.join(pairing.SAMPLE_FOLDER_FORMATS)}, not data.format {fmt}")
    checks = []
    if fmt == "grey_masks" or (fmt == "mask_pairs" and data["mask_values"] == "grey_levels"):
        checks.append(lambda: class_masks.grey_levels(data["grey_levels"], classes, data["stray_levels"]))
    if fmt == "labelme":
        checks.append(lambda: checked_lookup(classes, data["label_aliases"], data["unknown_labels"]))
    if fmt in INSTANCE_FORMATS:
        checks.append(lambda: object_class_index(classes, data["object_class"]))
    for run in checks:
        try:
            run()
        except ConfigError as err:
            errors.append(str(err) if str(err).startswith("data.") else f"data: {err}")
    if data["demo"]:
        return errors
    try:
        source = ingest.annotation_folder(config)
    except ConfigError as err:
        return [*errors, str(err)]
    if fmt in IMAGE_FOLDER_FORMATS and not pairing.sample_folders(data):
        if not data["images"]:
            errors.append(f"data.images must name the image folder when data.format is {fmt} (or set "
                          "data.sample_folders for one folder per sample)")
        elif not Path(data["images"]).is_dir():
            errors.append(f"data.images {data['images']} is not a folder")
        elif source.is_dir() and source.resolve() == Path(data["images"]).resolve():
            hint = sniff.suggestion(source, {**data, "format": None})
            errors.append(f"data.annotations and data.images are one folder ({source}): with data.format {fmt} the "
                          "masks or label images need a folder of their own"
                          + (f"; {hint}" if hint else "; or set data.sample_folders"))
    if not source.exists():
        return [*errors, f"data.annotations {source} does not exist"]
    if not ingest.annotation_files(config):
        hint = sniff.suggestion(source, data)
        errors.append(f"data.annotations {source} holds no {formats.get(fmt).describe(data)} for data.format "
                      f"{fmt}{'; ' + hint if hint else ''}")
    return errors


def _split_problems(config: dict, ids: list[str] | None) -> tuple[list[str], list[str]]:
    """(errors, warnings) of the split settings against the metadata and the samples: every reason
    the split step would refuse, found before ingest and augment have run."""
    from cellbench.dataset import demo
    from cellbench.dataset.split import groups_and_strata, metadata_path

    split, errors, warnings = config["split"], [], []
    folds = split["folds"]
    if ids and len(ids) < folds:  # none at all: the data section says why
        errors.append(f"split.folds is {folds} but the annotations hold {len(ids)} image"
                      f"{'s' if len(ids) != 1 else ''}: every fold needs at least one")
    path = metadata_path(config)
    if path and config["data"]["demo"] and not split["metadata"] and not Path(path).is_file():
        # the demo's table is written when the demo is generated: its columns are known
        for key in ("id_column", "stratify_column", "group_column"):
            if split[key] and split[key] not in demo.METADATA_COLUMNS:
                errors.append(f"split.{key} {split[key]!r} is not a column of the demo's cell-type table "
                              f"(columns: {', '.join(demo.METADATA_COLUMNS)})")
        return errors, warnings
    if path and not Path(path).is_file():
        return [*errors, f"split.metadata {path} does not exist"], warnings
    try:
        groups, strata = groups_and_strata(split, path, ids or [])
    except ConfigError as err:
        return [*errors, str(err)], warnings
    except InputError as err:
        return [*errors, *(f"split.metadata {problem}" for problem in err.problems)], warnings
    if ids is None:
        return errors, warnings
    n_groups = groups.nunique()
    if split["group_column"] and n_groups < folds <= len(ids):
        errors.append(f"split.folds is {folds} but split.group_column {split['group_column']!r} has only "
                      f"{n_groups} groups: every fold needs at least one")
    train = config["train"]
    if train["selection"] == "inner" and n_groups >= folds:
        smallest_training = n_groups - math.ceil(n_groups / folds)
        if smallest_training < 2:
            errors.append(f"train.selection inner holds out some of each fold's training groups, but with "
                          f"{n_groups} groups in {folds} folds a fold trains on {smallest_training}: it needs 2 or "
                          "more (more images or groups, fewer folds, or selection last)")
    if split["stratify_column"]:
        for stratum, count in strata.value_counts().sort_index().items():
            if count < folds:
                warnings.append(f"stratum {stratum!r} of split.stratify_column {split['stratify_column']!r} has "
                                f"{count} image{'s' if count != 1 else ''}, fewer than the {folds} folds: some "
                                "folds will have none of it")
    return errors, warnings


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


def problems(config: dict) -> tuple[list[str], list[str]]:
    """(errors, warnings) of a complete configuration, from names alone (no image decoded, no model built)."""
    from cellbench.evaluation.scope import resolve

    errors, warnings = data_problems(config), []
    train = config["train"]
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
    split_errors, split_warnings = _split_problems(config, sample_ids(config))
    errors += split_errors + _infer_problems(config)
    return errors, warnings + split_warnings


UNPLANNABLE = re.compile(r"[{}<>]")  # Snakemake reads these in a path as wildcards and path variables


def planning_problems(config: dict) -> list[str]:
    """Files the workflow would declare as inputs whose paths Snakemake cannot plan: { } read as
    wildcards, < > as path variables (the annotation files; infer.images where set). `cellbench`
    steps run by hand read them as they are."""
    from cellbench.dataset import ingest
    from cellbench.inference.inputs import find_images
    found = []
    if not config["data"]["demo"]:
        try:
            found += [("annotation file", p) for p in ingest.input_files(config)]
        except (ConfigError, OSError):
            pass  # data_problems says why
    if (config.get("infer") or {}).get("images"):
        try:
            found += [("infer image", p) for p in find_images(config["infer"]["images"])]
        except ConfigError:
            pass  # the infer step says why, when it is asked for
    hostile = [(what, path) for what, path in found if UNPLANNABLE.search(str(path))]
    if not hostile:
        return []
    shown = "; ".join(f"{what} {path}" for what, path in hostile[:5]) + ("; ..." if len(hostile) > 5 else "")
    return [f"{len(hostile)} input paths hold {{ }} or < >, which Snakemake reads as wildcards and path variables "
            f"and cannot plan ({shown}): rename them, or run the `cellbench` steps by hand, which read them as "
            "they are"]


def check(config: dict, models: bool | None = False, workflow: bool = False) -> list[str]:
    """Raise ConfigError listing every problem of a complete configuration; return warnings (one line
    each) for what works but deserves a look. ``models``: also build every architecture (True), never
    (False), or only when something else is wrong already, so that the one message lists all (None).
    ``workflow``: also the paths Snakemake cannot plan (planning_problems)."""
    errors, warnings = problems(config)
    if workflow:
        errors += planning_problems(config)
    if models or (models is None and errors):
        errors += model_problems(config)
    if errors:
        raise ConfigError("the configuration cannot work:\n" + "\n".join(f"  - {e}" for e in errors))
    return warnings


def model_problems(config: dict) -> list[str]:
    """One line per architecture that cannot be built with the encoder on the meta device, or whose
    size divisor does not divide train.crop_size (or, for NucleusGuided's second stage,
    nucleus_guided.input_size)."""
    import torch

    with warnings.catch_warnings():  # a library's deprecation notice is no problem of this configuration
        warnings.simplefilter("ignore", FutureWarning)
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
            text = str(err)  # smp lists every encoder it knows (hundreds): the start says what is wrong
            errors.append(f"{arch} cannot be built with encoder {train['encoder']!r}: "
                          f"{text if len(text) <= 200 else text[:200] + ' ...'}")
            continue
        for (name, divisor), (key, size) in zip(parts, sizes, strict=False):
            if size % divisor:
                below = size - size % divisor
                errors.append(f"{key} {size} is not a multiple of {divisor}, which {name} needs: use "
                              f"{below} or {below + divisor}")
    return errors


def check_models(config: dict) -> None:
    """Raise ConfigError listing every architecture that cannot be trained as configured (model_problems)."""
    errors = model_problems(config)
    if errors:
        raise ConfigError("the models cannot be trained as configured:\n" + "\n".join(f"  - {e}" for e in errors))
