"""Rule build_task_dataset: a real task's leakage-aware train/valid/test tables (genolm.sources.tasks)."""

from genolm.runtime import run_step
from genolm.sources.tasks import build_task_tables

if __name__ == "__main__":
    run_step(
        build_task_tables,
        snakemake.log[0],
        source=snakemake.params.source,
        inputs={key: str(value) for key, value in snakemake.input.items()},
        builder=dict(snakemake.params.builder),
        split=dict(snakemake.params.split),
        seed=int(snakemake.params.seed),
        tables={path.split("/")[-1].removesuffix(".tsv"): path for path in snakemake.output.tables},
        splits=snakemake.output.splits,
        summary=snakemake.output.summary,
    )
