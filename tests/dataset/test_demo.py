import hashlib
import json

import numpy as np
import pandas as pd

from cellbench.dataset import demo
from cellbench.images import read_png


def digest(folder):
    """The content of the data files (the output marker records times, which differ run to run)."""
    files = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    return hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in files)).hexdigest()


def test_deterministic(tmp_path, demo_raw):
    demo.generate(tmp_path / "again")
    assert digest(tmp_path / "again") == digest(demo_raw)


def test_what_the_demo_promises(demo_raw, demo_data):
    docs = [json.loads(p.read_text()) for p in sorted(demo_raw.glob("*.json"))]
    assert len(docs) == 24
    assert all(d["version"].startswith("5.") and d["imagePath"] == f"demo_{i:02d}.png" for i, d in enumerate(docs))
    assert sum(not d["shapes"] for d in docs) == 2
    types = {s["shape_type"] for d in docs for s in d["shapes"]}
    assert {"polygon", "circle", "rectangle"} <= types
    assert any(d["shapes"] and d["shapes"][0]["label"] == "nucleus" for d in docs)
    for d in docs:  # every nucleus shares its group_id with a cytoplasm shape
        groups = {s["group_id"] for s in d["shapes"] if s["label"] == "cytoplasm"}
        assert {s["group_id"] for s in d["shapes"] if s["label"] == "nucleus"} <= groups
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    image = read_png(demo_data / "images" / "demo_00.png").reshape(-1, 3).astype(int)
    mask = read_png(demo_data / "masks" / "demo_00.png").ravel()
    assert image[mask == 0].mean() > image[mask == 2].mean() + 60  # pale background, dark nuclei
    touching_border = sum(read_png(demo_data / m)[[0, -1]].any() for m in manifest["mask"])
    assert touching_border >= 5
    types = pd.read_csv(demo_raw / "cell_types.csv")
    assert len(types) == 24 and set(types["cell_type"]) == {"empty", "mononuclear", "polylobed"}
    assert np.unique([d["shapes"][0]["group_id"] for d in docs if d["shapes"]]).size >= 1
