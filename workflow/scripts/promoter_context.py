"""Rule promoter_context: promoter window scores in their gene context, fitted outside and judged on the held-out
stretch of a task split by region (genolm.promoter_context)."""

from genolm.genome_scan import HeldOut
from genolm.promoter_context import cds_of, promoter_context
from genolm.runtime import run_step


def main(genbank: list[str], fasta: list[str], gff: str | None, **settings) -> None:
    promoter_context(cds=cds_of(genbank, fasta, gff), **settings)


if __name__ == "__main__":
    run_step(
        main,
        snakemake.log[0],
        scores_npz=snakemake.input.scores,
        truth_gff=snakemake.input.truth,
        genbank=list(snakemake.input.get("genbank", [])),
        fasta=list(snakemake.input.get("fasta", [])),
        gff=snakemake.input.get("gff"),
        task=dict(snakemake.params.task),
        heldout=HeldOut.from_split_record(snakemake.input.splits),
        outputs={key: snakemake.output[key] for key in ("model", "scores", "bedgraph", "evaluation", "bed", "gff")},
        smooth=int(snakemake.params.smooth),
        seed=int(snakemake.params.seed),
        bedgraph_bin=int(snakemake.params.bedgraph_bin),
    )
