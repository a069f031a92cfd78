# The annotation budget (train.fractions): every architecture x fold trained again on a nested share
# of the fold's training groups, predicted and scored on the same out-of-fold images; then the
# learning curve. Fraction 1 is the main run's models.


rule train_budget:
    input:
        unpack(weights_inputs),
        data=L.data,
        augmented=L.augmented,
        splits=L.splits,
    output:
        checkpoint=L.budget_checkpoint("{fraction}", "{arch}", "{fold}"),
        history=L.budget_history("{fraction}", "{arch}", "{fold}"),
    log:
        L.log("train_budget", "{fraction}", "{arch}", "fold{fold}"),
    benchmark:
        L.benchmark("train_budget", "{fraction}", "{arch}", "fold{fold}")
    conda:
        ENV
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        resume_every_seconds=round(60 * config["train"]["resume_every_minutes"]),
    params:
        settings=lambda wildcards: settings(
            "dataset",
            "classes",
            train=train_settings(),
            **family_settings(wildcards.arch),
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.checkpoint),
        resume_dir=lambda wildcards: L.budget_resume_dir(
            wildcards.fraction, wildcards.arch, wildcards.fold
        ),
        weights_cache=lambda wildcards, input: (
            os.path.dirname(input.weights)
            if "weights" in input.keys()
            else L.weights_cache
        ),
    shell:
        "exec python -m cellbench train --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--fold {wildcards.fold:q} --fraction {wildcards.fraction:q} --data {input.data:q} "
        "--augmented {input.augmented:q} --splits {input.splits:q} --out {params.out_dir:q} "
        "--resume-dir {params.resume_dir:q} --weights-cache {params.weights_cache:q} --threads {threads:q} "
        "--resume-every-seconds {resources.resume_every_seconds:q} > {log:q} 2>&1"


rule predict_budget:
    input:
        checkpoint=L.budget_checkpoint("{fraction}", "{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        directory(L.budget_predictions("{fraction}", "{arch}", "{fold}")),
    log:
        L.log("predict_budget", "{fraction}", "{arch}", "fold{fold}"),
    conda:
        ENV
    params:
        settings=settings(
            "dataset",
            train={"device": config["train"]["device"]},
            evaluate=object_settings(),
            infer=window_settings(),
        ),
    shell:
        "python -m cellbench predict --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--fold {wildcards.fold:q} --checkpoint {input.checkpoint:q} --data {input.data:q} "
        "--splits {input.splits:q} --out {output:q} > {log:q} 2>&1"


rule evaluate_budget:
    input:
        predictions=L.budget_predictions("{fraction}", "{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        semantic=L.budget_metrics("{fraction}", "{arch}", "{fold}"),
        instances=L.budget_metrics("{fraction}", "{arch}", "{fold}", "instance_metrics"),
        objects=L.budget_metrics("{fraction}", "{arch}", "{fold}", "object_metrics"),
    log:
        L.log("evaluate_budget", "{fraction}", "{arch}", "fold{fold}"),
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
        "--fold {wildcards.fold:q} --fraction {wildcards.fraction:q} --predictions {input.predictions:q} "
        "--data {input.data:q} --splits {input.splits:q} --out {output.semantic:q} "
        "--instances-out {output.instances:q} --objects-out {output.objects:q} --threads {threads:q} "
        "> {log:q} 2>&1"


rule learning_curve:
    input:
        budget_metrics=expand(
            L.budget_metrics("{fraction}", "{arch}", "{fold}"),
            fraction=BUDGETS,
            arch=ARCHS,
            fold=FOLDS,
        ),
        metrics=L.metrics,
        summary=L.summary,
        splits=L.splits,
    output:
        table=L.learning_curve,
        figure=report(
            os.path.join(L.report, "learning_curve.png"),
            caption="../report/learning_curve.rst",
            category="3. Training",
        ),
    log:
        L.log("learning_curve"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset", "evaluate", train={**train_settings(), "architectures": ARCHS}
        ),
    shell:
        "python -m cellbench learning-curve --settings {params.settings:q} "
        "--budget-metrics {input.budget_metrics:q} --metrics {input.metrics:q} --summary {input.summary:q} "
        "--splits {input.splits:q} --out-table {output.table:q} --out-figure {output.figure:q} > {log:q} 2>&1"
