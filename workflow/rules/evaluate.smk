# Semantic, instance and object metrics per image for each fold; then the cross-validated
# summaries and the statistics comparing architectures.


rule evaluate:
    input:
        predictions=L.predictions("{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        semantic=L.fold_metrics("{arch}", "{fold}"),
        instances=L.fold_instance_metrics("{arch}", "{fold}"),
        objects=L.fold_object_metrics("{arch}", "{fold}"),
    log:
        L.log("evaluate", "{arch}", "fold{fold}"),
    conda:
        ENV
    threads: 2
    params:
        settings=settings(
            "dataset",
            "classes",
            "evaluate",
            train={
                "encoder": config["train"]["encoder"],
                "selection": config["train"]["selection"],
            },
        ),
    shell:
        "python -m cellbench evaluate --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--fold {wildcards.fold:q} --predictions {input.predictions:q} --data {input.data:q} "
        "--splits {input.splits:q} --out {output.semantic:q} --instances-out {output.instances:q} "
        "--objects-out {output.objects:q} --threads {threads:q} > {log:q} 2>&1"


rule aggregate:
    input:
        metrics=expand(L.fold_metrics("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        instance_metrics=expand(
            L.fold_instance_metrics("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS
        ),
        object_metrics=expand(
            L.fold_object_metrics("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS
        ),
        predictions=expand(L.predictions("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
    output:
        metrics=L.metrics,
        instance_metrics=L.instance_metrics,
        object_metrics=L.object_metrics,
        summary=L.summary,
        instance_summary=L.instance_summary,
        stats=L.stats,
        calibration=L.calibration,
    log:
        L.log("aggregate"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings("dataset", "evaluate"),
    shell:
        "python -m cellbench aggregate --settings {params.settings:q} --metrics {input.metrics:q} "
        "--instance-metrics {input.instance_metrics:q} --object-metrics {input.object_metrics:q} "
        "--predictions {input.predictions:q} --out-calibration {output.calibration:q} --out-metrics {output.metrics:q} --out-instance-metrics {output.instance_metrics:q} "
        "--out-object-metrics {output.object_metrics:q} --out-summary {output.summary:q} "
        "--out-instance-summary {output.instance_summary:q} --out-stats {output.stats:q} > {log:q} 2>&1"
