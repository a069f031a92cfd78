"""data.format mask_pairs: images and masks side by side in one folder."""

import numpy as np
import pandas as pd
import pytest
from helpers import make_config, shared
from PIL import Image

from cellbench.dataset.ingest import find_problems, ingest
from cellbench.images import read_png, write_png

GREY = {0: 0, 1: 128, 2: 255}


def pairs_config(folder, **data):
    return make_config(folder, data={"format": "mask_pairs", **data})


@pytest.fixture
def side_by_side(demo_data, tmp_path):
    """The demo as <id>.bmp images beside <id>.png grey-level masks (the WBC layout)."""
    folder = tmp_path / "pairs"
    folder.mkdir()
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    for row in manifest.itertuples():
        Image.open(demo_data / row.image).save(folder / f"{row.sample_id}.bmp")
        mask = read_png(demo_data / row.mask)
        write_png(np.vectorize(GREY.get)(mask).astype(np.uint8), folder / f"{row.sample_id}.png")
    return folder, manifest


def test_images_and_grey_masks_in_one_folder(side_by_side, demo_data, tmp_path):
    folder, manifest = side_by_side
    found = find_problems(pairs_config(folder))
    assert (found.good, found.problems) == (len(manifest), [])
    ingested = ingest(pairs_config(folder), tmp_path / "data")
    assert sorted(ingested["sample_id"]) == sorted(manifest["sample_id"])
    for row in manifest.itertuples():
        assert np.array_equal(read_png(tmp_path / "data" / "masks" / f"{row.sample_id}.png"),
                              read_png(demo_data / row.mask))
        assert np.array_equal(read_png(tmp_path / "data" / "images" / f"{row.sample_id}.png"),
                              read_png(demo_data / row.image))


def test_a_mask_suffix_with_class_indices(demo_data, tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    for name in ("demo_03", "demo_04"):
        Image.open(demo_data / "images" / f"{name}.png").save(folder / f"{name}.png")
        write_png(read_png(demo_data / "masks" / f"{name}.png"), folder / f"{name}_mask.png")
    ingested = ingest(pairs_config(folder, mask_suffix="_mask", mask_values="class_index"), tmp_path / "data")
    assert sorted(ingested["sample_id"]) == ["demo_03", "demo_04"]
    assert np.array_equal(read_png(tmp_path / "data" / "masks" / "demo_04.png"),
                          read_png(demo_data / "masks" / "demo_04.png"))


def test_unpaired_and_ambiguous_files_are_named_with_what_to_do(demo_data, tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    image = Image.open(demo_data / "images" / "demo_03.png")
    image.save(folder / "x.png")
    write_png(np.zeros((128, 128), np.uint8), folder / "x_mask.png")  # suffix not configured
    found = find_problems(pairs_config(folder))
    assert found.good == 0 and len(found.problems) == 2
    assert all("set data.mask_suffix" in p.hint for p in found.problems)
    (folder / "x.png").unlink()
    (folder / "x_mask.png").unlink()
    image.save(folder / "y.bmp")
    image.save(folder / "y.jpg")
    write_png(np.zeros((128, 128), np.uint8), folder / "y.png")
    found = find_problems(pairs_config(folder))
    assert [p.message for p in found.problems] == ["2 images could be its image: y.bmp, y.jpg"]


def test_the_wbc_folder_layout_reads_as_its_grey_masks(tmp_path):
    images, masks = shared("wbc", "images"), shared("wbc", "masks")
    folder = tmp_path / "wbc"
    folder.mkdir()
    for image in sorted(images.glob("*.bmp"))[:12]:
        (folder / image.name).symlink_to(image)
        (folder / f"{image.stem}.png").symlink_to(masks / f"{image.stem}.png")
    paired = ingest(pairs_config(folder), tmp_path / "paired")
    grey = make_config(masks, data={"format": "grey_masks", "images": str(images)})
    reference = ingest(grey, tmp_path / "grey")
    for row in paired.itertuples():
        for sub in ("images", "masks", "instances"):
            assert np.array_equal(read_png(tmp_path / "paired" / sub / f"{row.sample_id}.png"),
                                  read_png(tmp_path / "grey" / sub / f"{row.sample_id}.png"))
    assert len(reference) == 100 and len(paired) == 12
