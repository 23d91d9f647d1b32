"""Throughput (Mbp/s) and peak memory of streaming FASTA tokenization (a plain script; pytest does not collect it).

Usage, from the repository root (single core, as the target is stated per core):

    OMP_NUM_THREADS=1 PYTHONPATH=workflow/scripts python tests/benchmarks/bench_streaming.py
    OMP_NUM_THREADS=1 PYTHONPATH=workflow/scripts python tests/benchmarks/bench_streaming.py --fasta genome.fna.gz

Without ``--fasta`` a random genome of ``--length`` bases (default 20 Mbp, two contigs, 80-column lines, 0.1% N,
half soft-masked) is written gzipped to a temporary folder. One row per stage, each timed best-of-``--repeats``:

- ``read``: ``iter_fasta_chunks`` alone (gunzip, validation, chunking);
- ``encode+``: reading plus ``KmerTokenizer.encode_stream`` of the forward strand into uint16 ids;
- ``genome``: ``tokenize_genome``, both strands, written to an .npz (compressed, or stored with ``--no-compress``
  rows), i.e. what the tokenize_corpus rule does.

Mbp/s counts input bases (one strand). Peak memory is tracemalloc's traced peak (Python and numpy allocations,
not zlib's internal state), measured in a separate untimed run of each stage, with the input size for scale.
"""

from __future__ import annotations

import argparse
import gzip
import tempfile
import tracemalloc
from collections.abc import Callable
from itertools import groupby
from pathlib import Path

import numpy as np
from bench_kmers import best_seconds  # the script's own folder is first on sys.path

from genolm.datasets import tokenize_genome
from genolm.kmers import KmerTokenizer
from genolm.seqio import iter_fasta_chunks
from genolm.streaming import DEFAULT_CHUNK_BP


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", type=Path, help="FASTA to tokenize (default: a random genome)")
    parser.add_argument("--length", type=int, default=20_000_000, help="bases of the random genome")
    parser.add_argument("--k", type=int, default=6, help="k-mer size")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 3], help="strides for the genome rows")
    parser.add_argument("--chunk-bp", type=int, default=DEFAULT_CHUNK_BP, help="bases per chunk")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per stage; the best is kept")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random genome")
    return parser.parse_args(argv)


def write_random_genome(path: Path, length: int, rng: np.random.Generator) -> None:
    with gzip.open(path, "wb", compresslevel=1) as handle:
        for index, size in enumerate((length * 3 // 5, length - length * 3 // 5)):
            bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=size)]
            bases[rng.random(size) < 0.001] = ord("N")
            bases[size // 2 :] |= 0x20  # soft-mask the second half
            handle.write(f">chr{index}\n".encode())
            handle.write(b"\n".join(bases[i : i + 80].tobytes() for i in range(0, size, 80)) + b"\n")


def read_only(fasta: Path, chunk_bp: int) -> int:
    return sum(len(chunk) for _, chunk, _ in iter_fasta_chunks(fasta, chunk_bp))


def encode_forward(fasta: Path, chunk_bp: int, tokenizer: KmerTokenizer) -> int:
    n_tokens = 0
    for name, chunks in groupby(iter_fasta_chunks(fasta, chunk_bp), key=lambda item: item[0]):
        pieces = (chunk for _, chunk, _ in chunks)
        for ids in tokenizer.encode_stream(pieces, name=name, dtype=tokenizer.storage_dtype):
            n_tokens += ids.size
    return n_tokens


def peak_mib(run: Callable[[], object]) -> float:
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        run()
        return (tracemalloc.get_traced_memory()[1] - baseline) / 2**20
    finally:
        tracemalloc.stop()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        fasta = args.fasta
        if fasta is None:
            fasta = Path(tmp) / "random.fa.gz"
            write_random_genome(fasta, args.length, np.random.default_rng(args.seed))
        n_bases = read_only(fasta, args.chunk_bp)
        out = Path(tmp) / "corpus.npz"
        tokenizer = KmerTokenizer(args.k)
        stages: list[tuple[str, int, Callable[[], object]]] = [
            ("read", 0, lambda: read_only(fasta, args.chunk_bp)),
            ("encode+", 1, lambda: encode_forward(fasta, args.chunk_bp, tokenizer)),
        ]
        for stride in args.strides:
            for compress in (True, False):
                label = "genome" if compress else "genome (stored)"
                stages.append(
                    (
                        label,
                        stride,
                        lambda s=stride, c=compress: tokenize_genome(
                            fasta, out, args.k, s, chunk_bp=args.chunk_bp, compress=c
                        ),
                    )
                )
        print(
            f"# {fasta.name}: {n_bases / 1e6:g} Mbp ({fasta.stat().st_size / 2**20:.1f} MiB on disk), k={args.k}, "
            f"chunk {args.chunk_bp} bp, best of {args.repeats}; numpy {np.__version__}"
        )
        print(f"{'stage':<16} {'stride':>6} {'seconds':>8} {'Mbp/s':>7} {'peak MiB':>9} {'output MiB':>10}")
        for label, stride, run in stages:
            seconds = best_seconds(run, args.repeats)
            peak = peak_mib(run)
            size = f"{out.stat().st_size / 2**20:>10.1f}" if label.startswith("genome") else f"{'':>10}"
            shown = stride if stride else "-"
            print(f"{label:<16} {shown:>6} {seconds:>8.3f} {n_bases / seconds / 1e6:>7.1f} {peak:>9.1f} {size}")


if __name__ == "__main__":
    main()
