"""Agreement statistics against their textbook formulas, the pairing of matched cells, object counts
per image (images without objects included) and the per-type summaries."""

import numpy as np
import pandas as pd
import pytest

from cellbench.measure.by_type import by_type
from cellbench.measure.fidelity import COUNT, agreement_table, fidelity


def _lin_ccc(x, y):
    return 2 * np.cov(x, y, ddof=0)[0, 1] / (x.var() + y.var() + (x.mean() - y.mean()) ** 2)


def test_agreement_matches_bland_altman_and_lin_by_formula():
    rng = np.random.default_rng(0)
    y = rng.normal(100, 20, 60)
    x = 1.1 * y + rng.normal(3, 5, 60)
    groups = np.repeat(np.arange(20), 3)
    out = agreement_table(x[:, None], y[:, None], groups, 500, np.random.default_rng(1))
    d = x - y
    assert out["bias"][0] == pytest.approx(d.mean())
    assert out["sd"][0] == pytest.approx(d.std(ddof=1))
    assert out["ccc"][0] == pytest.approx(_lin_ccc(x, y))
    assert out["mad"][0] == pytest.approx(np.abs(d).mean())
    assert out["n_images"][0] == 20
    assert out["ccc_low"][0] < out["ccc"][0] < out["ccc_high"][0]
    assert out["bias_low"][0] < d.mean() < out["bias_high"][0]


def test_identical_measurements_agree_perfectly_and_nan_pairs_are_left_out():
    y = np.array([[1.0, 5.0], [2.0, np.nan], [4.0, 7.0], [8.0, 9.0]])
    out = agreement_table(y.copy(), y, np.arange(4), 200, np.random.default_rng(0))
    np.testing.assert_allclose(out["bias"], 0)
    np.testing.assert_allclose(out["ccc"], 1)
    assert out["n"].tolist() == [4, 3]


def _cells():
    """Two images; the reference has 2 + 1 cells, arch A finds all (area +10 each), B misses one."""
    rows = []
    ref = [("s1", 1, 100.0, 0.3), ("s1", 2, 200.0, 0.5), ("s2", 1, 300.0, 0.4)]
    for sample, oid, area, nc in ref:
        rows.append({"source": "reference", "sample_id": sample, "object_id": oid, "reference_id": pd.NA,
                     "cell_area": area, "nc_ratio": nc, "cell_type": "lymphocyte" if sample == "s1" else "monocyte"})
    for k, (sample, oid, area, nc) in enumerate(ref, start=1):
        rows.append({"source": "A", "sample_id": sample, "object_id": k, "reference_id": oid, "cell_area": area + 10,
                     "nc_ratio": nc, "cell_type": "lymphocyte" if sample == "s1" else "monocyte"})
    rows.append({"source": "B", "sample_id": "s1", "object_id": 1, "reference_id": 2, "cell_area": 190.0,
                 "nc_ratio": 0.5, "cell_type": "lymphocyte"})
    rows.append({"source": "B", "sample_id": "s1", "object_id": 2, "reference_id": pd.NA, "cell_area": 50.0,
                 "nc_ratio": 0.1, "cell_type": "lymphocyte"})
    cells = pd.DataFrame(rows).assign(dataset="d", fold=0, object_type="cell", match_iou=np.nan,
                                      centroid_row=0.0, centroid_column=0.0)
    cells["reference_id"] = cells["reference_id"].astype("Int64")
    cells["cell_type"] = cells["cell_type"].astype("string")
    return cells


def test_fidelity_pairs_matched_cells_counts_every_image_and_ranks_by_ccc():
    table = fidelity(_cells(), resamples=200, seed=0, sample_ids=["s1", "s2", "s3"]).set_index(["source", "feature"])
    assert table.loc[("A", "cell_area"), "bias"] == pytest.approx(10)
    assert table.loc[("A", "cell_area"), "n_pairs"] == 3
    assert table.loc[("B", "cell_area"), "n_pairs"] == 1  # the unmatched cell is not paired
    assert table.loc[("B", "cell_area"), "bias"] == pytest.approx(-10)
    assert table.loc[("A", "nc_ratio"), "ccc"] == pytest.approx(1)
    assert table.loc[("A", "nc_ratio"), "rank"] == 1
    # counts per image over s1, s2 and s3 (no object anywhere): A 2,1,0 vs 2,1,0; B 2,0,0
    assert table.loc[("A", COUNT), "bias"] == 0 and table.loc[("A", COUNT), "n_pairs"] == 3
    assert table.loc[("B", COUNT), "bias"] == pytest.approx(-1 / 3)


def test_by_type_gives_percentiles_mean_and_sd_per_cell_type_and_overall():
    table = by_type(_cells()).set_index(["source", "subset", "cell_type", "feature"])
    overall = table.loc[("reference", "all", "all", "cell_area")]
    assert overall["n"] == 3 and overall["mean"] == pytest.approx(200)
    assert overall["sd"] == pytest.approx(100)
    assert overall["p50"] == pytest.approx(200) and overall["p2"] == pytest.approx(np.percentile([100, 200, 300], 2))
    lymphocytes = table.loc[("reference", "all", "lymphocyte", "cell_area")]
    assert lymphocytes["n"] == 2 and lymphocytes["mean"] == pytest.approx(150)
    assert ("B", "all", "monocyte", "cell_area") not in table.index
    # B's false detection (area 50) counts among all its objects, not among the matched ones
    assert table.loc[("B", "all", "all", "cell_area"), "mean"] == pytest.approx(120)
    assert table.loc[("B", "matched", "all", "cell_area"), "mean"] == pytest.approx(190)
    assert ("reference", "matched", "all", "cell_area") not in table.index


def test_an_architecture_that_found_nothing_is_compared_by_its_counts():
    table = fidelity(_cells(), resamples=100, seed=0, sample_ids=["s1", "s2"], sources=["A", "Empty"])
    empty = table[table["source"] == "Empty"].set_index("feature")
    assert list(empty.index) == [COUNT]
    assert empty.loc[COUNT, "bias"] == pytest.approx(-1.5) and empty.loc[COUNT, "n_pairs"] == 2
