"""Fully convolutional CNN baseline (CNNProm-like) that scores every window of a sequence in one pass.

The model is a stack of valid-padding (dilated) convolutions followed by a "head" convolution whose kernel
spans the rest of the window, so one output position sees exactly `window_tokens` input tokens. On a
sequence exactly one window long this equals a CNN with a dense layer over the window (position-aware, like
CNNProm); on longer inputs it yields the logit of every window without re-running the model per window.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from genolm.errors import ConfigError

PAD_TOKEN = 0


@dataclass
class CNNConfig:
    vocab_size: int
    embed_dim: int = 32
    channels: tuple[int, ...] = (64, 64)
    kernel_sizes: tuple[int, ...] = (9, 7)
    dilations: tuple[int, ...] = (1, 2)
    dropout: float = 0.2
    window_tokens: int = 81
    head_hidden: int = 64
    # Tokens seen by the head. None = the whole window (position-aware, like CNNProm's dense layer: right for
    # TSS-aligned promoter windows). Narrower heads are max-pooled over the window: shift-invariant (IS windows).
    head_width: int | None = None

    def __post_init__(self) -> None:
        # YAML/JSON give lists; tuples keep the config hashable and comparable.
        self.channels = tuple(int(c) for c in self.channels)
        self.kernel_sizes = tuple(int(k) for k in self.kernel_sizes)
        self.dilations = tuple(int(d) for d in self.dilations)
        for name in ("vocab_size", "embed_dim", "window_tokens", "head_hidden"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"cnn: {name} must be >= 1, got {getattr(self, name)!r}")
        if not len(self.channels) == len(self.kernel_sizes) == len(self.dilations):
            raise ConfigError(
                "cnn: channels, kernel_sizes and dilations must have the same length, got "
                f"{len(self.channels)}, {len(self.kernel_sizes)}, {len(self.dilations)}"
            )
        if min((*self.channels, *self.kernel_sizes, *self.dilations), default=1) < 1:
            raise ConfigError("cnn: channels, kernel_sizes and dilations must all be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"cnn: dropout must be in [0, 1), got {self.dropout!r}")
        if self.head_width is not None and not 1 <= self.head_width <= self.widest_head:
            raise ConfigError(
                f"cnn: head_width must be in 1..{self.widest_head} "
                f"(window_tokens - stack receptive field + 1), got {self.head_width!r}"
            )
        if self.stack_receptive_field > self.window_tokens:
            raise ConfigError(
                f"cnn: the convolution stack sees {self.stack_receptive_field} tokens, more than "
                f"window_tokens={self.window_tokens}; use smaller kernels/dilations or a longer window"
            )

    @property
    def stack_receptive_field(self) -> int:
        """Tokens seen by one output of the convolution stack (before the head convolution)."""
        return 1 + sum((k - 1) * d for k, d in zip(self.kernel_sizes, self.dilations, strict=True))

    @property
    def widest_head(self) -> int:
        """The head kernel that, after the stack, sees exactly one window: what the stack leaves of it."""
        return self.window_tokens - self.stack_receptive_field + 1

    @property
    def head_kernel(self) -> int:
        """Kernel of the head convolution: `head_width`, or the whole rest of the window."""
        return self.head_width or self.widest_head

    @property
    def pool_width(self) -> int:
        """Head positions max-pooled into one window logit (1 for a whole-window head)."""
        return self.window_tokens - self.stack_receptive_field - self.head_kernel + 2


class CNNClassifier(nn.Module):
    """Binary classifier: logit of a sequence = max over the logits of the windows that fit inside it."""

    def __init__(self, config: CNNConfig) -> None:
        super().__init__()
        self.config = config
        # padding_idx keeps PAD a zero vector: a short sequence padded to one window is scored consistently.
        self.embedding = nn.Embedding(config.vocab_size, config.embed_dim, padding_idx=PAD_TOKEN)
        layers: list[nn.Module] = []
        in_ch = config.embed_dim
        for out_ch, k, d in zip(config.channels, config.kernel_sizes, config.dilations, strict=True):
            layers += [nn.Conv1d(in_ch, out_ch, k, dilation=d), nn.ReLU(), nn.Dropout(config.dropout)]
            in_ch = out_ch
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Conv1d(in_ch, config.head_hidden, config.head_kernel),
            nn.ReLU(),
            nn.Dropout(config.dropout),
            nn.Conv1d(config.head_hidden, 1, 1),
        )

    @property
    def window_tokens(self) -> int:
        return self.config.window_tokens

    @property
    def receptive_field(self) -> int:
        """Input tokens that one output position depends on (always equals `window_tokens`)."""
        return self.config.stack_receptive_field + self.config.head_kernel + self.config.pool_width - 2

    def _pad_to_window(self, tokens: torch.Tensor) -> torch.Tensor:
        short = self.window_tokens - tokens.shape[1]
        if short <= 0:
            return tokens
        return nn.functional.pad(tokens, (0, short), value=PAD_TOKEN)

    def position_logits(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logit of every window, `[B, T - window_tokens + 1]`; inputs shorter than a window are padded."""
        x = self.embedding(self._pad_to_window(tokens)).transpose(1, 2)  # [B, C, T]
        logits = self.head(self.convs(x))
        if self.config.pool_width > 1:
            logits = nn.functional.max_pool1d(logits, self.config.pool_width, stride=1)
        return logits.squeeze(1)

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`[B, channels[-1]]` sequence embedding: the conv stack's features max-pooled over the positions whose
        receptive field lies inside the sequence (at least the first), the features the head reads."""
        features = self.convs(self.embedding(self._pad_to_window(tokens)).transpose(1, 2))  # [B, C, T']
        lengths = lengths.to(device=features.device)
        n_valid = (lengths - self.config.stack_receptive_field + 1).clamp(min=1)
        positions = torch.arange(features.shape[2], device=features.device)
        valid = (positions.unsqueeze(0) < n_valid.unsqueeze(1)).unsqueeze(1)
        return features.masked_fill(~valid, float("-inf")).amax(dim=2)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """One logit per sequence: the best window lying fully inside `lengths` (at least the first)."""
        logits = self.position_logits(tokens)
        lengths = lengths.to(device=logits.device)
        # A sequence shorter than a window keeps its single (padded) first window, so nothing ever fails.
        n_valid = (lengths - self.window_tokens + 1).clamp(min=1)
        positions = torch.arange(logits.shape[1], device=logits.device)
        valid = positions.unsqueeze(0) < n_valid.unsqueeze(1)
        return logits.masked_fill(~valid, float("-inf")).amax(dim=1)
