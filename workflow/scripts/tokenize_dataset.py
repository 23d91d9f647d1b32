"""Rule tokenize_dataset: k-mer token arrays of a task's train/valid/test tables (genolm.datasets)."""

from pathlib import Path

from genolm.datasets import tokenize_task
from genolm.runtime import run_step

if __name__ == "__main__":
    tables = {Path(path).stem: path for path in snakemake.input.tables}
    arrays = {Path(path).stem: path for path in snakemake.output.arrays}
    run_step(
        tokenize_task,
        snakemake.log[0],
        tables=tables,
        arrays=arrays,
        vocab_path=snakemake.output.vocab,
        k=int(snakemake.wildcards.k),
        stride=int(snakemake.wildcards.stride),
        augment_reverse_complement=bool(snakemake.params.augment_reverse_complement),
    )
