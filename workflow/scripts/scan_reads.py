"""Rule scan_reads: score a read set with one classifier; summary and positive reads (genolm.reads_scan)."""

from genolm.reads_scan import scan_reads
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        scan_reads,
        snakemake.log[0],
        threads=snakemake.threads,
        reads=list(snakemake.input.reads),
        checkpoint=snakemake.input.checkpoint,
        metrics=snakemake.input.metrics,
        task=dict(snakemake.params.task),
        outputs={"summary": snakemake.output.summary, "positives": snakemake.output.positives},
        sample=snakemake.wildcards.sample,
        task_name=snakemake.wildcards.task,
        model_name=snakemake.wildcards.model,
        batch_size=int(snakemake.params.batch_size),
        batch_reads=int(snakemake.params.batch_reads),
        min_length=int(snakemake.params.min_length),
        device=snakemake.params.device,
    )
