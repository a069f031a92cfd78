"""cellbench infer: new images of any format and size -> per-image maps, LabelMe files, overlays and
predictions.parquet, written completely or not at all."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from cellbench import cli
from cellbench.errors import ConfigError, InputError
from cellbench.images import read_png
from cellbench.inference.ensemble import Windows
from cellbench.inference.infer import ModelSet, best_architecture, find_images, infer, model_sets_from
from cellbench.inference.inputs import output_names
from cellbench.training import models

CLASSES = ["background", "cytoplasm", "nucleus"]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    paths = []
    for arch in ("Unet", "FPN"):
        for fold in range(2):
            torch.manual_seed(fold)
            net = models.build(arch, "resnet18", len(CLASSES))
            path = folder / arch / f"fold{fold}" / "model.pt"
            path.parent.mkdir(parents=True)
            models.save_checkpoint(path, net, {"arch": arch, "encoder": "resnet18", "classes": CLASSES,
                                               "in_channels": 3, "mean": [0.5] * 3, "std": [0.25] * 3,
                                               "size_divisor": 32, "fold": fold})
            paths.append(path)
    return paths


@pytest.fixture
def images(tmp_path, demo_raw):
    folder = tmp_path / "new"
    folder.mkdir()
    for source in sorted(demo_raw.glob("*.png"))[:2]:
        shutil.copy(source, folder / source.name)
    grey16 = (np.arange(70 * 90, dtype=np.uint32).reshape(70, 90) * 9).astype(np.uint16)  # odd size, 16-bit
    Image.fromarray(grey16).save(folder / "scan16.tif")
    return folder


def test_infer_writes_every_output_per_image(images, checkpoints, tmp_path):
    paths = find_images(str(images))
    sets = model_sets_from(checkpoints, ["Unet"], "all")
    assert sets == [ModelSet("Unet", tuple(checkpoints[:2]))]
    before = {p: p.read_bytes() for p in images.iterdir()}
    table = infer(paths, sets, tmp_path / "out", Windows(tile_size=64, tta="flips"), save_probabilities=True)
    out = tmp_path / "out"
    assert len(table) == 3 and set(table["models"]) == {2} and set(table["tta"]) == {"flips"}
    assert {"entropy", "disagreement", "seconds", "n_cell", "n_nucleus"} <= set(table.columns)
    assert table["entropy"].between(0, 1).all() and table["disagreement"].between(0, 1).all()
    assert pd.read_parquet(out / "predictions.parquet").equals(table)
    for path in paths:
        height, width = table.set_index("image").loc[str(path), ["height", "width"]]
        class_map = read_png(out / "Unet" / "class_maps" / f"{path.stem}.png")
        assert class_map.shape == (height, width) and class_map.max() < 3
        for kind in ("cell", "nucleus"):
            assert read_png(out / "Unet" / "instances" / kind / f"{path.stem}.png").dtype == np.uint16
        assert read_png(out / "Unet" / "overlays" / f"{path.stem}.png").shape == (height, width, 3)
        probabilities = np.load(out / "Unet" / "probabilities" / f"{path.stem}.npy")
        assert probabilities.dtype == np.float16 and probabilities.shape == (3, height, width)
        document = json.loads((out / "Unet" / "labelme" / f"{path.stem}.json").read_text())
        assert (out / "Unet" / "labelme" / document["imagePath"]).resolve() == path.resolve()
        assert (document["imageHeight"], document["imageWidth"]) == (height, width)
    assert before == {p: p.read_bytes() for p in images.iterdir()}  # inputs untouched
    record = json.loads((out / "inference.json").read_text())
    assert record["models"]["Unet"] == [str(c) for c in checkpoints[:2]]


def test_unreadable_images_are_all_listed_before_any_compute(images, checkpoints, tmp_path):
    (images / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (images / "slide.jpg").write_bytes(b"%PDF-1.4 this is a pdf")
    with pytest.raises(InputError) as caught:
        infer(find_images(str(images)), model_sets_from(checkpoints, ["Unet"], [0]), tmp_path / "out", Windows())
    assert len(caught.value.problems) == 2
    assert {p.file.name for p in caught.value.problems} == {"broken.png", "slide.jpg"}
    assert "PDF" in str(caught.value)
    assert not (tmp_path / "out").exists()


def test_same_named_images_of_several_folders_are_named_by_their_paths(images, checkpoints, tmp_path):
    """a/set1/raw.tif and a/set2/raw.tif (one folder per sample) are both segmented: outputs are named
    by the path below the images' common folder, never refused."""
    plate = tmp_path / "plate"
    for well in ("set1", "set2"):
        (plate / well).mkdir(parents=True)
        shutil.copy(images / "scan16.tif", plate / well / "raw.tif")
    table = infer(find_images([str(plate / "set1" / "raw.tif"), str(plate / "*" / "raw.tif")]),
                  model_sets_from(checkpoints, ["Unet"], [0]), tmp_path / "out", Windows(tile_size=64))
    assert sorted(table["name"]) == ["set1/raw", "set2/raw"]
    for name in ("set1/raw", "set2/raw"):
        assert read_png(tmp_path / "out" / "Unet" / "class_maps" / f"{name}.png").shape == (70, 90)
        document = json.loads((tmp_path / "out" / "Unet" / "labelme" / f"{name}.json").read_text())
        assert (tmp_path / "out" / "Unet" / "labelme" / Path(name).parent / document["imagePath"]).resolve() == \
            (plate / name.split("/")[0] / "raw.tif").resolve()
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet")
    assert set(cells["sample_id"]) <= {"set1/raw", "set2/raw"}


def test_output_names():
    assert output_names([Path("x/a.png"), Path("x/b.tif")]) == {Path("x/a.png"): "a", Path("x/b.tif"): "b"}
    assert output_names([Path("a/set1/raw.tif"), Path("a/set2/raw.tif")]) == {
        Path("a/set1/raw.tif"): "set1/raw", Path("a/set2/raw.tif"): "set2/raw"}
    assert output_names([Path("x/a.png"), Path("x/a.TIF")]) == {Path("x/a.png"): "a_png", Path("x/a.TIF"): "a_tif"}
    assert output_names([Path("/one/a.png")]) == {Path("/one/a.png"): "a"}


def test_model_choice(checkpoints):
    summary = pd.DataFrame({"arch": ["Unet", "FPN", "FPN"], "class": ["foreground_mean", "foreground_mean", "nucleus"],
                            "cv_dice": [0.7, 0.8, 0.99]})
    assert best_architecture(summary) == "FPN"
    sets = model_sets_from(checkpoints, ["best", "Unet"], [1], summary)
    assert [(s.arch, s.checkpoints) for s in sets] == [("FPN", (checkpoints[3],)), ("Unet", (checkpoints[1],))]
    with pytest.raises(ConfigError, match="no trained model of 'DeepLabV3'"):
        model_sets_from(checkpoints, ["DeepLabV3"], "all")
    with pytest.raises(ConfigError, match="Unet has no model of fold 4"):
        model_sets_from(checkpoints, ["Unet"], [0, 4])


def test_a_damaged_checkpoint_is_named(checkpoints, tmp_path):
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="model.pt: is not a cellbench checkpoint"):
        model_sets_from([checkpoints[0], bad], ["Unet"], "all")


def test_cli_infer_writes_only_where_asked(images, checkpoints, tmp_path, capsys):
    out = tmp_path / "results" / "infer" / "smears"
    settings = json.dumps({"dataset": "smears", "classes": CLASSES, "class_priority": ["nucleus", "cytoplasm"],
                           "data": {"max_pixels": 10**8}, "measure": {"bin_width": 25},
                           "evaluate": {"objects": {"cell": {"classes": ["cytoplasm", "nucleus"],
                                                             "seed_class": "nucleus", "min_size": 10,
                                                             "fill_holes": True}},
                                        "min_size_fraction": 0.5, "join_pieces": True},
                           "infer": {"images": None, "architectures": ["FPN"], "folds": "all", "tta": "none",
                                     "tile_size": 64, "overlap": 0.25, "batch_size": 2, "block_size": 4096,
                                     "whole_slide": "auto", "slide_format": "ome-zarr", "object_margin": 256,
                                     "save_probabilities": False, "device": "cpu"}})
    status = cli.main(["infer", "--settings", settings, "--images", str(images / "scan16.tif"),
                       "--checkpoints", *map(str, checkpoints), "--out", str(out)])
    assert status == 0
    written = {p.relative_to(tmp_path) for p in tmp_path.rglob("*")
               if p.is_file() and tmp_path / "new" not in p.parents}
    assert all(p.parts[:3] == ("results", "infer", "smears") for p in written)
    assert sorted(p.name for p in (out / "FPN" / "instances").iterdir()) == ["cell"]
    assert pd.read_parquet(out / "predictions.parquet")["models"].tolist() == [2]
    cells = pd.read_parquet(out / "cells.parquet")
    assert set(cells["dataset"]) <= {"smears"} and set(cells["sample_id"]) <= {"scan16"}
    status = cli.main(["infer", "--settings", settings, "--images", str(tmp_path / "nothing*.png"),
                       "--checkpoints", *map(str, checkpoints), "--out", str(tmp_path / "other")])
    assert status == 2 and "names no image file" in capsys.readouterr().err


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


def _even_odd(rings, shape) -> np.ndarray:
    from skimage.draw import polygon
    mask = np.zeros(shape, bool)
    for ring in rings:
        inside = np.zeros(shape, bool)
        inside[polygon(np.asarray(ring)[:, 1] - 0.5, np.asarray(ring)[:, 0] - 0.5, shape)] = True
        mask ^= inside
    return mask


def test_qupath_geojson_and_imagej_rois_read_back_as_the_instance_maps(images, checkpoints, tmp_path):
    import roifile
    paths = find_images(str(images))[:2]
    infer(paths, model_sets_from(checkpoints, ["Unet"], "all"), tmp_path / "out", Windows(tile_size=64))
    folder = tmp_path / "out" / "Unet"
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet")
    checked = 0
    for path in paths:
        for kind in ("cell", "nucleus"):
            instances = read_png(folder / "instances" / kind / f"{path.stem}.png")
            collection = json.loads((folder / "qupath" / kind / f"{path.stem}.geojson").read_text())
            assert collection["type"] == "FeatureCollection"
            assert len(collection["features"]) == instances.max()
            rois = roifile.roiread(folder / "imagej" / kind / f"{path.stem}_rois.zip")
            rois = rois if isinstance(rois, list) else [rois]
            assert len(rois) == instances.max()
            own = cells[(cells["sample_id"] == path.stem) & (cells["object_type"] == kind)].set_index("object_id")
            for feature, roi in zip(collection["features"], rois, strict=True):
                props = feature["properties"]
                geometry = feature["geometry"]
                polygons = [geometry["coordinates"]] if geometry["type"] == "Polygon" else geometry["coordinates"]
                filled = _even_odd([ring for polygon in polygons for ring in polygon], instances.shape)
                object_id = np.bincount(instances[filled]).argmax()  # the instance PNG's id of that object
                assert _dice(filled, instances == object_id) >= 0.98
                from_roi = _even_odd(roi.coordinates(multi=True), instances.shape)
                assert _dice(from_roi, instances == object_id) >= 0.98
                assert roi.name == props["name"] == f"{kind} {props['object_id']}"
                assert props["classification"]["name"] == kind
                assert props["measurements"][f"{kind}_area"] == filled.sum()
                if kind == "cell":  # measured with its compartments; nuclei are measured inside their cells
                    row = own.loc[props["object_id"]]
                    assert props["measurements"]["cell_area"] == row["cell_area"]
                    if np.isfinite(row["nc_ratio"]):  # GeoJSON holds no NaN: an unmeasurable value is left out
                        assert props["measurements"]["nc_ratio"] == pytest.approx(row["nc_ratio"])
                assert props["objectType"] == ("cell" if kind == "cell" else "detection")
                if "nucleusGeometry" in props:  # a cell's nucleus lies inside it
                    nucleus = props["nucleusGeometry"]
                    parts = [nucleus["coordinates"]] if nucleus["type"] == "Polygon" else nucleus["coordinates"]
                    assert not (_even_odd([r for p in parts for r in p], instances.shape) & ~filled).any()
                checked += 1
    assert checked > 10


def test_a_run_name_that_is_a_path_is_refused_before_anything_is_written(images, checkpoints, tmp_path, capsys,
                                                                          monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "config.yaml").write_text("results: results\ndataset: smears\ntrain: {architectures: [FPN]}\n")
    status = cli.main(["infer", "--name", "../../escaped", "--images", str(images / "scan16.tif"),
                       "--checkpoints", *map(str, checkpoints)])
    assert status != 0 and "--name '../../escaped' is not a name" in capsys.readouterr().err
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "results").exists()


def test_a_full_disk_is_one_line_naming_the_output_and_nothing_is_kept(images, checkpoints, tmp_path, capsys,
                                                                        monkeypatch):
    import errno

    from cellbench.inference import infer as infer_module

    def full(array, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))
    monkeypatch.setattr(infer_module, "write_png", full)
    out = tmp_path / "segmented"
    status = cli.main(["infer", "--images", str(images / "scan16.tif"), "--checkpoints", *map(str, checkpoints),
                       "--out", str(out), "--config-json", json.dumps({"infer": {"architectures": ["FPN"],
                                                                                 "tile_size": 64}})])
    error = capsys.readouterr().err
    assert status == 1 and f"cannot write {out}: No space left on device" in error and "disk is full" in error
    assert "Traceback" not in error and not out.exists() and not list(tmp_path.glob(".segmented*"))
