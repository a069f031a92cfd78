"""`cellbench export` from the command line and from the workflow: the checkpoints chosen as infer
chooses them, output written only where asked (staged; a foreign folder refused), one clear message
when the export extra is missing, and the rule planned on request."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO

from cellbench import cli
from cellbench.errors import ConfigError
from cellbench.export import export as export_module
from cellbench.layout import Layout


def files_under(folder: Path) -> set[Path]:
    return {p.relative_to(folder) for p in folder.rglob("*") if p.is_file()}


def test_layout_path():
    assert Layout("results", "wbc").export("Unet", "onnx") == str(Path("results/wbc/export/Unet/onnx"))


def test_cli_writes_the_best_architecture_only_where_asked(unet_folds, tmp_path, capsys):
    summary = tmp_path / "summary.parquet"
    pd.DataFrame({"arch": ["FPN", "Unet", "Unet"], "class": ["foreground_mean", "foreground_mean", "nucleus"],
                  "cv_dice": [0.7, 0.8, 0.75], "n_images": [10, 10, 10], "n_folds": [2, 2, 2]}).to_parquet(summary)
    settings = json.dumps({"results": str(tmp_path / "results"), "dataset": "t", "infer": {"tta": "d4"}})
    argv = ["export", "--arch", "best", "--format", "torchscript", "--checkpoints", *map(str, unet_folds),
            "--summary", str(summary), "--config-json", settings]
    before = files_under(tmp_path)
    assert cli.main(argv) == 0
    out = tmp_path / "results" / "t" / "export" / "best" / "torchscript"  # the layout's, as the workflow names it
    assert files_under(tmp_path) - before == {(out / name).relative_to(tmp_path) for name in
                                              (".cellbench-output", "fold0.pt", "fold1.pt", "manifest.json")}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["arch"] == "Unet" and manifest["tta"]["choice"] == "d4"
    assert manifest["benchmark"]["cv_dice"] == {"foreground_mean": 0.8, "nucleus": 0.75}
    # nothing ingested under results/t/data: checked on demo images, generated in a temporary folder
    assert [Path(p).name for p in manifest["parity"]["images"]] == ["demo_00.png", "demo_01.png", "demo_02.png"]

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert cli.main([*argv, "--out", str(foreign)]) == 1
    assert "did not write" in capsys.readouterr().err
    assert files_under(foreign) == {Path("notes.txt")} and (foreign / "notes.txt").read_text() == "keep me"


def test_a_missing_export_extra_is_one_message(unet_folds, tmp_path, monkeypatch, capsys):
    real = export_module.importlib.util.find_spec
    monkeypatch.setattr(export_module.importlib.util, "find_spec",
                        lambda name, *args: None if name == "onnxruntime" else real(name, *args))
    status = cli.main(["export", "--arch", "Unet", "--format", "onnx", "--checkpoints", str(unet_folds[0]),
                       "--out", str(tmp_path / "out"), "--config-json", "{}"])
    assert status == 2
    assert "onnxruntime" in (err := capsys.readouterr().err) and "pip install 'cellbench[export]'" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match="--format must be one of"):
        export_module.require("tflite")


def test_the_workflow_plans_an_export_on_request(tmp_path):
    snakemake = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run([snakemake, "-s", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(REPO / "config.yaml"), "-n", "-p", "--cores", "1", "results/demo/export/Unet/onnx"],
                            capture_output=True, text=True, env=env, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    shell = next(line for line in output.splitlines() if "cellbench export" in line)
    for part in ("--arch Unet", "--format onnx", "results/demo/models/Unet/fold0/model.pt",
                 "--images results/demo/data/images", "--out results/demo/export/Unet/onnx"):
        assert part in shell
    assert "rule export:" in output and "train" in output
    assert not (tmp_path / "results").exists()  # a dry run
