# Grouped (optionally stratified) K-fold split, written once and read by every later step.


rule split:
    localrule: True
    input:
        unpack(split_inputs),
    output:
        L.splits,
    params:
        settings=settings("dataset", "results", "split", data={"demo": config["data"]["demo"]}),
        manifest=lambda wildcards, input: os.path.join(input.data, "manifest.parquet"),
    log:
        L.log("split"),
    conda:
        ENV
    shell:
        "python -m cellbench split --settings {params.settings:q} --manifest {params.manifest:q} "
        "--out {output:q} > {log:q} 2>&1"
