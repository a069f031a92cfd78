# Metrics per image x class for each fold, then the cross-validated summary.


rule evaluate:
    input:
        predictions=L.predictions("{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        L.fold_metrics("{arch}", "{fold}"),
    params:
        settings=settings(
            "dataset", "classes", "evaluate", train={"encoder": config["train"]["encoder"]}
        ),
    log:
        L.log("evaluate", "{arch}", "fold{fold}"),
    conda:
        ENV
    shell:
        "python -m cellbench evaluate --config-json {params.settings:q} --arch {wildcards.arch} "
        "--fold {wildcards.fold} --predictions {input.predictions} --data {input.data} "
        "--splits {input.splits} --out {output} > {log} 2>&1"


rule aggregate:
    input:
        expand(L.fold_metrics("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
    output:
        metrics=L.metrics,
        summary=L.summary,
    log:
        L.log("aggregate"),
    conda:
        ENV
    shell:
        "python -m cellbench aggregate --inputs {input} --metrics-out {output.metrics} "
        "--summary-out {output.summary} > {log} 2>&1"
