"""How well a language model predicts genomes: cross-entropy, perplexity and accuracy against baselines.

The AWD-LSTM is scored on next-token prediction exactly as its validation set is during training (contigs as
separate streams, truncated BPTT with the state carried along a contig); the transformer MLM on masked-token
prediction with the span masking of its pretraining (genolm.train_mlm), masks drawn from a fixed seed.

Baselines, in nats per token, on the same tokens:
- `stride_loss` = ln(4^s) (next-token only): with stride s a next k-mer repeats the last k - s bases of the
  current one and adds s new bases. A model that has learned the tokenization but nothing about DNA puts its
  mass on the 4^s consistent k-mers, uniformly; to beat this, it must predict bases.
- `uniform_loss` = ln(4^k): a model that has learned nothing at all (every k-mer equally likely).
- `unigram_loss`/`unigram_accuracy`: the entropy of the evaluated tokens' own k-mer frequencies and the share of
  the most frequent k-mer (fitted on the evaluated tokens, so slightly optimistic): what composition gives.

Only the first `max_tokens` tokens are scored (shared between contigs in proportion to their length) so the
evaluation stays cheap on any genome.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import ConfigError, InputFormatError

log = logging.getLogger(__name__)

QUALITY_COLUMNS = ("lm", "genome", "seen", "objective", "tokens", "loss", "perplexity", "accuracy", "stride_loss",
                   "uniform_loss", "unigram_loss", "unigram_accuracy")  # fmt: skip
HELDOUT_DEMO = "demo_heldout"


def genome_streams(contigs: Mapping[str, str], tokenizer: Any, max_tokens: int) -> list[np.ndarray]:
    """One token stream per contig (the model's own tokenizer), cut so that at most `max_tokens` remain in total:
    each contig keeps a share proportional to its length, from its start."""
    if max_tokens < 2:
        raise ConfigError(f"language-model quality: max_tokens must be >= 2, got {max_tokens}")
    streams = [tokenizer.encode(seq, name=name) for name, seq in contigs.items()]
    total = sum(len(s) for s in streams)
    if total == 0:
        raise InputFormatError("language-model quality: the genome has no k-mer token")
    if total > max_tokens:
        streams = [s[: max(2, int(len(s) * max_tokens / total))] for s in streams]
    return [s for s in streams if len(s) >= 2]


def _unigram(targets: np.ndarray) -> tuple[float, float]:
    counts = np.bincount(targets)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum()), float(counts.max() / counts.sum())


def next_token_quality(
    lm: Any, streams: Sequence[np.ndarray], batch_size: int = 32, bptt: int = 70
) -> dict[str, float]:
    """Next-token cross-entropy and accuracy of an AWD-LSTM over whole streams (genolm.train's validation pass)."""
    from genolm.train import lm_epoch, lm_layout

    layout = lm_layout([len(s) for s in streams], [0] * len(streams), bptt, batch_size, np.arange(len(streams)))
    flat = np.concatenate([*[np.asarray(s, np.int64) for s in streams], np.zeros(2, np.int64)])
    device = next(lm.model.parameters()).device
    loss, accuracy, n = lm_epoch(lm.model, flat, layout, bptt, device)
    unigram_loss, unigram_accuracy = _unigram(np.concatenate([np.asarray(s[1:], np.int64) for s in streams]))
    return {"tokens": n, "loss": loss, "accuracy": accuracy, "stride_loss": lm.tokenizer.stride * math.log(4),
            "unigram_loss": unigram_loss, "unigram_accuracy": unigram_accuracy}  # fmt: skip


def masked_quality(
    lm: Any, streams: Sequence[np.ndarray], batch_size: int = 32, mask_p: float = 0.15, seed: int = 1
) -> dict[str, float]:
    """Masked-token cross-entropy and accuracy of a transformer MLM on windows tiling the streams, masked once
    with the span masking of its pretraining (genolm.train_mlm)."""
    from genolm.train_mlm import evaluate_masked, mask_span, mask_tokens, tiled_windows

    tokens, lengths = tiled_windows([np.asarray(s, np.int64) for s in streams], lm.model.config.max_tokens)
    rng = np.random.default_rng(seed)
    span = mask_span(lm.tokenizer.k, lm.tokenizer.stride)
    inputs, targets = mask_tokens(tokens, lengths, rng, vocab_size=lm.tokenizer.vocab_size, mask_p=mask_p, span=span)
    device = next(lm.model.parameters()).device
    loss, accuracy = evaluate_masked(lm.model, (inputs, lengths, targets), batch_size, device)
    masked = targets[targets >= 0]
    unigram_loss, unigram_accuracy = _unigram(masked.astype(np.int64))
    return {"tokens": int(masked.size), "loss": loss, "accuracy": accuracy, "stride_loss": float("nan"),
            "unigram_loss": unigram_loss, "unigram_accuracy": unigram_accuracy}  # fmt: skip


def heldout_demo_contigs(demo: Mapping[str, Any], seed: int) -> dict[str, str]:
    """A demo genome the LMs never saw: the demo generator with the same settings and another seed (its codon
    usage, IS families and layout are all drawn anew; the promoter motifs are the generator's own)."""
    from genolm.demo import DemoConfig, generate_genome

    return generate_genome(DemoConfig.from_dict({**demo, "seed": seed})).contigs


def quality_row(lm: Any, label: str, genome: str, contigs: Mapping[str, str], seen: str, **settings: Any) -> dict:
    """One QUALITY_COLUMNS row for one genome."""
    from genolm.lm_scoring import NEXT

    streams = genome_streams(contigs, lm.tokenizer, int(settings.get("max_tokens", 20_000)))
    batch_size = int(settings.get("batch_size", 32))
    if lm.objective == NEXT:
        scores = next_token_quality(lm, streams, batch_size)
    else:
        scores = masked_quality(lm, streams, batch_size, seed=int(settings.get("seed", 1)))
    row = {"lm": label, "genome": genome, "seen": seen, "objective": lm.objective, **scores}
    row["perplexity"] = float(np.exp(min(row["loss"], 700.0)))
    row["uniform_loss"] = lm.tokenizer.k * math.log(4)
    log.info("%s on %s: loss %.4f (stride baseline %.4f, unigram %.4f), accuracy %.4f over %d tokens", label, genome,
             row["loss"], row["stride_loss"], row["unigram_loss"], row["accuracy"], row["tokens"])  # fmt: skip
    return {column: row[column] for column in QUALITY_COLUMNS}


def evaluate_language_model(
    checkpoint: str | Path,
    genomes: Mapping[str, str | Path],
    output: str | Path,
    label: str = "",
    seen: Sequence[str] = (),
    heldout_demo: Mapping[str, Any] | None = None,
    max_tokens: int = 20_000,
    batch_size: int = 32,
    seed: int = 1,
    device: str = "auto",
) -> pd.DataFrame:
    """A QUALITY_COLUMNS TSV: one row per genome (name -> FASTA), plus the held-out demo genome when
    `heldout_demo` = {"demo": demo settings, "seed": its seed}. `seen` names the genomes the LM was trained on."""
    from genolm.lm_scoring import load_language_model
    from genolm.variant_effects import read_reference

    lm = load_language_model(checkpoint, device)
    settings = {"max_tokens": max_tokens, "batch_size": batch_size, "seed": seed}
    rows = []
    for name, fasta in genomes.items():
        rows.append(quality_row(lm, label or str(checkpoint), name, read_reference(fasta),
                                "yes" if name in seen else "no", **settings))  # fmt: skip
    if heldout_demo is not None:
        contigs = heldout_demo_contigs(heldout_demo["demo"], int(heldout_demo["seed"]))
        rows.append(quality_row(lm, label or str(checkpoint), HELDOUT_DEMO, contigs, "no", **settings))
    table = pd.DataFrame(rows, columns=list(QUALITY_COLUMNS))
    with atomic_path(output) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table
