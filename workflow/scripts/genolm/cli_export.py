"""`genolm export`, `genolm predict` and `genolm embed`: exported model folders and sequence embeddings."""

from __future__ import annotations

import argparse
from pathlib import Path

from genolm.errors import ConfigError


def _export(args: argparse.Namespace) -> None:
    from genolm.checkpoint import read_checkpoint_meta
    from genolm.model_export import export_model

    trained_on = read_checkpoint_meta(args.checkpoint).get("task") or {}
    kind = args.kind or trained_on.get("kind")
    if kind not in ("promoter", "is"):
        raise ConfigError(f"{args.checkpoint}: the checkpoint does not say its task; pass --kind promoter|is")
    task = {
        "kind": kind,
        "strand_specific": trained_on.get("strand_specific", kind == "promoter"),
        "source": args.source,
    }
    if args.step is not None:
        task["scan"] = {"step": args.step}
    tables = {Path(path).stem: path for path in args.tables}
    out = Path(args.outdir)
    card = export_model(
        args.checkpoint,
        args.metrics,
        out,
        task_name=args.task or kind,
        task=task,
        model_name=args.model_name or Path(args.checkpoint).parent.name,
        tables=tables,
        seed=args.seed,
        threshold_metric=args.threshold_metric,
    )
    print(f"{card['name']}: exported to {out} (threshold {card['threshold']['value']:.6g})")


def _read_inputs(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    if args.sequence:
        return [f"seq{i + 1}" for i in range(len(args.sequence))], [seq.upper() for seq in args.sequence]
    from genolm.seqio import read_fasta

    records = [(record.name, record.sequence) for record in read_fasta(args.fasta)]
    return [name for name, _ in records], [seq for _, seq in records]


def _predict(args: argparse.Namespace) -> None:
    import pandas as pd

    import genolm
    from genolm.atomic import atomic_path

    model = genolm.load_model(args.model, device=args.device)
    ids, sequences = _read_inputs(args)
    probabilities = model.predict(sequences)
    table = pd.DataFrame({"id": ids, "probability": probabilities, "call": probabilities >= model.threshold})
    table["call"] = table["call"].astype(int)
    with atomic_path(args.out) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    calls = int(table["call"].sum())
    print(f"{len(table)} sequences scored by {model.name}; {calls} at or above {model.threshold:.4g}")


def _embed(args: argparse.Namespace) -> None:
    from genolm.embeddings import embed_file

    table = embed_file(args.model or args.checkpoint, args.out, fasta=args.fasta, table=args.table, device=args.device)
    print(f"{len(table)} sequences embedded in {table.shape[1] - 3} dimensions: {args.out}")


def add_commands(commands: argparse._SubParsersAction) -> None:
    """Register this area's subcommands on the `genolm` parser."""
    export = commands.add_parser(
        "export", help="export a classifier as a folder (weights, model card JSON + README) for genolm.load_model"
    )
    export.add_argument("--checkpoint", required=True, help="model.safetensors (its .json sidecar beside it)")
    export.add_argument("--metrics", required=True, help="metrics.tsv of evaluate: threshold and test metrics")
    export.add_argument("--tables", nargs="*", default=[], help="task tables trained on (train/valid/test.tsv)")
    export.add_argument("--task", default=None, help="task name (default: the kind)")
    export.add_argument("--kind", choices=["promoter", "is"], default=None, help="default: from the checkpoint")
    export.add_argument("--source", default="unknown", help="where the training data came from (task source)")
    export.add_argument("--model-name", default=None, help="default: the checkpoint's folder name")
    export.add_argument("--seed", type=int, default=None)
    export.add_argument("--step", type=int, default=None, help="scan step in bp stored in the card")
    export.add_argument("--threshold-metric", default="mcc", help="what the threshold maximised on valid")
    export.add_argument("-o", "--outdir", required=True)
    export.set_defaults(run=_export)

    predict = commands.add_parser("predict", help="probabilities of sequences from an exported model")
    predict.add_argument("--model", required=True, help="export folder")
    source = predict.add_mutually_exclusive_group(required=True)
    source.add_argument("--fasta", help="sequences (FASTA, plain or gzipped)")
    source.add_argument("--sequence", nargs="+", help="sequences on the command line")
    predict.add_argument("--device", default="cpu")
    predict.add_argument("-o", "--out", required=True, help="TSV: id, probability, call (at the card's threshold)")
    predict.set_defaults(run=_predict)

    embed = commands.add_parser("embed", help="per-sequence embeddings (classifier or LM) to a TSV.gz table")
    which = embed.add_mutually_exclusive_group(required=True)
    which.add_argument("--model", help="export folder")
    which.add_argument("--checkpoint", help="classifier or language-model .safetensors (LM: mean-pooled states)")
    given = embed.add_mutually_exclusive_group(required=True)
    given.add_argument("--fasta", help="sequences (FASTA)")
    given.add_argument("--table", help="task table (id, label, ..., sequence, optional group)")
    embed.add_argument("--device", default="cpu")
    embed.add_argument("-o", "--out", required=True, help="table: id, label, group, dim_0..dim_n (.gz: gzipped)")
    embed.set_defaults(run=_embed)
