"""Rules download_reads_{paired,single}: FASTQ.gz of one sequencing run (genolm.download)."""

from genolm.download.jobs import download_reads
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        download_reads,
        snakemake.log[0],
        run=snakemake.wildcards.run,
        reads=list(snakemake.output.reads),
        max_reads=snakemake.params.max_reads,
        network=dict(snakemake.params.network),
    )
