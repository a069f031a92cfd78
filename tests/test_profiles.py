"""The SLURM profile sends every rule that runs models (cellbench train, predict, infer) to a GPU
partition: a rule it forgets runs on the CPU partition's defaults (one hour, 8 GB) and is killed
there, hours into a training."""

import re

import yaml
from helpers import REPO


def rules_running_models() -> set[str]:
    found, rule = set(), None
    for path in sorted((REPO / "workflow" / "rules").glob("*.smk")):
        for line in path.read_text().splitlines():
            if started := re.match(r"rule (\w+):", line):
                rule = started.group(1)
            elif rule and re.search(r"python -m cellbench (train|predict|infer) ", line):
                found.add(rule)
    return found


def test_every_gpu_rule_has_gpu_resources_in_the_slurm_profile():
    gpu_rules = rules_running_models()
    assert {"train", "predict", "train_budget", "predict_budget", "infer"} <= gpu_rules  # the parse finds them
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    for rule in sorted(gpu_rules):
        resources = profile["set-resources"].get(rule)
        assert resources, f"profiles/slurm/config.yaml: no set-resources for rule {rule}"
        assert resources["gpu"] == 1 and resources["slurm_partition"] == "gpu", rule
    for rule in ("train", "train_budget"):  # trainings save and resume on SLURM's warning signal
        assert "--signal=B:TERM@" in profile["set-resources"][rule]["slurm_extra"]
        assert profile["set-threads"][rule] == profile["set-threads"]["train"]
