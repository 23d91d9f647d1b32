"""Rule compare_published: this run's test metrics beside the published figures (genolm.published)."""

from genolm.published import write_published_comparison
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        write_published_comparison,
        snakemake.log[0],
        metric_paths=[*snakemake.input.models, *snakemake.input.ensembles, *snakemake.input.model_ensembles],
        published_path=snakemake.input.published,
        tasks=dict(snakemake.params.tasks),
        table_path=snakemake.output.table,
        markdown_path=snakemake.output.markdown,
        model_ensembles=dict(snakemake.params.model_ensembles),
    )
