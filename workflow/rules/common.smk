# Shared names, input functions and target lists.
import json
import os
import re
import shlex
from pathlib import Path

from snakemake.logging import logger

from cellbench import preflight

from cellbench.dataset import demo
from cellbench.dataset.ingest import annotation_folder, input_files
from cellbench.layout import Layout
from cellbench.report import (
    COST_FIGURES,
    FIGURES,
    MEASUREMENT_FIGURES,
    MEASUREMENT_TABLES,
    TABLES,
)
from cellbench.dataset.split import metadata_path
from cellbench.inference.inputs import find_images
from cellbench.settings import NOT_MODEL_SETTINGS
from cellbench.export import FAMILY_OF, FORMATS, refusal

# Jobs run this checkout's library, also inside `--sdm conda` environments (which hold only the
# dependencies), in SLURM jobs, and when this workflow is imported as a module by another one
# (current_basedir: this file's folder, workflow/rules, wherever the importing workflow is).
shell.prefix(
    "set -euo pipefail; export PYTHONPATH=%s${{PYTHONPATH:+:$PYTHONPATH}}; "
    % shlex.quote(str(Path(workflow.current_basedir).parents[1] / "src"))
)

L = Layout(config["results"], config["dataset"])
annotation_folder(config)  # a clear error now for an inconsistent data section
# every setting a later step would refuse stops the workflow here, in one message, before any job
for warning in preflight.check(config, models=None, workflow=True):
    logger.warning(f"cellbench: {warning}")
ARCHS = config["train"]["architectures"]
FOLDS = list(range(config["split"]["folds"]))
# the annotation budgets below the main run's (train.fractions), as they appear in paths
BUDGETS = [str(f) for f in config["train"].get("fractions") or [] if f < 1]
ENV = "../../envs/cellbench.yaml"
EXPORT_ENV = "../../envs/export.yaml"  # the cellbench environment plus the export extra


wildcard_constraints:
    arch="|".join(re.escape(arch) for arch in ARCHS),
    fold=r"\d+",
    fraction="|".join(re.escape(f) for f in BUDGETS) or "(?!)",
    name=r"(?!\.\.?$)[^/\\<>\x7b\x7d]+",  # no separator, ., .., markup or braces (\x7b \x7d)


def settings(*sections, **extra):
    """JSON of the config sections a step depends on (a change reruns the step)."""
    chosen = {name: config[name] for name in sections}
    chosen.update(extra)
    return json.dumps(chosen, sort_keys=True)


def train_settings():
    """The train section without the keys that do not change a model (so that adding an
    architecture or changing threads does not retrain the others)."""
    return {k: v for k, v in config["train"].items() if k not in NOT_MODEL_SETTINGS}


def family_settings(arch):
    """What only some model families depend on: MaskRCNN its own section and the object types it
    detects, NucleusGuided its own section (so that changing them retrains that family alone).
    """
    if arch == "NucleusGuided":
        return {"nucleus_guided": config["nucleus_guided"]}
    if arch != "MaskRCNN":
        return {}
    return {
        "maskrcnn": config["maskrcnn"],
        "evaluate": {"objects": config["evaluate"]["objects"]},
    }


def object_settings():
    """What the objects of a prediction depend on: the object types and the rules learned from the
    training annotations (min_size_fraction, join_pieces)."""
    keys = ("objects", "min_size_fraction", "join_pieces")
    return {key: config["evaluate"][key] for key in keys}


def window_settings():
    """The tiling shared by out-of-fold prediction and inference (not its test-time augmentation)."""
    keys = ("tile_size", "overlap", "batch_size", "block_size")
    return {key: config["infer"][key] for key in keys}


def infer_inputs(wildcards):
    """The images to segment, every fold model that may be chosen, and the CV summary (for `best`)."""
    chosen = config["infer"]
    archs = ARCHS if "best" in chosen["architectures"] else chosen["architectures"]
    folds = FOLDS if chosen["folds"] == "all" else chosen["folds"]
    inputs = {
        "images": [str(p) for p in find_images(chosen["images"])],
        "checkpoints": [L.checkpoint(a, k) for a in archs for k in folds],
        "data": L.data,  # the annotated images the object rules are learned from
    }
    if "best" in chosen["architectures"]:
        inputs["summary"] = L.summary
    return inputs


def export_inputs(wildcards):
    """The fold models that may be exported (every architecture's for `best`), the ingested images
    the exported files are checked on, and the CV summary (for `best`)."""
    if wildcards.arch in FAMILY_OF:  # before any job: this family is no single network
        raise ValueError(refusal(wildcards.arch, FAMILY_OF[wildcards.arch]))
    archs = ARCHS if wildcards.arch == "best" else [wildcards.arch]
    folds = FOLDS if config["infer"]["folds"] == "all" else config["infer"]["folds"]
    inputs = {
        "checkpoints": [L.checkpoint(a, k) for a in archs for k in folds],
        "data": L.data,
    }
    if wildcards.arch == "best":
        inputs["summary"] = L.summary
    return inputs


def demo_files():
    """The demo generator's files (their names are fixed, so they can be declared)."""
    return [os.path.join(L.demo_annotations, name) for name in demo.file_names()]


def ingest_inputs(wildcards):
    """Every annotation (and image) file: an edited one reruns ingest and what follows."""
    if config["data"]["demo"]:
        return {"annotations": demo_files()}
    return {"annotations": [str(p) for p in input_files(config)]}


def annotation_source(wildcards, input):
    """The annotation folder (or RLE CSV) as the step must read it: the demo's folder where Snakemake
    put it (a module prefix moves it), else data.annotations."""
    if config["data"]["demo"]:
        return os.path.dirname(input.annotations[0])
    return config["data"]["annotations"]


def results_root(path):
    """results/<dataset> of a declared output under it (module prefixes included)."""
    return str(Path(path).parents[3])


def weights_inputs(wildcards):
    """The fetched pretrained weights, when training starts from them."""
    train = config["train"]
    if not train["encoder_weights"]:
        return {}
    return {"weights": L.weights_marker(train["encoder"], train["encoder_weights"])}


def split_inputs(wildcards):
    inputs = {"data": L.data}
    if metadata_path(config):
        inputs["metadata"] = metadata_path(config)
    return inputs


def all_targets():
    return (
        [
            L.summary,
            L.metrics,
            L.run_info,
            L.cells,
            L.fidelity,
            L.cost,
            L.calibration,
        ]
        + report_files()
        + budget_files()
    )


def budget_files():
    """The learning curve, when train.fractions asks for budgets below the main run's."""
    if not BUDGETS:
        return []
    return [L.learning_curve, os.path.join(L.report, "learning_curve.png")]


def extra_figures():
    """Figures of other steps shown on report/index.html: cost, and the learning curve."""
    return [os.path.join(L.report, name) for name in COST_FIGURES] + budget_files()[1:]


def report_files():
    names = FIGURES + TABLES + MEASUREMENT_FIGURES + MEASUREMENT_TABLES + COST_FIGURES
    return [os.path.join(L.report, name) for name in names]
