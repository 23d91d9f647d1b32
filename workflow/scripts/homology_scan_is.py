"""Rule homology_scan_is: IS elements of a genome by shared k-mers with the IS library; indexed BED and GFF3 plus
a summary (genolm.is_homology)."""

from genolm.is_homology import scan_homology
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        scan_homology,
        snakemake.log[0],
        fasta=snakemake.input.fasta,
        index_path=snakemake.input.index,
        outputs={key: snakemake.output[key] for key in ("bed", "gff", "summary")},
        genome=snakemake.wildcards.genome,
        settings=dict(snakemake.params.settings),
    )
