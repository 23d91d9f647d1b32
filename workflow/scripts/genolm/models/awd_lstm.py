"""AWD-LSTM (Merity et al. 2018) encoder, language model and ULMFiT classifier (Howard & Ruder 2018).

Regularisation, as in the papers:
- embedding dropout: whole rows of the embedding matrix are dropped, so a token type vanishes everywhere in
  the batch;
- locked (variational) dropout: one mask per sequence, shared over time, on the embeddings (`input_p`),
  between LSTM layers (`hidden_p`) and on the last layer's output (`output_p`);
- weight drop (DropConnect) on each layer's hidden-to-hidden matrix, one mask per forward pass;
- activation regularisation (AR) on the dropped last-layer output and temporal AR (TAR) on the raw one.

Weight drop keeps each layer a plain `nn.LSTM` (fused kernels on CPU and cuDNN on CUDA) and runs it with
`torch.func.functional_call`, substituting the dropped matrix for `weight_hh_l0` for that call only: the raw
weight stays the registered parameter, the state dict keeps torch's names, and gradients reach the raw weight
through the dropout.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from genolm.errors import ConfigError
from genolm.models.pretrained import load_pretrained_encoder

LSTMState = tuple[torch.Tensor, torch.Tensor]
# What a classifier takes from a pretrained language model (`models.<m>.transfer`): encoder tensor-name prefixes.
AWD_LSTM_TRANSFER: dict[str, tuple[str, ...] | None] = {"encoder": None, "embedding": ("embedding.",)}
# Raised by cuDNN when an RNN weight is not inside the module's flat buffer; expected for the dropped matrix.
_NON_CONTIGUOUS_WARNING = "RNN module weights are not part of single contiguous chunk of memory"


@dataclass
class AWDLSTMConfig:
    vocab_size: int
    emb_dim: int = 400
    hidden: int = 1150
    layers: int = 3
    embed_p: float = 0.1
    input_p: float = 0.6
    hidden_p: float = 0.3
    weight_p: float = 0.5
    output_p: float = 0.1
    pad_token: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "emb_dim", "hidden", "layers"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"awd_lstm: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("embed_p", "input_p", "hidden_p", "weight_p", "output_p"):
            if not 0.0 <= float(getattr(self, name)) < 1.0:
                raise ConfigError(f"awd_lstm: {name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0 <= self.pad_token < self.vocab_size:
            raise ConfigError(f"awd_lstm: pad_token {self.pad_token} is outside the vocabulary")

    def layer_sizes(self) -> list[tuple[int, int]]:
        """(input, hidden) per layer; the last layer outputs emb_dim so the decoder can share the embedding
        matrix."""
        sizes = []
        for i in range(self.layers):
            n_in = self.emb_dim if i == 0 else self.hidden
            n_out = self.emb_dim if i == self.layers - 1 else self.hidden
            sizes.append((n_in, n_out))
        return sizes


def locked_dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Variational dropout on `[B, T, C]`: one mask per sequence and channel, reused at every time step."""
    if not training or p == 0.0:
        return x
    mask = x.new_empty(x.shape[0], 1, x.shape[2]).bernoulli_(1.0 - p) / (1.0 - p)
    return x * mask


def embedding_dropout(embedding: nn.Embedding, tokens: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Look up tokens in an embedding whose rows (token types) are dropped as a whole, then rescaled."""
    weight = embedding.weight
    if training and p > 0.0:
        mask = weight.new_empty(weight.shape[0], 1).bernoulli_(1.0 - p) / (1.0 - p)
        weight = weight * mask
    return F.embedding(tokens, weight, embedding.padding_idx)


class WeightDropLSTM(nn.Module):
    """One unidirectional batch-first LSTM layer with DropConnect on its hidden-to-hidden weights."""

    def __init__(self, input_size: int, hidden_size: int, weight_p: float) -> None:
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.weight_p = weight_p

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> tuple[torch.Tensor, LSTMState]:
        # cuDNN's autocast wrapper for RNNs casts to fp16 whatever dtype autocast asked for, and fp16
        # gradients need loss scaling; so the LSTM runs in its weights' dtype (fp32: TF32 tensor cores).
        dtype = self.lstm.weight_hh_l0.dtype
        x = x.to(dtype)
        if state is not None:
            state = (state[0].to(dtype), state[1].to(dtype))
        with torch.autocast(device_type=x.device.type, enabled=False):
            if not self.training or self.weight_p == 0.0:
                return self.lstm(x, state)
            dropped = F.dropout(self.lstm.weight_hh_l0, self.weight_p, training=True)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=_NON_CONTIGUOUS_WARNING)
                return functional_call(self.lstm, {"weight_hh_l0": dropped}, (x, state))


class AWDLSTMEncoder(nn.Module):
    """Embedding + stacked weight-dropped LSTMs; returns raw and dropped outputs of every layer."""

    def __init__(self, config: AWDLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.vocab_size, config.emb_dim, padding_idx=config.pad_token)
        self.rnns = nn.ModuleList(WeightDropLSTM(n_in, n_out, config.weight_p) for n_in, n_out in config.layer_sizes())
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Merity et al. initialise the (tied) embedding uniformly in [-0.1, 0.1].
        with torch.no_grad():
            self.embedding.weight.uniform_(-0.1, 0.1)
            self.embedding.weight[self.config.pad_token].zero_()

    def zero_state(self, batch_size: int) -> list[LSTMState]:
        """All-zero initial (h, c) for every layer."""
        weight = self.embedding.weight
        return [
            (weight.new_zeros(1, batch_size, n_out), weight.new_zeros(1, batch_size, n_out))
            for _, n_out in self.config.layer_sizes()
        ]

    def encode(
        self, tokens: torch.Tensor, state: Sequence[LSTMState] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[LSTMState]]:
        """Run the stack from `state` (zeros if None); return raw outputs, dropped outputs, final states."""
        cfg = self.config
        x = embedding_dropout(self.embedding, tokens, cfg.embed_p, self.training)
        x = locked_dropout(x, cfg.input_p, self.training)
        raw_outputs: list[torch.Tensor] = []
        dropped_outputs: list[torch.Tensor] = []
        new_state: list[LSTMState] = []
        last = len(self.rnns) - 1
        for i, rnn in enumerate(self.rnns):
            raw, layer_state = rnn(x, None if state is None else state[i])
            # Merity: `hidden_p` between layers, `output_p` on the last layer's output.
            x = locked_dropout(raw, cfg.output_p if i == last else cfg.hidden_p, self.training)
            raw_outputs.append(raw)
            dropped_outputs.append(x)
            new_state.append(layer_state)
        return raw_outputs, dropped_outputs, new_state

    def forward(self, tokens: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        raw_outputs, dropped_outputs, _ = self.encode(tokens)
        return raw_outputs, dropped_outputs


def ar_tar_loss(
    raw_outputs: Sequence[torch.Tensor],
    dropped_outputs: Sequence[torch.Tensor],
    alpha: float = 2.0,
    beta: float = 1.0,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """AR (alpha * mean square of the dropped last-layer output) + TAR (beta * mean square of its raw steps).

    `mask` (`[B, T]`, True = real token) restricts both terms to real positions (TAR: both steps real).
    """
    dropped = dropped_outputs[-1].float()
    raw = raw_outputs[-1].float()
    if mask is None:
        mask = torch.ones(dropped.shape[:2], dtype=torch.bool, device=dropped.device)
    weights = mask.to(dropped.dtype).unsqueeze(-1)
    n_ar = (weights.sum() * dropped.shape[-1]).clamp(min=1.0)
    ar = (dropped.pow(2) * weights).sum() / n_ar
    pair = weights[:, 1:] * weights[:, :-1]
    n_tar = (pair.sum() * raw.shape[-1]).clamp(min=1.0)
    tar = ((raw[:, 1:] - raw[:, :-1]).pow(2) * pair).sum() / n_tar
    return alpha * ar + beta * tar


class AWDLSTMLanguageModel(nn.Module):
    """Next-token language model: encoder + decoder whose weight is the (tied) embedding matrix."""

    ar_tar_loss = staticmethod(ar_tar_loss)

    def __init__(self, config: AWDLSTMConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = AWDLSTMEncoder(config)
        # Only the bias is a parameter of its own; the weight is read from the embedding at call time, so
        # tying survives `.to()`, state dicts and safetensors (which refuses shared tensors).
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(hidden, self.encoder.embedding.weight, self.decoder_bias)

    def step(
        self, tokens: torch.Tensor, state: Sequence[LSTMState] | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor], list[LSTMState]]:
        """Stateful call for truncated BPTT: also returns the final (h, c) of every layer."""
        raw_outputs, dropped_outputs, new_state = self.encoder.encode(tokens, state)
        return self.decode(dropped_outputs[-1]), raw_outputs, dropped_outputs, new_state

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        logits, raw_outputs, dropped_outputs, _ = self.step(tokens)
        return logits, raw_outputs, dropped_outputs


class AWDLSTMClassifier(nn.Module):
    """ULMFiT classifier: encoder -> concat pooling [last, max, mean] over real tokens -> BN/dropout/linear.

    The sequence is never cut: the LSTM runs over the whole (padded) batch. Because it is unidirectional,
    outputs at real positions do not depend on the right padding, and pooling only looks at real positions, so
    padding cannot change a sequence's logit. A length of 0 is treated as 1 (a single PAD token) so nothing
    fails.
    """

    def __init__(
        self, config: AWDLSTMConfig, head_hidden: int = 50, head_p: float = 0.4, head_hidden_p: float = 0.1
    ) -> None:
        super().__init__()
        if head_hidden < 1:
            raise ConfigError(f"awd_lstm: head_hidden must be >= 1, got {head_hidden!r}")
        for name, p in (("head_p", head_p), ("head_hidden_p", head_hidden_p)):
            if not 0.0 <= p < 1.0:
                raise ConfigError(f"awd_lstm: {name} must be in [0, 1), got {p!r}")
        self.config = config
        self.encoder = AWDLSTMEncoder(config)
        pooled = 3 * config.emb_dim
        self.head = nn.Sequential(
            nn.BatchNorm1d(pooled),
            nn.Dropout(head_p),
            nn.Linear(pooled, head_hidden),
            nn.ReLU(),
            nn.BatchNorm1d(head_hidden),
            nn.Dropout(head_hidden_p),
            nn.Linear(head_hidden, 1),
        )

    def pool(self, outputs: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Concat pooling `[B, 3C]` of `[B, T, C]` outputs over the first `lengths` positions."""
        lengths = lengths.to(outputs.device).clamp(min=1, max=outputs.shape[1])
        positions = torch.arange(outputs.shape[1], device=outputs.device)
        mask = (positions.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
        last = outputs[torch.arange(outputs.shape[0], device=outputs.device), lengths - 1]
        max_pool = outputs.masked_fill(~mask, float("-inf")).amax(dim=1)
        mean_pool = (outputs * mask).sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)
        return torch.cat([last, max_pool, mean_pool], dim=1)

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`[B, 3 * emb_dim]` concat-pooled encoder output: what the classification head reads."""
        _, dropped_outputs = self.encoder(tokens)
        return self.pool(dropped_outputs[-1], lengths)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(tokens, lengths)).squeeze(1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """Parameter groups from the input side to the head: [embedding], [LSTM 1], ..., [LSTM n], [head]."""
        groups = [list(self.encoder.embedding.parameters())]
        groups += [list(rnn.parameters()) for rnn in self.encoder.rnns]
        groups.append(list(self.head.parameters()))
        return groups

    def load_encoder_state(self, state_dict: dict[str, torch.Tensor], transfer: str = "encoder") -> None:
        """Load a pretrained LM encoder: `lm.encoder.state_dict()` or a whole LM state dict. `transfer`:
        "encoder" loads all of it (ULMFiT); "embedding" only the k-mer embedding, leaving the LSTMs at their random
        initialisation (on the CDS-start set the LM's LSTMs start the classifier worse than random ones, while its
        embedding starts it better; README, Benchmarks)."""
        if transfer not in AWD_LSTM_TRANSFER:
            raise ConfigError(f"awd_lstm: transfer must be one of {', '.join(AWD_LSTM_TRANSFER)}, got {transfer!r}")
        only = AWD_LSTM_TRANSFER[transfer]
        load_pretrained_encoder(self.encoder, state_dict, "AWD-LSTM classifier", only)
