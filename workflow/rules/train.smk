# One fresh model per architecture x fold.


rule train:
    input:
        data=L.data,
        augmented=L.augmented,
        splits=L.splits,
    output:
        checkpoint=L.checkpoint("{arch}", "{fold}"),
        history=L.history("{arch}", "{fold}"),
    params:
        settings=lambda wildcards: settings("dataset", "classes", train=train_settings()),
        out_dir=lambda wildcards, output: os.path.dirname(output.checkpoint),
    threads: config["train"]["threads"]
    resources:
        gpu=1,
    log:
        L.log("train", "{arch}", "fold{fold}"),
    benchmark:
        L.benchmark("train", "{arch}", "fold{fold}")
    conda:
        ENV
    shell:
        "python -m cellbench train --config-json {params.settings:q} --arch {wildcards.arch} "
        "--fold {wildcards.fold} --data {input.data} --augmented {input.augmented} "
        "--splits {input.splits} --out {params.out_dir} --threads {threads} > {log} 2>&1"
