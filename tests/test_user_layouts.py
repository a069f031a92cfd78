"""A user's own data through the whole workflow with a config of only `data` and `classes`: config.yaml
is loaded under it, and nothing of the demo may leak in (no demo, no cell-type stratification, no
class priority of the demo's classes). Three layouts: one folder per sample (16-bit TIFF + object-id
PNG), images and masks side by side in one folder, and a two-class mask folder without metadata.
The overlay budget.yaml only shrinks the training (it holds no data, class or split-metadata key)."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import tifffile
import yaml
from helpers import REPO
from PIL import Image
from test_workflow import SNAKEMAKE

from cellbench.images import read_png

pytestmark = pytest.mark.workflow

BUDGET = {"split": {"folds": 2}, "augment": {"rotations": 1, "flip": False},
          "train": {"architectures": ["Unet"], "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "crop_size": 64,
                    "threads": 1},
          "evaluate": {"bootstrap_resamples": 100, "boundary": False, "object_hausdorff": False}}
N_SAMPLES = 4


def samples(demo_data):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    manifest = manifest[manifest["n_objects"] > 0].head(N_SAMPLES)
    for row in manifest.itertuples():
        yield (row.sample_id, read_png(demo_data / row.image), read_png(demo_data / row.mask),
               read_png(demo_data / row.instances))


def snakemake(workdir: Path, *configfiles: str, dry_run: bool = False) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run([SNAKEMAKE, "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "--cores", "2",
                           *(["-n"] if dry_run else []), "--configfile", str(REPO / "config.yaml"),
                           *(str(workdir / name) for name in configfiles)],
                          capture_output=True, text=True, env=env, timeout=900)


def run_user_config(workdir, data: dict, classes: list[str]) -> dict:
    """Snakemake on config.yaml + the user's two keys + the budget; returns the run's recorded config."""
    (workdir / "user.yaml").write_text(yaml.safe_dump({"data": data, "classes": classes}))
    (workdir / "budget.yaml").write_text(yaml.safe_dump(BUDGET))
    result = snakemake(workdir, "user.yaml", "budget.yaml")
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    recorded = yaml.safe_load(next(workdir.glob("results/*/run_info/config.yaml")).read_text())
    assert recorded["data"]["demo"] is False and recorded["split"]["stratify_column"] is None
    assert recorded["class_priority"] is None
    return recorded


def test_one_folder_per_sample_with_16_bit_tiffs_and_object_id_pngs(demo_data, tmp_path):
    root = tmp_path / "phase_contrast"
    for k, (_, rgb, _, instances) in enumerate(samples(demo_data)):
        folder = root / f"plate_{'ab'[k % 2]}" / f"set{k // 2 + 1}"  # set1 twice: the ids are the paths
        folder.mkdir(parents=True)
        tifffile.imwrite(folder / "raw.tif", (rgb.mean(axis=2) * 257).astype(np.uint16))
        Image.fromarray(instances.astype(np.uint16)).save(folder / "instances_ids.png")
    data = {"format": "instance_labels", "annotations": str(root),
            "sample_folders": {"image": "raw.tif", "labels": "instances_ids.png"}}
    recorded = run_user_config(tmp_path, data, ["background", "cell"])
    results = tmp_path / "results" / "phase_contrast"
    assert recorded["dataset"] == "phase_contrast"
    manifest = pd.read_parquet(results / "data" / "manifest.parquet")
    assert sorted(manifest["sample_id"]) == ["plate_a__set1", "plate_a__set2", "plate_b__set1", "plate_b__set2"]
    assert set(manifest["source_mode"]) == {"I;16"} or manifest["intensity_scale"].lt(1).all()
    summary = pd.read_parquet(results / "summary.parquet")
    assert set(summary["class"]) == {"cell", "foreground_mean"}
    assert (results / "report" / "index.html").is_file()


def test_images_and_masks_side_by_side_in_one_folder(demo_data, tmp_path):
    root = tmp_path / "smears"
    root.mkdir()
    for sample_id, rgb, class_map, _ in samples(demo_data):
        Image.fromarray(rgb).save(root / f"{sample_id}.bmp")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[class_map]).save(root / f"{sample_id}.png")
    run_user_config(tmp_path, {"format": "mask_pairs", "annotations": str(root)},
                    ["background", "cytoplasm", "nucleus"])
    summary = pd.read_parquet(tmp_path / "results" / "smears" / "summary.parquet")
    assert {"cytoplasm", "nucleus", "cell"} <= set(summary["class"])


def test_a_two_class_mask_folder_without_metadata(demo_data, tmp_path):
    masks, images = tmp_path / "cells" / "masks", tmp_path / "cells" / "images"
    masks.mkdir(parents=True)
    images.mkdir()
    for sample_id, rgb, class_map, _ in samples(demo_data):
        Image.fromarray(rgb).save(images / f"{sample_id}.jpg", quality=95)
        Image.fromarray((class_map > 0).astype(np.uint8)).save(masks / f"{sample_id}.png")
    run_user_config(tmp_path, {"format": "class_index_png", "annotations": str(masks), "images": str(images)},
                    ["background", "cell"])
    results = tmp_path / "results" / "cells"  # "masks" says nothing: named after its parent
    assert set(pd.read_parquet(results / "summary.parquet")["class"]) == {"cell", "foreground_mean"}
    assert len(pd.read_parquet(results / "splits.parquet")) == N_SAMPLES


def test_a_split_setting_that_cannot_work_is_refused_before_any_job(demo_data, tmp_path):
    """stratify_column without metadata (and folds beyond the images) fails the planning itself, in
    one message, before validate or ingest could run: the job list is empty and nothing is written."""
    root = tmp_path / "smears"
    root.mkdir()
    for sample_id, rgb, class_map, _ in samples(demo_data):
        Image.fromarray(rgb).save(root / f"{sample_id}.bmp")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[class_map]).save(root / f"{sample_id}.png")
    (tmp_path / "user.yaml").write_text(yaml.safe_dump({
        "data": {"format": "mask_pairs", "annotations": str(root)},
        "split": {"stratify_column": "cell_type", "folds": 5}}))
    result = snakemake(tmp_path, "user.yaml", dry_run=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "split.stratify_column 'cell_type' needs split.metadata" in output
    assert f"split.folds is 5 but the annotations hold {N_SAMPLES} images" in output
    assert "Job stats" not in output and "validate" not in output  # no job was planned
    assert not (tmp_path / "results").exists()


def test_file_names_snakemake_cannot_plan_are_named_before_any_job(demo_data, tmp_path):
    """{ } and < > in an annotation file's name (Snakemake's wildcards and path variables) stop the
    planning with one message naming the file, not a WildcardError."""
    root = tmp_path / "smears"
    root.mkdir()
    for index, (sample_id, rgb, class_map, _) in enumerate(samples(demo_data)):
        name = "set{1}_" + sample_id if index == 0 else "plate<a>_" + sample_id if index == 1 else sample_id
        Image.fromarray(rgb).save(root / f"{name}.bmp")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[class_map]).save(root / f"{name}.png")
    (tmp_path / "user.yaml").write_text(yaml.safe_dump({"data": {"format": "mask_pairs", "annotations": str(root)}}))
    result = snakemake(tmp_path, "user.yaml", dry_run=True)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and "WildcardError" not in output
    assert "4 input paths hold { } or < >" in output and "set{1}_" in output and "plate<a>_" in output
    assert not (tmp_path / "results").exists()
