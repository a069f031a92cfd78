"""Whole slides: read lazily from OME-TIFF, tiled TIFF and OME-Zarr, segmented block by block into
OME-Zarr or tiled TIFF, with the objects that cross block borders equal to a whole-image run's."""

import json

import numpy as np
import pandas as pd
import pytest
import tifffile
import torch
import zarr
from PIL import Image

from cellbench.errors import InputError
from cellbench.images import ImageReadError
from cellbench.inference.ensemble import FoldModel, Windows
from cellbench.inference.infer import ModelSet, infer
from cellbench.inference.segment import segment
from cellbench.inference.slide import SlideOptions
from cellbench.inference.slide_io import is_slide, open_slide

CLASSES = ["background", "cytoplasm", "nucleus"]
TYPES = {"cell": {"classes": [1, 2], "seeds": [2], "min_size": 0, "fill_holes": False},
         "nucleus": {"classes": [2], "seeds": [], "min_size": 0, "fill_holes": False}}


@pytest.fixture(scope="module")
def mosaic(demo_raw) -> np.ndarray:
    """Real cell shapes, 3 x 4 demo images side by side (384 x 512)."""
    tiles = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(demo_raw.glob("*.png"))[:12]]
    return np.concatenate([np.concatenate(tiles[r * 4:(r + 1) * 4], axis=1) for r in range(3)], axis=0)


class StainModel(torch.nn.Module):
    """The demo's stains told apart by their smoothed green value (background > 200, nucleus < 120):
    a real model's behaviour on real shapes, with a receptive field, and cheap on a CPU."""

    def __init__(self):
        super().__init__()
        self.smooth = torch.nn.Conv2d(3, 1, 5, padding=2, bias=False)
        self.classify = torch.nn.Conv2d(1, 3, 1)
        with torch.no_grad():
            self.smooth.weight.zero_()
            self.smooth.weight[0, 1] = 1 / 25
            self.classify.weight[:, 0, 0, 0] = torch.tensor([40.0, 0.0, -40.0])
            self.classify.bias[:] = torch.tensor([-40 * 200 / 255, 0.0, 40 * 120 / 255])

    def forward(self, x):
        return self.classify(self.smooth(x))


class BorderStainModel(StainModel):
    """The same, with a touching-border output that marks the darkest nucleus pixels."""

    def forward(self, x):
        logits = super().forward(x)
        return torch.cat([logits, logits[:, 2:3] - 2.0], dim=1)


def stain_models(border: bool = False) -> list[FoldModel]:
    net = BorderStainModel() if border else StainModel()
    return [FoldModel(net.eval(), {"classes": CLASSES, "mean": [0.0] * 3, "std": [1.0] * 3, "size_divisor": 32,
                                   "fold": 0, "arch": "Stain", "target": "boundary" if border else "classes"})]


def write_pyramid(path, image):
    """A tiled, zlib-compressed pyramidal OME-TIFF, written tile by tile."""
    with tifffile.TiffWriter(path, bigtiff=True, ome=True) as tiff:
        tiff.write(image, tile=(128, 128), compression="zlib", photometric="rgb", subifds=1)
        tiff.write(image[::2, ::2], tile=(128, 128), compression="zlib", photometric="rgb", subfiletype=1)


def write_ome_zarr(path, image):
    """OME-Zarr 0.4 with axes c, y, x, chunked."""
    group = zarr.open_group(str(path), mode="w", zarr_format=2)
    group.attrs["multiscales"] = [{"version": "0.4", "axes": [{"name": "c", "type": "channel"},
                                                              {"name": "y", "type": "space"},
                                                              {"name": "x", "type": "space"}],
                                   "datasets": [{"path": "0"}]}]
    array = group.create_array("0", shape=(3, *image.shape[:2]), chunks=(3, 200, 200), dtype=np.uint8)
    array[:] = image.transpose(2, 0, 1)


def test_regions_read_from_every_kind_of_slide_equal_the_image(mosaic, tmp_path):
    write_pyramid(tmp_path / "pyramid.ome.tif", mosaic)
    tifffile.imwrite(tmp_path / "plain.tif", mosaic, photometric="rgb")  # uncompressed: memory-mapped
    grey = (mosaic[..., 1].astype(np.uint16) * 257)
    tifffile.imwrite(tmp_path / "grey16.tif", grey, tile=(256, 256), compression="zlib")
    write_ome_zarr(tmp_path / "slide.ome.zarr", mosaic)
    region = (100, 600, 250, 1000)
    for name in ("pyramid.ome.tif", "plain.tif", "slide.ome.zarr"):
        with open_slide(tmp_path / name) as slide:
            assert slide.shape == mosaic.shape[:2]
            assert np.array_equal(slide.read(*region), mosaic[100:600, 250:1000])
    with open_slide(tmp_path / "grey16.tif") as slide:
        assert np.array_equal(slide.read(*region)[..., 0], mosaic[100:600, 250:1000, 1])
    assert is_slide(tmp_path / "pyramid.ome.tif", None) and is_slide(tmp_path / "slide.ome.zarr", None)
    assert not is_slide(tmp_path / "plain.tif", None) and is_slide(tmp_path / "plain.tif", 1000)
    assert is_slide(tmp_path / "plain.tif", None, every_tiff=True)


def test_absent_tiles_are_read_as_black_with_a_warning_naming_the_slide(mosaic, tmp_path, caplog):
    tifffile.imwrite(tmp_path / "whole.tif", mosaic, tile=(256, 256), photometric="rgb")
    with open_slide(tmp_path / "whole.tif"):
        pass
    assert not caplog.records  # every tile stored: nothing to say
    tifffile.imwrite(tmp_path / "sparse.tif", mosaic, tile=(256, 256), photometric="rgb")
    with tifffile.TiffFile(tmp_path / "sparse.tif", mode="r+b") as tiff:  # a writer that skipped tile 1
        counts = tiff.pages[0].tags["TileByteCounts"]
        counts.overwrite([0 if i == 1 else n for i, n in enumerate(counts.value)])
    with open_slide(tmp_path / "sparse.tif") as slide:
        assert not slide.read(0, 256, 256, 512).any() and np.array_equal(slide.read(0, 256, 0, 256),
                                                                          mosaic[:256, :256])
    (record,) = caplog.records
    assert record.levelname == "WARNING" and str(tmp_path / "sparse.tif") in record.getMessage()
    assert f"1 of {len(counts.value)} stored tiles" in record.getMessage()


def test_unreadable_slides_are_named(mosaic, tmp_path):
    (tmp_path / "bare.zarr").mkdir()
    zarr.open_group(str(tmp_path / "bare.zarr"), mode="w", zarr_format=2)
    tifffile.imwrite(tmp_path / "float.tif", mosaic[..., 0].astype(np.float32))
    tifffile.imwrite(tmp_path / "five.tif", np.zeros((5, 64, 64), np.uint8), photometric="minisblack",
                     metadata={"axes": "CYX"})
    write_pyramid(tmp_path / "cut.ome.tif", mosaic)
    data = (tmp_path / "cut.ome.tif").read_bytes()
    (tmp_path / "cut.ome.tif").write_bytes(data[: len(data) // 3])
    (tmp_path / "text.tif").write_text("not a TIFF")
    bomb = zarr.open_group(str(tmp_path / "bomb.zarr"), mode="w", zarr_format=2)
    bomb.attrs["multiscales"] = [{"axes": ["y", "x"], "datasets": [{"path": "0"}]}]
    bomb.create_array("0", shape=(10**6, 10**6), chunks=(256, 256), dtype=np.uint8)  # a few bytes on disk
    write_ome_zarr(tmp_path / "short.zarr", mosaic)
    short = zarr.open_group(str(tmp_path / "short.zarr"), mode="a", zarr_format=2)
    short.attrs["multiscales"] = [{"axes": ["y", "x"], "datasets": [{"path": "0"}]}]  # for a c, y, x array
    for name, words in (("bare.zarr", "multiscales"), ("float.tif", "float32"), ("five.tif", "5 channels"),
                        ("text.tif", "cannot be read"), ("bomb.zarr", "which no scan has"),
                        ("short.zarr", "declares 2 axes")):
        with pytest.raises(ImageReadError, match=words) as error:
            open_slide(tmp_path / name)
        assert str(tmp_path / name) in str(error.value)
    with pytest.raises(ImageReadError) as error:  # the header is fine; the tiles are gone
        with open_slide(tmp_path / "cut.ome.tif") as slide:
            slide.read(0, 384, 0, 512)
    assert "cut.ome.tif" in str(error.value)


def _objects(instances: np.ndarray) -> dict[tuple, int]:
    """Each object's pixel set (its flat indices, in order) -> its id."""
    flat = instances.ravel()
    order = np.argsort(flat, kind="stable")  # stable: each object's indices stay sorted
    starts = np.flatnonzero(np.diff(flat[order])) + 1
    return {tuple(chunk): int(flat[chunk[0]]) for chunk in np.split(order, starts) if flat[chunk[0]] > 0}


def test_objects_crossing_block_borders_equal_a_whole_image_run(mosaic, tmp_path):
    models = stain_models()
    windows = Windows(tile_size=64, overlap=0.25, block_size=4096)
    whole = segment(mosaic, models, windows, TYPES)
    write_pyramid(tmp_path / "slide.ome.tif", mosaic)
    store = tmp_path / "store.ome.zarr"
    from cellbench.inference.slide import SlideOutputs, segment_slide
    from cellbench.inference.slide_labels import LabelStore
    blocked = Windows(tile_size=64, overlap=0.25, block_size=96)
    with open_slide(tmp_path / "slide.ome.tif") as slide:
        labels = LabelStore(store, slide.shape, list(TYPES), CLASSES, "slide.ome.tif")
        outputs = SlideOutputs(labels, {t: tmp_path / f"{t}.geojson" for t in TYPES},
                               {t: tmp_path / f"{t}.zip" for t in TYPES})
        summary, cells = segment_slide(slide, models, blocked, TYPES, outputs, 96,
                                       {"dataset": "d", "arch": "Stain", "sample_id": "slide", "bin_width": 25})
    assert summary.blocks == 4 * 6 and summary.objects_at_margin == 0
    assert summary.contested_pixels < 10  # only where objects at the slide's edge differ (see below)
    assert np.array_equal(labels.maps["class_map"][:], whole.class_map)  # exactly the whole image's
    height, width = mosaic.shape[:2]
    crossing = 0
    for kind in TYPES:
        pieces = labels.maps[kind][:]
        assert summary.objects[kind] == len(np.unique(pieces)) - 1 == pieces.max()
        mine = _objects(pieces)
        for pixels, object_id in _objects(whole.instances[kind]).items():
            rows, columns = np.unravel_index(np.asarray(pixels), (height, width))
            if rows.min() == 0 or columns.min() == 0 or rows.max() == height - 1 or columns.max() == width - 1:
                continue  # at the slide's edge
            assert pixels in mine, f"{kind} {object_id} differs from the whole-image run"
            crossing += len(set(rows // 96)) > 1 or len(set(columns // 96)) > 1
        features = json.loads(outputs.geojson[kind].read_text())["features"]
        assert len(features) == summary.objects[kind]
    assert crossing >= 20  # the test means something: many objects cross block borders
    assert set(cells["object_type"]) == {"cell"} and len(cells) == summary.objects["cell"]
    assert cells["object_id"].is_unique and cells["centroid_row"].max() > 256


@pytest.mark.parametrize("form, border", [("ome-zarr", False), ("tiff", False), ("ome-zarr", True)])
def test_infer_writes_slides_as_ome_zarr_or_tiled_tiff(mosaic, tmp_path, monkeypatch, form, border):
    from cellbench.inference import infer as infer_module
    (tmp_path / "in").mkdir()
    write_pyramid(tmp_path / "in" / "slide.ome.tif", mosaic)
    Image.fromarray(mosaic[:200, :300]).save(tmp_path / "in" / "small.png")
    monkeypatch.setattr(infer_module, "load_models", lambda checkpoints, device: stain_models(border))
    table = infer(sorted((tmp_path / "in").iterdir()), [ModelSet("Stain", ("model.pt",))], tmp_path / "out",
                  Windows(tile_size=64, block_size=128), {"cell": {"classes": ["cytoplasm", "nucleus"],
                                                                  "seeds": ["nucleus"]}},
                  slides=SlideOptions(format=form, object_margin=96))
    out = tmp_path / "out" / "Stain"
    assert list(table["name"]) == ["slide", "small"] and list(table["height"]) == [384, 200]
    if form == "ome-zarr":
        root = zarr.open_group(str(out / "slides" / "slide.ome.zarr"), mode="r")
        assert root["labels"].attrs["labels"] == ["class_map", "cell"]
        assert sorted(p.name for p in (out / "slides" / "slide.ome.zarr").iterdir()) == [".zattrs", ".zgroup", "labels"]
        assert root["labels/cell"].attrs["multiscales"][0]["datasets"][0]["path"] == "0"
        cells_map = root["labels/cell/0"][:]
    else:
        cells_map = tifffile.imread(out / "instances" / "cell" / "slide.tif")
        assert tifffile.TiffFile(out / "class_maps" / "slide.tif").pages[0].is_tiled
        assert not (out / "slides").exists() and not (tmp_path / "out" / ".scratch").exists()
    assert cells_map.shape == (384, 512) and cells_map.max() == table["n_cell"].iloc[0] > 10
    assert (out / "qupath" / "cell" / "slide.geojson").is_file()
    assert (out / "imagej" / "cell" / "slide_rois.zip").is_file()
    assert (out / "class_maps" / "small.png").is_file() and not (out / "overlays" / "slide.png").exists()
    cells = pd.read_parquet(tmp_path / "out" / "cells.parquet")
    assert (cells["sample_id"] == "slide").sum() == table["n_cell"].iloc[0]
    record = json.loads((tmp_path / "out" / "inference.json").read_text())
    assert record["slides"]["Stain"]["slide"]["blocks"] == 12


def test_a_damaged_tile_met_in_the_middle_of_a_run_is_one_named_problem(mosaic, tmp_path, monkeypatch, capsys):
    from cellbench import cli
    from cellbench.inference import infer as infer_module
    write_pyramid(tmp_path / "cut.ome.tif", mosaic)
    data = bytearray((tmp_path / "cut.ome.tif").read_bytes())
    data[len(data) // 3: len(data) // 3 + 4000] = bytes(4000)  # the header and tile table intact, a tile broken
    (tmp_path / "cut.ome.tif").write_bytes(bytes(data))
    monkeypatch.setattr(infer_module, "load_models", lambda checkpoints, device: stain_models())
    monkeypatch.setattr(infer_module, "model_sets_from", lambda *a, **k: [ModelSet("Stain", ("model.pt",))])
    (tmp_path / "model.pt").write_bytes(b"the stain model stands in")
    status = cli.main(["infer", "--images", str(tmp_path / "cut.ome.tif"), "--checkpoints", str(tmp_path / "model.pt"),
                       "--out",
                       str(tmp_path / "out"), "--config-json", json.dumps({"infer": {
                           "architectures": ["Stain"], "tile_size": 64, "block_size": 256}})])
    error = capsys.readouterr().err
    assert status == 1 and f"{tmp_path / 'cut.ome.tif'}: cannot be read at rows" in error and "Traceback" not in error
    assert not (tmp_path / "out").exists()


def test_a_damaged_slide_is_named_before_any_work(mosaic, tmp_path):
    (tmp_path / "bad.zarr").mkdir()
    zarr.open_group(str(tmp_path / "bad.zarr"), mode="w", zarr_format=2)
    with pytest.raises(InputError, match="multiscales") as error:
        infer([tmp_path / "bad.zarr"], [ModelSet("Stain", ("model.pt",))], tmp_path / "out", Windows())
    assert "bad.zarr" in str(error.value) and not (tmp_path / "out").exists()
