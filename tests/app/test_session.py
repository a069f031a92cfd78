"""The app's work without its page: choices, one analysed image, its files, refusals."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellbench.app.session import ModelCache, analyse, cell_uncertainty, choices, refusal, shown_cells
from cellbench.errors import ConfigError
from cellbench.formats import labelme
from cellbench.images import ImageReadError, read_png

CLASSES = ["background", "cytoplasm", "nucleus"]


def test_choices_offer_trained_architectures_the_scored_winner_first(tiny_results, tmp_path):
    offered = choices(tiny_results)
    assert [c.arch for c in offered] == ["Unet"]  # FPN is in the summary but has no model
    assert offered[0].label == "Unet (CV Dice 0.812, 1 fold models)"
    with pytest.raises(ConfigError, match="no trained model"):
        choices(tmp_path)


def test_one_image_gives_overlay_cells_and_valid_files(tiny_results, demo_raw, tmp_path):
    choice = choices(tiny_results)[0]
    cache = ModelCache("cpu")
    source = demo_raw / "demo_00.png"
    result = analyse(source, "demo_00.png", choice, cache, tmp_path / "out")
    assert cache.models(choice) is cache.models(choice)  # loaded once
    assert [p.name for p in result.files] == ["demo_00_classes.png", "demo_00_instances.png", "demo_00.json",
                                              "demo_00_cells.csv", "demo_00_cell.geojson", "demo_00_cell_rois.zip",
                                              "demo_00_nucleus.geojson", "demo_00_nucleus_rois.zip"]
    features = json.loads(result.files[4].read_text())["features"]
    assert len(features) == result.summary["cell objects"]  # QuPath's file: the polygons are tested in test_infer
    with Image.open(source) as image:
        assert result.overlay.shape == (image.height, image.width, 3)
    class_map, instances = read_png(result.files[0]), read_png(result.files[1])
    assert class_map.max() < 3 and instances.dtype == np.uint16
    shutil.copy(source, result.files[2].parent / "demo_00.png")  # as the user puts it beside the image
    annotation, problems = labelme.read_annotation(result.files[2], CLASSES)
    assert problems == [] and annotation.shape_hw == class_map.shape
    assert json.loads(result.files[2].read_text())["imagePath"] == "demo_00.png"  # beside the image in LabelMe
    cells = pd.read_csv(result.files[3])
    assert len(cells[cells["object_type"] == "cell"]) == instances.max() == result.summary["cell objects"]
    shown = shown_cells(result.cells)
    assert {"cell_area", "nc_ratio", "cell_circularity", "uncertainty"} <= set(shown.columns)
    assert shown["uncertainty"].between(0, 1).all() and len(shown) == result.summary["cell objects"]
    assert "cytoplasm bluish green" in result.summary["colours"]


def test_a_16_bit_tiff_is_analysed_and_an_oversized_or_fake_image_refused(tiny_results, demo_raw, tmp_path):
    choice, cache = choices(tiny_results)[0], ModelCache("cpu")
    grey = np.asarray(Image.open(demo_raw / "demo_01.png").convert("L"), dtype=np.uint16) * 257
    Image.fromarray(grey).save(tmp_path / "deep.tif")
    assert analyse(tmp_path / "deep.tif", "deep.tif", choice, cache, tmp_path / "a").overlay.shape[:2] == grey.shape
    with pytest.raises(ImageReadError) as large:
        analyse(demo_raw / "demo_00.png", "demo_00.png", choice, cache, tmp_path / "b", max_pixels=1000)
    assert "demo_00.png:" in refusal("demo_00.png", large.value) and "pixels" in str(large.value)
    (tmp_path / "fake.png").write_text("not an image")
    with pytest.raises(ImageReadError):
        analyse(tmp_path / "fake.png", "fake.png", choice, cache, tmp_path / "c")
    assert not (tmp_path / "b").exists() and not (tmp_path / "c").exists()  # nothing written for a refusal


def test_cell_uncertainty_is_the_mean_normalised_entropy_inside_each_cell():
    p = np.zeros((2, 2, 4), np.float32)
    p[:, :, :2] = 0.5  # left half: uniform over 2 classes
    p[0, :, 2:] = 1.0  # right half: certain
    labels = np.array([[1, 1, 2, 2], [1, 1, 2, 0]])
    values = cell_uncertainty(p, labels)
    assert values[1] == pytest.approx(1.0) and values[2] == pytest.approx(0.0, abs=1e-6)
    assert cell_uncertainty(None, labels).isna().all()


def test_a_batch_keeps_same_named_images_apart_and_copies_only_when_asked(tiny_results, demo_raw, tmp_path):
    from cellbench.app.session import analyse_uploads
    choice, cache = choices(tiny_results)[0], ModelCache("cpu")
    Image.open(demo_raw / "demo_03.png").save(tmp_path / "demo_00.tif")  # same stem as demo_00.png
    (tmp_path / "notes.png").write_text("a text file")
    keep = tmp_path / "keep"
    (keep / "demo_00.json").parent.mkdir()
    (keep / "demo_00.json").write_text("the user's own")
    batch = analyse_uploads([demo_raw / "demo_00.png", tmp_path / "demo_00.tif", tmp_path / "notes.png"], choice,
                            cache, tmp_path / "out" / "run1", keep=keep)
    assert [name for _, name in batch.overlays] == ["demo_00.png", "demo_00.tif"]
    jsons = sorted(p for p in batch.files if p.suffix == ".json")
    assert len(jsons) == 2 and len(set(jsons)) == 2  # one per image, neither overwrote the other
    assert "Not analysed: notes.png:" in batch.text and "Copies kept in" in batch.text
    assert sorted(p.relative_to(keep / "run1") for p in (keep / "run1").rglob("*.json")) == sorted(
        p.relative_to(tmp_path / "out" / "run1") for p in jsons)
    assert (keep / "demo_00.json").read_text() == "the user's own"
    assert set(batch.cells["sample_id"]) == {"demo_00"}
    quiet = analyse_uploads([demo_raw / "demo_01.png"], choice, cache, tmp_path / "out" / "run2")
    assert "Copies kept" not in quiet.text and not (keep / "run2").exists()


def test_a_damaged_model_or_summary_is_named(tiny_results, demo_raw, tmp_path):
    from cellbench.errors import InputError
    results = tmp_path / "results"
    shutil.copytree(tiny_results, results)
    (results / "models" / "Unet" / "fold0" / "model.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="model.pt: is not a cellbench checkpoint"):
        analyse(demo_raw / "demo_00.png", "demo_00.png", choices(results)[0], ModelCache("cpu"), tmp_path / "out")
    (results / "summary.parquet").write_text("garbage")
    with pytest.raises(InputError, match="summary.parquet: is not a cellbench summary"):
        choices(results)


def test_the_page_shows_a_whole_slide_overlay_shrunk_and_keeps_the_downloads_whole():
    from cellbench.app.session import DISPLAY_SIDE, for_display
    small = np.zeros((300, 400, 3), np.uint8)
    assert for_display(small) is small
    wide = np.zeros((1000, 20000, 3), np.uint8)  # beyond WebP's 16,383 pixels, which lost the whole batch
    shown = for_display(wide)
    assert max(shown.shape[:2]) <= DISPLAY_SIDE and shown.shape[0] == 200


def test_leftover_work_folders_of_killed_apps_are_removed_at_the_next_start(tmp_path):
    import subprocess
    import sys

    from cellbench.app.ui import WORK_PREFIX, remove_stale_work_folders
    from cellbench.fsutil import owner
    host = owner().rsplit(".", 1)[0]
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f"{WORK_PREFIX}{host}.{gone.stdout.strip()}.abc"
    alive = tmp_path / f"{WORK_PREFIX}{owner()}.def"
    other_host = tmp_path / f"{WORK_PREFIX}elsewhere.{gone.stdout.strip()}.ghi"
    unrelated = tmp_path / "cellbench-app-notes"
    for folder in (dead, alive, other_host, unrelated):
        (folder / "uploads").mkdir(parents=True)
    assert remove_stale_work_folders(tmp_path) == [dead]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (alive, other_host, unrelated))
