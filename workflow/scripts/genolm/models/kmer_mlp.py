"""Order-free baseline: an MLP on the k-mer frequency spectrum of each sequence.

The spectrum is built on the fly from the same token input as every other classifier, so no extra data
preparation is needed: token ids below `N_SPECIAL` are the tokenizer's special tokens (PAD, UNK, MASK, CLS),
id `N_SPECIAL + i` is the i-th k-mer. Only real k-mer tokens inside `lengths` are counted and the counts are
divided by their sum, so padding (or anything else after `lengths`) never changes a logit, and two sequences
with the same k-mer composition get the same logit whatever their length.

UNK (a k-mer touching N or another non-ACGT base) is ignored: it is neither counted nor part of the
denominator, so a run of Ns neither dilutes the spectrum nor becomes a feature of its own (N content is
usually an artefact of how negatives were sampled, not biology). A sequence without any real k-mer gets an
all-zero spectrum.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genolm.errors import ConfigError
from genolm.kmers import SPECIAL_TOKENS

N_SPECIAL = len(SPECIAL_TOKENS)
TRANSFORMS = ("none", "sqrt", "log")
NORMS = ("layer", "batch", "none")


@dataclass
class KmerMLPConfig:
    vocab_size: int
    hidden: tuple[int, ...] = (256, 64)
    dropout: float = 0.2
    # Applied to the frequencies f: "sqrt" (Hellinger), "log" = log(1 + f * n_kmers) (0 for an absent k-mer, log 2
    # at the uniform frequency), "none".
    transform: str = "sqrt"
    norm: str = "layer"  # after each hidden Linear: "layer" (per example), "batch" or "none"

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)  # YAML gives a list
        if int(self.vocab_size) <= N_SPECIAL:
            raise ConfigError(
                f"kmer_mlp: vocab_size must exceed the {N_SPECIAL} special tokens, got {self.vocab_size!r}"
            )
        if any(h < 1 for h in self.hidden):
            raise ConfigError(f"kmer_mlp: every hidden size must be >= 1, got {list(self.hidden)}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"kmer_mlp: dropout must be in [0, 1), got {self.dropout!r}")
        if self.transform not in TRANSFORMS:
            raise ConfigError(f"kmer_mlp: transform must be one of {list(TRANSFORMS)}, got {self.transform!r}")
        if self.norm not in NORMS:
            raise ConfigError(f"kmer_mlp: norm must be one of {list(NORMS)}, got {self.norm!r}")

    @property
    def n_kmers(self) -> int:
        return self.vocab_size - N_SPECIAL


def kmer_spectrum(tokens: torch.Tensor, lengths: torch.Tensor, n_kmers: int) -> torch.Tensor:
    """Relative frequency `[B, n_kmers]` (float32) of the real k-mer tokens among the first `lengths` tokens."""
    positions = torch.arange(tokens.shape[1], device=tokens.device)
    inside = positions.unsqueeze(0) < lengths.to(tokens.device).unsqueeze(1)
    real = inside & (tokens >= N_SPECIAL)
    index = (tokens - N_SPECIAL).clamp(min=0, max=n_kmers - 1)
    # Counts are small integers, exact in float32 whatever order the additions happen in.
    counts = torch.zeros(tokens.shape[0], n_kmers, device=tokens.device).scatter_add_(1, index, real.float())
    return counts / counts.sum(dim=1, keepdim=True).clamp(min=1.0)


def _norm(kind: str, size: int) -> nn.Module:
    if kind == "layer":
        return nn.LayerNorm(size)
    if kind == "batch":
        return nn.BatchNorm1d(size)
    return nn.Identity()


class KmerMLPClassifier(nn.Module):
    """Binary classifier: k-mer spectrum -> transform -> [Linear -> norm -> ReLU -> Dropout] x n -> Linear."""

    def __init__(self, config: KmerMLPConfig) -> None:
        super().__init__()
        self.config = config
        blocks: list[nn.Module] = []
        n_in = config.n_kmers
        for n_out in config.hidden:
            blocks.append(
                nn.Sequential(nn.Linear(n_in, n_out), _norm(config.norm, n_out), nn.ReLU(), nn.Dropout(config.dropout))
            )
            n_in = n_out
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(n_in, 1)

    def features(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The transformed spectrum `[B, n_kmers]` the MLP reads."""
        freq = kmer_spectrum(tokens, lengths, self.config.n_kmers)
        if self.config.transform == "sqrt":
            return freq.sqrt()
        if self.config.transform == "log":
            return torch.log1p(freq * self.config.n_kmers)
        return freq

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`[B, hidden[-1]]` output of the last hidden block (the spectrum itself without hidden blocks)."""
        x = self.features(tokens, lengths)
        for block in self.blocks:
            x = block(x)
        return x

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens, lengths)).squeeze(1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[hidden block 1], ..., [hidden block n], [head]: input side first."""
        return [*(list(block.parameters()) for block in self.blocks), list(self.head.parameters())]
