"""Which image belongs to which label file: one folder per sample (data.sample_folders) for the
label-file formats, and the hint of which data settings a folder looks like (formats/sniff.py)."""

import numpy as np
import pandas as pd
import pytest
import tifffile
from helpers import make_config, shared
from PIL import Image

from cellbench import preflight
from cellbench.dataset.ingest import find_problems, ingest
from cellbench.errors import ConfigError
from cellbench.formats import sniff
from cellbench.images import read_png

FOLDERS = {"image": "raw.tif", "labels": "instances_ids.png"}


def folder_config(root, fmt="instance_labels", classes=("background", "cell"), **data):
    return make_config(root, classes=list(classes), data={"format": fmt, "sample_folders": FOLDERS, **data})


@pytest.fixture
def sample_folders(demo_data, tmp_path):
    """Six samples as plate_<a|b>/set<k>/raw.tif (16-bit grey) + instances_ids.png (object ids)."""
    root = tmp_path / "phase"
    manifest = pd.read_parquet(demo_data / "manifest.parquet").head(6)
    expected = {}
    for k, row in enumerate(manifest.itertuples()):
        folder = root / f"plate_{'ab'[k % 2]}" / f"set{k // 2}"
        folder.mkdir(parents=True)
        grey = read_png(demo_data / row.image).mean(axis=2)
        tifffile.imwrite(folder / "raw.tif", (grey * 257).astype(np.uint16))
        Image.fromarray(read_png(demo_data / row.instances)).save(folder / "instances_ids.png")
        expected[f"plate_{'ab'[k % 2]}__set{k // 2}"] = row
    return root, expected


def test_one_folder_per_sample_is_read_with_the_folder_paths_as_ids(sample_folders, demo_data, tmp_path):
    root, expected = sample_folders
    config = folder_config(root)
    assert preflight.sample_ids(config) == sorted(expected)
    ingested = ingest(config, tmp_path / "data").set_index("sample_id")
    assert sorted(ingested.index) == sorted(expected)
    for sample_id, row in expected.items():
        ids = read_png(tmp_path / "data" / "instances" / f"{sample_id}.png")
        assert np.array_equal(ids > 0, read_png(demo_data / row.instances) > 0)
        assert ingested.at[sample_id, "source"].endswith("instances_ids.png")
    assert (ingested["source_mode"] == "I;16").all() or (ingested["intensity_scale"] < 1).all()


def test_sample_folders_with_a_missing_or_doubled_file_are_named(sample_folders):
    root, expected = sample_folders
    (root / "plate_a" / "set0" / "raw.tif").unlink()
    found = find_problems(folder_config(root))
    assert found.good == len(expected) - 1
    assert [str(p) for p in found.problems] == [
        f"{root / 'plate_a' / 'set0'}: 0 images match data.sample_folders.image 'raw.tif' "
        "(each sample folder needs exactly one image)"]
    globbed = folder_config(root, sample_folders={"image": "*.tif", "labels": "*.png"})
    tifffile.imwrite(root / "plate_b" / "set0" / "other.tif", np.zeros((4, 4), np.uint16))
    problems = [str(p) for p in find_problems(globbed).problems]
    assert any("2 images match data.sample_folders.image '*.tif': other.tif, raw.tif" in p for p in problems)


def test_class_masks_and_mask_pairs_read_sample_folders_too(demo_data, tmp_path):
    root = tmp_path / "wells"
    manifest = pd.read_parquet(demo_data / "manifest.parquet").head(3)
    for row in manifest.itertuples():
        folder = root / row.sample_id / "masks"
        folder.mkdir(parents=True)
        Image.open(demo_data / row.image).save(root / row.sample_id / "image.png")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[read_png(demo_data / row.mask)]).save(folder / "m.png")
    spec = {"image": "image.png", "labels": "masks/*.png"}  # the labels in a subfolder of the sample's
    for fmt in ("grey_masks", "mask_pairs"):
        config = make_config(root, data={"format": fmt, "sample_folders": spec})
        found = find_problems(config)
        assert (found.good, found.problems) == (3, []), fmt
    ingest(make_config(root, data={"format": "grey_masks", "sample_folders": spec}), tmp_path / "data")
    for row in manifest.itertuples():
        assert np.array_equal(read_png(tmp_path / "data" / "masks" / f"{row.sample_id}.png"),
                              read_png(demo_data / row.mask))


def test_grey_masks_pointed_at_photographs_are_refused(demo_data, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for row in pd.read_parquet(demo_data / "manifest.parquet").head(2).itertuples():
        Image.open(demo_data / row.image).convert("L").save(images / f"{row.sample_id}.png")
    found = find_problems(make_config(images, data={"format": "grey_masks", "images": str(demo_data / "images")}))
    assert found.good == 0 and len(found.problems) == 2
    assert all("looks like an image, not a mask" in p.message for p in found.problems)


def test_preflight_says_which_layout_a_folder_has(sample_folders, tmp_path):
    root, _ = sample_folders
    config = make_config(root, classes=["background", "cell"], data={"format": "instance_labels", "images": str(root)})
    with pytest.raises(ConfigError) as caught:
        preflight.check(config)
    assert ("one folder per sample: data.sample_folders {image: raw.tif, labels: instances_ids.png} with "
            "data.format instance_labels") in str(caught.value)


@pytest.mark.parametrize(("names", "expected"), [
    (["001.bmp", "001.png", "002.bmp", "002.png"], "data.format mask_pairs (mask_suffix '', mask_extension '.png')"),
    (["a.tif", "a_mask.png", "b.tif", "b_mask.png"], "data.format mask_pairs (mask_suffix '_mask', mask_extension"),
    (["a.json", "a.png"], "data.format labelme"),
    (["a.png", "b.png"], "2 images and nothing that looks like masks"),
])
def test_sniff_names_the_format_a_folder_looks_like(tmp_path, names, expected):
    for name in names:
        (tmp_path / name).write_bytes(b"")
    assert expected in sniff.suggestion(tmp_path, {"format": "grey_masks"})
    if "mask_pairs" in expected:
        assert sniff.suggestion(tmp_path, {"format": "mask_pairs"}) is None  # already what it says


def test_the_wbc_folders_side_by_side_are_recognised(tmp_path):
    wbc = shared("wbc")
    folder = tmp_path / "wbc"
    folder.mkdir()
    for name in ("001", "002", "003"):
        (folder / f"{name}.bmp").symlink_to(wbc / "images" / f"{name}.bmp")
        (folder / f"{name}.png").symlink_to(wbc / "masks" / f"{name}.png")
    assert "mask_pairs (mask_suffix ''" in sniff.suggestion(folder, {"format": "grey_masks"})
    found = find_problems(make_config(folder, data={"format": "mask_pairs"}))
    assert (found.good, found.problems) == (3, [])


def test_copies_are_reported_by_their_image_files(demo_data, tmp_path):
    folder = tmp_path / "pairs"
    folder.mkdir()
    rows = list(pd.read_parquet(demo_data / "manifest.parquet").head(3).itertuples())
    for name, row in [("a", rows[0]), ("b", rows[1]), ("a_copy", rows[0])]:
        Image.open(demo_data / row.image).save(folder / f"{name}.bmp")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[read_png(demo_data / row.mask)]).save(folder / f"{name}.png")
    lines = find_problems(make_config(folder, data={"format": "mask_pairs"})).duplicate_lines()
    assert lines == [f"exact duplicates (identical pixels): {folder / 'a.bmp'}, {folder / 'a_copy.bmp'}: they will be "
                     "grouped into one fold"]


def test_an_image_pattern_that_also_matches_the_label_file(demo_data, tmp_path):
    """{image: "*.png", labels: mask.png}: the label file is the label file, the image the other one."""
    root = tmp_path / "wells"
    for row in pd.read_parquet(demo_data / "manifest.parquet").head(2).itertuples():
        (root / row.sample_id).mkdir(parents=True)
        Image.open(demo_data / row.image).save(root / row.sample_id / "photo.png")
        Image.fromarray(np.array([0, 128, 255], np.uint8)[read_png(demo_data / row.mask)]).save(
            root / row.sample_id / "mask.png")
    found = find_problems(make_config(root, data={"format": "grey_masks",
                                                  "sample_folders": {"image": "*.png", "labels": "mask.png"}}))
    assert (found.good, found.problems) == (2, [])


def test_two_label_files_of_one_name_are_a_problem_not_an_overwrite(demo_data, tmp_path):
    labels, images = tmp_path / "labels", tmp_path / "images"
    labels.mkdir()
    images.mkdir()
    row = next(pd.read_parquet(demo_data / "manifest.parquet").itertuples())
    Image.open(demo_data / row.image).save(images / "000.png")
    for suffix in (".png", ".tif"):
        Image.fromarray(read_png(demo_data / row.instances)).save(labels / f"000{suffix}")
    found = find_problems(make_config(labels, classes=["background", "cell"],
                                      data={"format": "instance_labels", "images": str(images)}))
    assert found.good == 1
    assert [p.message for p in found.problems] == [f"is sample '000', as {labels / '000.png'} is: two annotations "
                                                   "of one image name"]


def test_a_smooth_sixteen_bit_camera_image_is_not_a_label_image(tmp_path):
    from scipy.ndimage import gaussian_filter

    from cellbench.formats.instance_labels import photograph_problem
    camera = gaussian_filter(np.random.default_rng(0).normal(20000, 8000, (256, 256)), 2).astype(np.uint16)
    problem = photograph_problem(tmp_path / "002.tif", camera)
    assert problem is not None and "looks like an image, not a label image" in problem.message
    ids = np.zeros((60, 70), np.uint16)  # 300 small objects of 5 pixels: a label image still
    for k in range(300):
        ids.flat[k * 14:k * 14 + 5] = 300 + k
    assert photograph_problem(tmp_path / "ids.png", ids) is None


@pytest.mark.parametrize("pattern", [".", "./", "sub/", "../x.png", "a//b.png", "x/./y.png", "/abs.png"])
def test_sample_folder_patterns_name_files_inside_the_folder(pattern, tmp_path):
    from cellbench import config as configuration
    with pytest.raises(ConfigError, match="must name files inside the sample folder"):
        configuration.complete({"data": {"format": "grey_masks", "annotations": str(tmp_path),
                                         "sample_folders": {"image": pattern, "labels": "mask.png"}}})


def test_sniff_points_at_the_images_and_masks_folders_below(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    hint = sniff.suggestion(tmp_path, {"format": "grey_masks"})
    assert f"data.annotations {tmp_path / 'masks'} and data.images {tmp_path / 'images'}" in hint
    (tmp_path / "masks" / "001.png").write_bytes(b"")
    assert sniff.suggestion(tmp_path / "masks", {"format": "grey_masks"}) is None  # masks named as numbers
