"""Rule assemble_genome: an NCBI genome's replicons as one FASTA plus its truth GFF3 (genolm.sources.genomes)."""

from genolm.runtime import run_step
from genolm.sources.genomes import assemble_genome

if __name__ == "__main__":
    run_step(
        assemble_genome,
        snakemake.log[0],
        fasta=list(snakemake.input.fasta),
        genbank=list(snakemake.input.genbank),
        out_fasta=snakemake.output.fasta,
        out_truth=snakemake.output.truth,
        promoters=snakemake.input.get("promoters"),
    )
