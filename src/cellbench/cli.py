"""`cellbench <step>`: every workflow step, runnable without Snakemake.

Run by hand, each step reads the configuration (`--config FILE`, repeatable, later files win;
`--config-json` for inline overrides), fills in the schema defaults, and writes to the standard
layout under results/<dataset>/ unless paths are given. The workflow passes `--settings JSON`
instead: exactly the settings the step reads, nothing filled in, so a setting a rule forgets to
send fails loudly instead of silently taking its default.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

from cellbench import __version__
from cellbench import config as configuration
from cellbench.dataset import demo
from cellbench.errors import ConfigError, InputError, InputProblem, OutputError, Preempted, WeightsUnavailable
from cellbench.formats import FORMATS
from cellbench.layout import Layout
from cellbench.settings import Settings

log = logging.getLogger("cellbench")


def _json_option(text: str, option: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{option} is not valid JSON: {err}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{option} must be a JSON object of settings")
    return value


def _load_settings(args, extra: dict | None = None) -> Settings:
    """--settings: exactly what the workflow sent (checked, nothing filled in); else the config
    files, --config-json and ``extra`` (what a step's own options say) with every default filled in."""
    if args.settings is not None:
        if args.config or args.config_json:
            raise ConfigError("--settings (what the workflow sends) cannot be combined with --config/--config-json")
        sent = _json_option(args.settings, "--settings")
        configuration.check(sent)
        return Settings.build(sent)
    paths = args.config or []
    if not paths and not args.config_json and Path("config.yaml").is_file():
        paths = [Path("config.yaml")]
    overrides = _json_option(args.config_json, "--config-json") if args.config_json else {}
    return Settings.build(configuration.load(*paths, overrides=configuration.merge(overrides, extra or {})))


class _DefaultPaths:
    """The standard layout, built only when a path was not given on the command line (so a step
    that is given every path does not need `results` and `dataset`)."""

    def __init__(self, settings: Settings):
        self._settings = settings

    def __getattr__(self, name):
        return getattr(Layout(self._settings.results, self._settings.dataset), name)


def _layout(settings: Settings) -> _DefaultPaths:
    return _DefaultPaths(settings)


def _existing(path, made_by: str) -> Path:
    """An input file or folder that an earlier step makes; a clear error when it is missing."""
    path = Path(path)
    if not path.exists():
        raise InputError([InputProblem(path, "does not exist", f"it is made by `cellbench {made_by}`; run that first")])
    return path


def cmd_demo(args, settings: Settings):
    layout = _layout(settings)
    out = args.out or layout.demo_annotations
    metadata = args.metadata or (None if args.out else layout.demo_metadata)
    files = demo.generate(Path(out), metadata, n_images=args.n_images, size=args.size, seed=args.seed)
    log.info("wrote %d demo images with LabelMe annotations to %s", len(files), out)


def cmd_ingest(args, settings: Settings):
    from cellbench.dataset import ingest
    if args.annotations:  # where the workflow put them (a module prefix moves the demo's)
        sent = settings.sent()
        settings = Settings.build({**sent, "data": {**sent.get("data", {}), "annotations": args.annotations,
                                                    "demo": False}})
    manifest = ingest.ingest(settings, Path(args.out or _layout(settings).data))
    log.info("%d images, %d objects, %d stray mask pixels", len(manifest), manifest["n_objects"].sum(),
             manifest["n_stray_pixels"].sum())


def cmd_validate(args, settings: Settings):
    from cellbench.dataset import ingest
    from cellbench.formats import sniff
    from cellbench.fsutil import write_text
    named = {**({"annotations": str(args.annotations), "demo": False} if args.annotations else {}),
             **({"format": args.format} if args.format else {})}
    if named and args.settings is None:  # by hand: as if the config said so (no demo settings leak in)
        settings = _load_settings(args, {"data": named})
    config = settings.sent()
    config["data"].update(named)
    encoding = sys.stdout.encoding or "utf-8"

    def say(line: str) -> None:  # a file name that is not valid text still prints, escaped
        print(line.encode(encoding, "backslashreplace").decode(encoding))

    from cellbench import preflight
    config_problems = []
    if args.settings is None:  # by hand: the whole configuration is here to look at (the workflow checks it itself)
        config_problems, warnings = preflight.problems(config)
        config_problems += preflight.model_problems(config)  # every problem, the models' too, in one list
        for line in warnings:
            say(f"warning: {line}")
        for line in config_problems:
            say(f"configuration: {line}")
    def not_checked() -> int:
        say(f"NOT READY: {_count(len(config_problems), 'problem')} in the configuration; the files are checked "
            "once its data section is fixed")
        return 1

    if args.settings is None and preflight.data_problems(config):  # files read the wrong way say nothing useful
        return not_checked()
    try:
        found = ingest.find_problems(config)
    except ConfigError:
        if not config_problems:
            raise
        return not_checked()
    problems = found.problems
    # the workflow does not send the split settings (changing them must not re-ingest): say what split does
    copies = found.duplicate_lines(settings.split.group_near_duplicates
                                   if settings.split.is_sent("group_near_duplicates") else None)
    for line in [*map(str, problems), *copies]:
        say(line)
    source = ingest.annotation_folder(config)
    where = f"{config['data']['format']}: {source}"
    if not problems and not config_problems:
        summary = f"{found.good} images fine, 0 problems ({where})"
    else:
        bad_files = len({problem.file for problem in problems})
        counts = (f"{_count(len(problems), 'problem')} in {_count(bad_files, 'file')}" if problems
                  else "the files are fine")
        if config_problems:
            counts = f"{_count(len(config_problems), 'problem')} in the configuration, {counts}"
        plural = "s" if found.good != 1 else ""
        read = f"{found.good} image{plural} read" if found.good else "no image could be read"
        summary = f"NOT READY: {counts}; {read} ({where}); nothing is ingested until every problem is fixed"
        if problems and (hint := sniff.suggestion(source, config["data"])) and found.good <= len(problems):
            say(f"hint: {hint}")
    say(summary)
    if args.out and not problems and not config_problems:  # copies are reported, not errors: split groups them
        write_text("".join(f"{line}\n" for line in [summary, *copies]), Path(args.out))
    return 1 if problems or config_problems else 0


def _count(n: int, what: str) -> str:
    return f"{n} {what}{'s' if n != 1 else ''}"


def cmd_check(args, settings: Settings):
    from cellbench import preflight
    config = settings.sent()
    for warning in preflight.check(config, models=True):
        print(f"warning: {warning}")
    print("the configuration can run: folds, classes, evaluation scope and every architecture checked")


def cmd_split(args, settings: Settings):
    from cellbench.dataset import split
    from cellbench.fsutil import write_parquet
    layout = _layout(settings)
    manifest = pd.read_parquet(_existing(args.manifest or layout.manifest, "ingest"))
    metadata = (args.metadata or None) if args.metadata is not None else split.metadata_path(settings)
    splits = split.make_splits(manifest, settings.split, metadata)
    write_parquet(splits, Path(args.out or layout.splits))
    log.info("fold sizes: %s", splits.groupby("fold").size().to_dict())
    if settings.split.stratify_column:
        log.info("strata per fold:\n%s", pd.crosstab(splits["stratum"], splits["fold"]))


def cmd_augment(args, settings: Settings):
    from cellbench.training import augment
    layout = _layout(settings)
    table = augment.augment(_existing(args.data or layout.data, "ingest"), Path(args.out or layout.augmented),
                            settings.augment.rotations, settings.augment.flip)
    log.info("wrote %d variants of %d samples", len(table), table["sample_id"].nunique())


def cmd_train(args, settings: Settings):
    if args.resume_every_seconds is not None:  # sent apart from the settings: changing it retrains nothing
        sent = settings.sent()
        settings = Settings.build({**sent, "train": {**sent.get("train", {}),
                                                     "resume_every_minutes": args.resume_every_seconds / 60}})
    train_settings = settings.train
    if train_settings.device != "cpu":
        from cellbench.training import gpus
        gpus.claim()  # before CUDA starts: one GPU per concurrent training job
    if train_settings.encoder_weights:
        from cellbench.training import weights
        weights.use_cache(Path(args.weights_cache or _layout(settings).weights_cache), offline=True)
        weights.require(train_settings.encoder, train_settings.encoder_weights)
    from cellbench.training import train
    layout = _layout(settings)
    train.train_fold(settings, args.arch, args.fold, _existing(args.data or layout.data, "ingest"),
                     _existing(args.augmented or layout.augmented, "augment"),
                     _existing(args.splits or layout.splits, "split"),
                     Path(args.out or layout.model_dir(args.arch, args.fold)), threads=args.threads,
                     resume_dir=Path(args.resume_dir or layout.resume_dir(args.arch, args.fold)),
                     fraction=args.fraction)


def cmd_predict(args, settings: Settings):
    from cellbench.inference import predict
    layout = _layout(settings)
    splits = pd.read_parquet(_existing(args.splits or layout.splits, "split"))
    predict.predict_fold(_existing(args.checkpoint or layout.checkpoint(args.arch, args.fold), "train"),
                         _existing(args.data or layout.data, "ingest"), splits, args.fold,
                         Path(args.out or layout.predictions(args.arch, args.fold)), settings.train.device,
                         settings.evaluate.objects, settings.infer.windows(), _learning(settings))


def _learning(settings: Settings) -> dict:
    """What the object rules are learned with (evaluate.min_size_fraction, evaluate.join_pieces)."""
    return {key: settings.evaluate[key] for key in ("min_size_fraction", "join_pieces")}


def cmd_evaluate(args, settings: Settings):
    from cellbench.evaluation.evaluate import evaluate_predictions
    from cellbench.fsutil import write_parquet
    layout = _layout(settings)
    splits = pd.read_parquet(_existing(args.splits or layout.splits, "split"))
    from cellbench.inference.outputs import PREDICTION_INFO, prediction_info
    predictions = _existing(args.predictions or layout.predictions(args.arch, args.fold), "predict")
    encoder = settings.train.encoder
    if (Path(predictions) / PREDICTION_INFO).exists():  # the model's own (MaskRCNN's backbone)
        encoder = prediction_info(predictions).get("encoder", encoder)
    scores = evaluate_predictions(
        _existing(args.data or layout.data, "ingest"), predictions,
        splits, args.fold, list(settings.classes), settings.evaluate,
        {"dataset": settings.dataset, "arch": args.arch, "encoder": encoder,
         "selection": settings.train.selection},
        threads=args.threads)
    semantic = scores.semantic if args.fraction is None else scores.semantic.assign(fraction=args.fraction)
    write_parquet(semantic, Path(args.out or layout.fold_metrics(args.arch, args.fold)))
    write_parquet(scores.instances, Path(args.instances_out or layout.fold_instance_metrics(args.arch, args.fold)))
    write_parquet(scores.objects, Path(args.objects_out or layout.fold_object_metrics(args.arch, args.fold)))


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"a fraction must be in (0, 1], not {text}")
    return value


def _write_figure(plot, final: Path) -> None:
    """Draw with ``plot(path)`` in a temporary folder, then write the PNG atomically to ``final``: a
    failed plot leaves no half-written figure, and an existing file not written by cellbench is kept."""
    from cellbench.fsutil import write_bytes
    with tempfile.TemporaryDirectory(prefix="cellbench-figure-") as tmp:
        drawn = Path(tmp) / final.name
        plot(drawn)
        write_bytes(drawn.read_bytes(), final)


def cmd_learning_curve(args, settings: Settings):
    from cellbench.evaluation.learning_curve import learning_curve
    from cellbench.fsutil import write_parquet
    from cellbench.report.learning_curve import plot_learning_curve
    layout = _layout(settings)
    budgets = []
    for path in args.budget_metrics:
        budgets.append(pd.read_parquet(_existing(path, "evaluate")))
        if "fraction" not in budgets[-1].columns:
            raise ConfigError(f"{path}: no fraction column (score budget models with `cellbench evaluate --fraction`)")
    tables = {float(f): t.drop(columns="fraction")
              for f, t in pd.concat(budgets, ignore_index=True).groupby("fraction")}
    if args.metrics:  # fraction 1: the main run's models of the architectures asked for
        main_run = pd.read_parquet(_existing(args.metrics, "aggregate"))
        tables[1.0] = main_run[main_run["arch"].isin(settings.train.architectures)]
    splits = pd.read_parquet(_existing(args.splits or layout.splits, "split"))
    table = learning_curve(tables, splits, settings.train, settings.evaluate.bootstrap_resamples,
                           settings.evaluate.seed)
    write_parquet(table, Path(args.out_table or layout.learning_curve))
    summary = pd.read_parquet(_existing(args.summary, "aggregate")) if args.summary else None
    _write_figure(lambda path: plot_learning_curve(table, path, summary),
                  Path(args.out_figure or Path(layout.report) / "learning_curve.png"))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        log.info("learning curve:\n%s", table.round(4).to_string(index=False))


def cmd_measure(args, settings: Settings):
    from cellbench.fsutil import write_parquet
    from cellbench.measure.measure import predicted_cells, reference_cells
    if args.reference and (args.arch or args.fold is not None or args.predictions):
        raise ConfigError("--reference measures the expert masks: it takes no --arch, --fold or --predictions")
    if not args.reference and (not args.arch or args.fold is None):
        raise ConfigError("name the predictions to measure (--arch NAME --fold K), or --reference")
    layout = _layout(settings)
    splits = pd.read_parquet(_existing(args.splits or layout.splits, "split"))
    data = _existing(args.data or layout.data, "ingest")
    common = {"classes": list(settings.classes), "object_spec": settings.evaluate.objects,
              "dataset": settings.dataset, "bin_width": settings.measure.bin_width}
    if args.reference:
        table = reference_cells(data, splits, **common)
        out = args.out or layout.reference_cells
    else:
        table = predicted_cells(data, _existing(args.predictions or layout.predictions(args.arch, args.fold),
                                                "predict"), splits, args.fold, arch=args.arch, **common)
        out = args.out or layout.fold_cells(args.arch, args.fold)
    write_parquet(table, Path(out))
    log.info("measured %d objects into %s", len(table), out)


def cmd_measure_summary(args, settings: Settings):
    from cellbench.fsutil import write_parquet
    from cellbench.measure.by_type import by_type
    from cellbench.measure.fidelity import fidelity
    layout = _layout(settings)
    paths = args.cells or [layout.reference_cells, *(layout.fold_cells(a, k) for a in settings.train.architectures
                                                     for k in range(settings.split.folds))]
    cells = pd.concat([pd.read_parquet(_existing(p, "measure")) for p in paths], ignore_index=True)
    splits = pd.read_parquet(_existing(args.splits or layout.splits, "split"))
    architectures = args.architectures or (None if args.cells else list(settings.train.architectures))
    agreement = fidelity(cells, settings.evaluate.bootstrap_resamples, settings.evaluate.seed,
                         splits["sample_id"].tolist(), architectures)
    for table, given, default in ((cells, args.out_cells, "cells"), (agreement, args.out_fidelity, "fidelity"),
                                  (by_type(cells), args.out_by_type, "cells_by_type")):
        write_parquet(table, Path(given or getattr(layout, default)))
    key = agreement[agreement["feature"] == "nc_ratio"].sort_values("rank")
    if len(key):
        with pd.option_context("display.width", 200):
            log.info("N/C ratio fidelity:\n%s", key[["source", "n_pairs", "bias", "loa_low", "loa_high", "ccc",
                                                    "ccc_low", "ccc_high", "rank"]].round(4).to_string(index=False))


def cmd_measure_report(args, settings: Settings):
    from cellbench.measure.measure import object_types
    from cellbench.report import MEASUREMENT_FIGURES, MEASUREMENT_TABLES
    from cellbench.report.measurements import key_features, make_measurement_report
    layout = _layout(settings)
    names = (*MEASUREMENT_FIGURES, *MEASUREMENT_TABLES)
    outputs = {name: getattr(args, "out_" + name.replace(".", "_")) for name in names}
    if not all(outputs.values()):  # the ones not named go to the report folder
        folder = Path(args.out or layout.report)
        outputs = {name: Path(path or folder / name) for name, path in outputs.items()}
    tables = {name: pd.read_parquet(_existing(given or getattr(layout, default), "measure-summary"))
              for name, given, default in (("cells", args.cells, "cells"), ("fidelity", args.fidelity, "fidelity"),
                                           ("by_type", args.by_type, "cells_by_type"))}
    features = key_features(list(settings.classes), object_types(list(settings.classes), settings.evaluate.objects))
    make_measurement_report(tables["cells"], tables["fidelity"], tables["by_type"], features, outputs,
                            settings.train.selection)


def _tables(paths: list[Path] | None, settings: Settings, kind: str, made_by: str) -> pd.DataFrame:
    """One table from the given per-fold tables (default: the layout's ``kind`` of every architecture x fold)."""
    if not paths:
        path_of = getattr(_layout(settings), kind)
        paths = [path_of(a, k) for a in settings.train.architectures for k in range(settings.split.folds)]
    return pd.concat([pd.read_parquet(_existing(p, made_by)) for p in paths], ignore_index=True)


def cmd_aggregate(args, settings: Settings):
    from cellbench.evaluation import stats
    from cellbench.evaluation.aggregate import instance_ranking, ranking, summarise, summarise_instances
    from cellbench.fsutil import write_parquet
    layout = _layout(settings)
    metrics = _tables(args.metrics, settings, "fold_metrics", "evaluate")
    instances = _tables(args.instance_metrics, settings, "fold_instance_metrics", "evaluate")
    objects = _tables(args.object_metrics, settings, "fold_object_metrics", "evaluate")
    calibration = _calibration_bins(_prediction_folders(args.predictions, settings, layout).values())
    summary = summarise(metrics)
    instance_summary = summarise_instances(instances, objects)
    comparison = stats.compare(stats.per_image_values(metrics, instances, objects),
                               settings.evaluate.bootstrap_resamples, settings.evaluate.seed)
    for table, given, default in ((metrics, args.out_metrics, "metrics"),
                                  (instances, args.out_instance_metrics, "instance_metrics"),
                                  (objects, args.out_object_metrics, "object_metrics"),
                                  (summary, args.out_summary, "summary"),
                                  (instance_summary, args.out_instance_summary, "instance_summary"),
                                  (comparison, args.out_stats, "stats"),
                                  (calibration, args.out_calibration, "calibration")):
        write_parquet(table, Path(given or getattr(layout, default)))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        log.info("model comparison (CV Dice):\n%s", ranking(summary).round(4).to_string(index=False))
        log.info("instances:\n%s", instance_ranking(instance_summary).round(4).to_string(index=False))


def _calibration_bins(folders) -> pd.DataFrame:
    """Every fold's reliability bins (the predict step's calibration.parquet), one table."""
    from cellbench.evaluation.calibration import COLUMNS
    from cellbench.inference.outputs import CALIBRATION
    tables = []
    for folder in map(Path, folders):
        if (folder / CALIBRATION).is_file():
            tables.append(pd.read_parquet(folder / CALIBRATION))
        else:  # predicted by a cellbench from before calibration: the report goes without that fold
            log.warning("%s has no %s (predicted by an older cellbench): its fold is left out of the calibration; "
                        "`snakemake --forcerun predict` adds it", folder, CALIBRATION)
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=[*COLUMNS, "arch", "fold"])


def _prediction_folders(folders: list[Path] | None, settings: Settings, layout) -> dict[tuple[str, int], Path]:
    """(arch, fold) -> out-of-fold prediction folder: each given folder says which it is (the predict
    step writes prediction.json), else the layout's for every architecture x fold."""
    from cellbench.inference.outputs import prediction_info
    if not folders:
        return {(a, k): Path(layout.predictions(a, k)) for a in settings.train.architectures
                for k in range(settings.split.folds)}
    found = {}
    for folder in map(Path, folders):
        info = prediction_info(_existing(folder, "predict"))
        found[(info["arch"], int(info["fold"]))] = folder
    return found


def cmd_report(args, settings: Settings):
    from cellbench.evaluation.scope import resolve
    from cellbench.report import FIGURES, TABLES
    from cellbench.report.make import make_report, outputs_in
    layout = _layout(settings)
    history_paths = args.histories or [layout.history(a, k) for a in settings.train.architectures
                                       for k in range(settings.split.folds)]
    histories = pd.concat([pd.read_parquet(_existing(p, "train")) for p in history_paths], ignore_index=True)
    outputs = {name: getattr(args, "out_" + name.replace(".", "_")) for name in (*FIGURES, *TABLES)}
    if not all(outputs.values()):  # the ones not named go to the report folder
        folder = outputs_in(args.out or layout.report)
        outputs = {name: Path(path or folder[name]) for name, path in outputs.items()}

    def table(given, default):
        return pd.read_parquet(_existing(given or getattr(layout, default), "aggregate"))

    cost = pd.read_parquet(_existing(args.cost, "cost")) if args.cost else None
    make_report(table(args.summary, "summary"), table(args.metrics, "metrics"), histories,
                _existing(args.data or layout.data, "ingest"),
                _prediction_folders(args.predictions, settings, layout),
                pd.read_parquet(_existing(args.splits or layout.splits, "split")), outputs,
                settings.report.overlay_samples, table(args.instance_summary, "instance_summary"),
                table(args.stats, "stats"), resolve(list(settings.classes), settings.evaluate),
                table(args.instance_metrics, "instance_metrics"), table(args.object_metrics, "object_metrics"),
                table(args.calibration, "calibration"), cost,
                tuple(_existing(p, "cost or learning-curve") for p in args.extra_figures or ()))


def cmd_cost(args, settings: Settings):
    from cellbench.fsutil import write_parquet
    from cellbench.report import COST_FIGURES
    from cellbench.report.cost import cost_table, fold_costs, model_cost
    from cellbench.report.figures import plot_cost_accuracy
    layout = _layout(settings)
    runs = [(a, k) for a in settings.train.architectures for k in range(settings.split.folds)]

    def paths(given, default):  # the layout is read only for the files not given
        return dict(zip(runs, [_existing(p, "train or predict") for p in (given or [default(a, k) for a, k in runs])],
                        strict=True))

    checkpoints = paths(args.checkpoints, lambda a, k: layout.checkpoint(a, k))
    trained = paths(args.train_benchmarks, lambda a, k: layout.benchmark("train", a, f"fold{k}"))
    predicted = paths(args.predict_benchmarks, lambda a, k: layout.benchmark("predict", a, f"fold{k}"))
    histories = pd.concat([pd.read_parquet(p) for p in paths(args.histories, lambda a, k: layout.history(a, k))
                           .values()], ignore_index=True)
    first_folds = {arch: path for (arch, fold), path in checkpoints.items() if fold == 0}
    models = pd.DataFrame([model_cost(path) for path in first_folds.values()])
    folds = fold_costs(trained, predicted, pd.read_parquet(_existing(args.splits or layout.splits, "split")),
                       histories)
    table = cost_table(models, folds, pd.read_parquet(_existing(args.summary or layout.summary, "aggregate")))
    write_parquet(table, Path(args.out_table or layout.cost))
    _write_figure(lambda path: plot_cost_accuracy(table, path),
                  Path(args.out_figure or Path(layout.report) / COST_FIGURES[0]))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        log.info("cost against accuracy:\n%s", table.round(4).to_string(index=False))


def cmd_export_labelme(args, settings: Settings):
    from cellbench.formats.labelme import export as labelme_export
    from cellbench.images import IMAGE_SUFFIXES
    layout = _layout(settings)
    if args.masks:
        folders = [_existing(folder, "predict") for folder in args.masks]
        out = Path(args.out or folders[0] / "labelme")
    elif args.arch:
        folders = [_existing(layout.predictions(args.arch, k), "predict") for k in range(settings.split.folds)]
        out = Path(args.out or layout.labelme_export(args.arch))
    else:
        raise ConfigError("name the folders of class maps (--masks DIR ...) or an architecture whose predictions "
                          "to export (--arch NAME)")
    masks = sorted((p for folder in folders for p in folder.glob("*.png")), key=lambda p: (p.name, str(p)))
    if not masks:
        raise InputError([InputProblem(folders[0], "no class-map PNGs to export")])
    image_dir = _existing(args.images or Path(layout.data) / "images", "ingest")
    images = {p.stem: p for p in sorted(image_dir.glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}
    n = labelme_export.export(masks, images, out, list(settings.classes), settings.class_priority,
                              args.tolerance, settings.data.max_pixels, inputs=[image_dir, *folders])
    log.info("wrote %d LabelMe files to %s (images in %s)", n, out, image_dir)


def cmd_infer(args, settings: Settings):
    from cellbench.inference.infer import ModelSet, find_images, infer, model_sets_from
    layout, chosen = _layout(settings), settings.infer
    configuration.check_name(args.name, "--name")  # a folder under results/<dataset>/infer, never a path
    images = find_images(args.images or chosen.images)
    checkpoints = args.checkpoints or [layout.checkpoint(a, k) for a in settings.train.architectures
                                       for k in range(settings.split.folds)]
    summary = None
    if "best" in chosen.architectures:
        summary = pd.read_parquet(_existing(args.summary or layout.summary, "aggregate"))
    sets: list[ModelSet] = model_sets_from([_existing(c, "train") for c in checkpoints], list(chosen.architectures),
                                           chosen.folds, summary)
    out = Path(args.out or layout.infer(args.name))
    data = Path(args.data) if args.data else None
    if data is None and settings.is_sent("results") and Path(layout.data, "manifest.parquet").is_file():
        data = Path(layout.data)
    table = infer(images, sets, out, chosen.windows(), settings.evaluate.objects, chosen.device,
                  chosen.save_probabilities, settings.data.max_pixels, settings.class_priority, settings.dataset,
                  settings.measure.bin_width, data, _learning(settings), chosen.slides())
    log.info("segmented %d images with %s into %s", len(images), ", ".join(s.arch for s in sets), out)
    return 0 if len(table) else 1


def cmd_app(args, settings: Settings):
    import dataclasses

    from cellbench.app.session import MAX_PIXELS
    from cellbench.app.ui import serve
    from cellbench.inference.ensemble import DEFAULT_WINDOWS
    results = Path(args.results or _layout(settings).root)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("serving on %s: anyone who can reach this computer on port %s can use the app", args.host,
                    args.port)
    windows = dataclasses.replace(DEFAULT_WINDOWS, tta=args.tta)
    log.info("cellbench app for %s on http://%s:%s (Ctrl+C stops it%s)", results, args.host, args.port,
             f"; results copied to {args.keep}" if args.keep else "; nothing is kept after it stops")
    serve(_existing(results, "train"), args.host, args.port, args.device, windows,
          MAX_PIXELS if args.max_pixels is None else args.max_pixels,
          Path(args.keep) if args.keep else None)


def cmd_fetch_weights(args, settings: Settings):
    from cellbench.training import weights
    layout, train_settings = _layout(settings), settings.train
    if not train_settings.encoder_weights:
        raise ConfigError("train.encoder_weights is null: there are no pretrained weights to fetch")
    cache = Path(args.cache or layout.weights_cache)
    weights.fetch(train_settings.encoder, train_settings.encoder_weights, cache,
                  Path(args.marker or layout.weights_marker(train_settings.encoder, train_settings.encoder_weights)))
    log.info("%s weights of %s are in %s", train_settings.encoder_weights, train_settings.encoder, cache)


def cmd_export(args, settings: Settings):
    from cellbench.export.export import benchmark_scores, choose, export, require
    from cellbench.export.parity import PARITY_IMAGES
    from cellbench.inference.inputs import find_images
    require(args.format)  # a missing export extra is said before anything is loaded
    layout, chosen = _layout(settings), settings.infer
    checkpoints = args.checkpoints
    if not checkpoints:  # the benchmark's: the architecture's folds, or every architecture's for best
        archs = settings.train.architectures if args.arch == "best" else [args.arch]
        checkpoints = [layout.checkpoint(a, k) for a in archs for k in range(settings.split.folds)]
    summary = None
    if args.arch == "best" or args.summary:
        summary = pd.read_parquet(_existing(args.summary or layout.summary, "aggregate"))
    arch, chosen_checkpoints = choose([_existing(c, "train") for c in checkpoints], args.arch, chosen.folds, summary)
    out = Path(args.out or layout.export(args.arch, args.format))
    tta = chosen.tta if chosen.is_sent("tta") else "none"
    with tempfile.TemporaryDirectory(prefix="cellbench-export-") as tmp:
        if args.images:
            images = find_images(args.images)
        elif (Path(layout.data) / "images").is_dir() and any((Path(layout.data) / "images").iterdir()):
            images = find_images(str(Path(layout.data) / "images"))
        else:  # nothing ingested: the synthetic demo images (numbers, not looks, are compared)
            log.info("no ingested images in %s: checking the exported files on demo images", layout.data)
            demo.generate(Path(tmp) / "demo", n_images=PARITY_IMAGES)
            images = find_images(str(Path(tmp) / "demo"))
        record = export(chosen_checkpoints, args.format, out, images[:PARITY_IMAGES], chosen.tile_size,
                        chosen.overlap, tta, benchmark_scores(summary, arch), tuple(args.author or ("cellbench",)),
                        args.license, args.zip, settings.data.max_pixels)
    worst = max(result["max_abs_diff"] for result in record["parity"]["results"].values())
    log.info("%s (%d folds) as %s in %s; largest difference from cellbench's probabilities %.2e", arch,
             len(record["folds"]), args.format, out, worst)


def cmd_run_info(args, settings: Settings):
    from cellbench import provenance
    from cellbench.fsutil import staged_dir
    from cellbench.training import train
    config = settings.sent()
    selection = config.get("train", {}).get("selection")
    with staged_dir(Path(args.out or _layout(settings).run_info)) as stage:
        (stage / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        record = provenance.record()
        if selection:
            record["model_selection"] = {"selection": selection, "protocol": train.protocol_label(selection)}
        (stage / "provenance.json").write_text(json.dumps(record, indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellbench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cellbench {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", action="append", type=Path, help="config YAML (repeatable)")
    common.add_argument("--config-json", help="inline JSON merged over the config files")
    common.add_argument("--settings", help="JSON of exactly the settings this step reads, nothing filled in "
                                           "(what the workflow passes)")
    common.add_argument("-v", "--verbose", action="store_true")
    steps = parser.add_subparsers(dest="step", required=True, metavar="STEP")

    def step(name, func, help_text):
        sub = steps.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(func=func)
        return sub

    sub = step("demo", cmd_demo, "generate the synthetic demo dataset (LabelMe JSON + PNG)")
    sub.add_argument("--out", help="folder for images and JSON (default: results/<dataset>/demo_input/annotations)")
    sub.add_argument("--metadata", help="per-image cell-type CSV (default: beside the annotations folder, "
                                        "or <out>/cell_types.csv when --out is given)")
    sub.add_argument("--n-images", type=int, default=demo.N_IMAGES)
    sub.add_argument("--size", type=int, default=128)
    sub.add_argument("--seed", type=int, default=0)
    sub = step("validate", cmd_validate, "check every annotation like a linter (exit 1 on problems); "
               "also lists copies of one image (not errors: split puts them into one fold)")
    sub.add_argument("annotations", nargs="?", type=Path,
                     help="annotation folder (or RLE CSV) to check instead of the config's data.annotations")
    sub.add_argument("--format", choices=list(FORMATS))
    sub.add_argument("--out", help="write the summary line (and the copies found) here when there is no problem")
    step("check", cmd_check, "check a configuration in seconds (folds, classes, scope, every model) before a run")
    sub = step("ingest", cmd_ingest, "annotations -> images, class maps, instance maps, manifest")
    sub.add_argument("--annotations", help="annotation folder (or RLE CSV) instead of the config's data.annotations")
    sub.add_argument("--out")
    sub = step("split", cmd_split, "grouped (stratified) K-fold split -> splits.parquet")
    sub.add_argument("--manifest")
    sub.add_argument("--metadata", help="per-image metadata CSV (default: split.metadata, or the demo's cell "
                                        "types); an empty string: none")
    sub.add_argument("--out")
    sub = step("augment", cmd_augment, "rotation/flip variants of every sample")
    sub.add_argument("--data")
    sub.add_argument("--out")
    sub = step("train", cmd_train, "train one architecture on one fold (resumes after a SIGTERM)")
    for option in ("--data", "--augmented", "--splits", "--out"):
        sub.add_argument(option)
    sub.add_argument("--resume-dir", help="where a SIGTERM saves the resumable state "
                                          "(default: results/<dataset>/resume/<arch>/fold<k>)")
    sub.add_argument("--weights-cache", help="pretrained weights, read offline (default: results/weights)")
    sub.add_argument("--resume-every-seconds", type=float,
                     help="save a resumable state at most this often (default: train.resume_every_minutes)")
    sub.add_argument("--threads", type=int, default=1)
    sub.add_argument("--fraction", type=_fraction, default=1.0,
                     help="train on this share of the fold's training groups (annotation budget, default 1)")
    sub = step("predict", cmd_predict, "out-of-fold class maps of one fold")
    for option in ("--checkpoint", "--data", "--splits", "--out"):
        sub.add_argument(option)
    sub = step("evaluate", cmd_evaluate, "semantic, instance and object metrics per image of one fold")
    for option in ("--predictions", "--data", "--splits", "--out", "--instances-out", "--objects-out"):
        sub.add_argument(option)
    sub.add_argument("--threads", type=int, default=1, help="threads scoring the parts of each image side by side")
    sub.add_argument("--fraction", type=_fraction, help="the annotation budget the model was trained on: a "
                                                        "`fraction` column in the semantic table")
    for sub in (steps.choices["train"], steps.choices["predict"], steps.choices["evaluate"]):
        sub.add_argument("--arch", required=True)
        sub.add_argument("--fold", type=int, required=True)
    sub = step("measure", cmd_measure, "per-cell shape and intensity of one fold's out-of-fold predictions "
               "(--arch, --fold) or of the expert masks (--reference)")
    sub.add_argument("--reference", action="store_true", help="measure the expert masks of every image")
    sub.add_argument("--arch")
    sub.add_argument("--fold", type=int)
    for option in ("--predictions", "--data", "--splits", "--out"):
        sub.add_argument(option)
    sub = step("measure-summary", cmd_measure_summary, "all measurements -> cells.parquet, the fidelity of each "
               "architecture's measurements and the features per cell type")
    sub.add_argument("--cells", nargs="+", help="the measure step's tables (default: the reference and every "
                                                "architecture x fold)")
    sub.add_argument("--architectures", nargs="+", help="the architectures compared (default: train.architectures, "
                                                        "or those in the --cells tables)")
    for option in ("--splits", "--out-cells", "--out-fidelity", "--out-by-type"):
        sub.add_argument(option)
    sub = step("measure-report", cmd_measure_report, "violins and tables of the key features per cell type, "
               "Bland-Altman plots and the fidelity ranking of the architectures")
    for option in ("--cells", "--fidelity", "--by-type"):
        sub.add_argument(option)
    sub.add_argument("--out", help="folder for every figure and table (default: results/<dataset>/report)")
    from cellbench.report import MEASUREMENT_FIGURES, MEASUREMENT_TABLES
    for name in (*MEASUREMENT_FIGURES, *MEASUREMENT_TABLES):
        sub.add_argument("--out-" + name.replace(".", "-").replace("_", "-"), dest="out_" + name.replace(".", "_"),
                         help=f"where to write {name} (default: in --out)")
    sub = step("aggregate", cmd_aggregate, "all folds' tables, the cross-validated summaries and statistics")
    for option in ("--metrics", "--instance-metrics", "--object-metrics"):
        sub.add_argument(option, nargs="+", help="the per-fold tables (default: every architecture x fold)")
    sub.add_argument("--predictions", nargs="+", help="out-of-fold prediction folders, for their calibration bins "
                                                      "(default: every architecture x fold)")
    for option in ("--out-metrics", "--out-instance-metrics", "--out-object-metrics", "--out-summary",
                   "--out-instance-summary", "--out-stats", "--out-calibration"):
        sub.add_argument(option)
    sub = step("report", cmd_report, "figures and model-comparison tables")
    for option in ("--summary", "--metrics", "--instance-summary", "--stats", "--data", "--splits",
                   "--instance-metrics", "--object-metrics", "--calibration"):
        sub.add_argument(option)
    sub.add_argument("--cost", help="cost.parquet, shown on index.html (default: not shown)")
    sub.add_argument("--extra-figures", nargs="+", help="other steps' figures (cost_accuracy.png, learning_curve.png) "
                                                        "to show on index.html")
    sub.add_argument("--histories", nargs="+", help="training histories (default: every architecture x fold)")
    sub.add_argument("--predictions", nargs="+", help="out-of-fold prediction folders (default: every "
                                                      "architecture x fold)")
    sub.add_argument("--out", help="folder for every figure and table (default: results/<dataset>/report)")
    from cellbench.report import FIGURES, TABLES
    for name in (*FIGURES, *TABLES):
        sub.add_argument("--out-" + name.replace(".", "-").replace("_", "-"), dest="out_" + name.replace(".", "_"),
                         help=f"where to write {name} (default: in --out)")
    sub = step("cost", cmd_cost, "what each architecture costs beside what it scores: parameters, multiply-adds, "
               "training time and memory per fold, prediction speed; the cost-accuracy figure")
    for option, made in (("--checkpoints", "model.pt"), ("--train-benchmarks", "train jobs' Snakemake benchmark"),
                         ("--predict-benchmarks", "predict jobs' Snakemake benchmark"), ("--histories", "history")):
        sub.add_argument(option, nargs="+", help=f"the {made} files, architecture-major then fold "
                                                 "(default: every architecture x fold)")
    for option in ("--summary", "--splits", "--out-table", "--out-figure"):
        sub.add_argument(option)
    sub = step("learning-curve", cmd_learning_curve, "the annotation budget: CV Dice against the training images "
               "(train.fractions), a table and a figure")
    sub.add_argument("--budget-metrics", nargs="+", required=True,
                     help="the budget models' semantic tables (`cellbench evaluate --fraction`)")
    for option, what in (("--metrics", "metrics.parquet of the main run (fraction 1)"),
                         ("--summary", "summary.parquet (the order of the architectures)"), ("--splits", "the folds"),
                         ("--out-table", "learning_curve.parquet"), ("--out-figure", "learning_curve.png")):
        sub.add_argument(option, help=what)
    sub = step("export-labelme", cmd_export_labelme, "class maps (e.g. predictions) -> LabelMe JSON for correction")
    sub.add_argument("--arch", help="export this architecture's out-of-fold predictions")
    sub.add_argument("--masks", nargs="+", help="or: folders of class-index PNGs (0..C-1 in `classes` order)")
    sub.add_argument("--images", help="folder of the images, matched by file stem (default: the ingested images)")
    sub.add_argument("--out", help="output folder (default: results/<dataset>/labelme/<arch>, or <masks>/labelme)")
    sub.add_argument("--tolerance", type=float, default=1.0, help="polygon simplification in pixels (default 1)")
    sub = step("infer", cmd_infer, "segment new images with the fold ensemble of the chosen architectures")
    sub.add_argument("--images", nargs="+", help="image files, folders or glob patterns (default: infer.images)")
    sub.add_argument("--checkpoints", nargs="+", help="model.pt files to choose from (default: every architecture "
                                                      "x fold of the benchmark)")
    sub.add_argument("--summary", help="summary.parquet, for infer.architectures: [best]")
    sub.add_argument("--data", help="the ingested annotated images the object rules are learned from (default: "
                                    "results/<dataset>/data; without them only evaluate.objects' own min_size applies)")
    sub.add_argument("--name", default="default", help="run name: results/<dataset>/infer/<name> (default: default)")
    sub.add_argument("--out", help="output folder (default: results/<dataset>/infer/<name>)")
    sub = step("app", cmd_app, "a local web page (Gradio, the `app` extra): drop images, get cells, measurements "
               "and LabelMe files from the benchmark's trained models")
    sub.add_argument("--results", help="results/<dataset> of a finished benchmark (default: from the config)")
    sub.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this computer only)")
    sub.add_argument("--port", type=int, default=7860)
    sub.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    sub.add_argument("--tta", default="none", choices=["none", "flips", "d4"], help="test-time augmentation")
    sub.add_argument("--max-pixels", type=int,
                     help="larger images are refused with a message (default: the app's MAX_PIXELS, 40 million)")
    sub.add_argument("--keep", help="copy every result file here (default: nothing is kept after the app stops)")
    sub = step("fetch-weights", cmd_fetch_weights, "download train.encoder_weights once (on a host with internet)")
    sub.add_argument("--cache", help="cache folder (default: results/weights)")
    sub.add_argument("--marker", help="file written when the weights are in the cache")
    step("run-info", cmd_run_info, "record the effective config and package versions").add_argument("--out")
    from cellbench.export import FORMATS as EXPORT_FORMATS
    sub = step("export", cmd_export, "the fold ensemble of one architecture as ONNX or TorchScript files or a "
               "BioImage Model Zoo package (the `export` extra), checked against cellbench's own probabilities")
    sub.add_argument("--arch", required=True, help="an architecture, or best: the CV winner in summary.parquet")
    sub.add_argument("--format", required=True, choices=EXPORT_FORMATS)
    sub.add_argument("--checkpoints", nargs="+", help="model.pt files to choose from (default: the architecture's "
                                                      "folds of the benchmark; every architecture's for best)")
    sub.add_argument("--summary", help="summary.parquet: the CV winner for best, and the scores recorded")
    sub.add_argument("--images", nargs="+", help="real images (files, folders or glob patterns) whose first few "
                                                 "check the exported files (default: the ingested images, or demo "
                                                 "images)")
    sub.add_argument("--out", help="output folder (default: results/<dataset>/export/<arch>/<format>)")
    sub.add_argument("--author", action="append", help="an author of the BioImage Model Zoo package (repeatable)")
    sub.add_argument("--license", default="CC-BY-4.0", help="SPDX license of the package (default CC-BY-4.0)")
    sub.add_argument("--zip", action="store_true", help="bioimageio: also write the package as one .zip")
    return parser


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is when a record is written (not the stream of the first call)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def main(argv: list[str] | None = None) -> int:
    """Run one step. Problems with the inputs exit 1 and configuration problems exit 2, each with one
    clear message; anything else is a bug and keeps its traceback."""
    args = build_parser().parse_args(argv)
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler], force=True)
    try:
        settings = _load_settings(args)
        status = args.func(args, settings)
    except (InputError, OutputError) as err:
        print(f"cellbench {args.step}: {err}", file=sys.stderr)
        return 1
    except Preempted as err:
        print(f"cellbench {args.step}: preempted: {err}; run the same command again to resume", file=sys.stderr)
        return Preempted.exit_status
    except (ConfigError, WeightsUnavailable) as err:
        print(f"cellbench {args.step}: error: {err}", file=sys.stderr)
        return 2
    return status or 0
