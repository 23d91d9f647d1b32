"""Rule collect_metrics: every metric table in one, plus mean and spread over seeds (genolm.evaluate)."""

from genolm.evaluate import collect_metrics
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        collect_metrics,
        snakemake.log[0],
        metric_paths=[
            *snakemake.input.models,
            *snakemake.input.ensembles,
            *snakemake.input.model_ensembles,
            *snakemake.input.baselines,
        ],
        table_path=snakemake.output.table,
        summary_path=snakemake.output.summary,
    )
