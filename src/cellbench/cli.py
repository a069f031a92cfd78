"""`cellbench <step>`: every workflow step, runnable without Snakemake.

Each step reads the configuration (`--config FILE`, repeatable, later files win; `--config-json`
for inline settings, as Snakemake passes them), fills in the schema defaults, and writes to the
standard layout under results/<dataset>/ unless paths are given.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import pandas as pd
import yaml

from cellbench import __version__, demo
from cellbench import config as configuration
from cellbench.errors import InputError, WeightsUnavailable
from cellbench.layout import Layout
from cellbench.resume import Preempted

log = logging.getLogger("cellbench")


def _load_config(args) -> dict:
    paths = args.config or []
    if not paths and not args.config_json and Path("config.yaml").is_file():
        paths = [Path("config.yaml")]
    overrides = json.loads(args.config_json) if args.config_json else None
    return configuration.load(*paths, overrides=overrides)


def _layout(config: dict) -> Layout:
    return Layout(config["results"], config["dataset"])


def cmd_demo(args, config):
    layout = _layout(config)
    out = args.out or layout.demo_annotations
    metadata = args.metadata or (None if args.out else layout.demo_metadata)
    files = demo.generate(Path(out), metadata, n_images=args.n_images, size=args.size, seed=args.seed)
    log.info("wrote %d demo images with LabelMe annotations to %s", len(files), out)


def cmd_ingest(args, config):
    from cellbench import ingest
    manifest = ingest.ingest(config, Path(args.out or _layout(config).data))
    log.info("%d images, %d objects, %d stray mask pixels", len(manifest), manifest["n_objects"].sum(),
             manifest["n_stray_pixels"].sum())


def cmd_validate(args, config):
    from cellbench import ingest
    from cellbench.fsutil import staged_file
    if args.annotations:
        config["data"].update(annotations=str(args.annotations), demo=False)
    if args.format:
        config["data"]["format"] = args.format
    good, problems = ingest.find_problems(config)
    encoding = sys.stdout.encoding or "utf-8"
    for problem in problems:  # a file name that is not valid text still prints, escaped
        print(str(problem).encode(encoding, "backslashreplace").decode(encoding))
    summary = (f"{good} images fine, {len(problems)} problem{'s' if len(problems) != 1 else ''} "
               f"({config['data']['format']}: {ingest.annotation_folder(config)})")
    print(summary)
    if args.out and not problems:
        with staged_file(Path(args.out)) as tmp:
            tmp.write_text(summary + "\n")
    return 1 if problems else 0


def cmd_split(args, config):
    from cellbench import split
    from cellbench.fsutil import write_parquet
    layout = _layout(config)
    manifest = pd.read_parquet(args.manifest or layout.manifest)
    splits = split.make_splits(manifest, config["split"], split.metadata_path(config))
    write_parquet(splits, Path(args.out or layout.splits))
    log.info("fold sizes: %s", splits.groupby("fold").size().to_dict())
    if config["split"]["stratify_column"]:
        log.info("strata per fold:\n%s", pd.crosstab(splits["stratum"], splits["fold"]))


def cmd_augment(args, config):
    from cellbench import augment
    layout = _layout(config)
    table = augment.augment(Path(args.data or layout.data), Path(args.out or layout.augmented),
                            config["augment"]["rotations"], config["augment"]["flip"])
    log.info("wrote %d variants of %d samples", len(table), table["sample_id"].nunique())


def cmd_train(args, config):
    if config["train"]["device"] != "cpu":
        from cellbench import gpus
        gpus.claim()  # before CUDA starts: one GPU per concurrent training job
    if config["train"]["encoder_weights"]:
        from cellbench import weights
        weights.use_cache(Path(args.weights_cache or _layout(config).weights_cache), offline=True)
        weights.require(config["train"]["encoder"], config["train"]["encoder_weights"])
    from cellbench import train
    layout = _layout(config)
    train.train_fold(config, args.arch, args.fold, Path(args.data or layout.data),
                     Path(args.augmented or layout.augmented), Path(args.splits or layout.splits),
                     Path(args.out or layout.model_dir(args.arch, args.fold)), threads=args.threads,
                     resume_dir=Path(args.resume_dir or layout.resume_dir(args.arch, args.fold)))


def cmd_predict(args, config):
    from cellbench import predict
    layout = _layout(config)
    splits = pd.read_parquet(args.splits or layout.splits)
    predict.predict_fold(Path(args.checkpoint or layout.checkpoint(args.arch, args.fold)),
                         Path(args.data or layout.data), splits, args.fold,
                         Path(args.out or layout.predictions(args.arch, args.fold)), config["train"]["device"],
                         config["evaluate"]["objects"])


def cmd_evaluate(args, config):
    from cellbench.evaluate import evaluate_predictions
    from cellbench.fsutil import write_parquet
    layout = _layout(config)
    splits = pd.read_parquet(args.splits or layout.splits)
    scores = evaluate_predictions(
        Path(args.data or layout.data), Path(args.predictions or layout.predictions(args.arch, args.fold)),
        splits, args.fold, config["classes"], config["evaluate"],
        {"dataset": config["dataset"], "arch": args.arch, "encoder": config["train"]["encoder"]},
        threads=args.threads)
    write_parquet(scores.semantic, Path(args.out or layout.fold_metrics(args.arch, args.fold)))
    write_parquet(scores.instances, Path(args.instances_out or layout.fold_instance_metrics(args.arch, args.fold)))
    write_parquet(scores.objects, Path(args.objects_out or layout.fold_object_metrics(args.arch, args.fold)))


def _all_folds(config, path_of) -> pd.DataFrame:
    """One table from the per-fold tables of every architecture and fold."""
    paths = [path_of(a, k) for a in config["train"]["architectures"] for k in range(config["split"]["folds"])]
    return pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)


def cmd_aggregate(args, config):
    from cellbench import stats
    from cellbench.aggregate import instance_ranking, ranking, summarise, summarise_instances
    from cellbench.fsutil import write_parquet
    layout = _layout(config)
    metrics = _all_folds(config, layout.fold_metrics)
    instances = _all_folds(config, layout.fold_instance_metrics)
    objects = _all_folds(config, layout.fold_object_metrics)
    summary = summarise(metrics)
    instance_summary = summarise_instances(instances, objects)
    settings = config["evaluate"]
    comparison = stats.compare(stats.per_image_values(metrics, instances, objects),
                               settings["bootstrap_resamples"], settings["seed"])
    for table, path in ((metrics, layout.metrics), (instances, layout.instance_metrics),
                        (objects, layout.object_metrics), (summary, layout.summary),
                        (instance_summary, layout.instance_summary), (comparison, layout.stats)):
        write_parquet(table, Path(path))
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        log.info("model comparison (CV Dice):\n%s", ranking(summary).round(4).to_string(index=False))
        log.info("instances:\n%s", instance_ranking(instance_summary).round(4).to_string(index=False))


def cmd_report(args, config):
    from cellbench import report
    layout = _layout(config)
    archs, folds = config["train"]["architectures"], range(config["split"]["folds"])
    histories = pd.concat([pd.read_parquet(layout.history(a, k)) for a in archs for k in folds],
                          ignore_index=True)
    report.make_report(pd.read_parquet(layout.summary), pd.read_parquet(layout.metrics), histories,
                       Path(layout.data), {(a, k): Path(layout.predictions(a, k)) for a in archs for k in folds},
                       pd.read_parquet(layout.splits), Path(args.out or layout.report),
                       config["report"]["overlay_samples"], pd.read_parquet(layout.instance_summary),
                       pd.read_parquet(layout.stats))


def cmd_export_labelme(args, config):
    from cellbench import labelme_export
    from cellbench.images import IMAGE_SUFFIXES
    layout = _layout(config)
    if args.masks:
        masks = sorted(Path(args.masks).glob("*.png"))
        out = Path(args.out or Path(args.masks) / "labelme")
    elif args.arch:
        folds = range(config["split"]["folds"])
        masks = sorted(p for k in folds for p in Path(layout.predictions(args.arch, k)).glob("*.png"))
        out = Path(args.out or layout.labelme_export(args.arch))
    else:
        raise ValueError("name a folder of class maps (--masks DIR) or an architecture whose predictions "
                         "to export (--arch NAME)")
    if not masks:
        raise ValueError("no class-map PNGs to export")
    image_dir = Path(args.images or Path(layout.data) / "images")
    images = {p.stem: p for p in sorted(image_dir.glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES}
    n = labelme_export.export(masks, images, out, config["classes"], config["class_priority"], args.tolerance,
                              config["data"]["max_pixels"])
    log.info("wrote %d LabelMe files to %s (images in %s)", n, out, image_dir)


def cmd_fetch_weights(args, config):
    from cellbench import weights
    layout, settings = _layout(config), config["train"]
    if not settings["encoder_weights"]:
        raise ValueError("train.encoder_weights is null: there are no pretrained weights to fetch")
    cache = Path(args.cache or layout.weights_cache)
    weights.fetch(settings["encoder"], settings["encoder_weights"], cache,
                  Path(args.marker or layout.weights_marker(settings["encoder"], settings["encoder_weights"])))
    log.info("%s weights of %s are in %s", settings["encoder_weights"], settings["encoder"], cache)


def cmd_run_info(args, config):
    from cellbench import provenance
    out = Path(args.out or _layout(config).run_info)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (out / "provenance.json").write_text(json.dumps(provenance.record(), indent=2) + "\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cellbench", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"cellbench {__version__}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", action="append", type=Path, help="config YAML (repeatable)")
    common.add_argument("--config-json", help="inline JSON merged over the config files")
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
    sub = step("validate", cmd_validate, "check every annotation like a linter (exit 1 on problems)")
    sub.add_argument("annotations", nargs="?", type=Path,
                     help="annotation folder (or RLE CSV) to check instead of the config's data.annotations")
    sub.add_argument("--format", choices=["labelme", "grey_masks", "class_index_png", "instance_folders", "rle_csv"])
    sub.add_argument("--out", help="write the one-line summary here when there is no problem")
    step("ingest", cmd_ingest, "annotations -> images, class maps, instance maps, manifest").add_argument("--out")
    sub = step("split", cmd_split, "grouped (stratified) K-fold split -> splits.parquet")
    sub.add_argument("--manifest")
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
    sub.add_argument("--threads", type=int, default=1)
    sub = step("predict", cmd_predict, "out-of-fold class maps of one fold")
    for option in ("--checkpoint", "--data", "--splits", "--out"):
        sub.add_argument(option)
    sub = step("evaluate", cmd_evaluate, "semantic, instance and object metrics per image of one fold")
    for option in ("--predictions", "--data", "--splits", "--out", "--instances-out", "--objects-out"):
        sub.add_argument(option)
    sub.add_argument("--threads", type=int, default=1, help="threads scoring the parts of each image side by side")
    for sub in (steps.choices["train"], steps.choices["predict"], steps.choices["evaluate"]):
        sub.add_argument("--arch", required=True)
        sub.add_argument("--fold", type=int, required=True)
    step("aggregate", cmd_aggregate, "all folds' tables, the cross-validated summaries and statistics")
    step("report", cmd_report, "figures and model-comparison tables").add_argument("--out")
    sub = step("export-labelme", cmd_export_labelme, "class maps (e.g. predictions) -> LabelMe JSON for correction")
    sub.add_argument("--arch", help="export this architecture's out-of-fold predictions")
    sub.add_argument("--masks", help="or: a folder of class-index PNGs (0..C-1 in `classes` order)")
    sub.add_argument("--images", help="folder of the images, matched by file stem (default: the ingested images)")
    sub.add_argument("--out", help="output folder (default: results/<dataset>/labelme/<arch>, or <masks>/labelme)")
    sub.add_argument("--tolerance", type=float, default=1.0, help="polygon simplification in pixels (default 1)")
    sub = step("fetch-weights", cmd_fetch_weights, "download train.encoder_weights once (on a host with internet)")
    sub.add_argument("--cache", help="cache folder (default: results/weights)")
    sub.add_argument("--marker", help="file written when the weights are in the cache")
    step("run-info", cmd_run_info, "record the effective config and package versions").add_argument("--out")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True)
    try:
        config = _load_config(args)
        status = args.func(args, config)
    except InputError as err:
        print(f"cellbench {args.step}: {err}", file=sys.stderr)
        return 1
    except Preempted as err:
        print(f"cellbench {args.step}: preempted: {err}; run the same command again to resume", file=sys.stderr)
        return Preempted.exit_status
    except (ValueError, FileNotFoundError, WeightsUnavailable) as err:
        print(f"cellbench {args.step}: error: {err}", file=sys.stderr)
        return 2
    return status or 0
