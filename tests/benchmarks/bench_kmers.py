"""Throughput of genolm.kmers.KmerTokenizer.encode in Mbp/s (a plain script; pytest does not collect it).

Usage, from the repository root (single core, as the target is stated per core):

    OMP_NUM_THREADS=1 PYTHONPATH=workflow/scripts python tests/benchmarks/bench_kmers.py
    OMP_NUM_THREADS=1 PYTHONPATH=workflow/scripts python tests/benchmarks/bench_kmers.py --n-fraction 0.01

Prints one row per (k, stride): best-of-``--repeats`` wall time and Mbp/s, on a random sequence of
``--length`` bases (default 20 Mbp), for ``encode`` (the whole sequence at once, int64 ids) and for
``encode_stream`` (the same sequence in ``--chunk-bp`` chunks, ids in the tokenizer's storage dtype, as
genome tokenization uses it). ``--n-fraction`` sprinkles N bases in so the UNK-masking path is timed too;
``--lowercase`` soft-masks half of the sequence. File reading and writing are timed by bench_streaming.py.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np

from genolm.kmers import KmerTokenizer

TARGET_MBPS = 200.0  # k=6, stride 1, one core


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--length", type=int, default=20_000_000, help="bases in the test sequence")
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 3, 6, 8], help="k values")
    parser.add_argument("--strides", type=int, nargs="+", default=[1, 3], help="stride values")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per setting; the best is kept")
    parser.add_argument("--n-fraction", type=float, default=0.0, help="fraction of bases set to N")
    parser.add_argument("--lowercase", action="store_true", help="soft-mask (lower-case) the second half")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random sequence")
    parser.add_argument("--chunk-bp", type=int, default=1 << 18, help="chunk size of the encode_stream rows")
    return parser.parse_args(argv)


def random_sequence(length: int, n_fraction: float, lowercase: bool, rng: np.random.Generator) -> bytes:
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=length)]
    if n_fraction > 0:
        bases[rng.random(length) < n_fraction] = ord("N")
    if lowercase:
        bases[length // 2 :] |= 0x20  # ASCII upper -> lower
    return bases.tobytes()


def encode_in_chunks(tokenizer: KmerTokenizer, seq: bytes, chunk_bp: int) -> int:
    chunks = (seq[i : i + chunk_bp] for i in range(0, len(seq), chunk_bp))
    return sum(ids.size for ids in tokenizer.encode_stream(chunks, dtype=tokenizer.storage_dtype))


def best_seconds(run: Callable[[], object], repeats: int) -> float:
    run()  # warm-up: page faults, caches
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    seq = random_sequence(args.length, args.n_fraction, args.lowercase, np.random.default_rng(args.seed))
    print(
        f"# {args.length / 1e6:g} Mbp, N fraction {args.n_fraction:g}, lowercase half: {args.lowercase}, "
        f"best of {args.repeats}; numpy {np.__version__}"
    )
    print(f"{'method':<13} {'k':>2} {'stride':>6} {'tokens':>10} {'seconds':>8} {'Mbp/s':>8}")
    for k in args.ks:
        for stride in args.strides:
            tokenizer = KmerTokenizer(k=k, stride=stride)
            runs = {
                "encode": lambda t=tokenizer: t.encode(seq),
                "encode_stream": lambda t=tokenizer: encode_in_chunks(t, seq, args.chunk_bp),
            }
            for method, run in runs.items():
                seconds = best_seconds(run, args.repeats)
                mbps = args.length / seconds / 1e6
                note = f"  (target >= {TARGET_MBPS:g})" if (k, stride) == (6, 1) else ""
                n_tokens = tokenizer.n_tokens(args.length)
                print(f"{method:<13} {k:>2} {stride:>6} {n_tokens:>10} {seconds:>8.4f} {mbps:>8.1f}{note}")


if __name__ == "__main__":
    main()
