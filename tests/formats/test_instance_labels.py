"""data.format instance_labels: label images of object ids (Cellpose / StarDist style)."""

import numpy as np
import pandas as pd
import pytest
from helpers import make_config
from PIL import Image

from cellbench.dataset.ingest import find_problems, ingest, input_files
from cellbench.images import read_png, write_png

CLASSES = ["background", "cell"]


def label_config(labels, images, **data):
    return make_config(labels, classes=CLASSES, data={"format": "instance_labels", "images": str(images), **data})


@pytest.fixture
def pairs(demo_data, tmp_path):
    """The demo's images and instance maps as a folder of images and a folder of label images."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    for row in manifest.itertuples():
        Image.open(demo_data / row.image).save(images / f"{row.sample_id}.jpg", quality=95)
        write_png(read_png(demo_data / row.instances), labels / f"{row.sample_id}.png")
    return images, labels, manifest


def test_label_images_become_instance_and_class_maps(pairs, demo_data, tmp_path):
    images, labels, manifest = pairs
    ingested = ingest(label_config(labels, images), tmp_path / "data").set_index("sample_id")
    assert list(ingested.index) == sorted(manifest["sample_id"])
    for row in manifest.itertuples():
        ids = read_png(tmp_path / "data" / "instances" / f"{row.sample_id}.png")
        assert np.array_equal(ids, read_png(demo_data / row.instances))
        mask = read_png(tmp_path / "data" / "masks" / f"{row.sample_id}.png")
        assert np.array_equal(mask, (ids > 0).astype(np.uint8))
        assert ingested.at[row.sample_id, "n_objects"] == ids.max()
    assert {p.name for p in input_files(label_config(labels, images))} >= {"demo_00.png", "demo_00.jpg"}


def test_sixteen_bit_tiff_ids_above_255_keep_their_order(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    ids = np.zeros((60, 70), np.uint16)
    objects = np.random.default_rng(0).permutation(np.arange(300, 60000, 97))[:300]
    for k, value in enumerate(objects):
        ids.flat[k * 14: k * 14 + 5] = value
    Image.fromarray(ids).save(labels / "a.tif")
    Image.fromarray(np.full((60, 70, 3), 90, np.uint8)).save(images / "a.png")
    ingest(label_config(labels, images), tmp_path / "data")
    out = read_png(tmp_path / "data" / "instances" / "a.png")
    assert out.dtype == np.uint16 and out.max() == 300
    expected = np.searchsorted(np.unique(objects), ids) + 1
    assert np.array_equal(out, np.where(ids > 0, expected, 0))


def test_every_bad_label_image_is_reported_at_once(tmp_path):
    images, labels = tmp_path / "images", tmp_path / "labels"
    images.mkdir()
    labels.mkdir()
    for name in ("rgb", "float", "negative", "small", "orphan", "huge_id", "fine"):
        if name != "orphan":
            Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(images / f"{name}.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(labels / "rgb.png")
    Image.fromarray(np.zeros((20, 30), np.float32)).save(labels / "float.tif")
    Image.fromarray(np.full((20, 30), -3, np.int32)).save(labels / "negative.tif")
    Image.fromarray(np.zeros((10, 30), np.uint16)).save(labels / "small.png")
    Image.fromarray(np.ones((20, 30), np.uint8)).save(labels / "orphan.png")
    huge = np.zeros((20, 30), np.int32)
    huge[0, 0] = 2**31 - 1  # one object with a 32-bit id: no table of 2**31 entries
    Image.fromarray(huge).save(labels / "huge_id.tif")
    Image.fromarray(np.eye(20, 30, dtype=np.uint8) * 7).save(labels / "fine.png")
    found = find_problems(label_config(labels, images))
    messages = {p.file.name: p.message for p in found.problems}
    assert found.good == 2 and set(messages) == {"rgb.png", "float.tif", "negative.tif", "small.png", "orphan.png"}
    assert "3 channels" in messages["rgb.png"] and "float32" in messages["float.tif"]
    assert "negative" in messages["negative.tif"] and "10 x 30 but small.png is 20 x 30" in messages["small.png"]
    assert "no image named orphan.*" in messages["orphan.png"]


def test_photographs_and_raw_images_are_not_label_images(pairs, tmp_path):
    """A label format pointed at ordinary images: an RGB photograph and a 16-bit raw image are
    refused with a message naming the file, and so is a label file that is its own image."""
    images, _, manifest = pairs
    photos = tmp_path / "photos"
    photos.mkdir()
    first = manifest["sample_id"].iloc[0]
    photo = np.asarray(Image.open(images / f"{first}.jpg"))
    Image.fromarray(photo).save(photos / "rgb.png")
    noise = np.random.default_rng(1).normal(3000, 400, photo.shape[:2]).clip(0, 65535).astype(np.uint16)
    Image.fromarray(noise).save(photos / "raw.tif")
    for name in ("rgb", "raw"):
        Image.fromarray(photo).save(images / f"{name}.png")
    found = find_problems(label_config(photos, images))
    assert found.good == 0
    messages = {p.file.name: p.message for p in found.problems}
    assert "channels" in messages["rgb.png"]
    assert "looks like an image, not a label image" in messages["raw.tif"]
    same = find_problems(label_config(images, images))  # each image taken as its own labels
    assert same.good == 0 and all("is its own image" in p.message or "looks like an image" in p.message
                                  or "channels" in p.message or "share the name" in p.message
                                  for p in same.problems)
