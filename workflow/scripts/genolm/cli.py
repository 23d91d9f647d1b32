"""`genolm` command line: the pipeline's steps, usable one by one without Snakemake."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

import genolm
from genolm import cli_context, cli_export, cli_interpret, cli_lm
from genolm.errors import ConfigError
from genolm.runtime import configure_logging, set_threads, user_errors
from genolm.scan import CALL_DEFAULTS as SCAN_DEFAULTS

log = logging.getLogger("genolm")


def _demo(args: argparse.Namespace) -> None:
    from genolm.demo import DemoConfig, write_demo

    out = Path(args.outdir)
    config = DemoConfig.from_dict(
        {"seed": args.seed, **({"genome_length": args.genome_length} if args.genome_length else {})}
    )
    tables = {
        kind: {split: out / kind / f"{split}.tsv" for split in ("train", "valid", "test")}
        for kind in ("promoter", "is")
    }
    write_demo(config, out / "genome.fa", out / "truth.gff3", tables)
    print(f"demo genome, truth and task tables written under {out}")


def _is_fasta(path: Path) -> bool:
    from genolm.seqio import open_text

    with open_text(path) as handle:
        for line in handle:
            if line.strip():
                return line.startswith(">")
    return False


def _tokenize(args: argparse.Namespace) -> None:
    from genolm.datasets import read_task_table, save_token_set, tokenize_genome, tokenize_table
    from genolm.kmers import KmerTokenizer

    source = Path(args.input)
    if _is_fasta(source):
        tokenize_genome(source, args.output, args.k, args.stride, unknown=args.unknown)
        print(f"{source}: per-contig, per-strand token streams written to {args.output}")
        return
    tokenizer = KmerTokenizer(k=args.k, stride=args.stride, unknown=args.unknown)
    token_set = tokenize_table(read_task_table(source), tokenizer, args.augment_reverse_complement)
    save_token_set(token_set, args.output, tokenizer)
    print(f"{source}: {len(token_set)} sequences tokenized (k={args.k}, stride={args.stride}) into {args.output}")


def _load_model_settings(path: str) -> dict:
    import yaml

    settings = yaml.safe_load(Path(path).read_text())
    if not isinstance(settings, dict) or "arch" not in settings:
        raise ConfigError(f"{path}: expected one model block with at least `arch` (as under `models:` in config.yaml)")
    return settings


def _train(args: argparse.Namespace) -> None:
    from genolm.fit import fit_classifier

    out = Path(args.outdir)
    fit_classifier(
        train_tokens=args.train,
        valid_tokens=args.valid,
        model_settings=_load_model_settings(args.model),
        seed=args.seed,
        checkpoint_path=out / "model.safetensors",
        history_path=out / "history.tsv",
        config_path=out / "config.yaml",
        language_model=args.language_model,
        device=args.device,
        task={"kind": args.kind, "strand_specific": not args.strand_agnostic},
    )
    print(f"model written to {out / 'model.safetensors'}")


def _evaluate(args: argparse.Namespace) -> None:
    from genolm.evaluate import evaluate_checkpoint

    out = Path(args.outdir)
    table = evaluate_checkpoint(
        args.checkpoint,
        args.valid,
        args.test,
        out / "predictions.tsv",
        out / "metrics.tsv",
        task=args.task,
        model_name=args.model_name,
        seed=args.seed,
        threshold_metric=args.threshold_metric,
        bootstrap=args.bootstrap,
        device=args.device,
    )
    print(table.to_string(index=False))


def _scan(args: argparse.Namespace) -> None:
    from genolm.checkpoint import read_checkpoint_meta
    from genolm.genome_scan import output_paths, scan_genome

    card_scan: dict = {}
    threshold, metrics = args.threshold, args.metrics
    if args.model is not None:  # an export folder: checkpoint, threshold, kind and scan settings from its card
        from genolm.model_export import WEIGHTS_FILE, read_card

        if metrics is not None:
            raise ConfigError("--metrics goes with --checkpoint; an exported model's card holds its threshold")
        card = read_card(args.model)
        checkpoint = Path(args.model) / WEIGHTS_FILE
        trained_on = card["task"]
        card_scan = trained_on.get("scan") or {}
        threshold = float(card["threshold"]["value"]) if threshold is None else threshold
        model_name, task_name = str(card["model"]["name"]), str(trained_on["name"])
    elif args.checkpoint is not None:
        checkpoint = Path(args.checkpoint)
        trained_on = read_checkpoint_meta(checkpoint).get("task") or {}
        model_name, task_name = checkpoint.parent.name, None
    else:
        raise ConfigError("scan needs --checkpoint (with --metrics or --threshold) or --model EXPORT_DIR")
    kind = args.kind or trained_on.get("kind")
    if kind not in ("promoter", "is"):
        raise ConfigError(f"{checkpoint}: the checkpoint does not say its task; pass --kind promoter|is")
    strand_specific = trained_on.get("strand_specific", kind == "promoter")
    scan = {
        **SCAN_DEFAULTS,
        **card_scan,
        **{key: value for key, value in vars(args).items() if key in SCAN_DEFAULTS and value is not None},
    }
    task = {"kind": kind, "strand_specific": strand_specific, "scan": scan}
    prefix = Path(args.out)
    prefix.mkdir(parents=True, exist_ok=True)
    outputs = output_paths(prefix)
    summary = scan_genome(
        args.fasta,
        checkpoint,
        metrics,
        task,
        outputs,
        genome=Path(args.fasta).name,
        task_name=task_name or kind,
        model_name=model_name,
        batch_size=args.batch_size,
        device=args.device,
        threshold=threshold,
    )
    print(summary.to_string(index=False))
    print(f"calls: {outputs['bed']} and {outputs['gff']}; scores: {outputs['bedgraph']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genolm", description=genolm.__doc__)
    parser.add_argument("--version", action="version", version=f"genolm {genolm.__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="write the synthetic demo genome, its truth GFF3 and task tables")
    demo.add_argument("outdir")
    demo.add_argument("--seed", type=int, default=1)
    demo.add_argument("--genome-length", type=int, default=None)
    demo.set_defaults(run=_demo)

    tokenize = commands.add_parser("tokenize", help="k-mer tokenize a FASTA (LM corpus) or a task table (.npz)")
    tokenize.add_argument("input", help="FASTA (plain or gzipped) or task TSV (id, label, split, ..., sequence)")
    tokenize.add_argument("-o", "--output", required=True, help="output .npz (tokens with their vocabulary)")
    tokenize.add_argument("-k", type=int, default=3, help="k-mer length, 1-8")
    tokenize.add_argument("--stride", type=int, default=1)
    tokenize.add_argument(
        "--unknown",
        choices=["unk", "skip", "error"],
        default="unk",
        help="k-mers touching N/IUPAC codes: the <unk> token (default), dropped, or an error naming the record",
    )
    tokenize.add_argument(
        "--augment-reverse-complement", action="store_true", help="task tables: add reverse complements"
    )
    tokenize.set_defaults(run=_tokenize)

    train = commands.add_parser("train", help="train a classifier on tokenized train/valid sets")
    train.add_argument("--train", required=True)
    train.add_argument("--valid", required=True)
    train.add_argument("--model", required=True, help="YAML with one model block (arch, params, train)")
    train.add_argument("--kind", choices=["promoter", "is"], required=True, help="task kind, stored for `scan`")
    train.add_argument("--strand-agnostic", action="store_true", help="the task is not strand-specific (IS)")
    train.add_argument("--language-model", default=None, help="pretrained LM checkpoint (awd_lstm)")
    train.add_argument("--seed", type=int, default=1)
    train.add_argument("--device", default="auto")
    train.add_argument("-o", "--outdir", required=True)
    train.set_defaults(run=_train)

    evaluate = commands.add_parser("evaluate", help="threshold on valid, metrics with bootstrap CIs on test")
    evaluate.add_argument("--checkpoint", required=True)
    evaluate.add_argument("--valid", required=True)
    evaluate.add_argument("--test", required=True)
    evaluate.add_argument("--task", default="task")
    evaluate.add_argument("--model-name", default="model")
    evaluate.add_argument("--seed", type=int, default=1)
    evaluate.add_argument("--threshold-metric", choices=["mcc", "f1", "accuracy"], default="mcc")
    evaluate.add_argument("--bootstrap", type=int, default=200)
    evaluate.add_argument("--device", default="auto")
    evaluate.add_argument("-o", "--outdir", required=True)
    evaluate.set_defaults(run=_evaluate)

    scan = commands.add_parser("scan", help="scan both strands of a genome; BED/GFF3/bedGraph, tabix-indexed")
    scan.add_argument("fasta", help="genome FASTA (plain or gzipped, several contigs)")
    model = scan.add_mutually_exclusive_group(required=True)
    model.add_argument("--checkpoint", default=None, help="model.safetensors (its .json sidecar beside it)")
    model.add_argument("--model", default=None, help="export folder (genolm export): threshold and kind from its card")
    threshold = scan.add_mutually_exclusive_group()
    threshold.add_argument("--metrics", default=None, help="metrics.tsv of evaluate: use its validation threshold")
    threshold.add_argument(
        "--threshold", type=float, default=None, help="probability threshold (default: the card's, else 0.5)"
    )
    scan.add_argument("--kind", choices=["promoter", "is"], default=None, help="default: from the checkpoint")
    scan.add_argument("--step", type=int, default=None, help=f"window step in bp (default {SCAN_DEFAULTS['step']})")
    scan.add_argument("--merge-gap", type=int, default=None)
    scan.add_argument("--min-windows", type=int, default=None, help="IS: fewest positive windows per element")
    scan.add_argument("--peak-distance", type=int, default=None, help="promoters: bp between TSS calls")
    scan.add_argument("--tss-offset", type=int, default=None)
    scan.add_argument("--batch-size", type=int, default=1024)
    scan.add_argument("--device", default="auto")
    scan.add_argument("-o", "--out", required=True, help="output folder")
    scan.set_defaults(run=_scan)
    for area in (cli_interpret, cli_lm, cli_export, cli_context):
        area.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(None, logging.INFO if args.verbose else logging.WARNING)
    set_threads(args.threads)
    with user_errors():
        args.run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
