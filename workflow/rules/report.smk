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
    output:
        report(
            os.path.join(L.report, "dice_by_architecture.png"),
            caption="../report/dice_by_architecture.rst",
            category="1. Model comparison",
        ),
        report(
            os.path.join(L.report, "model_comparison.html"),
            caption="../report/model_comparison.rst",
            category="1. Model comparison",
        ),
        report(
            os.path.join(L.report, "dice_by_class.png"),
            caption="../report/dice_by_class.rst",
            category="2. Per-image scores",
        ),
        report(
            os.path.join(L.report, "training_curves.png"),
            caption="../report/training_curves.rst",
            category="3. Training",
        ),
        report(
            os.path.join(L.report, "overlays.png"),
            caption="../report/overlays.rst",
            category="4. Predictions",
        ),
        os.path.join(L.report, "model_comparison.md"),
    log:
        L.log("report"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset",
            "results",
            "report",
            "classes",
            "evaluate",
            train={"architectures": ARCHS},
            split={"folds": len(FOLDS)},
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output[0]),
    shell:
        "python -m cellbench report --settings {params.settings:q} --out {params.out_dir:q} > {log:q} 2>&1"
