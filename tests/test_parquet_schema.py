"""Every Parquet table the workflow writes matches docs/parquet_schema.md, read back with pyarrow
and with DuckDB."""

import re

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from helpers import REPO, make_config

from cellbench.dataset.split import make_splits
from cellbench.evaluation import stats
from cellbench.evaluation.aggregate import summarise, summarise_instances
from cellbench.evaluation.evaluate import evaluate_predictions
from cellbench.evaluation.learning_curve import learning_curve
from cellbench.fsutil import write_parquet
from cellbench.images import read_png, write_png
from cellbench.inference.ensemble import Windows
from cellbench.inference.infer import ModelSet, infer
from cellbench.inference.outputs import CALIBRATION
from cellbench.inference.predict import predict_fold
from cellbench.measure.by_type import by_type
from cellbench.measure.fidelity import fidelity
from cellbench.measure.measure import predicted_cells, reference_cells
from cellbench.report.cost import cost_table, fold_costs, model_cost
from cellbench.settings import TrainSettings
from cellbench.training import augment, train

CELL_FEATURES = r"(cell|nucleus|cytoplasm)_\w+|nc_ratio|nc_intensity_ratio"
EXTRA_COLUMNS = {"data/manifest.parquet": r"pixels_\w+", "splits.parquet": r"group|stratum",
                 "cells.parquet": CELL_FEATURES, "infer/<name>/cells.parquet": CELL_FEATURES,
                 "models/<arch>/fold<k>/history.parquet": r"(selection|monitor)_dice_\w+",
                 "infer/<name>/predictions.parquet": r"n_\w+"}


def documented() -> dict[str, dict[str, str]]:
    schema, current = {}, None
    for line in (REPO / "docs" / "parquet_schema.md").read_text().splitlines():
        heading = re.match(r"## (\S+\.parquet)", line)
        if heading:
            current = schema.setdefault(heading.group(1), {})
        column = re.match(r"- (\w+): (\w+)$", line)
        if column and current is not None:
            current[column.group(1)] = column.group(2)
    return schema


@pytest.fixture(scope="module")
def run(demo_data, demo_raw, tmp_path_factory):
    """The tables of a small run, made by the workflow's own functions."""
    root = tmp_path_factory.mktemp("run")
    config = make_config(demo_raw, split={"folds": 2}, evaluate={"bootstrap_resamples": 100})
    splits = make_splits(pd.read_parquet(demo_data / "manifest.parquet"), config["split"])
    write_parquet(splits, root / "splits.parquet")
    tables = {"semantic": [], "instances": [], "objects": []}
    cells = [reference_cells(demo_data, splits, config["classes"], None, "demo")]
    for arch, noise in (("Unet", 0), ("FPN", 1)):
        for fold in (0, 1):
            folder = root / "predictions" / arch / str(fold)
            folder.mkdir(parents=True)
            for sample in splits.loc[splits["fold"] == fold, "sample_id"]:
                mask = read_png(demo_data / "masks" / f"{sample}.png")
                write_png(np.roll(mask, noise, axis=1), folder / f"{sample}.png")
            scores = evaluate_predictions(demo_data, folder, splits, fold, config["classes"], config["evaluate"],
                                          {"dataset": "demo", "arch": arch, "encoder": "resnet18",
                                           "selection": "last"})
            for name in tables:
                tables[name].append(getattr(scores, name))
            cells.append(predicted_cells(demo_data, folder, splits, fold, config["classes"], None, "demo", arch))
    metrics, instances, objects = (pd.concat(tables[n], ignore_index=True) for n in tables)
    out = {"data/manifest.parquet": demo_data / "manifest.parquet", "splits.parquet": root / "splits.parquet"}
    for name, table in (("metrics.parquet", metrics), ("instance_metrics.parquet", instances),
                        ("object_metrics.parquet", objects), ("summary.parquet", summarise(metrics)),
                        ("instance_summary.parquet", summarise_instances(instances, objects)),
                        ("stats.parquet", stats.compare(stats.per_image_values(metrics, instances, objects), 100))):
        write_parquet(table, root / name)
        out[name] = root / name
    cells = pd.concat(cells, ignore_index=True)
    for name, table in (("cells.parquet", cells), ("fidelity.parquet", fidelity(cells, 100)),
                        ("cells_by_type.parquet", by_type(cells))):
        write_parquet(table, root / name)
        out[name] = root / name
    augment.augment(demo_data, root / "augmented", rotations=1, flip=False)
    small = make_config(demo_raw, train={"epochs": 1, "steps_per_epoch": 1, "batch_size": 2, "crop_size": 64})
    train.train_fold(small, "Unet", 0, demo_data, root / "augmented", root / "splits.parquet", root / "model")
    out["models/<arch>/fold<k>/history.parquet"] = root / "model" / "history.parquet"
    predict_fold(root / "model" / "model.pt", demo_data, splits, 0, root / "oof", windows=Windows(tile_size=64))
    out["calibration.parquet"] = root / "oof" / CALIBRATION
    budget = learning_curve({0.5: metrics, 1.0: metrics}, splits, TrainSettings.build(config["train"]), 100)
    write_parquet(budget, root / "learning_curve.parquet")
    out["learning_curve.parquet"] = root / "learning_curve.parquet"
    benchmark = root / "fold0.tsv"  # as Snakemake's benchmark directive writes it
    benchmark.write_text("s\th:m:s\tmax_rss\tmax_vms\n12.5\t0:00:12\t812.3\t2048.0\n")
    folds = fold_costs({("Unet", 0): benchmark}, {("Unet", 0): benchmark}, splits,
                       pd.read_parquet(root / "model" / "history.parquet"))
    write_parquet(cost_table(pd.DataFrame([model_cost(root / "model" / "model.pt")]), folds, summarise(metrics)),
                  root / "cost.parquet")
    out["cost.parquet"] = root / "cost.parquet"
    images = sorted(demo_raw.glob("*.png"))[:2]
    infer(images, [ModelSet("Unet", (root / "model" / "model.pt",))], root / "infer", Windows(tile_size=64))
    out["infer/<name>/predictions.parquet"] = root / "infer" / "predictions.parquet"
    out["infer/<name>/cells.parquet"] = root / "infer" / "cells.parquet"
    return out


@pytest.mark.parametrize("name", sorted(documented()))
def test_table_matches_the_documented_schema(run, name):
    expected = documented()[name]
    schema = pq.read_schema(run[name])
    actual = {column: str(kind).replace("large_string", "string") for column, kind in zip(schema.names, schema.types,
                                                                                          strict=True)}
    assert {c: actual.get(c) for c in expected} == expected
    extra = set(actual) - set(expected)
    assert all(re.fullmatch(EXTRA_COLUMNS.get(name, "$^"), c) for c in extra), extra
    assert pq.read_table(run[name]).num_rows > 0


def test_tables_read_with_duckdb(run):
    duckdb = pytest.importorskip("duckdb", reason="DuckDB is not installed (test extra)")
    with duckdb.connect() as db:
        best = db.execute(f"SELECT arch, cv_dice FROM '{run['summary.parquet']}' "
                          "WHERE class = 'foreground_mean' ORDER BY cv_dice DESC").fetchall()
        assert [arch for arch, _ in best] == ["Unet", "FPN"]  # the shifted predictions score lower
        ap = db.execute(f"SELECT object_type, avg(ap) FROM '{run['instance_metrics.parquet']}' "
                        "WHERE arch = 'Unet' GROUP BY object_type ORDER BY object_type").fetchall()
        # perfect class maps: every nucleus found; touching cells split by the watershed nearly as annotated
        assert ap[1] == ("nucleus", 1.0) and ap[0][0] == "cell" and ap[0][1] > 0.95
        for name, path in run.items():
            columns = [row[0] for row in db.execute(f"DESCRIBE SELECT * FROM '{path}'").fetchall()]
            assert set(documented()[name]) <= set(columns), name
