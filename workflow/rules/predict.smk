# Out-of-fold class maps: every validation image of a fold, predicted by that fold's model.


rule predict:
    input:
        checkpoint=L.checkpoint("{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        directory(L.predictions("{arch}", "{fold}")),
    log:
        L.log("predict", "{arch}", "fold{fold}"),
    benchmark:
        L.benchmark("predict", "{arch}", "fold{fold}")
    conda:
        ENV
    threads: 1
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


# On request (`snakemake results/<dataset>/labelme/<arch>`): one architecture's out-of-fold
# predictions as LabelMe files, to correct in LabelMe instead of drawing from scratch.
rule export_labelme:
    input:
        predictions=expand(L.predictions("{{arch}}", "{fold}"), fold=FOLDS),
        data=L.data,
    output:
        directory(L.labelme_export("{arch}")),
    log:
        L.log("export_labelme", "{arch}"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "classes",
            "class_priority",
            data={"max_pixels": config["data"]["max_pixels"]},
        ),
        images=lambda wildcards, input: os.path.join(input.data, "images"),
    shell:
        "python -m cellbench export-labelme --settings {params.settings:q} --masks {input.predictions:q} "
        "--images {params.images:q} --out {output:q} > {log:q} 2>&1"
