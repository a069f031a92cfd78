import numpy as np
import pandas as pd
import pytest
from helpers import shared
from PIL import Image

from cellbench.formats import rle


def test_one_indexed_column_major_by_hand():
    mask = rle.decode("2 3 7 1", 3, 3)  # pixels 2-4 and 7, counted down the columns
    assert mask.astype(int).tolist() == [[0, 1, 1], [1, 0, 0], [1, 0, 0]]
    assert rle.encode(mask) == "2 3 7 1"


def test_round_trip_random_masks():
    rng = np.random.default_rng(0)
    for shape in [(5, 7), (64, 33), (1, 1)]:
        mask = rng.random(shape) > 0.5
        assert np.array_equal(rle.decode(rle.encode(mask), *shape), mask)
    assert rle.encode(np.zeros((3, 3), bool)) == ""


@pytest.mark.parametrize("encoded, message", [("1 2 3", "odd number"), ("0 2", ">= 1"), ("8 5", "beyond"),
                                              ("1 x", "not a list of integers"), ("3 0", ">= 1"),
                                              ("99999999999999999999999 1", "not a list of integers"),
                                              ("2 9223372036854775807", "ends at pixel 9223372036854775808 beyond")])
def test_malformed_runs(encoded, message):
    with pytest.raises(ValueError, match=message):
        rle.decode(encoded, 3, 3)


def test_dsb_csv_decodes_to_exactly_the_mask_pngs():
    root = shared("dsb2018-stage1-test")
    table = pd.read_csv(root / "stage1_solution.csv")
    checked = 0
    for image_id, rows in table.groupby("ImageId", sort=False):
        files = sorted((root / "stage1_test" / image_id / "masks").glob("*.png"),
                       key=lambda p: int(p.stem.rsplit("_", 1)[1]))
        assert len(files) == len(rows)
        for path, row in zip(files, rows.itertuples(), strict=True):
            expected = np.asarray(Image.open(path)) > 0
            assert np.array_equal(rle.decode(row.EncodedPixels, row.Height, row.Width), expected), path.name
            checked += 1
    assert checked == 4152
