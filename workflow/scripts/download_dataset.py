"""Rule download_dataset: one row of the dataset sheet, checksum-verified (genolm.download)."""

from genolm.download.jobs import download_dataset
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        download_dataset,
        snakemake.log[0],
        entry=dict(snakemake.params.entry),
        output=snakemake.output[0],
        network=dict(snakemake.params.network),
    )
