"""Rule dataset_overlap: exact and near-duplicate sequences shared between tasks (genolm.sources.overlap)."""

from genolm.runtime import run_step
from genolm.sources.overlap import write_overlap_table

if __name__ == "__main__":
    tasks = list(snakemake.params.tasks)
    paths = list(snakemake.input.tables)
    per_task = len(paths) // len(tasks)
    run_step(
        write_overlap_table,
        snakemake.log[0],
        tables={task: paths[i * per_task : (i + 1) * per_task] for i, task in enumerate(tasks)},
        output=snakemake.output.table,
    )
