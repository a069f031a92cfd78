"""The demo workflow through a real SLURM cluster with profiles/slurm: every non-local job runs as
a SLURM job, and the results equal a local run's. Needs a running cluster (`.ci/slurm_cluster.sh
start`, which CI runs as root) and the slurm extra; skipped otherwise."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from helpers import REPO

pytestmark = pytest.mark.slurm

BIN = Path(sys.executable).parent
LOCAL_RULES = {"all", "demo_dataset", "validate", "run_info", "split", "aggregate", "report", "export_labelme",
               "measure_summary", "report_measurements", "cost"}


def partition() -> str | None:
    if shutil.which("sinfo") is None:
        return None
    result = subprocess.run(["sinfo", "-h", "-o", "%P %t"], capture_output=True, text=True)
    up = [line.split()[0].rstrip("*") for line in result.stdout.splitlines() if "idle" in line or "mix" in line]
    return up[0] if result.returncode == 0 and up else None


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    command = ["timeout", "-k", "10", "840", str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", str(REPO / "config.yaml"), str(workdir / "tiny.yaml"),
               *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    return result


def tiny(workdir: Path) -> Path:
    workdir.mkdir()
    (workdir / "tiny.yaml").write_text(yaml.safe_dump({
        "dataset": "slurmdemo", "split": {"folds": 2}, "augment": {"rotations": 1, "flip": False},
        "train": {"architectures": ["Unet"], "epochs": 1, "steps_per_epoch": 2, "batch_size": 2, "crop_size": 64,
                  "threads": 1, "deterministic": True},
        "evaluate": {"bootstrap_resamples": 200}}))
    return workdir


def test_demo_runs_through_slurm_and_equals_a_local_run(tmp_path):
    name = partition()
    if name is None:
        pytest.skip("no SLURM cluster here (CI starts one with .ci/slurm_cluster.sh start)")
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="pip install -e '.[slurm]'")
    local = tiny(tmp_path / "local")
    snakemake(local, "--cores", "2")

    cluster = tiny(tmp_path / "cluster")
    result = snakemake(
        cluster, "--profile", str(REPO / "profiles" / "slurm"), "--jobs", "4", "--latency-wait", "5",
        "--slurm-no-account", "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "1",
        "--slurm-keep-successful-logs",
        "--default-resources", f"slurm_partition={name}", "mem_mb=1500", "runtime=20", "cpus_per_task=1",
        "--set-resources", f"train:slurm_partition={name}", "train:gpu=0", "train:mem_mb=3000",
        f"predict:slurm_partition={name}", "predict:gpu=0", "predict:mem_mb=3000",
        "--set-threads", "train=1")
    output = result.stdout + result.stderr
    submitted = dict(re.findall(r"Job (\d+) has been submitted with SLURM jobid (\d+)", output))
    rule_of = {job: rule for rule, job in re.findall(r"^(?:local)?rule (\w+):\n(?:[ \t].*\n)*?\s+jobid: (\d+)$",
                                                     output, re.M)}
    ran_on_slurm = sorted(rule_of[job] for job in submitted)
    assert ran_on_slurm == sorted(["ingest", "augment", "measure_reference"]
                                  + ["train", "predict", "evaluate", "measure"] * 2), output[-3000:]
    ran_locally = {rule for job, rule in rule_of.items() if job not in submitted}
    assert ran_locally <= LOCAL_RULES and {"validate", "split", "aggregate", "report"} <= ran_locally
    queue = subprocess.run(["squeue", "-h", "-t", "all", "-o", "%i %j %T %P"], capture_output=True, text=True).stdout
    states = {line.split()[0]: line.split()[2] for line in queue.splitlines()}
    assert all(states.get(job) == "COMPLETED" for job in submitted.values()), (submitted, queue)
    print("\n".join(f"{rule_of[job]:>9} (snakemake job {job}) -> SLURM job {sid} {states[sid]}"
                    for job, sid in submitted.items()))

    for table in ("metrics.parquet", "instance_metrics.parquet", "summary.parquet", "cells.parquet"):
        ours = pd.read_parquet(cluster / "results" / "slurmdemo" / table)
        theirs = pd.read_parquet(local / "results" / "slurmdemo" / table)
        pd.testing.assert_frame_equal(ours, theirs)
