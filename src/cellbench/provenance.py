"""What produced an output: package versions, git commit, host."""

from __future__ import annotations

import platform
import subprocess
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "cellbench", "torch", "torchvision", "segmentation-models-pytorch", "timm", "albumentations",
    "monai", "numpy", "pandas", "pyarrow", "scikit-image", "scipy", "matplotlib", "pillow", "snakemake",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def git_commit(start: Path | None = None) -> str:
    """Commit of the cellbench checkout (with '+dirty' for local changes), or 'unknown'."""
    where = start or Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where, capture_output=True, text=True, check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty else "")


def record() -> dict:
    """Everything worth storing beside an output to know how it was made."""
    return {
        "versions": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
