# Grouped (optionally stratified) K-fold split, written once and read by every later step.


rule split:
    input:
        unpack(split_inputs),
    output:
        L.splits,
    log:
        L.log("split"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings("dataset", "split"),
        manifest=lambda wildcards, input: os.path.join(input.data, "manifest.parquet"),
        # the metadata CSV when there is one ("" = none: --metadata= keeps the empty value)
        metadata=lambda wildcards, input: input.get("metadata", ""),
    shell:
        "python -m cellbench split --settings {params.settings:q} --manifest {params.manifest:q} "
        "--metadata={params.metadata:q} --out {output:q} > {log:q} 2>&1"
