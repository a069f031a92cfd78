import re

import numpy as np
import pandas as pd
import pytest
from helpers import make_config, relabelled
from PIL import Image

from cellbench.evaluation import stats
from cellbench.evaluation.aggregate import FOREGROUND_MEAN as FOREGROUND
from cellbench.evaluation.aggregate import summarise, summarise_instances
from cellbench.evaluation.evaluate import evaluate_predictions
from cellbench.evaluation.scope import resolve
from cellbench.fsutil import written_by_cellbench
from cellbench.images import read_png, write_png
from cellbench.report import FIGURES, TABLES
from cellbench.report.figures import choose_overlay_samples, colourise
from cellbench.report.make import make_report
from cellbench.report.tables import comparison_tables


@pytest.mark.parametrize("selection", ["last", "scored_fold_best"])
def test_report_from_a_small_run(demo_data, tmp_path, selection):
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    samples = manifest["sample_id"].tolist()[:6]
    splits = pd.DataFrame({"sample_id": samples, "fold": [0, 0, 0, 1, 1, 1]})
    rows, prediction_dirs, histories = [], {}, []
    rng = np.random.default_rng(0)
    for arch in ("Unet", "FPN"):
        for fold in (0, 1):
            folder = tmp_path / arch / str(fold)
            folder.mkdir(parents=True)
            prediction_dirs[(arch, fold)] = folder
            histories += [{"arch": arch, "fold": fold, "epoch": e, "train_loss": 1 / e, "selection": selection,
                           "selection_dice_fg": 0.5 + e / 10 if selection != "last" else np.nan,
                           "monitor_dice_fg": 0.4 + e / 10 if selection != "scored_fold_best" else np.nan,
                           "selected": e == 2} for e in (1, 2)]
            for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
                truth = np.asarray(Image.open(demo_data / "masks" / f"{sample}.png"))
                write_png(truth, folder / f"{sample}.png")
                for name in ("cytoplasm", "nucleus", "cell"):
                    rows.append({"dataset": "demo", "arch": arch, "encoder": "r", "selection": selection, "fold": fold,
                                 "sample_id": sample, "class": name, "is_region": name == "cell",
                                 "tp": 1, "fp": 0, "fn": 0, "dice": rng.uniform(0.5, 1), "iou": 0.5})
    metrics = pd.DataFrame(rows)
    out = tmp_path / "report"
    comparison = stats.compare(stats.per_image_values(metrics), resamples=200)
    make_report(summarise(metrics), metrics, pd.DataFrame(histories), demo_data, prediction_dirs, splits, out, 3,
                pd.DataFrame(), comparison)
    for name in FIGURES:
        with Image.open(out / name) as picture:
            assert picture.size[0] > 300 and picture.size[1] > 200
    for name in TABLES:
        assert "foreground_mean" in (out / name).read_text()
    sections = {part.split("\n", 1)[0]: part for part in (out / "model_comparison.md").read_text().split("## ")[1:]}
    caution = " — OPTIMISTIC (epoch selected on the scored fold)" if selection == "scored_fold_best" else ""
    assert list(sections) == ["What was scored", "Protocol" + caution,
                              "Semantic segmentation (cross-validated Dice)" + caution,
                              "Instances (none scored)", "95 % confidence intervals", "Paired comparisons"]
    assert f"| {selection} |" in sections["Protocol" + caution]
    assert ("scored fold itself" in sections["Protocol" + caution]) is (selection == "scored_fold_best")
    assert all(written_by_cellbench(out / name) for name in (*FIGURES, *TABLES))
    assert "Classes: cytoplasm, nucleus. Regions: cell. Object types: none." in sections["What was scored"]
    page = (out / "index.html").read_text()  # one self-contained page: every figure inside, no link out
    assert page.count("src='data:image/png;base64,") == len(FIGURES)
    assert "http" not in re.sub(r"base64,[A-Za-z0-9+/=]+", "", page)
    assert "6 annotated images were split into 2 folds" in page and "Unet (r)" in page
    assert ("OPTIMISTIC" in page) is (selection == "scored_fold_best")
    rows_of = {title: [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
               for title, text in sections.items()}
    assert len(rows_of["Semantic segmentation (cross-validated Dice)" + caution]) == 2  # one row per architecture
    assert len(rows_of["95 % confidence intervals"]) == 2 * 4  # architectures x (3 classes/regions + mean)
    assert len(rows_of["Paired comparisons"]) == 4  # one pair per target
    assert "<h2>Paired comparisons</h2>" in (out / "model_comparison.html").read_text()


def test_overlay_samples_span_the_range():
    metrics = pd.DataFrame({"sample_id": list("abcde"), "dice": [0.1, 0.9, 0.5, 0.3, 0.7],
                            "is_region": False})
    assert choose_overlay_samples(metrics, 3) == ["a", "c", "b"]


def test_colourise_leaves_background_untouched():
    image = np.full((2, 2, 3), 255, np.uint8)
    out = colourise(np.array([[0, 1], [2, 0]]), image)
    assert np.allclose(out[0, 0], 1) and not np.allclose(out[0, 1], 1)


def sections_of(text: str) -> dict[str, str]:
    return {part.split("\n", 1)[0]: part for part in text.split("## ")[1:]}


@pytest.mark.parametrize(("classes", "lookup", "heading"), [
    (["background", "cell"], [0, 1, 1], "Instances (cell)"),
    (["background", "cytoplasm", "nucleus"], [0, 1, 2], "Instances (cell, nucleus)"),
])
def test_tables_name_what_was_scored(demo_data, tmp_path, classes, lookup, heading):
    """The instance heading names the object types scored, and a paragraph lists the classes, regions
    and object types with the notes on the defaults that do not fit the classes."""
    data = relabelled(demo_data, tmp_path / "data", lookup)
    samples = pd.read_parquet(data / "manifest.parquet")["sample_id"].tolist()[:6]
    splits = pd.DataFrame({"sample_id": samples, "fold": [0, 0, 0, 1, 1, 1]})
    settings = make_config(None, classes=classes, evaluate={"bootstrap_resamples": 100})["evaluate"]
    tables = []
    for arch, shift in (("Unet", 0), ("FPN", 2)):
        for fold in (0, 1):
            folder = tmp_path / arch / str(fold)
            folder.mkdir(parents=True)
            for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
                write_png(np.roll(read_png(data / "masks" / f"{sample}.png"), shift, axis=1), folder / f"{sample}.png")
            tables.append(evaluate_predictions(data, folder, splits, fold, classes, settings,
                                               {"dataset": "demo", "arch": arch, "encoder": "r"}))
    metrics, instances, objects = (pd.concat([getattr(t, name) for t in tables], ignore_index=True)
                                   for name in ("semantic", "instances", "objects"))
    scope = resolve(classes, settings)
    comparison_tables(summarise(metrics), summarise_instances(instances, objects),
                      stats.compare(stats.per_image_values(metrics, instances, objects), 100), tmp_path, scope)
    markdown, page = (tmp_path / "model_comparison.md").read_text(), (tmp_path / "model_comparison.html").read_text()
    sections = sections_of(markdown)
    assert list(sections)[:4] == ["What was scored", "Protocol", "Semantic segmentation (cross-validated Dice)",
                                  heading]
    instance_rows = [line for line in sections[heading].splitlines() if line.startswith("| ")][1:]  # no header
    assert len(instance_rows) == 2 * (len(heading.split(",")))  # architectures x object types
    assert f"<h2>{heading}</h2>" in page and "cells, nuclei" not in markdown + page
    scored = sections["What was scored"]
    for note in scope.notes:
        assert f"- {note}" in scored and f"<li>{note.replace(chr(39), '&#x27;')}</li>" in page
    if classes == ["background", "cell"]:
        assert "Classes: cell (background is not scored). Regions: none. Object types: cell (connected " in scored
        assert "- region 'cell' skipped: it is the name of a class" in scored
        assert "- object type 'cell' derived: the connected components of class 'cell'" in scored
    else:
        assert scope.notes == [] and "Regions: cell = cytoplasm + nucleus." in scored


def test_p_values_never_print_as_zero():
    from cellbench.report.tables import _formatted, p_text

    assert p_text(3e-7) == "< 1e-4" and p_text(0.0) == "< 1e-4" and p_text(0.0123) == "0.0123" and p_text(np.nan) == ""
    shown = _formatted(pd.DataFrame({"p_value": [1e-9], "p_holm": [0.5], "mean_difference": [1e-9]}))
    assert shown.iloc[0].tolist() == ["< 1e-4", "0.5000", "0.0000"]


def test_every_figure_lists_architectures_in_the_ranking_order():
    from cellbench.report.figures import arch_order

    summary = pd.DataFrame({"arch": ["Unet", "FPN", "Unet", "FPN"], "class": [FOREGROUND, FOREGROUND, "a", "a"],
                            "encoder": "r", "cv_dice": [0.7, 0.9, 0.7, 0.9], "fold_sd_dice": 0.1, "is_region": False})
    assert arch_order(summary, ["Unet", "MaskRCNN", "FPN", "Unet"]) == ["FPN", "Unet", "MaskRCNN"]
    assert arch_order(None, ["Unet", "FPN"]) == ["FPN", "Unet"]


def test_one_foreground_class_is_one_bar_not_two():
    from cellbench.report.figures import bar_groups

    one = pd.DataFrame({"class": ["nucleus", FOREGROUND], "is_region": [False, False]})
    assert bar_groups(one) == ["nucleus"]
    two = pd.DataFrame({"class": ["cytoplasm", "nucleus", "cell", FOREGROUND],
                        "is_region": [False, False, True, False]})
    assert bar_groups(two) == ["cytoplasm", "nucleus", "cell", FOREGROUND]


def test_outlines_mark_the_edge_of_each_object_even_where_objects_touch():
    from cellbench.report.figures import outlined

    objects = np.zeros((8, 10), np.int32)
    objects[1:7, 1:5], objects[1:7, 5:9] = 1, 2  # touching at columns 4|5
    picture = outlined(np.zeros((8, 10, 3)), objects)
    edge = picture[..., 0] == 1
    assert edge[3, 4] and edge[3, 5] and not edge[3, 2] and not edge[0, 0]  # both sides of the contact line
    assert outlined(picture, None) is picture


def test_scores_per_stratum_with_intervals_and_none_without_strata(tmp_path):
    from cellbench.report.figures import plot_dice_by_stratum
    from cellbench.report.strata import stratum_scores

    splits = pd.DataFrame({"sample_id": list("abcd"), "fold": [0, 0, 1, 1], "stratum": [1, 1, 2, 2]})
    metrics = pd.DataFrame({"arch": "Unet", "sample_id": list("aabbccdd"), "class": ["x", "y"] * 4,
                            "is_region": False, "dice": [1.0, 0.0, 0.8, 0.2, 0.5, 0.5, 0.5, np.nan]})
    scores = stratum_scores(metrics, splits, resamples=200).set_index(["stratum", "class"])
    assert scores.loc[("1", "x"), "dice"] == pytest.approx(0.9) and scores.loc[("1", "x"), "n"] == 2
    assert scores.loc[("2", "y"), "n"] == 1  # the image without a y is not counted
    assert scores.loc[("1", FOREGROUND), "dice"] == pytest.approx(0.5)  # per-image means 0.5 and 0.5
    assert scores.loc[("1", "x"), "ci_low"] <= 0.9 <= scores.loc[("1", "x"), "ci_high"]
    plot_dice_by_stratum(scores.reset_index(), tmp_path / "strata.png")
    assert stratum_scores(metrics, splits.drop(columns="stratum")).empty
    plot_dice_by_stratum(stratum_scores(metrics, splits.assign(stratum=1)), tmp_path / "none.png")  # says why
    assert (tmp_path / "strata.png").stat().st_size > 0 and (tmp_path / "none.png").stat().st_size > 0


def test_errors_are_painted_by_kind_and_the_worst_images_come_first():
    from cellbench.report.figures import difference, worst_images

    truth = np.array([[0, 1, 2, 255]], np.uint8)
    predicted = np.array([[1, 0, 1, 0]], np.uint8)
    painted = difference(truth, predicted, np.zeros((1, 4, 3), np.uint8), alpha=1.0)
    assert [tuple((painted[0, i] * 255).round().astype(int)) for i in range(4)] == [
        (230, 159, 0), (0, 114, 178), (204, 121, 167), (0, 0, 0)]  # fp, fn, wrong class, ignored
    metrics = pd.DataFrame({"arch": "Unet", "sample_id": list("aabbcc"), "class": ["x", "y"] * 3, "is_region": False,
                            "dice": [0.9, 0.7, 0.2, 0.4, 0.6, np.nan]})
    assert worst_images(metrics, "Unet", 2) == [("b", pytest.approx(0.3)), ("c", pytest.approx(0.6))]


def test_markup_in_names_is_text_on_every_page(demo_data, tmp_path):
    """Names reach the pages from files and models (an encoder, a sample id): parsed as HTML, the
    pages hold no element or handler of theirs, only cellbench's own sorting script."""
    from html.parser import HTMLParser
    hostile = "<img src=x onerror=alert(1)><script>alert(2)</script>"
    manifest = pd.read_parquet(demo_data / "manifest.parquet")
    samples = manifest["sample_id"].tolist()[:4]
    splits = pd.DataFrame({"sample_id": samples, "fold": [0, 0, 1, 1]})
    rows, prediction_dirs = [], {}
    for fold in (0, 1):
        folder = tmp_path / str(fold)
        folder.mkdir()
        prediction_dirs[("Unet", fold)] = folder
        for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
            write_png(np.asarray(Image.open(demo_data / "masks" / f"{sample}.png")), folder / f"{sample}.png")
            for name in ("cytoplasm", "nucleus"):
                rows.append({"dataset": hostile, "arch": "Unet", "encoder": hostile, "selection": "last", "fold": fold,
                             "sample_id": sample, "class": name, "is_region": False, "tp": 1, "fp": 0, "fn": 0,
                             "dice": 0.7, "iou": 0.5})
    metrics = pd.DataFrame(rows)
    histories = pd.DataFrame([{"arch": "Unet", "fold": k, "epoch": 1, "train_loss": 1.0, "selection": "last",
                               "selection_dice_fg": np.nan, "monitor_dice_fg": 0.5, "selected": True} for k in (0, 1)])
    make_report(summarise(metrics), metrics, histories, demo_data, prediction_dirs, splits, tmp_path / "report", 2)

    class Elements(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.handlers, self.sources = [], [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.handlers += [name for name, _ in attrs if name.startswith("on")]
            self.sources += [value for name, value in attrs if tag == "img" and name == "src"]

    for page in ("index.html", "model_comparison.html"):
        text = (tmp_path / "report" / page).read_text()
        parsed = Elements()
        parsed.feed(text)
        assert parsed.handlers == [] and all(src.startswith("data:image/png;base64,") for src in parsed.sources)
        assert parsed.tags.count("script") == (1 if page == "index.html" else 0)  # cellbench's table sorting
        assert "&lt;script&gt;" in text or "&lt;img" in text  # the name is there, as text
