"""Rule apply_promoter_context: another annotated genome's promoter scan rescored with a fitted context model
(genolm.promoter_context)."""

from genolm.promoter_context import apply_context, cds_of
from genolm.runtime import run_step


def main(genbank: list[str], fasta: list[str], gff: str | None, **settings) -> None:
    apply_context(cds=cds_of(genbank, fasta, gff), **settings)


if __name__ == "__main__":
    run_step(
        main,
        snakemake.log[0],
        scores_npz=snakemake.input.scores,
        model_json=snakemake.input.model,
        genbank=list(snakemake.input.get("genbank", [])),
        fasta=list(snakemake.input.get("fasta", [])),
        gff=snakemake.input.get("gff"),
        task=dict(snakemake.params.task),
        outputs={key: snakemake.output[key] for key in ("scores", "bedgraph", "bed", "gff")},
        bedgraph_bin=int(snakemake.params.bedgraph_bin),
    )
