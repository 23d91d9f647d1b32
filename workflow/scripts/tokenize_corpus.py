"""Rule tokenize_corpus: a genome as per-contig, per-strand token streams for language-model pretraining."""

from genolm.datasets import tokenize_genome
from genolm.runtime import run_step

if __name__ == "__main__":
    run_step(
        tokenize_genome,
        snakemake.log[0],
        fasta=snakemake.input.fasta,
        corpus_path=snakemake.output.corpus,
        k=int(snakemake.wildcards.k),
        stride=int(snakemake.wildcards.stride),
    )
