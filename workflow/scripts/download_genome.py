"""Rule download_genome: FASTA and GenBank of one nucleotide accession (genolm.download)."""

from genolm.download.jobs import download_genome
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        download_genome,
        snakemake.log[0],
        accession=snakemake.wildcards.accession,
        fasta=snakemake.output.fasta,
        genbank=snakemake.output.genbank,
        network=dict(snakemake.params.network),
    )
