"""Rule make_demo_variants: seeded SNVs in the demo's promoter boxes and in the background (genolm.variant_effects)."""

from genolm.runtime import run_step
from genolm.variant_effects import write_demo_variants

if __name__ == "__main__":
    run_step(
        write_demo_variants,
        snakemake.log[0],
        fasta=snakemake.input.fasta,
        truth_gff3=snakemake.input.truth,
        vcf_out=snakemake.output.vcf,
        n_box=int(snakemake.params.box),
        n_background=int(snakemake.params.background),
        seed=int(snakemake.params.seed),
    )
