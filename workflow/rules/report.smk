# Figures and the model-comparison table, declared for `snakemake --report`.


rule report:
    input:
        summary=L.summary,
        metrics=L.metrics,
        instance_summary=L.instance_summary,
        stats=L.stats,
        histories=expand(L.history("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        predictions=expand(L.predictions("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        data=L.data,
        splits=L.splits,
        instance_metrics=L.instance_metrics,
        object_metrics=L.object_metrics,
        calibration=L.calibration,
        cost=L.cost,
        extra_figures=extra_figures(),
    output:
        dice_by_architecture=report(
            os.path.join(L.report, "dice_by_architecture.png"),
            caption="../report/dice_by_architecture.rst",
            category="1. Model comparison",
        ),
        comparison_html=report(
            os.path.join(L.report, "model_comparison.html"),
            caption="../report/model_comparison.rst",
            category="1. Model comparison",
        ),
        dice_by_class=report(
            os.path.join(L.report, "dice_by_class.png"),
            caption="../report/dice_by_class.rst",
            category="2. Per-image scores",
        ),
        training_curves=report(
            os.path.join(L.report, "training_curves.png"),
            caption="../report/training_curves.rst",
            category="3. Training",
        ),
        overlays=report(
            os.path.join(L.report, "overlays.png"),
            caption="../report/overlays.rst",
            category="4. Predictions",
        ),
        dice_by_stratum=report(
            os.path.join(L.report, "dice_by_stratum.png"),
            caption="../report/dice_by_stratum.rst",
            category="2. Per-image scores",
        ),
        worst_cases=report(
            os.path.join(L.report, "worst_cases.png"),
            caption="../report/worst_cases.rst",
            category="4. Predictions",
        ),
        error_types=report(
            os.path.join(L.report, "error_types.png"),
            caption="../report/error_types.rst",
            category="2. Per-image scores",
        ),
        calibration=report(
            os.path.join(L.report, "calibration.png"),
            caption="../report/calibration.rst",
            category="2. Per-image scores",
        ),
        comparison_md=os.path.join(L.report, "model_comparison.md"),
        index=report(
            os.path.join(L.report, "index.html"),
            caption="../report/index.rst",
            category="1. Model comparison",
        ),
    log:
        L.log("report"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings("dataset", "report", "classes", "evaluate"),
    shell:
        "python -m cellbench report --settings {params.settings:q} --summary {input.summary:q} "
        "--metrics {input.metrics:q} --instance-summary {input.instance_summary:q} --stats {input.stats:q} "
        "--histories {input.histories:q} --predictions {input.predictions:q} --data {input.data:q} "
        "--splits {input.splits:q} --out-dice-by-architecture-png {output.dice_by_architecture:q} "
        "--out-dice-by-class-png {output.dice_by_class:q} --out-training-curves-png {output.training_curves:q} "
        "--out-overlays-png {output.overlays:q} --out-dice-by-stratum-png {output.dice_by_stratum:q} "
        "--out-worst-cases-png {output.worst_cases:q} --out-error-types-png {output.error_types:q} "
        "--out-calibration-png {output.calibration:q} --instance-metrics {input.instance_metrics:q} "
        "--object-metrics {input.object_metrics:q} --calibration {input.calibration:q} --cost {input.cost:q} "
        "--extra-figures {input.extra_figures:q} "
        "--out-model-comparison-md {output.comparison_md:q} --out-index-html {output.index:q} "
        "--out-model-comparison-html {output.comparison_html:q} > {log:q} 2>&1"


# What each architecture costs beside what it scores (parameters, multiply-adds, training time and
# memory per fold from the jobs' benchmark files, prediction speed) and the cost-accuracy figure.
rule cost:
    input:
        checkpoints=expand(L.checkpoint("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        train=expand(
            L.benchmark("train", "{arch}", "fold{fold}"), arch=ARCHS, fold=FOLDS
        ),
        predict=expand(
            L.benchmark("predict", "{arch}", "fold{fold}"), arch=ARCHS, fold=FOLDS
        ),
        histories=expand(L.history("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        summary=L.summary,
        splits=L.splits,
    output:
        table=L.cost,
        figure=report(
            os.path.join(L.report, "cost_accuracy.png"),
            caption="../report/cost_accuracy.rst",
            category="1. Model comparison",
        ),
    log:
        L.log("cost"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset", "split", train={**train_settings(), "architectures": ARCHS}
        ),
    shell:
        "python -m cellbench cost --settings {params.settings:q} --checkpoints {input.checkpoints:q} "
        "--train-benchmarks {input.train:q} --predict-benchmarks {input.predict:q} "
        "--histories {input.histories:q} --summary {input.summary:q} --splits {input.splits:q} "
        "--out-table {output.table:q} --out-figure {output.figure:q} > {log:q} 2>&1"
