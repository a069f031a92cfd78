"""GPU assignment on a multi-GPU workstation, tested on CPU by faking the device list."""

import os
import subprocess
import sys

from cellbench.training import gpus

HOLD = """
import sys, time
from cellbench.training import gpus
print(gpus.claim(timeout=float(sys.argv[1])), flush=True)
time.sleep(float(sys.argv[2]))
"""


def claimer(tmp_path, timeout=5.0, hold=3.0, **env):
    environment = {**os.environ, "CELLBENCH_GPUS": "0,1,2", "CELLBENCH_GPU_LOCKS": str(tmp_path), **env}
    return subprocess.Popen([sys.executable, "-c", HOLD, str(timeout), str(hold)], env=environment,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_concurrent_jobs_get_different_gpus_and_a_fourth_waits(tmp_path):
    jobs = [claimer(tmp_path) for _ in range(3)]
    claimed = sorted(job.stdout.readline().strip() for job in jobs)
    assert claimed == ["0", "1", "2"]
    fourth = claimer(tmp_path, timeout=0.5, hold=0)
    assert fourth.wait(timeout=30) != 0 and "stayed busy" in fourth.stderr.read()
    for job in jobs:
        job.wait(timeout=30)
    again = claimer(tmp_path, hold=0)  # locks die with their processes: the GPUs are free again
    assert again.stdout.readline().strip() == "0" and again.wait(timeout=30) == 0


def test_a_killed_job_frees_its_gpu(tmp_path):
    job = claimer(tmp_path, hold=60)
    assert job.stdout.readline().strip() == "0"
    job.kill()
    job.wait(timeout=30)
    follower = claimer(tmp_path, hold=0)
    assert follower.stdout.readline().strip() == "0"
    follower.wait(timeout=30)


def test_claim_sets_cuda_visible_devices(tmp_path, monkeypatch):
    monkeypatch.setenv("CELLBENCH_GPUS", "3,5")
    monkeypatch.setenv("CELLBENCH_GPU_LOCKS", str(tmp_path))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    try:
        assert gpus.claim(timeout=1) == "3" and os.environ["CUDA_VISIBLE_DEVICES"] == "3"
    finally:
        while gpus._held:
            gpus._held.pop().close()


def test_nothing_to_choose_with_one_gpu(monkeypatch):
    monkeypatch.setenv("CELLBENCH_GPUS", "0")
    assert gpus.claim(timeout=1) is None


def test_slurm_allocation_is_respected(monkeypatch):
    monkeypatch.delenv("CELLBENCH_GPUS", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "6")  # what SLURM sets for a one-GPU job
    assert gpus.visible_gpus() == ["6"] and gpus.claim(timeout=1) is None
