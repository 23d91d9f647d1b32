"""Rule build_is_index: the canonical k-mer index of an IS library (ISfinder, or the demo's IS families) for the
homology IS caller (genolm.is_homology)."""

from genolm.is_homology import build_library_index
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        build_library_index,
        snakemake.log[0],
        fasta=snakemake.input.fasta,
        out=snakemake.output.index,
        k=int(snakemake.params.k),
        summary_csv=snakemake.input.get("summary"),
        max_element_length=int(snakemake.params.max_element_length),
    )
