from snakemake.utils import min_version

min_version("9.0")


# The embedded demo config applies only when no --configfile is given: Snakemake would otherwise deep-merge the
# demo's tasks and models into the user's config.
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/common_amr_reads.smk"
include: "workflow/rules/common_homology.smk"
include: "workflow/rules/common_interpret.smk"
include: "workflow/rules/common_lm.smk"
include: "workflow/rules/common_export.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/scan.smk"
include: "workflow/rules/annotate.smk"
include: "workflow/rules/reads.smk"
include: "workflow/rules/homology.smk"
include: "workflow/rules/interpret.smk"
include: "workflow/rules/lm.smk"
include: "workflow/rules/export.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
        amr_outputs(),
        reads_outputs(),
        homology_outputs(),
        interpret_outputs(),
        lm_outputs(),
        export_outputs(),
