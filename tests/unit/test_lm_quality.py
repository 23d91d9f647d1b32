"""Language-model quality (genolm.lm_quality): exact baselines, a trained LM beating them, the CLI and TSV."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from genolm.checkpoint import LANGUAGE_MODEL_ARCH, save_checkpoint
from genolm.cli import main
from genolm.kmers import KmerTokenizer
from genolm.lm_quality import QUALITY_COLUMNS, genome_streams, masked_quality, next_token_quality
from genolm.lm_scoring import MASKED, NEXT, LanguageModel
from genolm.models import build_language_model, build_masked_lm
from genolm.train import TrainConfig, pretrain_language_model

TOKENIZER = KmerTokenizer(4, stride=2)


class ZeroState(nn.Module):
    def zero_state(self, batch: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        return [(torch.zeros(1, batch, 1), torch.zeros(1, batch, 1))]


class FixedLogitsLM(nn.Module):
    """The interface genolm.train's LM loop uses (`encoder.zero_state`, `step`), with logits from a function of the
    input tokens only."""

    def __init__(self, logits_of: callable) -> None:
        super().__init__()
        self.logits_of = logits_of
        self.bias = nn.Parameter(torch.zeros(1))
        self.encoder = ZeroState()

    def step(self, tokens: torch.Tensor, state: list) -> tuple:
        hidden = tokens.unsqueeze(-1).float()
        return self.logits_of(tokens), [hidden], [hidden], state


def overlap_consistent(tokens: torch.Tensor) -> torch.Tensor:
    """Logits 0 for the 4^s k-mers whose first k - s bases are the input k-mer's last k - s bases, -inf elsewhere."""
    k, s = TOKENIZER.k, TOKENIZER.stride
    codes = torch.arange(4**k)
    suffix = (tokens - 4) % 4 ** (k - s)  # last k - s bases of the input k-mer
    prefix = codes // 4**s  # first k - s bases of each candidate
    logits = torch.full((*tokens.shape, TOKENIZER.vocab_size), float("-inf"))
    logits[..., 4:] = torch.where(prefix == suffix.unsqueeze(-1), 0.0, float("-inf"))
    return logits


def dna(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), n))


def test_uniform_model_scores_ln_vocab_and_overlap_model_scores_the_stride_baseline() -> None:
    # (length - k) % stride == 0: no tail token, whose overlap with the one before is not k - s bases
    streams = genome_streams({"a": dna(3000, 1), "b": dna(1002, 2)}, TOKENIZER, 10_000)
    uniform = LanguageModel(
        FixedLogitsLM(lambda t: torch.zeros(*t.shape, TOKENIZER.vocab_size)), TOKENIZER, NEXT, "cpu"
    )
    scores = next_token_quality(uniform, streams, batch_size=4, bptt=50)
    assert scores["loss"] == pytest.approx(math.log(TOKENIZER.vocab_size))
    overlap = LanguageModel(FixedLogitsLM(overlap_consistent), TOKENIZER, NEXT, "cpu")
    scores = next_token_quality(overlap, streams, batch_size=4, bptt=50)
    assert scores["loss"] == pytest.approx(math.log(4**TOKENIZER.stride)) == pytest.approx(scores["stride_loss"])
    assert scores["tokens"] == sum(len(s) - 1 for s in streams)


def test_token_budget_is_shared_by_contig_length() -> None:
    streams = genome_streams({"a": dna(3000, 1), "b": dna(1000, 2)}, TOKENIZER, 1000)
    assert sum(len(s) for s in streams) <= 1000
    assert len(streams[0]) == pytest.approx(3 * len(streams[1]), rel=0.02)


def test_a_trained_lm_beats_the_baselines_on_repetitive_dna() -> None:
    unit = dna(37, 4)  # odd period: both phases of the stride occur
    params = {"emb_dim": 32, "hidden": 64, "layers": 1, "embed_p": 0.0, "input_p": 0.0, "hidden_p": 0.0,
              "weight_p": 0.0, "output_p": 0.0}  # fmt: skip
    torch.manual_seed(0)
    model = build_language_model(params, TOKENIZER.vocab_size)
    config = TrainConfig(epochs=6, batch_size=4, lr=0.03, weight_decay=0.0, one_cycle=False, device="cpu", patience=6)
    pretrain_language_model(model, [TOKENIZER.encode(unit * 100)], config, bptt=20, alpha=0.0, beta=0.0)
    lm = LanguageModel(model.eval(), TOKENIZER, NEXT, "cpu")
    heldout = genome_streams({"x": (unit * 20)[5:]}, TOKENIZER, 10_000)  # starts 5 bp into the unit: new token chain
    scores = next_token_quality(lm, heldout)
    assert scores["loss"] < 0.5 * scores["stride_loss"] < scores["unigram_loss"]
    assert scores["accuracy"] > 0.8


def test_masked_quality_counts_only_masked_tokens() -> None:
    torch.manual_seed(0)
    model = build_masked_lm({"d_model": 16, "n_heads": 2, "layers": 1, "ff_dim": 32, "max_tokens": 64},
                            TOKENIZER.vocab_size).eval()  # fmt: skip
    lm = LanguageModel(model, TOKENIZER, MASKED, "cpu")
    streams = genome_streams({"a": dna(4000, 3)}, TOKENIZER, 10_000)
    scores = masked_quality(lm, streams, seed=2)
    assert 0.1 * len(streams[0]) < scores["tokens"] < 0.3 * len(streams[0])
    assert abs(scores["loss"] - math.log(4**TOKENIZER.k)) < 1.0  # untrained: near uniform
    assert np.isnan(scores["stride_loss"])
    assert masked_quality(lm, streams, seed=2)["loss"] == scores["loss"]  # masks come from the seed


def test_cli_lm_quality_writes_the_table(tmp_path, capsys) -> None:
    torch.manual_seed(0)
    params = {"emb_dim": 8, "hidden": 12, "layers": 1}
    model = build_language_model(params, TOKENIZER.vocab_size)
    checkpoint = tmp_path / "lm" / "lm.safetensors"
    checkpoint.parent.mkdir()
    save_checkpoint(model, checkpoint, {"arch": LANGUAGE_MODEL_ARCH, "params": params, "vocab": TOKENIZER.to_dict()})
    fasta = tmp_path / "g.fa"
    fasta.write_text(f">c1\n{dna(2000, 1)}\n>c2\n{dna(500, 2)}\n")
    out = tmp_path / "q.tsv"
    assert main(["lm-quality", "--lm", str(checkpoint), "--fasta", str(fasta), "--max-tokens", "600",
                 "-o", str(out)]) == 0  # fmt: skip
    table = pd.read_csv(out, sep="\t")
    assert list(table.columns) == list(QUALITY_COLUMNS)
    row = table.iloc[0]
    assert row["genome"] == "g.fa" and row["objective"] == "next" and row["tokens"] <= 600
    assert row["uniform_loss"] == pytest.approx(math.log(256), abs=1e-5)
    assert row["perplexity"] == pytest.approx(math.exp(row["loss"]), rel=1e-4)
    assert "stride baseline 2.7726" in capsys.readouterr().out
