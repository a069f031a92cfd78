"""Offline compute nodes: pretrained weights come from a cache filled by a local fetch step."""

import os
import re
import subprocess
import sys
import time

from helpers import REPO

BUILD_OFFLINE = """
import sys
from pathlib import Path
from cellbench.training import weights
weights.use_cache(Path(sys.argv[1]), offline=True)
from cellbench.training import models
models.build("Unet", "resnet18", 3, "imagenet")
"""


def test_missing_weights_fail_fast_and_say_what_to_do(tmp_path):
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-c", BUILD_OFFLINE, str(tmp_path / "cache")],
                            capture_output=True, text=True, timeout=120)
    seconds = time.monotonic() - started
    assert result.returncode != 0 and seconds < 30  # no network wait (smp would hang ~25 s, then fail)
    message = result.stderr.strip().splitlines()[-1]
    assert "WeightsUnavailable" in message and "fetch_weights" in message and str(tmp_path / "cache") in message


def test_cli_reports_missing_weights_in_one_line(tmp_path, demo_data):
    settings = ('{"dataset": "t", "results": "%s", "train": {"encoder_weights": "imagenet", "device": "cpu"}}'
                % (tmp_path / "results"))
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run([sys.executable, "-m", "cellbench", "train", "--config-json", settings, "--arch", "Unet",
                             "--fold", "0", "--data", str(demo_data), "--augmented", str(tmp_path / "none"),
                             "--splits", str(tmp_path / "none.parquet"), "--out", str(tmp_path / "m")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "cellbench train: error:" in result.stderr and "fetch_weights" in result.stderr.splitlines()[-1]


def test_workflow_fetches_weights_once_as_a_local_step(tmp_path):
    (tmp_path / "w.yaml").write_text("train: {encoder_weights: imagenet}\n")
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "snakemake"), "-n", "-s",
                             str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile",
                             str(REPO / "config.yaml"), str(tmp_path / "w.yaml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    stats = result.stdout.split("Job stats:")[1]
    assert re.search(r"^fetch_weights +1$", stats, re.M) and re.search(r"^train +6$", stats, re.M)
