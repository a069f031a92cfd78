# Demo data (optional), validation (every problem of every file, like a linter; copies of one image
# are listed, not errors) and ingest: annotations -> images, class maps, instance maps, manifest.

if config["data"]["demo"]:

    rule demo_dataset:
        localrule: True
        output:
            annotations=demo_files(),
            metadata=L.demo_metadata,
        params:
            folder=lambda wildcards, output: os.path.dirname(output.annotations[0]),
        log:
            L.log("demo"),
        conda:
            ENV
        shell:
            "python -m cellbench demo --out {params.folder:q} --metadata {output.metadata:q} > {log:q} 2>&1"


rule validate:
    localrule: True
    input:
        ingest_inputs,
    output:
        L.validation,
    params:
        # group_near_duplicates: validate says whether near-duplicate images will share a fold
        settings=settings(
            "dataset",
            "results",
            "data",
            "classes",
            "class_priority",
            split={"group_near_duplicates": config["split"]["group_near_duplicates"]},
        ),
    log:
        L.log("validate"),
    conda:
        ENV
    shell:
        "python -m cellbench validate --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"


rule ingest:
    input:
        ingest_inputs,
        # validate runs first; rerunning it alone (e.g. a changed report wording) does not re-ingest
        ancient(L.validation),
    output:
        directory(L.data),
    params:
        settings=settings("dataset", "results", "data", "classes", "class_priority"),
    log:
        L.log("ingest"),
    conda:
        ENV
    shell:
        "python -m cellbench ingest --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"


rule run_info:
    localrule: True
    output:
        directory(L.run_info),
    params:
        settings=json.dumps(config, sort_keys=True),
    log:
        L.log("run_info"),
    conda:
        ENV
    shell:
        "python -m cellbench run-info --settings {params.settings:q} --out {output:q} > {log:q} 2>&1"
