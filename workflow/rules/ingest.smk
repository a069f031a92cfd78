# Demo data (optional), validation (every problem of every file, like a linter; copies of one image
# are listed, not errors) and ingest: annotations -> images, class maps, instance maps, manifest.

if config["data"]["demo"]:

    rule demo_dataset:
        output:
            annotations=demo_files(),
            metadata=L.demo_metadata,
        log:
            L.log("demo"),
        localrule: True
        conda:
            ENV
        params:
            folder=lambda wildcards, output: os.path.dirname(output.annotations[0]),
        shell:
            "python -m cellbench demo --out {params.folder:q} --metadata {output.metadata:q} > {log:q} 2>&1"


rule validate:
    input:
        unpack(ingest_inputs),
    output:
        L.validation,
    log:
        L.log("validate"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset",
            "results",
            "data",
            "classes",
            "class_priority",
        ),
        annotations=annotation_source,
    shell:
        "python -m cellbench validate {params.annotations:q} --settings {params.settings:q} "
        "--out {output:q} > {log:q} 2>&1"


rule ingest:
    input:
        unpack(ingest_inputs),
        validation=L.validation,
    output:
        directory(L.data),
    log:
        L.log("ingest"),
    conda:
        ENV
    params:
        settings=settings("dataset", "results", "data", "classes", "class_priority"),
        annotations=annotation_source,
    shell:
        "python -m cellbench ingest --settings {params.settings:q} --annotations {params.annotations:q} "
        "--out {output:q} > {log:q} 2>&1"


rule run_info:
    output:
        directory(L.run_info),
    log:
        L.log("run_info"),
    localrule: True
    conda:
        ENV
    params:
        settings=json.dumps(config, sort_keys=True),
    shell:
        "python -m cellbench run-info --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
