"""Rule score_variants: zero-shot LM scores of every ALT allele of a VCF, as TSV and annotated VCF."""

from genolm.runtime import run_step
from genolm.variant_effects import score_vcf

if __name__ == "__main__":
    run_step(
        score_vcf,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        fasta=snakemake.input.fasta,
        vcf=snakemake.input.vcf,
        tsv=snakemake.output.tsv,
        vcf_out=snakemake.output.vcf,
        flank=int(snakemake.params.flank),
        batch_size=int(snakemake.params.batch_size),
        classifier=snakemake.input.get("classifier"),
        device=snakemake.params.device,
    )
