import pickle

import numpy as np
import pandas as pd

from cellbench.images import read_png
from cellbench.training import augment
from cellbench.training.variants import VariantStore


def test_store_round_trip(demo_data, tmp_path):
    table = augment.augment(demo_data, tmp_path / "aug", rotations=4, flip=True)
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    assert len(table) == 8 * len(manifest)
    store = VariantStore(tmp_path / "aug")
    rows = store.variants_of(["demo_03"])
    assert len(rows) == 8 and {store.sample_of(r) for r in rows} == {"demo_03"}
    image, mask = store.get(int(rows[0]))
    assert np.array_equal(image, read_png(demo_data / "images" / "demo_03.png"))
    assert np.array_equal(mask, read_png(demo_data / "masks" / "demo_03.png"))
    copy = pickle.loads(pickle.dumps(store))  # what a data-loader worker receives
    assert np.array_equal(copy.get(int(rows[5]))[1], store.get(int(rows[5]))[1])
