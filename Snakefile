# cellbench: annotated cell images -> K-fold benchmark of segmentation architectures -> report.
#   snakemake --cores all                          # the demo (config.yaml)
#   snakemake --cores all --configfile configs/wbc.yaml
#   snakemake --report results/report.html         # HTML report of the last run
# The rules call the cellbench library (python -m cellbench); install it first: pip install -e .
from snakemake.utils import min_version, validate

from cellbench.config import apply_data_defaults, check

min_version("9.0")


configfile: "config.yaml"


# the demo only without data.annotations, the results folder's name, before the schema's defaults;
# then every invalid setting in one message (Snakemake's validate stops at the first)
apply_data_defaults(config)
check(config)
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/ingest.smk"
include: "workflow/rules/split.smk"
include: "workflow/rules/augment.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/predict.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/measure.smk"
include: "workflow/rules/budget.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/infer.smk"
include: "workflow/rules/export.smk"


onstart:
    # every architecture built on the meta device: unknown encoders and crop sizes fail before any job
    preflight.check_models(config)


rule all:
    default_target: True
    input:
        all_targets(),
    localrule: True
