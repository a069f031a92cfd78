"""The conda environment of the rules lists exactly pyproject.toml's dependencies."""

import re

import pytest
import yaml
from conftest import REPO

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python >= 3.11")

CONDA_NAMES = {"torch": "pytorch", "matplotlib": "matplotlib-base"}  # PyPI name -> conda-forge name
NOT_IN_JOBS = {"snakemake", "pygments"}  # jobs run `python -m cellbench`; Snakemake (and its report) run outside


def parse(requirement: str) -> tuple[str, str]:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", requirement).groups()
    return name.lower(), spec.replace(" ", "")


def test_conda_environment_matches_pyproject():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = {CONDA_NAMES.get(name, name): spec for name, spec in map(parse, project["dependencies"])
              if name not in NOT_IN_JOBS}
    env = yaml.safe_load((REPO / "envs" / "cellbench.yaml").read_text())
    listed = dict(parse(d) for d in env["dependencies"] if isinstance(d, str) and not d.startswith("python"))
    assert listed == wanted
    assert "conda-forge" in env["channels"]
