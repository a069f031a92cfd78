"""The prepared GPU check runs every step on a CPU with tiny settings: a GPU session spends its
minutes measuring, not debugging the script."""

import subprocess
import sys

import pytest
from helpers import REPO

pytestmark = pytest.mark.workflow


def test_gpu_check_runs_every_step_with_tiny_settings(tmp_path):
    out = tmp_path / "gpu_check.md"
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_check.py"), "--tiny", "--out", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    table = out.read_text()
    for step in ("train Unet-resnet34", "train DeepLabV3Plus-resnet34", "train Segformer-mit_b0", "5-fold Unet",
                 "infer 2 folds x d4", "app: one image", "slide 320 x 320"):
        assert f"| {step} |" in table
    assert "FAILED" not in table and "ratio=" in table and "cv_dice=" in table and "load_seconds=" in table
    assert "objects_at_margin=" in table  # the slide step's line
