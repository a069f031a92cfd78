# Offline rotation/flip variants of every sample (training reads only its fold's training samples).


rule augment:
    input:
        L.data,
    output:
        directory(L.augmented),
    params:
        settings=settings("dataset", "augment"),
    log:
        L.log("augment"),
    conda:
        ENV
    shell:
        "python -m cellbench augment --config-json {params.settings:q} --data {input} --out {output} > {log} 2>&1"
