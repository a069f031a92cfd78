import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cellbench.classmaps import IGNORE_INDEX
from cellbench.training import augment
from cellbench.training.batches import CropBatches, _pad_to
from cellbench.training.variants import VariantStore

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def store(demo_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("variants") / "augmented"
    augment.augment(demo_data, out, rotations=2, flip=False)
    return VariantStore(out)


@pytest.fixture(scope="module")
def ragged_store(tmp_path_factory):
    """Two samples of different sizes, one smaller than the crop."""
    root = tmp_path_factory.mktemp("ragged")
    rows = []
    for name, (h, w) in {"wide": (40, 90), "small": (20, 30)}.items():
        for sub in ("images", "masks", "instances"):
            (root / "data" / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(root / "data" / "images" / f"{name}.png")
        Image.fromarray(np.ones((h, w), np.uint8)).save(root / "data" / "masks" / f"{name}.png")
        Image.fromarray(np.ones((h, w), np.uint16)).save(root / "data" / "instances" / f"{name}.png")
        rows.append({"sample_id": name, "image": f"images/{name}.png", "mask": f"masks/{name}.png",
                     "instances": f"instances/{name}.png"})
    pd.DataFrame(rows).to_parquet(root / "data" / "manifest.parquet")
    augment.augment(root / "data", root / "augmented", rotations=1, flip=False)
    return VariantStore(root / "augmented")


def collect(batches, epoch, start=0, steps=None):
    return [(images.clone(), masks.clone(), rows) for images, masks, rows in batches.epoch(epoch, start, steps)]


def test_batches_depend_only_on_seed_epoch_and_step(store):
    rows = np.arange(len(store))
    a = collect(CropBatches(store, rows, 64, 5, seed=1, device=CPU), epoch=3)
    b = collect(CropBatches(store, rows, 64, 5, seed=1, device=CPU), epoch=3)
    c = collect(CropBatches(store, rows, 64, 5, seed=1, device=CPU), epoch=4)
    assert all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    assert sorted(int(r) for _, _, rs in a for r in rs) == list(rows)  # an epoch visits every variant once


def test_resuming_mid_epoch_gives_the_remaining_batches(store):
    batches = CropBatches(store, np.arange(len(store)), 64, 4, seed=2, device=CPU)
    whole, tail = collect(batches, 1), collect(batches, 1, start=3)
    assert len(tail) == len(whole) - 3
    assert all(torch.equal(x[0], y[0]) for x, y in zip(whole[3:], tail, strict=True))
    assert len(collect(batches, 1, start=1, steps=2)) == 1


def test_in_memory_and_mapped_batches_are_identical(store):
    rows = np.arange(0, len(store), 3)
    memory = collect(CropBatches(store, rows, 64, 4, seed=5, device=CPU, in_memory=True), epoch=2)
    mapped_batches = CropBatches(store, rows, 64, 4, seed=5, device=CPU, in_memory=False)
    mapped = collect(mapped_batches, epoch=2)
    assert mapped_batches.where == "mapped"
    for (im_a, mk_a, rows_a), (im_b, mk_b, rows_b) in zip(memory, mapped, strict=True):
        assert torch.equal(im_a, im_b) and torch.equal(mk_a, mk_b) and list(rows_a) == list(rows_b)
        assert im_a.dtype == torch.uint8 and mk_a.dtype == torch.int64 and im_a.shape[1:] == (64, 64, 3)


@pytest.mark.parametrize("in_memory", [True, False])
def test_ragged_variants_crop_inside_and_pad_with_ignore(ragged_store, in_memory):
    batches = CropBatches(ragged_store, np.arange(2), 32, 2, seed=0, device=CPU, in_memory=in_memory)
    for epoch in range(1, 6):
        [(images, masks, rows)] = collect(batches, epoch)
        for image, mask, row in zip(images, masks, rows, strict=True):
            name = ragged_store.sample_of(int(row))
            if name == "wide":  # a crop inside a larger image never sees padding
                assert (mask == 1).all() and (image == 100).all()
            else:  # 20 x 30 in a 32 x 32 crop: the rest is ignored
                assert (mask == 1).sum() == 20 * 30 and (mask == IGNORE_INDEX).sum() == 32 * 32 - 600


def test_pad_to_handles_tiny_images():
    image, mask = _pad_to(np.zeros((5, 3, 3), np.uint8), np.zeros((5, 3), np.uint8), 32)
    assert image.shape == (32, 32, 3) and mask.shape == (32, 32) and mask[31, 31] == IGNORE_INDEX


@pytest.mark.parametrize("in_memory", [True, False])
def test_instance_batches_carry_class_and_instance_crops_and_border_targets(store, in_memory):
    rows = store.variants_of(store.manifest["sample_id"].unique()[:3])
    plain = collect(CropBatches(store, rows, 64, 4, seed=5, device=CPU, in_memory=in_memory), epoch=1)
    both = collect(CropBatches(store, rows, 64, 4, seed=5, device=CPU, in_memory=in_memory, with_instances=True),
                   epoch=1)
    bordered = collect(CropBatches(store, rows, 64, 4, seed=5, device=CPU, in_memory=in_memory, border_index=3),
                       epoch=1)
    for (_, masks, _), (_, stacked, _), (_, border, _) in zip(plain, both, bordered, strict=True):
        assert stacked.shape == (len(masks), 2, 64, 64) and torch.equal(stacked[:, 0], masks)
        assert ((stacked[:, 1] > 0) <= (masks > 0)).all()  # instances only on foreground
        changed = border != masks
        assert (border[changed] == 3).all() and (stacked[:, 1][changed] > 0).all()
