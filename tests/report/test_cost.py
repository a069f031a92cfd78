"""Cost against accuracy: multiply-adds, benchmark files, the Pareto front."""

import numpy as np
import pandas as pd
import pytest
import torch

from cellbench.errors import InputError
from cellbench.report.cost import cost_table, fold_costs, multiply_adds, read_benchmark
from cellbench.report.figures import pareto_front


def test_multiply_adds_count_a_known_convolution():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1, bias=False), torch.nn.Conv2d(4, 2, 3, padding=1, bias=False))
    assert multiply_adds(net, {"family": "smp"}, 8) == 8 * 8 * (3 * 4 + 4 * 2 * 9)


def test_benchmark_files_are_read_and_a_bad_one_is_named(tmp_path):
    good = tmp_path / "fold0.tsv"
    good.write_text("s\th:m:s\tmax_rss\n90.0\t0:01:30\t2048\n")
    assert read_benchmark(good) == {"seconds": 90.0, "peak_rss_gb": 2.0}
    bad = tmp_path / "fold1.tsv"
    bad.write_text("not a benchmark")
    with pytest.raises(InputError, match="fold1.tsv"):
        read_benchmark(bad)


def test_fold_costs_and_the_table_rank_by_accuracy(tmp_path):
    files = {}
    for arch, seconds in (("Unet", (60, 120)), ("FPN", (30, 30))):
        for fold, s in enumerate(seconds):
            files[(arch, fold)] = tmp_path / f"{arch}{fold}.tsv"
            files[(arch, fold)].write_text(f"s\tmax_rss\n{s}\t1024\n")
    splits = pd.DataFrame({"sample_id": list("abcde"), "fold": [0, 0, 0, 1, 1]})
    folds = fold_costs(files, files, splits)
    unet = folds[folds["arch"] == "Unet"].set_index("fold")
    assert unet.loc[0, "predict_images_per_second"] == pytest.approx(3 / 60)
    models = pd.DataFrame({"arch": ["Unet", "FPN"], "encoder": "r", "parameters": [10, 20]})
    summary = pd.DataFrame({"arch": ["Unet", "FPN"], "class": "foreground_mean", "cv_dice": [0.9, 0.8],
                            "fold_sd_dice": 0.01})
    table = cost_table(models, folds, summary)
    assert table["arch"].tolist() == ["Unet", "FPN"]
    assert table.set_index("arch").loc["Unet", "train_minutes"] == pytest.approx(1.5)
    assert table.set_index("arch").loc["FPN", "train_minutes_sd"] == 0


def test_the_pareto_front_keeps_what_nothing_beats_on_both():
    cost = pd.Series({"a": 1.0, "b": 2.0, "c": 3.0, "d": 4.0})
    score = pd.Series({"a": 0.5, "b": 0.4, "c": 0.9, "d": 0.8})
    assert list(pareto_front(cost, score)) == ["a", "c"]  # b is dearer and worse than a; d than c
    speed = pd.Series({"a": 10.0, "b": 1.0})
    assert list(pareto_front(speed, pd.Series({"a": 0.5, "b": 0.9}), cheaper_is_lower=False)) == ["a", "b"]
    assert np.isfinite(score).all()
