import numpy as np
import pandas as pd
import pytest
from scipy.stats import wilcoxon

from cellbench.evaluation import stats


def test_holm_by_hand():
    assert stats.holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    adjusted = stats.holm(np.array([0.5, np.nan, 0.001]))
    assert adjusted[0] == pytest.approx(0.5) and np.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.002)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean():
    values = np.random.default_rng(0).normal(0.8, 0.05, 60)
    a = stats.bootstrap_interval(values, 1000, np.random.default_rng(1))
    b = stats.bootstrap_interval(values, 1000, np.random.default_rng(1))
    assert a == b and a[0] < values.mean() < a[1] and a[1] - a[0] < 0.05
    assert np.isnan(stats.bootstrap_interval(np.array([np.nan]), 100, np.random.default_rng(0))[0])


def values_table():
    rng = np.random.default_rng(3)
    base = rng.uniform(0.6, 0.9, 30)
    rows = []
    for arch, shift in (("A", 0.05), ("B", 0.0), ("C", 0.0)):
        for i, v in enumerate(base):
            value = v + shift + (rng.normal(0, 0.01) if arch != "C" else 0.0)
            rows.append({"arch": arch, "metric": "dice", "target": "nucleus", "sample_id": f"s{i}", "value": value})
    table = pd.DataFrame(rows)
    table.loc[(table["arch"] == "B") & (table["sample_id"] == "s0"), "value"] = np.nan  # nothing to score
    return table


def test_paired_comparison_matches_scipy_and_holm_over_pairs():
    table = values_table()
    result = stats.compare(table, resamples=500, seed=0)
    paired = result[result["kind"] == "paired"].set_index(["arch", "arch_b"])
    assert list(paired.index) == [("A", "B"), ("A", "C"), ("B", "C")]
    a = table[table["arch"] == "A"].set_index("sample_id")["value"]
    b = table[table["arch"] == "B"].set_index("sample_id")["value"]
    keep = b.notna()
    expected = wilcoxon(a[keep] - b[keep])
    assert paired.loc[("A", "B"), "n"] == 29  # the NaN image is left out of this pair only
    assert paired.loc[("A", "B"), "p_value"] == pytest.approx(expected.pvalue)
    assert paired.loc[("A", "B"), "median_difference"] == pytest.approx(np.median(a[keep] - b[keep]))
    assert paired.loc[("A", "C"), "n"] == 30
    assert (paired["p_holm"] >= paired["p_value"]).all()
    assert paired.loc[("A", "B"), "p_holm"] < 0.001 and paired.loc[("A", "B"), "mean_difference"] > 0.04


def test_intervals_one_per_architecture():
    result = stats.compare(values_table(), resamples=500, seed=0)
    intervals = result[result["kind"] == "interval"].set_index("arch")
    assert list(intervals.index) == ["A", "B", "C"] and intervals.loc["B", "n"] == 29
    assert (intervals["ci_low"] < intervals["estimate"]).all() and (intervals["estimate"] < intervals["ci_high"]).all()


def test_identical_architectures_are_not_different():
    table = values_table()
    same = pd.concat([table[table["arch"] == "C"], table[table["arch"] == "C"].assign(arch="D")])
    paired = stats.compare(same, resamples=100)
    assert paired.loc[paired["kind"] == "paired", "p_value"].tolist() == [1.0]


def test_per_image_values_include_the_foreground_mean_and_instances():
    metrics = pd.DataFrame({"arch": "A", "sample_id": ["s", "s", "s"], "class": ["cytoplasm", "nucleus", "cell"],
                            "is_region": [False, False, True], "dice": [0.6, 0.8, 0.9]})
    instances = pd.DataFrame({"arch": "A", "sample_id": "s", "object_type": "cell", "threshold": [0.5, 0.75],
                              "ap": [0.7, 0.4]})
    objects = pd.DataFrame({"arch": ["A"], "sample_id": ["s"], "object_type": ["cell"], "aji": [0.65]})
    values = stats.per_image_values(metrics, instances, objects).set_index(["metric", "target"])["value"]
    assert values[("dice", "foreground_mean")] == pytest.approx(0.7)
    assert values[("ap_50", "cell")] == 0.7 and values[("aji", "cell")] == 0.65
