"""Rule is_amr_proximity: the nearest AMR gene of every IS call of a genome scan, and vice versa (genolm.amr)."""

from genolm.amr import is_amr_proximity
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        is_amr_proximity,
        snakemake.log[0],
        calls=snakemake.input.calls,
        rules=snakemake.input.patterns,
        outputs={key: snakemake.output[key] for key in ("calls", "genes", "replicons")},
        near_bp=int(snakemake.params.near_bp),
        genbank=list(snakemake.input.get("genbank", [])),
        fasta=list(snakemake.input.get("fasta", [])),
        gff=snakemake.input.get("gff"),
    )
