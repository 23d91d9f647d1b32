"""Rule scan_genome: both strands of a genome with one classifier, or the gather of its scattered parts; indexed
BED, GFF3, bedGraph (genolm.genome_scan)."""

from genolm.genome_scan import scan_genome
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        scan_genome,
        snakemake.log[0],
        threads=snakemake.threads,
        fasta=snakemake.input.fasta,
        checkpoint=snakemake.input.checkpoint,
        metrics=snakemake.input.metrics,
        task=dict(snakemake.params.task),
        outputs={key: snakemake.output[key] for key in ("bed", "gff", "bedgraph", "scores", "summary")},
        genome=snakemake.wildcards.genome,
        task_name=snakemake.wildcards.task,
        model_name=snakemake.wildcards.model,
        batch_size=int(snakemake.params.batch_size),
        device=snakemake.params.device,
        parts=list(snakemake.input.parts),
        max_n_fraction=float(snakemake.params.max_n_fraction),
        bedgraph_bin=int(snakemake.params.bedgraph_bin),
    )
