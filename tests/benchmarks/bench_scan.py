"""Genome scans end to end with the CNN: seconds, bp/s and peak memory (a plain script; pytest does not collect it).

Usage, from the repository root (2 threads, as the scan rule gets):

    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_scan.py
    PYTHONPATH=workflow/scripts python tests/benchmarks/bench_scan.py --device cuda \\
        --promoter-checkpoint results/train/ecoli/cnn/seed1/model.safetensors \\
        --is-checkpoint results/train/is/cnn/seed1/model.safetensors

Two scans of the genome (default: E. coli K-12 MG1655 from ``$GENOLM_SHARED_DATA`` or ../shared/data), each through
``genolm.genome_scan.scan_genome``, the function the scan_genome rule runs, so reading, scoring both strands,
calling, TIR refinement and writing every output (BED, GFF3, bedGraph with tabix indexes, scores.npz, summary) are
all timed:

- promoter: 81 bp windows at a 1 bp step (point calls);
- IS: 400 bp windows at a 50 bp step (merged element calls).

Without checkpoints, CNNs with the shapes of config/benchmarks.yaml get random weights: timing does not depend on
the weights except through the number of calls (a fixed threshold of 0.5 is used). Each scan runs in a fresh
child process, so its peak resident memory (``ru_maxrss``) is its own; the scoring seconds alone are in the
summary's ``seconds`` column. bp/s counts genome bases (one strand) per second of the whole scan.
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

CNN_PARAMS = {
    "embed_dim": 16,
    "channels": [64, 64],
    "kernel_sizes": [15, 9],
    "dilations": [1, 2],
    "dropout": 0.3,
    "head_hidden": 64,
}
SCANS = {
    "promoter": {
        "window": 81,
        "params": CNN_PARAMS,
        "task": {
            "kind": "promoter",
            "strand_specific": True,
            "scan": {"step": 1, "peak_distance": 50, "tss_offset": 60},
        },
    },
    "is": {
        "window": 400,
        "params": {**CNN_PARAMS, "head_width": 20},
        "task": {
            "kind": "is",
            "strand_specific": False,
            "scan": {"step": 50, "merge_gap": 100, "min_windows": 3},
        },
    },
}
MG1655 = "ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic.fna.gz"


def default_fasta() -> Path:
    shared = Path(os.environ.get("GENOLM_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
    return shared / MG1655


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fasta", type=Path, default=default_fasta(), help="genome FASTA (default: MG1655)")
    parser.add_argument("--promoter-checkpoint", type=Path, default=None)
    parser.add_argument("--is-checkpoint", type=Path, default=None)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (the rule's `threads`)")
    parser.add_argument("--tasks", nargs="+", default=list(SCANS), choices=list(SCANS))
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--out", type=Path, default=None, help="keep the outputs here (default: a temporary folder)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # internal: run one scan and exit
    return parser.parse_args(argv)


def random_checkpoint(name: str, folder: Path) -> Path:
    """A CNN of the benchmark config's shape with random weights, saved as a genolm checkpoint."""
    import torch

    from genolm.checkpoint import save_checkpoint
    from genolm.kmers import KmerTokenizer
    from genolm.models import build_classifier

    spec = SCANS[name]
    tokenizer = KmerTokenizer(k=1)
    torch.manual_seed(0)
    model = build_classifier("cnn", spec["params"], tokenizer.vocab_size, spec["window"])
    path = folder / f"{name}_random.safetensors"
    meta = {"arch": "cnn", "params": spec["params"], "vocab": tokenizer.to_dict(), "window_bp": spec["window"]}
    save_checkpoint(model, path, meta)
    return path


def run_child(args: argparse.Namespace) -> None:
    from genolm.genome_scan import output_paths, scan_genome
    from genolm.runtime import configure_logging, set_threads

    name = args.child
    configure_logging(args.out / name / "scan.log")
    set_threads(args.threads)
    checkpoint = getattr(args, f"{name}_checkpoint") or random_checkpoint(name, args.out)
    prefix = args.out / name
    outputs = output_paths(prefix)
    started = time.perf_counter()
    summary = scan_genome(
        args.fasta,
        checkpoint,
        None,
        SCANS[name]["task"],
        outputs,
        genome=args.fasta.name,
        task_name=name,
        model_name="cnn",
        batch_size=args.batch_size,
        device=args.device,
        threshold=0.5,
    )
    seconds = time.perf_counter() - started
    row = summary.iloc[0]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{name}\t{row['bp']}\t{row['step']}\t{row['calls']}\t{row['seconds']:.1f}\t{seconds:.1f}"
        f"\t{row['bp'] / seconds:,.0f}\t{peak_mib:.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    if not args.fasta.exists():
        sys.exit(f"{args.fasta} not found: pass --fasta or set GENOLM_SHARED_DATA")
    with tempfile.TemporaryDirectory(prefix="bench_scan.") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        print(f"# {args.fasta}, device {args.device}, {args.threads} threads")
        print("task\tbp\tstep\tcalls\tscoring_s\ttotal_s\tbp_per_s\tpeak_rss_mib")
        total = 0.0
        for name in args.tasks:
            command = [sys.executable, __file__, "--child", name, "--out", str(out), "--fasta", str(args.fasta)]
            command += ["--device", args.device, "--threads", str(args.threads), "--batch-size", str(args.batch_size)]
            for key in ("promoter_checkpoint", "is_checkpoint"):
                if getattr(args, key):
                    command += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
            started = time.perf_counter()
            subprocess.run(command, check=True, env={**os.environ, "PYTHONPATH": os.environ.get("PYTHONPATH", "")})
            total += time.perf_counter() - started
        print(f"# all scans: {total:.1f} s wall, process start and imports included")


if __name__ == "__main__":
    main()
