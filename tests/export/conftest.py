"""Fixtures of the export tests: two small fold checkpoints and the images the files are checked on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from fold_checkpoints import save_fold
from helpers import SHARED_DATA


@pytest.fixture(autouse=True)
def one_thread():
    """The tests run on two workers sharing two cores: one torch thread each (two each oversubscribe
    the cores, and a 128 px forward pass then takes a second instead of 60 ms)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def unet_folds(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("models")
    return [save_fold(folder / "Unet" / f"fold{k}" / "model.pt", fold=k) for k in range(2)]


@pytest.fixture
def parity_images(request) -> list[Path]:
    """Real white blood cell images when the public data is here (../shared/data/wbc), else two demo
    images: the same numerical checks on synthetic pixels."""
    wbc = SHARED_DATA / "wbc" / "images"
    if wbc.is_dir():
        return sorted(wbc.glob("*.bmp"))[:2]
    return sorted(request.getfixturevalue("demo_raw").glob("*.png"))[:2]
