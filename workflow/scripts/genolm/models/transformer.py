"""Small pre-norm transformer encoder: a binary classifier and a masked language model that share the encoder.

Both models hold a `TransformerEncoderBody` named `encoder` (token embedding, positional encoding, the layer
stack and its final LayerNorm), so `classifier.load_encoder_state(mlm.encoder.state_dict())` starts a
classifier from a pretrained MLM, as ULMFiT does with the AWD-LSTM.

The classifier never truncates. A sequence is cut into chunks of at most `max_tokens` encoder positions (one
of them the CLS token with `pooling: cls`), consecutive chunks sharing `overlap` tokens; every chunk of every
sequence in the batch is encoded in one pass, each chunk is pooled (masked mean of its tokens, or its CLS
output), and the chunk vectors of a sequence are averaged weighted by their token counts. With mean pooling
and no overlap this is exactly the mean of every token's output. A sequence that fits one chunk is encoded
whole, with attention across all of it. Attention never looks at padding, and pooling only reads real tokens,
so a sequence's logit does not depend on the batch it is in (up to float rounding). A length of 0 is treated as
1 (a single PAD token) so nothing fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genolm.errors import ConfigError
from genolm.kmers import CLS, PAD
from genolm.models.pretrained import load_pretrained_encoder

POSITIONAL = ("learned", "sinusoidal")
POOLING = ("mean", "cls")


@dataclass
class TransformerConfig:
    vocab_size: int
    d_model: int = 128
    n_heads: int = 4
    layers: int = 4
    ff_dim: int = 512
    dropout: float = 0.1
    max_tokens: int = 512  # encoder context, CLS included; longer sequences are chunked, never truncated
    overlap: int = 0  # tokens shared by consecutive chunks of a long sequence
    positional: str = "learned"  # "learned" (starts as the sinusoidal table) or "sinusoidal" (fixed, not saved)
    pooling: str = "mean"  # classifier only: "mean" over tokens or the "cls" token's output

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "n_heads", "layers", "ff_dim", "max_tokens"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"transformer: {name} must be >= 1, got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"transformer: d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ConfigError(f"transformer: dropout must be in [0, 1), got {self.dropout!r}")
        if self.positional not in POSITIONAL:
            raise ConfigError(f"transformer: positional must be one of {list(POSITIONAL)}, got {self.positional!r}")
        if self.pooling not in POOLING:
            raise ConfigError(f"transformer: pooling must be one of {list(POOLING)}, got {self.pooling!r}")
        if self.vocab_size <= max(PAD, CLS):
            raise ConfigError(f"transformer: vocab_size {self.vocab_size} lacks the special tokens")
        if self.chunk_tokens < 1:
            raise ConfigError("transformer: max_tokens must be >= 2 with pooling 'cls' (one position is the CLS)")
        if not 0 <= int(self.overlap) < self.chunk_tokens:
            raise ConfigError(
                f"transformer: overlap must be in 0..{self.chunk_tokens - 1} (sequence tokens per chunk - 1), "
                f"got {self.overlap!r}"
            )

    @property
    def chunk_tokens(self) -> int:
        """Sequence tokens per classifier chunk: the context minus the CLS position, if any."""
        return self.max_tokens - (self.pooling == "cls")


def sinusoidal_positions(n_positions: int, d_model: int) -> torch.Tensor:
    """Vaswani et al.'s fixed encoding `[n_positions, d_model]`: sin on even channels, cos on odd ones."""
    position = torch.arange(n_positions, dtype=torch.float32).unsqueeze(1)
    freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(10000.0) / d_model))
    table = torch.zeros(n_positions, d_model)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
    return table


class TransformerEncoderBody(nn.Module):
    """Embedding + positions + pre-norm `nn.TransformerEncoder` (final LayerNorm included): `[N, W] -> [N, W, C]`.

    Token embeddings are initialised with std `d_model ** -0.5` and scaled by `sqrt(d_model)` on input, so the
    input has unit scale while the tied MLM decoder starts with unit-scale logits.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model, padding_idx=PAD)
        if config.positional == "learned":
            self.position_embedding = nn.Embedding(config.max_tokens, config.d_model)
        else:
            # Not persistent: derived from the config, so it is neither saved nor expected in a checkpoint.
            self.register_buffer(
                "position_table", sinusoidal_positions(config.max_tokens, config.d_model), persistent=False
            )
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerEncoderLayer(
            config.d_model,
            config.n_heads,
            config.ff_dim,
            config.dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.transformer = nn.TransformerEncoder(
            layer, config.layers, norm=nn.LayerNorm(config.d_model), enable_nested_tensor=False
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        d = self.config.d_model
        with torch.no_grad():
            nn.init.normal_(self.token_embedding.weight, std=d**-0.5)
            self.token_embedding.weight[PAD].zero_()
            if self.config.positional == "learned":
                # Start from the sinusoidal table rather than noise: relative offsets are linear maps of it from
                # step 0. On a toy MLM that must read tokens 6 positions away, this start solved the task within
                # 40 epochs in 3 of 3 seeds; BERT's N(0, 0.02) start stayed at the context-free loss in all 3.
                self.position_embedding.weight.copy_(sinusoidal_positions(self.config.max_tokens, d))
        # nn.TransformerEncoder deep-copies one layer, so every layer would start with the same weights.
        for layer in self.transformer.layers:
            layer.self_attn._reset_parameters()
            layer.linear1.reset_parameters()
            layer.linear2.reset_parameters()

    def positions(self, width: int) -> torch.Tensor:
        if self.config.positional == "learned":
            return self.position_embedding.weight[:width]
        return self.position_table[:width]

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Outputs `[N, W, d_model]` of `tokens [N, W]`; `mask [N, W]` is True at real positions (every row needs
        at least one). Positions past `max_tokens` have no encoding: W must be <= max_tokens."""
        width = tokens.shape[1]
        if width > self.config.max_tokens:
            raise ValueError(f"transformer: {width} positions, more than max_tokens={self.config.max_tokens}")
        x = self.token_embedding(tokens) * math.sqrt(self.config.d_model) + self.positions(width)
        return self.transformer(self.dropout(x), src_key_padding_mask=~mask)


class TransformerClassifier(nn.Module):
    """Binary classifier: chunked encoder -> pooled sequence embedding -> dropout -> linear (see module doc)."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoderBody(config)
        self.head = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.d_model, 1))

    def _chunks(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Chunk batch: (sequence of each chunk, its index within the sequence, its tokens [N, W], its real-token
        mask [N, W], its token count [N])."""
        cfg = self.config
        size, step = cfg.chunk_tokens, cfg.chunk_tokens - cfg.overlap
        if tokens.shape[1] == 0:
            tokens = F.pad(tokens, (0, 1), value=PAD)
        lengths = lengths.to(tokens.device).clamp(min=1, max=tokens.shape[1])
        n_chunks = 1 + torch.div((lengths - size).clamp(min=0) + step - 1, step, rounding_mode="floor")
        seq = torch.repeat_interleave(torch.arange(len(lengths), device=tokens.device), n_chunks)
        first = torch.cumsum(n_chunks, 0) - n_chunks
        index = torch.arange(len(seq), device=tokens.device) - first[seq]
        starts = index * step
        counts = torch.clamp(lengths[seq] - starts, max=size)
        offsets = torch.arange(int(counts.max()), device=tokens.device)
        mask = offsets.unsqueeze(0) < counts.unsqueeze(1)
        positions = (starts.unsqueeze(1) + offsets.unsqueeze(0)).clamp(max=tokens.shape[1] - 1)
        chunk_tokens = tokens[seq.unsqueeze(1), positions].masked_fill(~mask, PAD)
        return seq, index, chunk_tokens, mask, counts

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Pooled sequence embedding `[B, d_model]` (float32): token-count-weighted mean of the chunk vectors."""
        seq, index, chunk_tokens, mask, counts = self._chunks(tokens, lengths)
        encoder_mask = mask
        if self.config.pooling == "cls":
            cls = torch.full_like(chunk_tokens[:, :1], CLS)
            chunk_tokens = torch.cat([cls, chunk_tokens], dim=1)
            encoder_mask = torch.cat([torch.ones_like(mask[:, :1]), mask], dim=1)
        out = self.encoder(chunk_tokens, encoder_mask).float()
        weight = counts.to(out.dtype).unsqueeze(1)
        if self.config.pooling == "cls":
            weighted = out[:, 0] * weight  # chunk vector times its token count
        else:
            weighted = (out * mask.unsqueeze(-1)).sum(dim=1)  # = chunk mean times its token count
        # Each chunk goes to its own slot, then slots are summed per sequence: no atomic adds, so the result is
        # deterministic on every device.
        batch, most = len(lengths), int(index.max()) + 1
        slots = out.new_zeros(batch * most, out.shape[-1] + 1)
        slots[seq * most + index] = torch.cat([weighted, weight], dim=1)
        totals = slots.view(batch, most, -1).sum(dim=1)
        return totals[:, :-1] / totals[:, -1:]

    def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """`[B, d_model]` pooled sequence embedding (`encode`), what the head reads."""
        return self.encode(tokens, lengths)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.head(self.encode(tokens, lengths)).squeeze(1)

    def layer_groups(self) -> list[list[nn.Parameter]]:
        """[embeddings], [encoder layer 1], ..., [encoder layer n], [final norm + head]: input side first."""
        body = self.encoder
        embeddings = list(body.token_embedding.parameters())
        if self.config.positional == "learned":
            embeddings += list(body.position_embedding.parameters())
        groups = [embeddings, *(list(layer.parameters()) for layer in body.transformer.layers)]
        groups.append([*body.transformer.norm.parameters(), *self.head.parameters()])
        return groups

    def load_encoder_state(self, state_dict: dict[str, torch.Tensor], transfer: str = "encoder") -> None:
        """Load a pretrained encoder: `mlm.encoder.state_dict()` or a whole `TransformerMaskedLM` state dict (only
        `transfer: encoder`: the whole encoder)."""
        if transfer != "encoder":
            raise ConfigError(f"transformer: transfer must be 'encoder', got {transfer!r}")
        load_pretrained_encoder(self.encoder, state_dict, "transformer")


class TransformerMaskedLM(nn.Module):
    """BERT-style masked LM: encoder -> dense/GELU/LayerNorm -> decoder tied to the token embedding.

    `pooling` and `overlap` of the shared config are classifier settings and do not affect this model.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        self.config = config
        self.encoder = TransformerEncoderBody(config)
        self.transform = nn.Sequential(
            nn.Linear(config.d_model, config.d_model), nn.GELU(), nn.LayerNorm(config.d_model)
        )
        # As in the AWD-LSTM LM, the decoder weight is read from the embedding at call time (safetensors refuses
        # shared tensors); only the bias is a parameter of its own.
        self.decoder_bias = nn.Parameter(torch.zeros(config.vocab_size))

    def hidden(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Transformed encoder outputs `[B, T, d_model]` of `tokens [B, T]` (T <= max_tokens); `lengths` masks
        right padding (None: every position is real)."""
        if lengths is None:
            mask = torch.ones_like(tokens, dtype=torch.bool)
        else:
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            mask = positions.unsqueeze(0) < lengths.to(tokens.device).clamp(min=1).unsqueeze(1)
        return self.transform(self.encoder(tokens, mask))

    def decode(self, hidden: torch.Tensor) -> torch.Tensor:
        """Vocabulary logits of hidden states (`[..., d_model] -> [..., vocab_size]`), decoder tied to the embedding."""
        return F.linear(hidden, self.encoder.token_embedding.weight, self.decoder_bias)

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Logits `[B, T, vocab_size]`. Training decodes only the masked positions (`decode(hidden(...)[sel])`):
        full logits of a batch take B * T * vocab_size floats."""
        return self.decode(self.hidden(tokens, lengths))
