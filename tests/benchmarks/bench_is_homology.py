"""The homology IS caller on real data: index build, scan time and peak memory, recall/precision/FDR (a plain
script; pytest does not collect it).

Usage, from the repository root:

    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_is_homology.py
    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_is_homology.py --k 25 --max-element-length 0

Three steps, each in a fresh child process so that its peak resident memory (``ru_maxrss``) is its own, through
the functions the rules run (genolm.is_homology): ``build_library_index`` on ISfinder (``$GENOLM_SHARED_DATA`` or
../shared/data), then ``scan_homology`` (reading, k-mer lookup, chaining, BED/GFF3 with tabix indexes, summary)
on E. coli K-12 MG1655 and on the four AMR plasmids of is_scan_eval. Then the calls are evaluated at 50%
reciprocal overlap, strand ignored (the model scans' criterion):

- MG1655 against its 50 RefSeq IS elements (mobile_genetic_elements_from_gff.tsv), against those plus the ISfinder
  blastn calls of is_scan_eval that overlap none of them (10 real IS copies RefSeq does not annotate), and against
  the blastn calls alone;
- the plasmids against the blastn calls (their GenBank records annotate no IS element, only transposase CDS).

Boundary errors are the median absolute differences of start and end over matched pairs.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ISFINDER = "isfinder/ISfinder_IS_nt.fasta.gz"
MG1655 = "ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic.fna.gz"
MG1655_IS = "ecoli_k12_mg1655/mobile_genetic_elements_from_gff.tsv"
BLASTN = "is_scan_eval/derived_ISfinder_blastn_IS_calls.tsv"
PLASMIDS = "is_scan_eval/ecoli_amr_plasmids"


def shared_data() -> Path:
    return Path(os.environ.get("GENOLM_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=shared_data(), help="the shared data folder")
    parser.add_argument("--k", type=int, default=21)
    parser.add_argument("--max-element-length", type=int, default=3000)
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one step and exit
    return parser.parse_args(argv)


def genome_files(args: argparse.Namespace, name: str) -> list[Path]:
    if name == "mg1655":
        return [args.data / MG1655]
    return sorted((args.data / PLASMIDS).glob("*.fasta"))


def run_child(args: argparse.Namespace) -> None:
    from genolm.is_homology import build_library_index, scan_homology
    from genolm.runtime import configure_logging

    configure_logging(args.out / f"{args.child}.log")
    index_path = args.out / "isfinder.npz"
    started = time.perf_counter()
    if args.child == "index":
        index = build_library_index(
            args.data / ISFINDER, index_path, args.k, max_element_length=args.max_element_length
        )
        detail = f"{index.n_elements} elements, {index.kmers.size:,} k-mers, {index_path.stat().st_size / 1e6:.1f} MB"
        bp = int(index.offsets[-1])
    else:
        folder = args.out / args.child
        outputs = {"bed": folder / "calls.bed.gz", "gff": folder / "calls.gff3.gz", "summary": folder / "summary.tsv"}
        row = scan_homology(genome_files(args, args.child), index_path, outputs, args.child, {"k": args.k}).iloc[0]
        detail = f"{row['calls']} calls, {row['kmer_hits']:,} k-mer hits, index load {row['index_load_seconds']} s"
        bp = int(row["bp"])
    seconds = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.child}\t{bp:,}\t{seconds:.1f}\t{bp / seconds:,.0f}\t{peak_mib:.0f}\t{detail}", flush=True)


def _intervals(table, contig: str, start: str, end: str) -> list[tuple[str, int, int, str]]:
    return [(row[contig], int(row[start]), int(row[end]), row["strand"]) for _, row in table.iterrows()]


def _overlap(a: tuple[str, int, int, str], b: tuple[str, int, int, str]) -> bool:
    return a[0] == b[0] and min(a[2], b[2]) > max(a[1], b[1])


def boundary_errors(calls, truth, min_overlap: float = 0.5) -> tuple[float, float]:
    """Median |start difference| and |end difference| of each known element and its best-overlapping call."""
    import numpy as np

    starts, ends = [], []
    for contig, t0, t1, _ in truth:
        best = max(
            ((min(c1, t1) - max(c0, t0), c0, c1) for c, c0, c1, _ in calls if c == contig),
            default=(0, 0, 0),
        )
        overlap, c0, c1 = best
        if overlap >= min_overlap * max(c1 - c0, t1 - t0):
            starts.append(abs(c0 - t0))
            ends.append(abs(c1 - t1))
    return float(np.median(starts)), float(np.median(ends))


def evaluate(args: argparse.Namespace, out: Path) -> None:
    import pandas as pd

    from genolm.annotations import read_gff3
    from genolm.scan import evaluate_calls

    blastn = pd.read_csv(args.data / BLASTN, sep="\t")
    blastn["start"] = blastn["start_1based"] - 1
    refseq = pd.read_csv(args.data / MG1655_IS, sep="\t")
    refseq["start"] = refseq["start_1based"] - 1
    print("genome\tagainst\tknown\tcalls\ttp\trecall\tprecision\tfdr\tmedian_start_err\tmedian_end_err")
    for genome in ("mg1655", "plasmids"):
        called = read_gff3(out / genome / "calls.gff3.gz")
        calls = _intervals(called, "contig", "start", "end")
        contigs = {"NC_000913.3"} if genome == "mg1655" else set(called["contig"])
        blast = _intervals(blastn[blastn["seqid"].isin(contigs)], "seqid", "start", "end")
        references = {"blastn": blast}
        if genome == "mg1655":
            annotated = _intervals(refseq, "seqid", "start", "end")
            unannotated = [call for call in blast if not any(_overlap(call, known) for known in annotated)]
            references = {"RefSeq": annotated, "RefSeq+blastn": annotated + unannotated, "blastn": blast}
        for name, truth in references.items():
            result = evaluate_calls(calls, truth, 0.5, match_strand=False)
            fdr = result["fp"] / result["n_calls"] if result["n_calls"] else 0.0
            start_err, end_err = boundary_errors(calls, truth)
            print(
                f"{genome}\t{name}\t{result['n_truth']}\t{result['n_calls']}\t{result['tp']}\t{result['recall']:.3f}"
                f"\t{result['precision']:.3f}\t{fdr:.3f}\t{start_err:.0f}\t{end_err:.0f}"
            )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    if not (args.data / ISFINDER).exists():
        sys.exit(f"{args.data / ISFINDER} not found: pass --data or set GENOLM_SHARED_DATA")
    with tempfile.TemporaryDirectory(prefix="bench_is_homology.") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"# k={args.k}, max_element_length={args.max_element_length}, data {args.data}")
        print("step\tbp\tseconds\tbp_per_s\tpeak_rss_mib\tdetail")
        for step in ("index", "mg1655", "plasmids"):
            command = [sys.executable, __file__, "--child", step, "--out", str(out), "--data", str(args.data)]
            command += ["--k", str(args.k), "--max-element-length", str(args.max_element_length)]
            subprocess.run(command, check=True)
        evaluate(args, out)


if __name__ == "__main__":
    main()
