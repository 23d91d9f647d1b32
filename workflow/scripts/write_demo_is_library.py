"""Rule write_demo_is_library: the demo genome's IS family consensus sequences as an ISfinder-style FASTA, the
homology caller's library on the demo (genolm.is_homology)."""

from genolm.is_homology import write_demo_library
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        write_demo_library,
        snakemake.log[0],
        demo=dict(snakemake.params.demo),
        seed=int(snakemake.params.seed),
        out=snakemake.output.fasta,
    )
