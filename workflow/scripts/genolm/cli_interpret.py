"""`genolm mutagenesis`: in-silico mutagenesis of a sequence or genome region with any classifier checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

from genolm.errors import ConfigError


def _mutagenesis(args: argparse.Namespace) -> None:
    from genolm.genome_scan import load_scan_model
    from genolm.mutagenesis import Region, parse_region, region_bases, run_ism, write_ism
    from genolm.scan import model_scorer

    if bool(args.sequence) == bool(args.region):
        raise ConfigError("give either --sequence, or --fasta with --region")
    if args.region and not args.fasta:
        raise ConfigError("--region needs --fasta")
    model, tokenizer, window, device = load_scan_model(args.checkpoint, args.device)
    scorer = model_scorer(model, tokenizer, device)
    if args.sequence:
        sequence = args.sequence.strip().upper()
        region = Region(args.name, 0, len(sequence), "+")
    else:
        from genolm.scan_blocks import contig_lengths

        region = parse_region(args.region, contig_lengths(args.fasta))
        sequence = region_bases(args.fasta, [region])[0]
    origin, label = 0, "region 5' end"
    if args.tss_offset is not None:
        origin, label = args.tss_offset, "TSS"
    result = run_ism(args.name, region, sequence, scorer, window, args.step, origin, label)
    out = Path(args.outdir)
    table = write_ism(result, out / f"{args.name}.tsv", out / f"{args.name}.png")
    print(
        f"{args.name}: {len(table)} substitutions of {region} scored (reference {result.ref_score:.4f}, "
        f"max |delta| {table['delta'].abs().max():.4f}); wrote {out / args.name}.tsv and .png"
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this area's subcommands on the `genolm` parser."""
    ism = commands.add_parser(
        "mutagenesis",
        help="score every single-base substitution of a sequence or region (TSV + heat-map PNG)",
        description="In-silico mutagenesis. A region longer than the model window is scored as its best window "
        "(every --step bp); each delta is the change of that maximum.",
    )
    ism.add_argument("--checkpoint", required=True, help="classifier model.safetensors")
    ism.add_argument("--fasta", help="genome FASTA (plain, gzip or bgzip) holding --region")
    ism.add_argument("--region", help="contig:start-end:strand, 1-based inclusive, e.g. chrom:1001-1081:-")
    ism.add_argument("--sequence", help="a sequence to mutate instead of a region (read 5' to 3' as given)")
    ism.add_argument("-o", "--outdir", required=True, help="writes NAME.tsv and NAME.png here")
    ism.add_argument("--name", default="ism", help="output file stem and figure title (default: ism)")
    ism.add_argument("--step", type=int, default=1, help="bp between windows of a region longer than the model's")
    ism.add_argument("--tss-offset", type=int, help="draw positions relative to this offset (a promoter's TSS)")
    ism.add_argument("--device", default="auto", help="torch device (default: auto)")
    ism.set_defaults(run=_mutagenesis)
