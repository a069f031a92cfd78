"""The rules' conda environment pins exactly the versions CI installs (constraints.txt), each inside
pyproject.toml's range, and lists every dependency the jobs import."""

import re

import pytest
import yaml
from helpers import REPO
from packaging.specifiers import SpecifierSet

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")

CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}  # PyPI name -> conda-forge name
NOT_IN_JOBS = {"snakemake", "pygments"}  # jobs run `python -m cellbench`; Snakemake (and its report) run outside


def parse(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def pins(lines) -> dict[str, str]:
    found = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name, spec = parse(line)
            assert spec.startswith("=="), f"{line}: not an exact pin"
            found[name] = spec[2:]
    return found


def test_conda_environment_pins_what_ci_installs_within_the_project_ranges():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    ranges = {name: spec for name, spec in map(parse, project["dependencies"])}
    ci = pins((REPO / "constraints.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs" / "cellbench.yaml").read_text())
    listed = pins(d for d in env["dependencies"] if isinstance(d, str) and not d.startswith("python"))
    assert set(ci) == set(ranges)  # every direct dependency pinned for CI, nothing else
    for name, spec in ranges.items():
        assert ci[name] in SpecifierSet(spec), f"constraints.txt pins {name} {ci[name]} outside {spec}"
    in_jobs = {CONDA_NAMES.get(name, name): ci[name] for name in ranges if name not in NOT_IN_JOBS}
    assert listed == in_jobs
    assert "conda-forge" in env["channels"]
