"""Rule make_demo: the synthetic genome, its truth GFF3 and the labelled task tables (genolm.demo)."""

from pathlib import Path

import pandas as pd

from genolm.datasets import read_task_table, summarize_tables
from genolm.demo import DemoConfig, write_demo
from genolm.evaluate import write_tsv
from genolm.runtime import run_step


def main(
    demo: dict, seed: int, tasks: dict[str, str], genome: str, truth: str, tables: list[str], summary: str
) -> None:
    """`tasks` maps task name -> kind; `tables` are the results/data/{task}/{split}.tsv paths to write."""
    paths: dict[str, dict[str, Path]] = {}
    for path in map(Path, tables):
        paths.setdefault(path.parent.name, {})[path.stem] = path
    write_demo(
        DemoConfig.from_dict({**demo, "seed": seed}),
        Path(genome),
        Path(truth),
        {tasks[n]: p for n, p in paths.items()},
    )
    written = {
        name: pd.concat(read_task_table(path, split) for split, path in splits.items())
        for name, splits in paths.items()
    }
    write_tsv(summarize_tables(written), summary)


if __name__ == "__main__":
    run_step(
        main,
        snakemake.log[0],
        demo=dict(snakemake.params.demo),
        seed=int(snakemake.params.seed),
        tasks=dict(snakemake.params.tasks),
        genome=snakemake.output.genome,
        truth=snakemake.output.truth,
        tables=list(snakemake.output.tables),
        summary=snakemake.output.summary,
    )
