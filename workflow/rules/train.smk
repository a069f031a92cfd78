# One fresh model per architecture x fold. A job stopped by SIGTERM (SLURM preemption, timeout
# warning) saves results/<dataset>/resume/<arch>/fold<k>/resume.pt; rerunning it continues there.


if config["train"]["encoder_weights"]:

    # Pretrained encoder weights, downloaded once where there is internet (a local rule);
    # training jobs then read them offline from the cache.
    rule fetch_weights:
        output:
            L.weights_marker(
                config["train"]["encoder"], config["train"]["encoder_weights"]
            ),
        log:
            L.log("fetch_weights"),
        localrule: True
        conda:
            ENV
        params:
            # what is fetched, only: another train setting must not refetch (and so retrain everything)
            settings=settings(
                "dataset",
                "results",
                train={
                    key: config["train"][key] for key in ("encoder", "encoder_weights")
                },
            ),
            cache=lambda wildcards, output: os.path.dirname(output[0]),
        shell:
            "python -m cellbench fetch-weights --settings {params.settings:q} --cache {params.cache:q} "
            "--marker {output:q} > {log:q} 2>&1"


rule train:
    input:
        unpack(weights_inputs),
        data=L.data,
        augmented=L.augmented,
        splits=L.splits,
    output:
        checkpoint=L.checkpoint("{arch}", "{fold}"),
        history=L.history("{arch}", "{fold}"),
    log:
        L.log("train", "{arch}", "fold{fold}"),
    benchmark:
        L.benchmark("train", "{arch}", "fold{fold}")
    conda:
        ENV
    threads: config["train"]["threads"]
    resources:
        gpu=1,
        # a runtime setting like threads, not a parameter: changing it retrains nothing
        resume_every_seconds=round(60 * config["train"]["resume_every_minutes"]),
    params:
        settings=lambda wildcards: settings(
            "dataset",
            "classes",
            train=train_settings(),
            **family_settings(wildcards.arch),
        ),
        out_dir=lambda wildcards, output: os.path.dirname(output.checkpoint),
        # results/<dataset>/resume/<arch>/fold<k>: outside the outputs Snakemake removes on failure
        resume_dir=lambda wildcards, output: os.path.join(
            results_root(output.checkpoint),
            "resume",
            *Path(output.checkpoint).parent.parts[-2:],
        ),
        weights_cache=lambda wildcards, input: (
            os.path.dirname(input.weights)
            if "weights" in input.keys()
            else L.weights_cache
        ),
    shell:
        # exec: the training process itself receives SLURM's SIGTERM and saves a resumable state
        "exec python -m cellbench train --settings {params.settings:q} --arch {wildcards.arch:q} "
        "--fold {wildcards.fold:q} --data {input.data:q} --augmented {input.augmented:q} --splits {input.splits:q} "
        "--out {params.out_dir:q} --resume-dir {params.resume_dir:q} --weights-cache {params.weights_cache:q} "
        "--threads {threads:q} --resume-every-seconds {resources.resume_every_seconds:q} > {log:q} 2>&1"
