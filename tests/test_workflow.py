"""End to end through Snakemake on a tiny config: outputs, and exactly what reruns after a change."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO
from PIL import Image

from cellbench.cli import build_parser
from cellbench.dataset import demo
from cellbench.formats import labelme

pytestmark = pytest.mark.workflow

SNAKEMAKE = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")


def tiny_config(annotations: Path, epochs: int) -> dict:
    """The Catalog's test config (.test/config/config.yaml) on the given LabelMe folder."""
    config = yaml.safe_load((REPO / ".test" / "config" / "config.yaml").read_text())
    config["data"] = {"format": "labelme", "annotations": str(annotations), "demo": False}
    config["train"]["epochs"] = epochs
    return config


def snakemake(workdir: Path, *args: str, configfile: str = "config.yaml") -> str:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        [SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--configfile", str(REPO / "config.yaml"), str(workdir / configfile), "--cores", "2", *args],
        capture_output=True, text=True, env=env, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    return output


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from Snakemake's 'Job stats' table of a dry run."""
    if "Nothing to be done" in output:
        return {}
    table = output.split("Job stats:")[1].split("\n\n")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M)
            if m.group(1) != "total"}


def write_config(workdir: Path, epochs: int, **sections) -> None:
    config = {**tiny_config(workdir / "annotations", epochs), **sections}
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def test_pipeline_end_to_end_and_reruns(tmp_path):
    demo.generate(tmp_path / "annotations", n_images=8, size=64, seed=3)
    write_config(tmp_path, epochs=1)
    snakemake(tmp_path)

    root = tmp_path / "results" / "tiny"
    summary = pd.read_parquet(root / "summary.parquet")
    assert set(summary["arch"]) == {"Unet", "FPN"}
    assert set(summary["class"]) == {"cytoplasm", "nucleus", "cell", "foreground_mean"}
    assert (summary["n_folds"] == 2).all()
    metrics = pd.read_parquet(root / "metrics.parquet")
    assert len(metrics) == 2 * 8 * 3  # architectures x out-of-fold images x classes/regions
    instances = pd.read_parquet(root / "instance_summary.parquet")
    assert len(instances) == 2 * 2 * 10  # architectures x object types (cell, nucleus) x IoU thresholds
    assert len(pd.read_parquet(root / "instance_metrics.parquet")) == 2 * 8 * 2 * 10
    assert len(pd.read_parquet(root / "object_metrics.parquet")) == 2 * 8 * 2
    stats = pd.read_parquet(root / "stats.parquet")
    assert set(stats["kind"]) == {"interval", "paired"} and (stats["kind"] == "paired").sum() == 4 + 2 * 2
    assert (root / "predictions" / "Unet" / "fold0" / "instances" / "cell").is_dir()
    splits = pd.read_parquet(root / "splits.parquet")
    for arch in ("Unet", "FPN"):
        for fold in (0, 1):
            predicted = {p.stem for p in (root / "predictions" / arch / f"fold{fold}").glob("*.png")}
            assert predicted == set(splits.loc[splits["fold"] == fold, "sample_id"])
            assert "epoch 1/1" in (root / "logs" / "train" / arch / f"fold{fold}.log").read_text()
    for name in ("dice_by_architecture.png", "dice_by_class.png", "training_curves.png",
                 "overlays.png", "model_comparison.md", "model_comparison.html"):
        assert (root / "report" / name).stat().st_size > 0
    cells = pd.read_parquet(root / "cells.parquet")
    # a model of one epoch may find no cell at all: it is in the fidelity table still (its object count)
    assert set(cells["source"]) <= {"reference", "Unet", "FPN"} and set(cells["object_type"]) == {"cell"}
    reference = cells[cells["source"] == "reference"]
    assert set(reference["sample_id"]) <= set(splits["sample_id"]) and reference["nc_ratio"].between(0, 1).all()
    expert = pd.read_parquet(root / "data" / "manifest.parquet").set_index("sample_id")["n_objects"]
    assert reference.groupby("sample_id").size().sum() == expert.sum()  # every annotated cell, once
    fidelity = pd.read_parquet(root / "fidelity.parquet")
    assert set(fidelity.loc[fidelity["feature"] == "object_count", "source"]) == {"Unet", "FPN"}
    for name in ("cell_features_by_type.png", "bland_altman.png", "measurement_fidelity.md",
                 "cell_features_by_type.html"):
        assert (root / "report" / name).stat().st_size > 0
    recorded = yaml.safe_load((root / "run_info" / "config.yaml").read_text())
    assert recorded["train"]["epochs"] == 1
    assert "torch" in json.loads((root / "run_info" / "provenance.json").read_text())["versions"]
    assert (root / "validation.txt").read_text().startswith("8 images fine, 0 problems")

    snakemake(tmp_path, "--report", "report.html")  # README's report command, with the user's --configfile
    assert "model_comparison" in (tmp_path / "report.html").read_text(errors="replace")

    snakemake(tmp_path, "results/tiny/labelme/Unet")  # predictions back to LabelMe, on request
    exported = sorted((root / "labelme" / "Unet").glob("*.json"))
    assert [p.stem for p in exported] == sorted(splits["sample_id"])
    annotation, problems = labelme.read_annotation(exported[0], ["background", "cytoplasm", "nucleus"])
    assert problems == [] and annotation.shape_hw == (64, 64)

    # new images segmented by the CV winner's fold ensemble, on request; test-time augmentation is
    # inference's own setting: the out-of-fold predictions do not rerun for it
    write_config(tmp_path, epochs=1, infer={"images": str(tmp_path / "annotations"), "tta": "flips"})
    snakemake(tmp_path, "results/tiny/infer/new")
    table = pd.read_parquet(root / "infer" / "new" / "predictions.parquet")
    best = summary[summary["class"] == "foreground_mean"].sort_values("cv_dice").iloc[-1]["arch"]
    assert len(table) == 8 and set(table["arch"]) == {best} and set(table["models"]) == {2}
    assert len(list((root / "infer" / "new" / best / "labelme").glob("*.json"))) == 8
    inferred = pd.read_parquet(root / "infer" / "new" / "cells.parquet")
    assert set(inferred["source"]) <= {best} and set(inferred["sample_id"]) <= {p.stem for p in exported}
    assert planned_jobs(snakemake(tmp_path, "-n")) == {"run_info": 1, "all": 1}  # only the recorded config

    write_config(tmp_path, epochs=2)
    jobs = planned_jobs(snakemake(tmp_path, "-n"))
    assert jobs == {"train": 4, "predict": 4, "evaluate": 4, "aggregate": 1, "report": 1, "measure": 4,
                    "measure_summary": 1, "report_measurements": 1, "cost": 1, "run_info": 1, "all": 1}

    write_config(tmp_path, epochs=1)
    assert planned_jobs(snakemake(tmp_path, "-n")) == {}

    # the annotation budget: only the budget models, their scores and the pages that show them are new
    budget = tiny_config(tmp_path / "annotations", 1)
    budget["train"]["fractions"] = [0.5, 1.0]
    (tmp_path / "budget.yaml").write_text(yaml.safe_dump(budget))
    assert planned_jobs(snakemake(tmp_path, "-n", configfile="budget.yaml")) == {
        "train_budget": 4, "predict_budget": 4, "evaluate_budget": 4, "learning_curve": 1, "report": 1,
        "run_info": 1, "all": 1}
    snakemake(tmp_path, configfile="budget.yaml")
    curve = pd.read_parquet(root / "learning_curve.parquet").set_index(["arch", "fraction"])
    assert sorted(curve.index) == [("FPN", 0.5), ("FPN", 1.0), ("Unet", 0.5), ("Unet", 1.0)]
    assert (curve.xs(0.5, level="fraction")["n_train_images"] == 2).all()  # half of each fold's 4 images
    assert (curve.xs(1.0, level="fraction")["n_train_images"] == 4).all()
    scored = pd.concat(pd.read_parquet(p) for p in (root / "budget" / "0.5" / "metrics").rglob("*.parquet"))
    assert set(scored["sample_id"]) == set(metrics["sample_id"])  # the same out-of-fold images at every budget
    assert (scored["fraction"] == 0.5).all() and curve["n_images"].between(1, 8).all()
    assert "learning curve" in (root / "report" / "index.html").read_text()
    snakemake(tmp_path)  # back to the main configuration (the report and run_info follow)

    annotation = tmp_path / "annotations" / "demo_03.json"
    doc = json.loads(annotation.read_text())
    doc["shapes"][0]["points"][0][0] += 1.0
    annotation.write_text(json.dumps(doc))
    jobs = planned_jobs(snakemake(tmp_path, "-n"))
    assert jobs == {"validate": 1, "ingest": 1, "split": 1, "augment": 1, "train": 4, "predict": 4, "evaluate": 4,
                    "aggregate": 1, "report": 1, "measure_reference": 1, "measure": 4, "measure_summary": 1,
                    "report_measurements": 1, "cost": 1, "all": 1}


def test_demo_mode_generates_its_data_and_reruns_on_an_edited_annotation(tmp_path):
    """The default run's data path: the workflow writes the demo, then treats it like user data (the
    steps after the split are the end-to-end test's)."""
    overrides = {"dataset": "tinydemo", "split": {"folds": 2}, "train": {"architectures": ["Unet"]}}
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(overrides))
    target = "results/tinydemo/splits.parquet"
    snakemake(tmp_path, target, configfile="tiny.yaml")
    root = tmp_path / "results" / "tinydemo"
    assert len(list((root / "demo_input" / "annotations").glob("*.json"))) == demo.N_IMAGES
    assert len(pd.read_parquet(root / "splits.parquet")) == demo.N_IMAGES
    assert planned_jobs(snakemake(tmp_path, "-n", target, configfile="tiny.yaml")) == {}
    annotation = root / "demo_input" / "annotations" / "demo_07.json"
    doc = json.loads(annotation.read_text())
    doc["shapes"][0]["points"][0][1] += 1.0
    annotation.write_text(json.dumps(doc))
    jobs = planned_jobs(snakemake(tmp_path, "-n", target, configfile="tiny.yaml"))
    assert jobs == {"validate": 1, "ingest": 1, "split": 1}  # not demo_dataset: the user's edit is kept


HOSTILE_RESULTS = "my results/it's \"quoted\" $(touch PWNED) ; `touch PWNED2` & é ü 細胞 | x"


def test_results_path_with_shell_characters_runs_and_writes_only_there(tmp_path):
    """Every path, wildcard and param reaches the shell quoted: a results folder named with spaces,
    quotes, $(), backticks, ;, &, | and unicode runs, and nothing is created outside it."""
    demo.generate(tmp_path / "annotations", n_images=6, size=64, seed=5)
    config = tiny_config(tmp_path / "annotations", epochs=1)
    config["results"] = HOSTILE_RESULTS
    config["train"]["architectures"] = ["Unet"]
    config["evaluate"] = {"bootstrap_resamples": 100, "object_hausdorff": False}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True))
    before = sorted(p.name for p in tmp_path.iterdir())
    dry = snakemake(tmp_path, "-n", "-p")
    assert "cellbench train" in dry and "PWNED" in dry  # the name is printed, quoted, never run
    snakemake(tmp_path)
    root = tmp_path / HOSTILE_RESULTS / "tiny"
    assert (root / "summary.parquet").is_file() and (root / "report" / "model_comparison.md").is_file()
    after = sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake")
    assert after == sorted({*before, HOSTILE_RESULTS.split("/")[0]})
    assert not list(tmp_path.rglob("PWNED*")) and not list(Path.cwd().glob("PWNED*"))
    assert not list(REPO.glob("PWNED*"))


def test_every_planned_command_is_one_cellbench_accepts(tmp_path):
    """Each rule's shell command, as Snakemake formats it (an optional input left empty included:
    a fixed architecture has no CV summary), parses with cellbench's own command line."""
    demo.generate(tmp_path / "annotations", n_images=6, size=64, seed=5)
    write_config(tmp_path, epochs=1, infer={"images": str(tmp_path / "annotations"), "architectures": ["FPN"]})
    targets = ["all", "results/tiny/infer/new", "results/tiny/export/Unet/onnx", "results/tiny/export/best/bioimageio",
               "results/tiny/labelme/Unet"]
    dry = snakemake(tmp_path, "-n", "-p", *targets)
    parser = build_parser()
    commands = {}
    for line in dry.splitlines():
        if "-m cellbench " not in line:
            continue
        tokens = shlex.split(line)
        arguments = tokens[tokens.index("cellbench") + 1:tokens.index(">")]
        try:
            parser.parse_args(arguments)
        except SystemExit:
            pytest.fail(f"cellbench refuses the planned command: {line}")
        commands[arguments[0]] = arguments
    assert {"ingest", "split", "train", "predict", "evaluate", "report", "infer", "export"} <= set(commands)
    assert "--summary=" in commands["infer"]  # FPN chosen by name: no summary, an empty value


@pytest.mark.parametrize("key, value, message", [
    ("architectures", ["FPN & touch PWNED #"], "is not one of"),
    ("architectures", ["DeepLabV3+"], "is not one of"),
    ("architectures", ["Unet", "Unet"], "non-unique"),
])
def test_architecture_names_are_checked_before_anything_runs(tmp_path, key, value, message):
    demo.generate(tmp_path / "annotations", n_images=4, size=64, seed=5)
    config = tiny_config(tmp_path / "annotations", epochs=1)
    config["train"][key] = value
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(REPO / "config.yaml"), str(tmp_path / "config.yaml"), "--cores", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode != 0 and message in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not list(tmp_path.rglob("PWNED*"))


def test_model_checks_fail_in_seconds_before_any_job(tmp_path):
    """An unknown encoder or a crop size the model cannot take stops the run before ingest."""
    demo.generate(tmp_path / "annotations", n_images=4, size=64, seed=5)
    config = tiny_config(tmp_path / "annotations", epochs=1)
    config["train"].update(encoder="resnet999", architectures=["Unet", "DeepLabV3Plus"], crop_size=72)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(REPO / "config.yaml"), str(tmp_path / "config.yaml"), "--cores", "1"],
                            capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "resnet999" in output
    assert not (tmp_path / "results" / "tiny" / "data").exists()


def test_an_edited_image_outside_the_annotation_folder_reruns_ingest(tmp_path):
    """LabelMe files that name their image with ../ or an absolute path declare it as an input."""
    demo.generate(tmp_path / "raw", n_images=4, size=64, seed=2)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "images").mkdir()
    for index, json_path in enumerate(sorted((tmp_path / "raw").glob("*.json"))):
        image = tmp_path / "images" / f"{json_path.stem}.png"
        (tmp_path / "raw" / f"{json_path.stem}.png").rename(image)
        doc = json.loads(json_path.read_text())
        doc["imagePath"] = str(image) if index % 2 else f"../images/{image.name}"
        (tmp_path / "annotations" / json_path.name).write_text(json.dumps(doc))
    write_config(tmp_path, epochs=1)
    snakemake(tmp_path, "results/tiny/data")
    assert planned_jobs(snakemake(tmp_path, "-n", "results/tiny/data")) == {}
    for name in ("demo_00.png", "demo_01.png"):  # one relative (../), one absolute
        image = tmp_path / "images" / name
        pixels = np.array(Image.open(image))
        pixels[0, 0] = 255 - pixels[0, 0]
        Image.fromarray(pixels).save(image)
        assert planned_jobs(snakemake(tmp_path, "-n", "results/tiny/data")) == {"validate": 1, "ingest": 1}
        snakemake(tmp_path, "results/tiny/data")


def test_imported_as_a_module_with_a_prefix_and_an_overridden_rule(tmp_path):
    """Every step writes where Snakemake says: the whole workflow under a module prefix, and the
    aggregate rule's outputs moved with `use rule ... with: output:`."""
    config = {"dataset": "tiny", "data": {"demo": True},
              "split": {"folds": 2, "stratify_column": None}, "augment": {"rotations": 1, "flip": False},
              "train": {"architectures": ["Unet"], "epochs": 1, "steps_per_epoch": 1, "batch_size": 2,
                        "crop_size": 64, "threads": 1},
              "evaluate": {"bootstrap_resamples": 100, "object_hausdorff": False}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    tables = ("metrics", "instance_metrics", "object_metrics", "summary", "instance_summary", "stats", "calibration")
    outputs = "\n".join(f'        {t}="tables/{t}.parquet",' for t in tables)
    (tmp_path / "Snakefile").write_text(f"""
configfile: "config.yaml"


module cellbench:
    snakefile: {str(REPO / "Snakefile")!r}
    config: config
    prefix: "sub"


use rule * from cellbench as cb_*


use rule aggregate from cellbench as cb_aggregate with:
    output:
{outputs}


rule everything:
    input:
        expand("tables/{{t}}.parquet", t={list(tables)!r}),
        "sub/results/tiny/labelme/Unet",
        "sub/results/tiny/run_info",
    default_target: True
""")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([SNAKEMAKE, "--directory", str(tmp_path), "-s", str(tmp_path / "Snakefile"),
                             "--cores", "2"], capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != ".snakemake") == [
        "Snakefile", "config.yaml", "sub", "tables"]
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["results"]
    assert sorted(p.stem for p in (tmp_path / "tables").iterdir()) == sorted(tables)
    root = tmp_path / "sub" / "results" / "tiny"
    assert not (root / "summary.parquet").exists()  # moved by the override
    assert (root / "models" / "Unet" / "fold1" / "model.pt").is_file()
    assert len(list((root / "labelme" / "Unet").glob("*.json"))) == demo.N_IMAGES
