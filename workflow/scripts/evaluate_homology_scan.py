"""Rule evaluate_homology_scan: homology IS calls against the genome's known IS elements, as evaluate_scan
measures the model scans (genolm.is_homology)."""

from genolm.is_homology import evaluate_homology
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        evaluate_homology,
        snakemake.log[0],
        calls_gff=snakemake.input.gff,
        truth_gff=snakemake.input.truth,
        output=snakemake.output.evaluation,
        known_is=snakemake.input.get("known_is"),
        known_is_exclude=snakemake.params.known_is_exclude,
        min_overlap=float(snakemake.params.min_overlap),
    )
