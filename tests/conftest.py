"""Shared fixtures: the demo dataset, a small config, and the public data in ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from cellbench import config as configuration  # noqa: E402
from cellbench import demo  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test when that public data is not here."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public dataset not available: {path} (only present in the development setup)")
    return path


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """The synthetic LabelMe dataset (24 images), generated once per test session."""
    folder = tmp_path_factory.mktemp("demo") / "raw"
    demo.generate(folder)
    return folder


def make_config(annotations: Path, **sections) -> dict:
    """A complete config for a LabelMe folder, with section overrides."""
    base = {"dataset": "t", "data": {"annotations": str(annotations), "demo": False}}
    return configuration.complete(configuration.merge(base, sections))


@pytest.fixture(scope="session")
def demo_data(demo_raw, tmp_path_factory) -> Path:
    """The demo dataset ingested (images, masks, instances, manifest)."""
    from cellbench.ingest import ingest
    out = tmp_path_factory.mktemp("ingested") / "data"
    ingest(make_config(demo_raw), out)
    return out
