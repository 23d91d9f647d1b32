"""Rule evaluate_scan: genome-scan calls (and, for promoters, window scores) against the known elements
(genolm.genome_scan)."""

from genolm.genome_scan import HeldOut, evaluate_scan
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_scan,
        snakemake.log[0],
        calls_gff=snakemake.input.gff,
        truth_gff=snakemake.input.truth,
        task=dict(snakemake.params.task),
        output=snakemake.output.evaluation,
        known_is=snakemake.input.get("known_is"),
        known_is_exclude=snakemake.params.known_is_exclude,
        scores=snakemake.input.scores,
        heldout=HeldOut.from_split_record(snakemake.input.get("splits")),
    )
