"""Shared fixtures: the demo dataset, generated and ingested once per session (helpers.py holds
what tests import)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from helpers import make_config  # noqa: E402

from cellbench.dataset import demo  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Whole-workflow tests (minutes each) start first: with `-n 2`, xdist hands tests out in this
    order, so the long ones run beside the short ones instead of one worker finishing alone."""
    items.sort(key=lambda item: item.get_closest_marker("workflow") is None)


@pytest.fixture(scope="session")
def demo_raw(tmp_path_factory) -> Path:
    """The synthetic LabelMe dataset (24 images), generated once per test session."""
    folder = tmp_path_factory.mktemp("demo") / "raw"
    demo.generate(folder)
    return folder


@pytest.fixture(scope="session")
def demo_data(demo_raw, tmp_path_factory) -> Path:
    """The demo dataset ingested (images, masks, instances, manifest)."""
    from cellbench.dataset.ingest import ingest
    out = tmp_path_factory.mktemp("ingested") / "data"
    ingest(make_config(demo_raw), out)
    return out
