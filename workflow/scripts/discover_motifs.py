"""Rule discover_motifs: motifs a classifier learnt, from ISM of its best positive test sequences, and for IS
tasks the logo of the scan calls' terminal inverted repeats (genolm.motifs)."""

from genolm.motifs import model_motifs
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        model_motifs,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        test_table=snakemake.input.test,
        task=dict(snakemake.params.task),
        outputs={name: snakemake.output[name] for name in ("motifs", "meme", "logos", "seqlets")},
        sequences=int(snakemake.params.sequences),
        max_bases=int(snakemake.params.max_bases),
        calls=list(zip(snakemake.input.calls, snakemake.input.fastas, strict=True)),
        device=snakemake.params.device,
        settings=dict(snakemake.params.settings),
        tir_width=int(snakemake.params.tir_width),
    )
