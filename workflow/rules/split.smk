# Grouped (optionally stratified) K-fold split, written once and read by every later step.


rule split:
    localrule: True
    input:
        unpack(split_inputs),
    output:
        L.splits,
    params:
        settings=settings("dataset", "results", "split", data={"demo": config["data"]["demo"]}),
    log:
        L.log("split"),
    conda:
        ENV
    shell:
        "python -m cellbench split --config-json {params.settings:q} --manifest {input.data}/manifest.parquet "
        "--out {output} > {log} 2>&1"
