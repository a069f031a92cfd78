"""report/index.html opened in headless Chromium: every figure loads, nothing errs, tables sort."""

import os
import shutil

import numpy as np
import pandas as pd
from browser import browser_page
from helpers import make_config

from cellbench.dataset.split import make_splits
from cellbench.evaluation import stats
from cellbench.evaluation.aggregate import summarise, summarise_instances
from cellbench.evaluation.calibration import reliability_bins
from cellbench.evaluation.evaluate import evaluate_predictions
from cellbench.evaluation.scope import resolve
from cellbench.images import read_png, write_png
from cellbench.inference.outputs import PREDICTION_INFO
from cellbench.report import FIGURES
from cellbench.report.make import make_report


def _report(demo_data, demo_raw, root):
    """A two-architecture, two-fold report of shifted expert masks, scored for real."""
    config = make_config(demo_raw, split={"folds": 2, "stratify_column": None}, evaluate={"bootstrap_resamples": 100})
    manifest = pd.read_parquet(demo_data / "manifest.parquet").head(8)
    splits = make_splits(manifest, config["split"]).assign(stratum=lambda t: np.where(t.index % 2, "x", "y"))
    tables, folders, bins, histories = {"semantic": [], "instances": [], "objects": []}, {}, [], []
    for arch, shift in (("Unet", 0), ("FPN", 2)):
        for fold in (0, 1):
            folder = root / "predictions" / arch / str(fold)
            folder.mkdir(parents=True)
            (folder / PREDICTION_INFO).write_text(f'{{"arch": "{arch}", "fold": {fold}}}')
            folders[(arch, fold)] = folder
            for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
                truth = read_png(demo_data / "masks" / f"{sample}.png")
                write_png(np.roll(truth, shift, axis=1), folder / f"{sample}.png")
                p = np.eye(3, dtype=np.float32)[np.roll(truth, shift, axis=1)].transpose(2, 0, 1) * 0.8 + 0.2 / 3
                bins.append(reliability_bins(p, truth, config["classes"]).assign(arch=arch, fold=fold))
            scores = evaluate_predictions(demo_data, folder, splits, fold, config["classes"], config["evaluate"],
                                          {"dataset": "demo", "arch": arch, "encoder": "resnet18",
                                           "selection": "last"})
            for name in tables:
                tables[name].append(getattr(scores, name))
            histories += [{"arch": arch, "fold": fold, "epoch": e, "train_loss": 1 / e, "selection": "last",
                           "monitor_dice_fg": 0.5 + e / 10, "selected": e == 3} for e in (1, 2, 3)]
    metrics, instances, objects = (pd.concat(tables[n], ignore_index=True) for n in tables)
    cost = pd.DataFrame({"arch": ["Unet", "FPN"], "parameters": [14_328_339, 13_044_803], "train_minutes": [2.1, 1.9]})
    out = root / "report"
    make_report(summarise(metrics), metrics, pd.DataFrame(histories), demo_data, folders, splits, out, 2,
                summarise_instances(instances, objects), stats.compare(stats.per_image_values(metrics), 100),
                resolve(config["classes"], config["evaluate"]), instances, objects, pd.concat(bins), cost)
    return out / "index.html"


def test_the_page_renders_every_figure_without_an_error_and_its_tables_sort(demo_data, demo_raw, tmp_path):
    index = _report(demo_data, demo_raw, tmp_path)
    with browser_page() as page:
        page.goto(index.as_uri())
        page.wait_for_load_state("load")
        images = page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")
        assert len(images) == len(FIGURES) and all(loaded for _, loaded in images), images
        headings = page.locator("h2").all_text_contents()
        assert {"Methods", "Error types", "Calibration", "Cost", "AP at IoU 0.5 per stratum"} <= set(headings)
        table = page.locator("h2:text-is('Cost') + table")
        first = table.locator("tbody tr td").first
        table.locator("th").nth(1).click()  # parameters, largest first
        assert first.text_content() == "Unet"
        table.locator("th").nth(1).click()
        assert table.locator("tbody tr td").first.text_content() == "FPN"
        shot = tmp_path / "index.png"
        page.screenshot(path=str(shot), full_page=True)
        assert page.problems == []
    assert shot.stat().st_size > 10_000
    if os.environ.get("CELLBENCH_SCREENSHOTS"):  # keep it to look at
        shutil.copy(shot, os.environ["CELLBENCH_SCREENSHOTS"])
