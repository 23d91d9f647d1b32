"""Rule label_demo_amr: synthetic AMR gene labels on the demo genome's CDS, so the demo exercises is_amr_proximity
(genolm.amr.demo_amr_annotation)."""

from genolm.amr import demo_amr_annotation
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(demo_amr_annotation, snakemake.log[0], truth=snakemake.input.truth, output=snakemake.output.gff)
