import hashlib
import json

import numpy as np
import pandas as pd
import pytest
from helpers import CELL, NUCLEUS, make_config, shared, write_labelme
from PIL import Image

from cellbench.dataset.ingest import find_problems, ingest
from cellbench.errors import InputError
from cellbench.formats import labelme
from cellbench.images import read_png


def fingerprint(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_demo_ingest_writes_images_masks_instances_manifest(demo_data, demo_raw):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    assert len(manifest) == 24
    assert {"sample_id", "image", "mask", "instances", "height", "width", "n_objects"} <= set(manifest.columns)
    row = manifest.iloc[0]
    image, mask, instances = (read_png(demo_data / row[c]) for c in ("image", "mask", "instances"))
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1, 2}
    assert instances.dtype == np.uint16 and instances.max() == row["n_objects"]
    assert (manifest["n_objects"] == 0).sum() == 2  # the empty demo images


def test_every_problem_of_every_file_at_once_and_nothing_written(tmp_path, demo_raw):
    folder = tmp_path / "ann"
    folder.mkdir()
    for name in ("demo_00", "demo_01", "demo_02"):
        for suffix in (".json", ".png"):
            (folder / f"{name}{suffix}").write_bytes((demo_raw / f"{name}{suffix}").read_bytes())
    bad_label = json.loads((folder / "demo_00.json").read_text())
    bad_label["shapes"][0]["label"] = "platelet"
    (folder / "demo_00.json").write_text(json.dumps(bad_label))
    (folder / "demo_02.png").unlink()
    before = fingerprint(folder)
    out = tmp_path / "data"
    with pytest.raises(InputError) as err:
        ingest(make_config(folder), out)
    message = str(err.value)
    assert "2 problems" in message
    assert "demo_00.json: shape 0: unknown label 'platelet'" in message
    assert "demo_02.json: image not found" in message
    assert not out.exists() and list(tmp_path.glob(".data*")) == []
    assert fingerprint(folder) == before


def test_failed_rerun_keeps_the_previous_output(tmp_path, demo_raw):
    folder = tmp_path / "ann"
    folder.mkdir()
    for suffix in (".json", ".png"):
        (folder / f"demo_01{suffix}").write_bytes((demo_raw / f"demo_01{suffix}").read_bytes())
    out = tmp_path / "data"
    ingest(make_config(folder), out)
    (folder / "demo_01.json").write_text("{")
    with pytest.raises(InputError, match="malformed JSON"):
        ingest(make_config(folder), out)
    assert (out / "manifest.parquet").is_file() and (out / "masks" / "demo_01.png").is_file()


def test_demo_and_own_annotations_exclude_each_other(tmp_path):
    from cellbench import config as configuration
    from cellbench.dataset.ingest import annotation_folder
    both = configuration.complete({"data": {"demo": True, "annotations": str(tmp_path)}})
    with pytest.raises(ValueError, match="set data.demo: false"):
        annotation_folder(both)
    with pytest.raises(ValueError, match="data.annotations must name"):
        annotation_folder(configuration.complete({"data": {"demo": False}}))
    demo_only = configuration.complete({"dataset": "d", "data": {"demo": True}})
    assert annotation_folder(demo_only) == tmp_path.__class__("results/d/demo_input/annotations")


def test_empty_folder_is_an_error(tmp_path):
    with pytest.raises(InputError, match="no LabelMe"):
        ingest(make_config(tmp_path), tmp_path / "out")


def grey_config(masks, images):
    return make_config(masks, data={"format": "grey_masks", "images": str(images)})


def test_grey_masks_map_levels_and_count_stray_pixels(tmp_path):
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    grey = np.array([[0, 128, 255, 3], [120, 250, 0, 0]], np.uint8)
    Image.fromarray(grey).save(masks / "001.png")
    Image.fromarray(np.zeros((2, 4, 3), np.uint8)).save(images / "001.bmp")
    manifest = ingest(grey_config(masks, images), tmp_path / "data")
    assert manifest["n_stray_pixels"].tolist() == [3]
    assert read_png(tmp_path / "data" / "masks" / "001.png").tolist() == [[0, 1, 2, 0], [1, 2, 0, 0]]


@pytest.mark.parametrize("problem", ["missing image", "colour mask", "size mismatch", "unreadable mask"])
def test_grey_mask_problems(tmp_path, problem):
    masks, images = tmp_path / "masks", tmp_path / "images"
    masks.mkdir()
    images.mkdir()
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(masks / "m.png")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(images / "m.png")
    expected = {"missing image": "no image named m.*", "colour mask": "mask is colour",
                "size mismatch": "mask is 4 x 4 but m.png is 5 x 4", "unreadable mask": "cannot be read"}[problem]
    if problem == "missing image":
        (images / "m.png").unlink()
    elif problem == "colour mask":
        green = np.zeros((4, 4, 3), np.uint8)
        green[..., 1] = 1
        Image.fromarray(green).save(masks / "m.png")
    elif problem == "size mismatch":
        Image.fromarray(np.zeros((5, 4, 3), np.uint8)).save(images / "m.png")
    else:
        (masks / "m.png").write_bytes(b"not a png")
    with pytest.raises(InputError) as err:
        ingest(grey_config(masks, images), tmp_path / "data")
    assert expected in str(err.value) and "m.png" in str(err.value)
    assert not (tmp_path / "data").exists()


def test_wbc_expert_masks_ingest(tmp_path):
    root = shared("wbc")
    manifest = ingest(grey_config(root / "masks", root / "images"), tmp_path / "data")
    assert len(manifest) == 100
    stray = manifest.set_index("sample_id")["n_stray_pixels"]
    assert set(stray[stray > 0].index) == {"034", "035", "047", "050", "076"}
    assert (manifest["pixels_nucleus"] > 0).all() and (manifest["pixels_cytoplasm"] > 0).all()


def test_wbc_labelme_polygons_agree_with_expert_masks(tmp_path):
    root = shared("wbc")
    lm = ingest(make_config(root / "labelme"), tmp_path / "lm")
    ingest(grey_config(root / "masks", root / "images"), tmp_path / "gm")
    assert len(lm) == 100 and (lm["pixels_nucleus"] > 0).all()  # nuclei-first files keep their nucleus
    dice = {1: [], 2: []}
    for sample_id in lm["sample_id"]:
        a = read_png(tmp_path / "lm" / "masks" / f"{sample_id}.png")
        b = read_png(tmp_path / "gm" / "masks" / f"{sample_id}.png")
        for c in dice:
            dice[c].append(2 * ((a == c) & (b == c)).sum() / ((a == c).sum() + (b == c).sum()))
    assert np.mean(dice[1]) >= 0.97 and np.mean(dice[2]) >= 0.98  # measured: 0.9746 and 0.9859


def test_wbc_stray_levels_as_errors_name_exactly_the_five_files(tmp_path):
    root = shared("wbc")
    config = grey_config(root / "masks", root / "images")
    config["data"]["stray_levels"] = "error"
    with pytest.raises(InputError) as err:
        ingest(config, tmp_path / "data")
    assert sorted(p.file.name for p in err.value.problems) == ["034.png", "035.png", "047.png", "050.png", "076.png"]
    assert not (tmp_path / "data").exists()


def test_labelme_voc_export_reads_as_class_index_pngs(tmp_path):
    voc = shared("labelme-examples", "semantic_segmentation", "data_dataset_voc")
    classes = (voc / "class_names.txt").read_text().split("\n")
    classes = [name for name in classes if name]
    config = make_config(voc / "SegmentationClass", classes=classes, class_priority=None, evaluate={"regions": {}},
                         data={"format": "class_index_png", "images": str(voc / "JPEGImages")})
    manifest = ingest(config, tmp_path / "data")
    assert len(manifest) == 3
    for name in manifest["sample_id"]:
        reference = np.load(voc / "SegmentationClassNpy" / f"{name}.npy")
        assert np.array_equal(read_png(tmp_path / "data" / "masks" / f"{name}.png"),
                              np.where(reference == -1, 255, reference))


def test_manifest_records_content_and_perceptual_hashes_and_ingest_warns_of_copies(tmp_path, caplog):
    from helpers import CELL, write_labelme
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for name in ("a", "b", "c"):
        write_labelme(tmp_path, [CELL], name=name)
        Image.fromarray(picture if name != "c" else picture[::-1]).save(tmp_path / f"{name}.png")
    write_labelme(tmp_path, [CELL], name="a (copy)", imagePath="a.png", image=False)
    manifest = ingest(make_config(tmp_path), tmp_path / "data").set_index("sample_id")
    content, perceptual = manifest["content_hash"], manifest["perceptual_hash"]
    assert content["a"] == content["a (copy)"] == content["b"] != content["c"]
    assert perceptual["a"] == perceptual["b"] != perceptual["c"]
    assert content["a"] == hashlib.sha256(b"|u1(20, 30, 3)" + picture.tobytes()).hexdigest()
    assert f"exact duplicates (identical pixels): {tmp_path / 'a.json'}, {tmp_path / 'a (copy).json'}, " \
           f"{tmp_path / 'b.json'}: they will be grouped into one fold" in caplog.text


def test_an_unforeseen_error_is_reported_against_its_file_and_the_rest_go_on(tmp_path, monkeypatch):
    for name in ("a", "b", "c"):
        write_labelme(tmp_path, [CELL, NUCLEUS], name=name)
    write_labelme(tmp_path, [{**CELL, "label": "platelet"}], name="d")
    to_maps, calls = labelme.to_maps, []

    def failing_for_b(*args):  # files are read in name order: the second call is b's
        calls.append(args)
        if len(calls) == 2:
            raise ZeroDivisionError("surprise")
        return to_maps(*args)

    monkeypatch.setattr(labelme, "to_maps", failing_for_b)
    found = find_problems(make_config(tmp_path))
    good, problems = found.good, found.problems
    assert good == 2
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.json'}: internal error while reading this file (ZeroDivisionError: surprise); "
        "please report it",
        f"{tmp_path / 'd.json'}: shape 0: unknown label 'platelet' (known classes: __ignore__, background, cytoplasm, "
        "nucleus; add it to data.label_aliases, or set data.unknown_labels to ignore or to a class)"]

    monkeypatch.setattr(labelme.reading, "_resolve_image", lambda *args: {}["surprise"])  # inside read_annotation
    annotation, problems = labelme.read_annotation(tmp_path / "a.json", ["background", "cytoplasm", "nucleus"])
    assert annotation is None and [p.message for p in problems] == [
        "internal error while reading this file (KeyError: 'surprise'); please report it"]
