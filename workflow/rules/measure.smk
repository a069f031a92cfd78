# Per-cell measurements: the expert masks and each fold's out-of-fold predictions; then one cells
# table, the fidelity of every architecture's measurements and the features per cell type.


rule measure_reference:
    input:
        data=L.data,
        splits=L.splits,
    output:
        L.reference_cells,
    log:
        L.log("measure", "reference"),
    conda:
        ENV
    threads: 1
    params:
        settings=settings(
            "dataset",
            "classes",
            "measure",
            evaluate={"objects": config["evaluate"]["objects"]},
        ),
    shell:
        "python -m cellbench measure --settings {params.settings:q} --reference --data {input.data:q} "
        "--splits {input.splits:q} --out {output:q} > {log:q} 2>&1"


rule measure:
    input:
        predictions=L.predictions("{arch}", "{fold}"),
        data=L.data,
        splits=L.splits,
    output:
        L.fold_cells("{arch}", "{fold}"),
    log:
        L.log("measure", "{arch}", "fold{fold}"),
    conda:
        ENV
    threads: 1
    params:
        settings=settings(
            "dataset",
            "classes",
            "measure",
            evaluate={"objects": config["evaluate"]["objects"]},
        ),
    shell:
        "python -m cellbench measure --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--fold {wildcards.fold:q} --predictions {input.predictions:q} --data {input.data:q} "
        "--splits {input.splits:q} --out {output:q} > {log:q} 2>&1"


rule measure_summary:
    input:
        cells=[L.reference_cells]
        + expand(L.fold_cells("{arch}", "{fold}"), arch=ARCHS, fold=FOLDS),
        splits=L.splits,
    output:
        cells=L.cells,
        fidelity=L.fidelity,
        by_type=L.cells_by_type,
    log:
        L.log("measure_summary"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset",
            evaluate={
                "bootstrap_resamples": config["evaluate"]["bootstrap_resamples"],
                "seed": config["evaluate"]["seed"],
            },
        ),
        architectures=ARCHS,
    shell:
        "python -m cellbench measure-summary --settings {params.settings:q} --cells {input.cells:q} "
        "--architectures {params.architectures:q} "
        "--splits {input.splits:q} --out-cells {output.cells:q} --out-fidelity {output.fidelity:q} "
        "--out-by-type {output.by_type:q} > {log:q} 2>&1"


rule report_measurements:
    input:
        cells=L.cells,
        fidelity=L.fidelity,
        by_type=L.cells_by_type,
    output:
        violins=report(
            os.path.join(L.report, "cell_features_by_type.png"),
            caption="../report/cell_features_by_type.rst",
            category="5. Measurements",
        ),
        bland_altman=report(
            os.path.join(L.report, "bland_altman.png"),
            caption="../report/bland_altman.rst",
            category="5. Measurements",
        ),
        fidelity_html=report(
            os.path.join(L.report, "measurement_fidelity.html"),
            caption="../report/measurement_fidelity.rst",
            category="5. Measurements",
        ),
        fidelity_md=os.path.join(L.report, "measurement_fidelity.md"),
        types_html=os.path.join(L.report, "cell_features_by_type.html"),
        types_md=os.path.join(L.report, "cell_features_by_type.md"),
    log:
        L.log("report_measurements"),
    localrule: True
    conda:
        ENV
    params:
        settings=settings(
            "dataset",
            "classes",
            evaluate={"objects": config["evaluate"]["objects"]},
            train={"selection": config["train"]["selection"]},
        ),
    shell:
        "python -m cellbench measure-report --settings {params.settings:q} --cells {input.cells:q} "
        "--fidelity {input.fidelity:q} --by-type {input.by_type:q} "
        "--out-cell-features-by-type-png {output.violins:q} --out-bland-altman-png {output.bland_altman:q} "
        "--out-measurement-fidelity-html {output.fidelity_html:q} --out-measurement-fidelity-md {output.fidelity_md:q} "
        "--out-cell-features-by-type-html {output.types_html:q} --out-cell-features-by-type-md {output.types_md:q} "
        "> {log:q} 2>&1"
