# On request (`snakemake results/<dataset>/infer/<name>`): new images (infer.images) segmented by the
# fold ensemble of the chosen architectures (`best` = the CV winner), with test-time augmentation.


rule infer:
    input:
        unpack(infer_inputs),
    output:
        directory(L.infer("{name}")),
    log:
        L.log("infer", "{name}"),
    conda:
        ENV
    threads: 2
    resources:
        gpu=1,
    params:
        settings=settings(
            "dataset",
            "classes",
            "class_priority",
            "infer",
            "measure",
            data={"max_pixels": config["data"]["max_pixels"]},
            evaluate=object_settings(),
        ),
        summary=lambda wildcards, input: input.get("summary", ""),
    shell:
        "python -m cellbench infer --settings {params.settings:q} --images {input.images:q} "
        "--checkpoints {input.checkpoints:q} --summary={params.summary:q} --data {input.data:q} --out {output:q} "
        "> {log:q} 2>&1"
