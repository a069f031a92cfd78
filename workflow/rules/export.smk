# On request (`snakemake results/<dataset>/export/<arch>/<format>`, <arch> an architecture or `best`,
# the CV winner): the fold ensemble as ONNX or TorchScript files or a BioImage Model Zoo package, with
# manifest.json; every file is checked against cellbench's own probabilities on ingested images.


rule export:
    input:
        unpack(export_inputs),
    output:
        directory(L.export("{arch}", "{format}")),
    log:
        L.log("export", "{arch}", "{format}"),
    wildcard_constraints:
        arch="|".join(re.escape(arch) for arch in [*ARCHS, "best"]),
        format="|".join(FORMATS),
    conda:
        EXPORT_ENV
    threads: 2
    params:
        settings=settings(
            data={"max_pixels": config["data"]["max_pixels"]},
            infer={
                key: config["infer"][key]
                for key in ("folds", "tile_size", "overlap", "tta")
            },
        ),
        summary=lambda wildcards, input: input.get("summary", ""),
        images=lambda wildcards, input: os.path.join(input.data, "images"),
    shell:
        "python -m cellbench export --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--format {wildcards.format:q} --checkpoints {input.checkpoints:q} --summary={params.summary:q} "
        "--images {params.images:q} --out {output:q} > {log:q} 2>&1"
