"""Rule score_genome_part: scatter step of a genome scan, the window scores of one part (genolm.genome_scan)."""

from genolm.genome_scan import score_part
from genolm.runtime import run_step

if __name__ == "__main__":
    item, total = snakemake.wildcards.scatteritem.split("-of-")
    run_step(
        score_part,
        snakemake.log[0],
        threads=snakemake.threads,
        fasta=snakemake.input.fasta,
        checkpoint=snakemake.input.checkpoint,
        output=snakemake.output.scores,
        part=int(item) - 1,
        parts=int(total),
        step=int(snakemake.params.step),
        batch_size=int(snakemake.params.batch_size),
        device=snakemake.params.device,
        max_n_fraction=float(snakemake.params.max_n_fraction),
    )
