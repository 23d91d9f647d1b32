"""`genolm context`: rescore and call a promoter scan in its gene context with a fitted context model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from genolm.errors import InputFormatError
from genolm.scan import CALL_DEFAULTS


def _context(args: argparse.Namespace) -> None:
    from genolm.genome_scan import SCAN_DEFAULTS
    from genolm.promoter_context import apply_context, cds_of

    record = json.loads(Path(args.model).read_text(encoding="utf-8"))
    # The fit records the window's TSS offset and peak spacing of its scan; flags override them.
    scan = {
        key: getattr(args, key) if getattr(args, key) is not None else int(record.get(key, CALL_DEFAULTS[key]))
        for key in ("tss_offset", "peak_distance")
    }
    if bool(args.genbank) == bool(args.gff):
        raise InputFormatError("give the genome's genes as --genbank FILE... or as --gff FILE (one of them)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = {"scores": "scores.npz", "bedgraph": "scores.bedgraph.gz", "bed": "calls.bed.gz", "gff": "calls.gff3.gz"}
    outputs = {key: out / name for key, name in names.items()}
    apply_context(
        args.scores,
        args.model,
        cds_of(args.genbank or [], args.fasta or [], args.gff),
        {"scan": scan},
        outputs,
        bedgraph_bin=SCAN_DEFAULTS["bedgraph_bin"] if args.bedgraph_bin is None else args.bedgraph_bin,
    )
    print(f"context scores: {outputs['scores']}, {outputs['bedgraph']}; TSS calls: {outputs['bed']}, {outputs['gff']}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this area's subcommands on the `genolm` parser."""
    context = commands.add_parser(
        "context",
        help="rescore a promoter scan with gene context (a promoter_context model.json); TSS calls and a track",
        description="Combine a promoter scan's window scores (scores.npz of `genolm scan` or the pipeline) with the "
        "distance to the next CDS start, as fitted by the pipeline's promoter_context rule, and call TSSs at the "
        "model's threshold.",
    )
    context.add_argument("scores", help="scores.npz of a promoter scan (both strands, every window)")
    context.add_argument("--model", required=True, help="context/model.json written by the promoter_context rule")
    context.add_argument("--genbank", nargs="+", help="GenBank file(s) of the scanned genome (its CDS)")
    context.add_argument("--fasta", nargs="+", help="FASTA beside --genbank files that carry no sequence")
    context.add_argument("--gff", help="GFF3 with the scanned genome's CDS, instead of --genbank")
    context.add_argument("--tss-offset", type=int, default=None, help="default: the model's")
    context.add_argument("--peak-distance", type=int, default=None, help="bp between TSS calls (default: the model's)")
    context.add_argument(
        "--bedgraph-bin",
        type=int,
        default=None,
        help="bp per bedGraph bin (default: the pipeline's scan.bedgraph_bin default)",
    )
    context.add_argument("-o", "--out", required=True, help="output folder")
    context.set_defaults(run=_context)
