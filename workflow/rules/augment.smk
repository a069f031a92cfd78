# Offline rotation/flip variants of every sample (training reads only its fold's training samples).


rule augment:
    input:
        L.data,
    output:
        directory(L.augmented),
    log:
        L.log("augment"),
    conda:
        ENV
    params:
        settings=settings("dataset", "augment"),
    shell:
        "python -m cellbench augment --settings {params.settings:q} --data {input:q} --out {output:q} > {log:q} 2>&1"
