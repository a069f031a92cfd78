"""What tests import: a small config, the public data in ../shared/data, the reference
implementations (Cellpose, nnU-Net v2, LabelMe) that metrics and rasterisation are checked against,
LabelMe files and hostile images made to order. Fixtures live in conftest.py."""

from __future__ import annotations

import importlib
import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from cellbench import config as configuration  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# CELLBENCH_SHARED_DATA points elsewhere, e.g. at a missing folder to see what runs without the public data
SHARED_DATA = Path(os.environ.get("CELLBENCH_SHARED_DATA") or REPO.parent / "shared" / "data")


def shared(*parts: str) -> Path:
    """A path in ../shared/data, or skip the test when that public data is not here."""
    __tracebackhide__ = True  # skips are reported at the test's line
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"public dataset not available: {path} (only present in the development setup)")
    return path


REFERENCE_EXTRAS = {"cellpose": "test", "nnunetv2": "test", "labelme": "bench", "imgviz": "bench"}


def reference(module_name: str):
    """Import a reference implementation, or skip the test when its package is not installed; with
    CELLBENCH_REQUIRE_REFERENCES=1 (as in CI) a missing reference fails the test instead."""
    __tracebackhide__ = True
    try:
        return importlib.import_module(module_name)
    except ImportError as err:
        problem = err
    extra = REFERENCE_EXTRAS.get(module_name.split(".")[0], "test")
    message = f"reference {module_name} cannot be imported ({problem}; pip install -e '.[{extra}]')"
    if os.environ.get("CELLBENCH_REQUIRE_REFERENCES") == "1":
        pytest.fail(f"{message}; CELLBENCH_REQUIRE_REFERENCES=1 makes this a failure", pytrace=False)
    pytest.skip(message)


def make_config(annotations: Path, **sections) -> dict:
    """A complete config for a LabelMe folder, with section overrides."""
    base = {"dataset": "t", "data": {"annotations": str(annotations), "demo": False}}
    return configuration.complete(configuration.merge(base, sections))


def relabelled(demo_data: Path, folder: Path, lookup: list[int]) -> Path:
    """The ingested demo data with every class map relabelled (old class index -> ``lookup[index]``,
    e.g. [0, 1, 1] for classes [background, cell]) and the instance maps kept where a foreground
    class is left (the images are the demo's)."""
    import pandas as pd

    from cellbench.images import read_png, write_png
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    for sub in ("masks", "instances"):
        (folder / sub).mkdir(parents=True)
    (folder / "images").symlink_to(demo_data / "images", target_is_directory=True)
    table = np.arange(256, dtype=np.uint8)
    table[:len(lookup)] = lookup
    for row in manifest.itertuples():
        mask = table[read_png(demo_data / row.mask)]
        write_png(mask, folder / row.mask)
        instances = read_png(demo_data / row.instances)
        write_png(np.where((mask > 0) & (mask != 255), instances, 0).astype(np.uint16), folder / row.instances)
    manifest.to_parquet(folder / "manifest.parquet")
    return folder


# ---- LabelMe files for tests ----

def write_labelme(folder: Path, shapes, name="a", size=(20, 30), image=True, **fields):
    """A LabelMe file with a grey image beside it; extra fields override the JSON."""
    if image:
        Image.fromarray(np.full((*size, 3), 200, np.uint8)).save(folder / f"{name}.png")
    doc = {"version": "5.4.1", "flags": {}, "shapes": shapes, "imagePath": f"{name}.png",
           "imageData": None, "imageHeight": size[0], "imageWidth": size[1], **fields}
    path = folder / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path


def shape(label, points, shape_type="polygon", group_id=None):
    return {"label": label, "points": points, "group_id": group_id, "shape_type": shape_type, "flags": {}}


CELL = shape("cytoplasm", [[2, 2], [17, 2], [17, 17], [2, 17]], group_id=1)
NUCLEUS = shape("nucleus", [[6, 6], [11, 6], [11, 11], [6, 11]], group_id=1)


# ---- hostile images ----

def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int, complete: bool = False) -> bytes:
    """A 1-bit PNG whose header says ``width`` x ``height``. complete: every row is there (all
    black, a valid image that compresses about 1000:1), else a tiny zlib stream (a decompression
    bomb as attackers send it). Built without ever holding the pixels in memory."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    compressor = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    row = bytes(1 + (width + 7) // 8)  # filter byte 0, then the packed bits
    rows = height if complete else 1
    data = b"".join(compressor.compress(row * min(1024, rows - start)) for start in range(0, rows, 1024))
    data += compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", data)
            + _png_chunk(b"IEND", b""))


EPS = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 30 20\nnewpath 0 0 moveto 30 20 lineto stroke\nshowpage\n%%EOF\n"
