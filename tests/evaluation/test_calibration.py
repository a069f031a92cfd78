import numpy as np
import pandas as pd
import pytest

from cellbench.evaluation.calibration import BINS, TOP_LABEL, expected_calibration_error, reliability_bins


def _probabilities(p_fg: np.ndarray) -> np.ndarray:
    return np.stack([1 - p_fg, p_fg]).astype(np.float16)


def test_calibrated_probabilities_have_no_error_and_overconfident_ones_do():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, (400, 400))
    truth = (rng.uniform(0, 1, p.shape) < p).astype(np.uint8)  # the class is true with probability p
    bins = reliability_bins(_probabilities(p), truth, ["background", "cell"])
    assert set(bins["class"]) == {"background", "cell", TOP_LABEL} and len(bins) == 5 * BINS
    rest = bins[bins["scope"] == "one_vs_rest"]
    assert len(rest) == 3 * BINS and rest.groupby("class")["n"].sum().eq(p.size).all()
    ece = expected_calibration_error(bins.assign(arch="a"), ["arch"]).set_index("class")["ece"]
    assert ece["cell"] < 0.01
    confident = np.where(p > 0.5, 0.99, 0.01)  # same argmax, claims certainty it does not have
    bad = expected_calibration_error(reliability_bins(_probabilities(confident), truth, ["background", "cell"])
                                     .assign(arch="a"), ["arch"]).set_index("class")["ece"]
    assert bad["cell"] > 0.2 and bad[TOP_LABEL] > 0.2


def test_ece_by_hand_and_ignored_pixels_left_out():
    p = np.array([[0.9, 0.9, 0.9, 0.9, 0.1]])
    truth = np.array([[1, 1, 0, 0, 255]], np.uint8)
    bins = reliability_bins(_probabilities(p), truth, ["background", "cell"])
    cell = bins[(bins["class"] == "cell") & (bins["scope"] == "one_vs_rest")]
    assert cell["n"].sum() == 4 and cell.loc[cell["n"] > 0, "bin"].tolist() == [13]
    ece = expected_calibration_error(bins.assign(arch="a"), ["arch"]).set_index("class")
    assert ece.loc["cell", "ece"] == pytest.approx(0.4, abs=1e-3)  # said .9, right .5 of the time
    assert ece.loc["cell", "pixels"] == 4


def test_a_border_channel_is_dropped_and_the_rest_renormalised():
    p = np.zeros((3, 1, 2), np.float32)
    p[:, 0, 0] = (0.2, 0.2, 0.6)  # the border channel is the most likely
    p[:, 0, 1] = (0.5, 0.5, 0.0)
    bins = reliability_bins(p, np.array([[1, 0]], np.uint8), ["background", "cell"])
    cell = bins[(bins["class"] == "cell") & (bins["scope"] == "one_vs_rest") & (bins["n"] > 0)]
    assert cell["sum_confidence"].sum() == pytest.approx(1.0)


def test_bins_add_up_over_images_before_the_error_is_computed():
    rng = np.random.default_rng(1)
    tables = []
    for image in range(2):
        p = np.full((10, 10), 0.8 if image else 0.2)
        truth = (rng.uniform(0, 1, p.shape) < 0.5).astype(np.uint8)
        tables.append(reliability_bins(_probabilities(p), truth, ["background", "cell"]).assign(arch="a", image=image))
    both = pd.concat(tables)
    pooled = expected_calibration_error(both, ["arch"]).set_index("class").loc["cell", "pixels"]
    assert pooled == 200


def test_ece_weights_each_bin_by_its_pixels_where_bins_differ_in_size():
    """One pixel says 0.9375 and is wrong; 99 say 0.0625 and 6 of them are the class. Count-weighted:
    (|0 - 0.9375| + |6 - 99 x 0.0625|) / 100 = 0.01125. The mean over the two bins' gaps would be
    (0.9375 + 0.1875 / 99) / 2 = 0.4697: a bin-mean ECE fails this test."""
    p = np.full((1, 100), 0.0625)
    p[0, 0] = 0.9375  # both exact in float16
    truth = np.zeros((1, 100), np.uint8)
    truth[0, 1:7] = 1
    bins = reliability_bins(_probabilities(p), truth, ["background", "cell"]).assign(arch="a")
    cell = bins[(bins["class"] == "cell") & (bins["scope"] == "one_vs_rest") & (bins["n"] > 0)]
    assert cell["n"].tolist() == [99, 1]
    ece = expected_calibration_error(bins, ["arch"]).set_index("class")
    assert ece.loc["cell", "ece"] == pytest.approx(0.01125, abs=1e-12)
    assert ece.loc["cell", "pixels"] == 100
    # class-conditional: only the 7 pixels where cell is predicted (the first) or true (the six)
    conditional = expected_calibration_error(bins, ["arch"], "predicted_or_true").set_index("class")
    assert conditional.loc["cell", "pixels"] == 7
    assert conditional.loc["cell", "ece"] == pytest.approx((0.9375 + abs(6 - 6 * 0.0625)) / 7, abs=1e-12)


def test_bins_written_before_the_scope_column_are_one_against_the_rest():
    p = np.array([[0.9, 0.9, 0.9, 0.9, 0.1]])
    truth = np.array([[1, 1, 0, 0, 0]], np.uint8)
    bins = reliability_bins(_probabilities(p), truth, ["background", "cell"]).assign(arch="a")
    old = bins[bins["scope"] == "one_vs_rest"].drop(columns="scope")
    assert expected_calibration_error(old, ["arch"]).equals(expected_calibration_error(bins, ["arch"]))
