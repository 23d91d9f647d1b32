"""Rule evaluate_language_model: loss, perplexity and accuracy of one LM on genomes, with baselines."""

from genolm.lm_quality import evaluate_language_model
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_language_model,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        genomes=dict(zip(snakemake.params.genomes, snakemake.input.fastas, strict=True)),
        output=snakemake.output.table,
        label=snakemake.wildcards.lm,
        seen=list(snakemake.params.seen),
        heldout_demo=snakemake.params.heldout_demo,
        max_tokens=int(snakemake.params.max_tokens),
        batch_size=int(snakemake.params.batch_size),
        seed=int(snakemake.params.seed),
        device=snakemake.params.device,
    )
