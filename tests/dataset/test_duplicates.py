"""Copies of one image never sit in two folds: validate reports them, split groups them."""

import io
import json
import shutil

import numpy as np
import pandas as pd
import pytest
from helpers import make_config, shared
from PIL import Image

from cellbench.cli import main
from cellbench.dataset import duplicates
from cellbench.dataset.ingest import find_problems, ingest
from cellbench.dataset.split import make_splits
from cellbench.images import read_image

SEEDS = range(5)
FOLD_COUNTS = (2, 3, 5)
SPLIT = make_config("unused")["split"]


def labelme_folder(folder, demo_raw, n=10):
    """n distinct demo images with their LabelMe files."""
    folder.mkdir()
    for index in range(n):
        for suffix in (".json", ".png"):
            name = f"demo_{index:02d}{suffix}"
            shutil.copyfile(demo_raw / name, folder / name)
    return folder


def point_json(folder, source, target, image_path):
    """A copy of LabelMe file ``source`` named ``target`` whose imagePath is ``image_path``."""
    doc = json.loads((folder / source).read_text())
    doc["imagePath"] = image_path
    (folder / target).write_text(json.dumps(doc))


def folds_of(manifest, *copies, **split):
    """For every seed and fold count: the set of folds each list of sample ids lands in."""
    found = []
    for seed in SEEDS:
        for folds in FOLD_COUNTS:
            splits = make_splits(manifest, {**SPLIT, "folds": folds, "seed": seed, **split}).set_index("sample_id")
            found.extend(set(splits.loc[list(ids), "fold"]) for ids in copies)
    return found


def jpeg(rgb, quality):
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "JPEG", quality=quality)
    return read_image(buffer.getvalue()).rgb


# ---- the hashes ----

def test_content_hash_sees_every_pixel_and_the_shape():
    image = np.zeros((4, 6, 3), np.uint8)
    assert duplicates.content_hash(image) == duplicates.content_hash(image.copy())
    changed = image.copy()
    changed[3, 5, 2] = 1
    assert duplicates.content_hash(changed) != duplicates.content_hash(image)
    assert duplicates.content_hash(image.reshape(6, 4, 3)) != duplicates.content_hash(image)
    assert len(duplicates.content_hash(image)) == 64


@pytest.mark.parametrize("shape", [(1, 1, 3), (5, 7, 3), (63, 200, 3), (300, 300, 3), (40, 50)])
def test_perceptual_hash_of_any_size(shape):
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    value = duplicates.perceptual_hash(image)
    assert len(value) == duplicates.HASH_BITS // 4 and duplicates.distance(value, value) == 0


def test_distances_agree_with_distance():
    rng = np.random.default_rng(1)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(5)]
    matrix = duplicates.distances(hashes)
    assert all(matrix[i, j] == duplicates.distance(hashes[i], hashes[j]) for i in range(5) for j in range(5))


def test_find_compares_in_blocks():
    rng = np.random.default_rng(2)
    hashes = [bytes(rng.integers(0, 256, 32, dtype=np.uint8)).hex() for _ in range(7)]
    hashes[6] = hashes[1][:-2] + format(int(hashes[1][-2:], 16) ^ 0b111, "02x")  # 3 bits apart
    ids = [f"s{i}" for i in range(7)]
    content = [f"c{i}" for i in range(7)]
    content[4] = content[2]
    for block in (1, 3, 2048):
        found = duplicates.find(ids, content, hashes, block=block)
        assert found.exact == [["s2", "s4"]]
        assert found.near == [duplicates.NearPair("s1", "s6", 3)]


# ---- LabelMe folders with copies ----

def test_labelme_copy_of_a_file_is_reported_and_shares_a_fold(tmp_path, demo_raw):
    folder = labelme_folder(tmp_path / "ann", demo_raw)
    shutil.copyfile(folder / "demo_03.json", folder / "demo_03 (copy).json")  # imagePath still demo_03.png
    shutil.copyfile(folder / "demo_03.png", folder / "demo_03 (copy).png")
    found = find_problems(make_config(folder))
    assert found.good == 11 and found.problems == []
    assert found.duplicates.exact == [["demo_03", "demo_03 (copy)"]] and found.duplicates.near == []
    [line] = found.duplicate_lines()
    assert line == (f"exact duplicates (identical pixels): {folder / 'demo_03.json'}, "
                    f"{folder / 'demo_03 (copy).json'}: they will be grouped into one fold")
    manifest = ingest(make_config(folder), tmp_path / "data")
    assert all(len(f) == 1 for f in folds_of(manifest, ["demo_03", "demo_03 (copy)"]))
    assert all(len(f) == 1 for f in folds_of(manifest, ["demo_03", "demo_03 (copy)"], group_near_duplicates=False))
    splits = make_splits(manifest, make_config(folder)["split"]).set_index("sample_id")
    assert splits.at["demo_03 (copy)", "group"] == splits.at["demo_03", "group"] == "demo_03"
    assert splits["group"].nunique() == 10


def test_two_labelme_files_with_one_image_path(tmp_path, demo_raw):
    folder = labelme_folder(tmp_path / "ann", demo_raw)
    point_json(folder, "demo_05.json", "other_cells.json", "demo_05.png")
    point_json(folder, "demo_06.json", "again.json", "./demo_05.png")
    found = find_problems(make_config(folder))
    assert found.problems == [] and found.duplicates.exact == [["again", "demo_05", "other_cells"]]
    manifest = ingest(make_config(folder), tmp_path / "data")
    assert all(len(f) == 1 for f in folds_of(manifest, ["again", "demo_05", "other_cells"]))


def test_one_picture_as_png_and_jpeg(tmp_path, demo_raw):
    folder = labelme_folder(tmp_path / "ann", demo_raw)
    rgb = read_image(folder / "demo_07.png").rgb
    Image.fromarray(rgb).save(folder / "demo_07_photo.jpg", quality=85)
    point_json(folder, "demo_07.json", "demo_07_photo.json", "demo_07_photo.jpg")
    found = find_problems(make_config(folder))
    assert found.problems == [] and found.duplicates.exact == []
    [pair] = found.duplicates.near
    assert (pair.a, pair.b) == ("demo_07", "demo_07_photo") and pair.distance <= duplicates.NEAR_THRESHOLD
    assert found.duplicate_lines()[0].endswith("they will be grouped into one fold (split.group_near_duplicates: true)")
    assert "NOT be grouped" in found.duplicate_lines(group_near_duplicates=False)[0]
    manifest = ingest(make_config(folder), tmp_path / "data")
    assert all(len(f) == 1 for f in folds_of(manifest, ["demo_07", "demo_07_photo"]))
    apart = folds_of(manifest, ["demo_07", "demo_07_photo"], group_near_duplicates=False)
    assert any(len(f) == 2 for f in apart)


def test_validate_cli_lists_copies_and_still_passes(tmp_path, demo_raw, capsys):
    folder = labelme_folder(tmp_path / "ann", demo_raw, n=4)
    shutil.copyfile(folder / "demo_01.json", folder / "demo_01 (copy).json")
    Image.fromarray(read_image(folder / "demo_02.png").rgb).save(folder / "demo_02.jpg", quality=90)
    point_json(folder, "demo_02.json", "demo_02_jpeg.json", "demo_02.jpg")
    report = tmp_path / "results" / "validation.txt"
    settings = {"dataset": "x", "results": str(tmp_path / "results"),
                "data": {"annotations": str(folder), "demo": False}}
    assert main(["validate", "--config-json", json.dumps(settings), "--out", str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1].startswith("6 images fine, 0 problems")
    assert out[0] == (f"exact duplicates (identical pixels): {folder / 'demo_01.json'}, "
                      f"{folder / 'demo_01 (copy).json'}: they will be grouped into one fold")
    assert out[1].startswith("near duplicates (perceptual-hash distance ")
    assert out[1].endswith(f": {folder / 'demo_02.json'}, {folder / 'demo_02_jpeg.json'}: "
                           "they will be grouped into one fold (split.group_near_duplicates: true)")
    assert report.read_text().splitlines() == [out[-1], *out[:2], "# written by cellbench"]

    settings["split"] = {"group_near_duplicates": False}
    assert main(["validate", str(folder), "--config-json", json.dumps(settings)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("they will be grouped into one fold")
    assert out[1].endswith("they will NOT be grouped (split.group_near_duplicates: false) and may sit in "
                           "different folds")


# ---- WBC: copies of real images, and no false positives among the 100 ----

@pytest.fixture(scope="module")
def wbc_copies(tmp_path_factory):
    """The 100 WBC images and masks (links), plus a JPEG re-encode of 001, a 2-pixel crop of 002, a
    quarter turn of 003 and a mirrored JPEG of 004."""
    root = shared("wbc")
    folder = tmp_path_factory.mktemp("wbc")
    images, masks = folder / "images", folder / "masks"
    images.mkdir()
    masks.mkdir()
    for path in sorted((root / "images").glob("*.bmp")):
        (images / path.name).symlink_to(path)
        (masks / f"{path.stem}.png").symlink_to(root / "masks" / f"{path.stem}.png")
    Image.fromarray(jpeg(read_image(root / "images" / "001.bmp").rgb, 75)).save(images / "001_jpeg.png")
    (masks / "001_jpeg.png").symlink_to(root / "masks" / "001.png")
    Image.fromarray(read_image(root / "images" / "002.bmp").rgb[2:-2, 2:-2]).save(images / "002_crop.png")
    Image.fromarray(np.asarray(Image.open(root / "masks" / "002.png"))[2:-2, 2:-2]).save(masks / "002_crop.png")
    turned = {"003_rot90": lambda x: np.rot90(x), "004_mirror_jpeg": lambda x: x[:, ::-1]}
    for name, turn in turned.items():  # rotated and mirrored copies (the second also re-encoded)
        source = name[:3]
        rgb = np.ascontiguousarray(turn(read_image(root / "images" / f"{source}.bmp").rgb))
        Image.fromarray(jpeg(rgb, 80) if "jpeg" in name else rgb).save(images / f"{name}.png")
        Image.fromarray(np.ascontiguousarray(turn(np.asarray(Image.open(root / "masks" / f"{source}.png"))))).save(
            masks / f"{name}.png")
    config = make_config(masks, data={"format": "grey_masks", "images": str(images),
                                      "grey_levels": {"background": 0, "cytoplasm": 128, "nucleus": 255}})
    return config, ingest(config, folder / "data")


def test_wbc_copies_are_found_and_nothing_else(wbc_copies):
    config, manifest = wbc_copies
    found = find_problems(config)
    assert found.good == 104 and found.problems == [] and found.duplicates.exact == []
    assert [(p.a, p.b) for p in found.duplicates.near] == [("001", "001_jpeg"), ("002", "002_crop"),
                                                           ("003", "003_rot90"), ("004", "004_mirror_jpeg")]
    assert all(p.distance <= 40 for p in found.duplicates.near)  # measured: copies <= 38, distinct >= 88
    assert manifest["content_hash"].nunique() == 104


def test_wbc_copies_share_a_fold_and_distinct_images_do_not_merge(wbc_copies):
    _, manifest = wbc_copies
    assert all(len(f) == 1 for f in folds_of(manifest, ["001", "001_jpeg"], ["002", "002_crop"],
                                             ["003", "003_rot90"], ["004", "004_mirror_jpeg"]))
    splits = make_splits(manifest, {**SPLIT, "folds": 5})
    assert splits["group"].nunique() == 100
    assert set(splits["group"]) == {f"{i:03d}" for i in range(1, 101)}
    apart = make_splits(manifest, {**SPLIT, "folds": 5, "group_near_duplicates": False})
    assert apart["group"].nunique() == 104


def test_wbc_hash_distances_separate_copies_from_distinct_images():
    root = shared("wbc", "images")
    images = [read_image(p).rgb for p in sorted(root.glob("*.bmp"))[:30]]
    hashes = [duplicates.perceptual_hash(x) for x in images]
    distinct = duplicates.distances(hashes)[np.triu_indices(len(hashes), 1)]
    assert distinct.min() > duplicates.NEAR_THRESHOLD
    copies = [jpeg(x, 90) for x in images[:5]] + [x[4:, 4:] for x in images[5:10]]
    copies += [np.asarray(Image.fromarray(x).resize((150, 150))) for x in images[10:15]]
    copy_distances = [duplicates.distance(duplicates.perceptual_hash(c), h)
                      for c, h in zip(copies, hashes[:15], strict=True)]
    assert max(copy_distances) <= duplicates.NEAR_THRESHOLD


def test_rotated_mirrored_and_re_encoded_copies_are_found_and_share_a_fold(tmp_path, demo_raw):
    folder = labelme_folder(tmp_path / "ann", demo_raw)
    rgb = read_image(folder / "demo_03.png").rgb
    copies = {"turned": np.rot90(rgb), "mirrored": rgb[:, ::-1], "turned_photo": np.rot90(rgb, 3)}
    for name, picture in copies.items():
        path = folder / f"demo_03_{name}.{'jpg' if 'photo' in name else 'png'}"
        Image.fromarray(np.ascontiguousarray(picture)).save(path, **({"quality": 85} if "photo" in name else {}))
        point_json(folder, "demo_03.json", f"demo_03_{name}.json", path.name)  # the same outlines: only the image
    found = find_problems(make_config(folder))
    assert sorted((p.a, p.b) for p in found.duplicates.near if p.a == "demo_03") == [
        ("demo_03", f"demo_03_{name}") for name in sorted(copies)]
    assert all(p.distance <= duplicates.TURNED_THRESHOLD for p in found.duplicates.near)
    manifest = ingest(make_config(folder), tmp_path / "data")
    assert all(len(f) == 1 for f in folds_of(manifest, ["demo_03", *(f"demo_03_{n}" for n in copies)]))
    unturned = duplicates.find(manifest["sample_id"].tolist(), manifest["content_hash"].tolist(),
                               manifest["perceptual_hash"].tolist())  # without the rotations: missed
    assert not any(p.b.endswith(("turned", "mirrored", "turned_photo")) for p in unturned.near)


def test_manifest_columns_are_hashes(demo_data):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    assert manifest["perceptual_hash_d4"].str.fullmatch(r"[0-9a-f]{512}").all()
    assert (manifest["perceptual_hash_d4"].str[:64] == manifest["perceptual_hash"]).all()
    assert manifest["content_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert manifest["perceptual_hash"].str.fullmatch(r"[0-9a-f]{64}").all()
    assert manifest["content_hash"].nunique() == len(manifest)
