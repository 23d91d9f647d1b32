"""Rule export_model: a trained classifier as a folder with its model card (genolm.model_export)."""

from pathlib import Path

from genolm.model_export import export_model
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        export_model,
        snakemake.log[0],
        checkpoint=snakemake.input.checkpoint,
        metrics=snakemake.input.metrics,
        outdir=Path(snakemake.output.card).parent,
        task_name=snakemake.wildcards.task,
        # the genome-wide scan settings go with the task's, so model.scan repeats the pipeline's scan
        task={**snakemake.params.task, "scan": {**snakemake.params.task["scan"], **snakemake.params.scan}},
        model_name=snakemake.wildcards.model,
        model_settings=dict(snakemake.params.model_settings),
        tables={Path(path).stem: path for path in snakemake.input.tables},
        seed=int(snakemake.params.seed),
        threshold_metric=snakemake.params.threshold_metric,
    )
