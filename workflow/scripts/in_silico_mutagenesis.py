"""Rule in_silico_mutagenesis: every single-base substitution of a known TSS window or a user region
(genolm.mutagenesis)."""

from genolm.mutagenesis import interpret_target
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        interpret_target,
        snakemake.log[0],
        threads=snakemake.threads,
        checkpoint=snakemake.input.checkpoint,
        fasta=snakemake.input.fasta,
        target=snakemake.wildcards.target,
        task=dict(snakemake.params.task),
        table_path=snakemake.output.table,
        figure_path=snakemake.output.figure,
        truth=snakemake.input.get("truth"),
        region=snakemake.params.region,
        step=int(snakemake.params.step),
        device=snakemake.params.device,
    )
