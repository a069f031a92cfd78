"""The report's error types, calibration, AP per stratum and cost on the page."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from cellbench.evaluation.calibration import reliability_bins
from cellbench.evaluation.object_metrics import image_scores
from cellbench.report.errors import error_table, plot_error_types
from cellbench.report.page import write_page
from cellbench.report.reliability import calibration_table, plot_reliability
from cellbench.report.strata import stratum_ap
from cellbench.report.tables import comparison_tables


def _objects() -> pd.DataFrame:
    truth = np.zeros((40, 40), np.int32)
    truth[2:10, 2:10], truth[2:10, 10:18], truth[20:30, 20:30] = 1, 2, 3
    merged = np.zeros_like(truth)
    merged[2:10, 2:18] = 1  # the two neighbours as one, the third missed
    rows = []
    for arch, prediction in (("Unet", truth), ("FPN", merged)):
        for sample in ("a", "b"):
            _, summary = image_scores(truth, prediction, hausdorff_distance=False)
            rows.append({"arch": arch, "object_type": "cell", "sample_id": sample, **summary})
    return pd.DataFrame(rows)


def test_error_types_are_counted_per_architecture_and_drawn(tmp_path):
    table = error_table(_objects()).set_index("arch")
    assert table.loc["Unet", "n_correct"] == 6 and table.loc["Unet", "n_merge"] == 0
    assert table.loc["FPN", "n_merge"] == 2 and table.loc["FPN", "n_missed"] == 2
    assert table.loc["FPN", "merge_per_image"] == 1.0 and table.loc["FPN", "images"] == 2
    plot_error_types(table.reset_index(), tmp_path / "errors.png")
    with Image.open(tmp_path / "errors.png") as picture:
        assert picture.size[0] > 300
    assert error_table(pd.DataFrame()).empty  # no object types scored
    plot_error_types(error_table(pd.DataFrame()), tmp_path / "none.png")  # a figure that says why
    assert (tmp_path / "none.png").stat().st_size > 0


def _bins() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    tables = []
    for arch, sharpen in (("Unet", 1.0), ("FPN", 4.0)):
        for fold in (0, 1):
            p = rng.uniform(0, 1, (60, 60))
            truth = (rng.uniform(0, 1, p.shape) < p).astype(np.uint8)
            claimed = p ** (1 / sharpen) / (p ** (1 / sharpen) + (1 - p) ** (1 / sharpen))  # FPN over-confident
            tables.append(reliability_bins(np.stack([1 - claimed, claimed]), truth, ["background", "cell"])
                          .assign(arch=arch, fold=fold))
    return pd.concat(tables, ignore_index=True)


def test_calibration_table_and_reliability_diagram(tmp_path):
    table = calibration_table(_bins()).set_index(["arch", "class"])
    assert table.loc[("Unet", "cell"), "ece"] < 0.05 < table.loc[("FPN", "cell"), "ece"]
    assert table.loc[("Unet", "cell"), "pixels"] == 2 * 3600
    assert np.isfinite(table.loc[("FPN", "top-label"), "ece_fold_sd"])
    plot_reliability(_bins(), tmp_path / "calibration.png")
    plot_reliability(pd.DataFrame(), tmp_path / "none.png")
    assert calibration_table(pd.DataFrame()).empty
    with Image.open(tmp_path / "calibration.png") as picture:
        assert picture.size[0] > 600


def test_ap_per_stratum_pools_counts_and_brackets_them():
    splits = pd.DataFrame({"sample_id": list("abcd"), "fold": [0, 0, 1, 1], "stratum": ["x", "x", "y", "y"]})
    instances = pd.DataFrame({"arch": "Unet", "object_type": "cell", "sample_id": list("abcd"), "threshold": 0.5,
                              "tp": [3, 1, 0, 2], "fp": [1, 0, 2, 0], "fn": [0, 1, 0, 0]})
    table = stratum_ap(pd.concat([instances, instances.assign(threshold=0.75, tp=0)]), splits, resamples=300)
    table = table.set_index("stratum")
    assert table.loc["x", "ap_50"] == pytest.approx(4 / 6) and table.loc["y", "ap_50"] == pytest.approx(2 / 4)
    assert table.loc["x", "ci_low"] <= 4 / 6 <= table.loc["x", "ci_high"] and table.loc["x", "n_true"] == 5
    assert stratum_ap(instances, splits.drop(columns="stratum")).empty


STATS_COLUMNS = ["kind", "metric", "target", "arch", "arch_b", "n", "estimate", "ci_low", "ci_high", "mean_difference",
                 "median_difference", "p_value", "p_holm"]


def test_the_tables_and_the_page_show_errors_calibration_and_cost(tmp_path):
    summary = pd.DataFrame({"arch": ["Unet", "FPN"], "encoder": "r", "selection": "last", "class": "foreground_mean",
                            "is_region": False, "cv_dice": [0.9, 0.8], "fold_sd_dice": 0.01, "cv_iou": 0.8,
                            "fold_mean_dice": 0.9, "n_images": 4})
    comparison_tables(summary, pd.DataFrame(), pd.DataFrame(columns=STATS_COLUMNS), tmp_path,
                      errors=error_table(_objects()), calibration=calibration_table(_bins()))
    text = (tmp_path / "model_comparison.md").read_text()
    assert "## Error types" in text and "## Calibration" in text
    Image.new("RGB", (20, 20)).save(tmp_path / "cost_accuracy.png")
    splits = pd.DataFrame({"sample_id": list("abcd"), "fold": [0, 0, 1, 1]})
    histories = pd.DataFrame({"arch": "Unet", "fold": [0, 1], "epoch": 3})
    cost = pd.DataFrame({"arch": ["Unet"], "parameters": [14_000_000], "train_minutes": [2.5]})
    write_page(tmp_path, ["cost_accuracy.png"], summary, splits, histories, tmp_path / "index.html", cost=cost)
    page = (tmp_path / "index.html").read_text()
    assert "<h2>Cost</h2>" in page and "14000000" in page and page.count("data:image/png;base64") == 1


def test_the_methods_paragraph_names_the_hardware_the_histories_recorded():
    from cellbench.report.page import methods_paragraph
    summary = pd.DataFrame({"arch": ["Unet"], "encoder": "r", "selection": "last", "class": "foreground_mean"})
    splits = pd.DataFrame({"sample_id": list("abcd"), "fold": [0, 0, 1, 1]})
    histories = pd.DataFrame({"arch": "Unet", "fold": [0, 1], "epoch": 3, "device": ["NVIDIA H200", "cpu"],
                              "torch": "2.14.1"})
    text = methods_paragraph(summary, splits, histories)
    assert "Training ran on NVIDIA H200, cpu with PyTorch 2.14.1." in text
    assert "Training ran" not in methods_paragraph(summary, splits, histories.drop(columns=["device", "torch"]))
