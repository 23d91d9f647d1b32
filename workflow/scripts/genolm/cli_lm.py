"""`genolm variants` (zero-shot variant scores) and `genolm lm-quality` (perplexity against baselines)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _variants(args: argparse.Namespace) -> None:
    from genolm.variant_effects import score_vcf

    table = score_vcf(
        args.lm,
        args.fasta,
        args.vcf,
        args.output,
        vcf_out=args.vcf_out,
        flank=args.flank,
        batch_size=args.batch_size,
        classifier=args.classifier,
        device=args.device,
    )
    scored = int((table["status"] == "scored").sum())
    where = f" and {args.vcf_out}" if args.vcf_out else ""
    print(f"{args.vcf}: {scored} of {len(table)} ALT alleles scored; written to {args.output}{where}")


def _lm_quality(args: argparse.Namespace) -> None:
    from genolm.lm_quality import evaluate_language_model

    table = evaluate_language_model(
        args.lm,
        {Path(args.fasta).name: args.fasta},
        args.output,
        label=Path(args.lm).parent.as_posix(),
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        seed=args.seed,
        device=args.device,
    )
    row = table.iloc[0]
    print(
        f"{args.fasta}: {row['objective']}-token loss {row['loss']:.4f} nats (perplexity {row['perplexity']:.2f}), "
        f"accuracy {row['accuracy']:.4f} over {row['tokens']} tokens; stride baseline {row['stride_loss']:.4f}, "
        f"unigram {row['unigram_loss']:.4f}, uniform {row['uniform_loss']:.4f}; table in {args.output}"
    )


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this area's subcommands on the `genolm` parser."""
    variants = commands.add_parser("variants", help="zero-shot variant effect scores of a VCF from a language model")
    variants.add_argument("--lm", required=True, help="language-model checkpoint lm.safetensors (sidecar beside it)")
    variants.add_argument("--fasta", required=True, help="reference FASTA (plain or gzipped)")
    variants.add_argument("--vcf", required=True, help="VCF (plain or bgzipped); one score per ALT allele")
    variants.add_argument("-o", "--output", required=True, help="output TSV")
    variants.add_argument("--vcf-out", default=None, help="annotated VCF (.vcf.gz: bgzipped and tabix-indexed)")
    variants.add_argument("--flank", type=int, default=50, help="reference bp on each side of the allele (default 50)")
    variants.add_argument(
        "--classifier", default=None, help="classifier checkpoint: also the change of its probability"
    )
    variants.add_argument("--batch-size", type=int, default=64)
    variants.add_argument("--device", default="auto")
    variants.set_defaults(run=_variants)

    quality = commands.add_parser("lm-quality", help="language-model loss, perplexity and accuracy on a genome")
    quality.add_argument("--lm", required=True, help="language-model checkpoint lm.safetensors")
    quality.add_argument("--fasta", required=True, help="genome FASTA (plain or gzipped)")
    quality.add_argument("--max-tokens", type=int, default=20_000, help="tokens scored at most (default 20000)")
    quality.add_argument("-o", "--output", default="lm_quality.tsv", help="output TSV (default lm_quality.tsv)")
    quality.add_argument("--batch-size", type=int, default=32)
    quality.add_argument("--seed", type=int, default=1, help="seed of the masks (masked LMs)")
    quality.add_argument("--device", default="auto")
    quality.set_defaults(run=_lm_quality)
