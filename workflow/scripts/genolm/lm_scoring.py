"""Sequence log-likelihoods and embeddings from genolm's language models (AWD-LSTM next-token LM, transformer MLM).

Phases. With stride s > 1 a window's k-mer tokens start every s bases, so the same DNA gives s different token
chains depending on where tokenization starts (its phase). A score from one phase would depend on the variant's
offset modulo s and on whether an indel shifts the downstream grid. Every score here is therefore the mean over
the s phases (phase p tokenizes `window[p:]` on the stride grid, no tail token): each base is read in every
position of a k-mer, the score no longer depends on where the window starts, and an indel's downstream phases
are the reference's phases permuted, so upstream and downstream context cancel between REF and ALT windows.

Next-token log-likelihood of one phase: the sum over tokens 2..n of log P(t_i | t_1..t_{i-1}) from a zero LSTM
state (the first token has no prediction). Masked LMs get no sequence likelihood (a pseudo-likelihood needs one
pass per token); `masked_marginal` gives their cheap variant score instead: the tokens overlapping the changed
bases are masked in one pass and their log-probabilities under ALT and REF are compared (the "masked marginal"
of Meier et al. 2021), for substitutions only.

Embeddings are the mean over tokens (and phases) of the encoder's final hidden states: the AWD-LSTM's last layer
output, the transformer encoder's output (what its classifier's mean pooling reads).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from genolm.errors import CheckpointError, ConfigError
from genolm.kmers import MASK, PAD, KmerTokenizer

log = logging.getLogger(__name__)

NEXT, MASKED = "next", "masked"


@dataclass(frozen=True)
class LanguageModel:
    """A loaded LM: the model (eval mode), its tokenizer, its objective (`next` or `masked`) and device."""

    model: Any
    tokenizer: KmerTokenizer
    objective: str
    device: Any
    path: str = ""


def load_language_model(checkpoint: str | Path, device: str = "auto") -> LanguageModel:
    """Load a language-model checkpoint (pretrained or fine-tuned) with the tokenizer from its sidecar."""
    from genolm.checkpoint import LANGUAGE_MODEL_ARCH, MASKED_LM_ARCH, load_checkpoint, read_checkpoint_meta
    from genolm.train import select_device

    meta = read_checkpoint_meta(checkpoint)
    objectives = {LANGUAGE_MODEL_ARCH: NEXT, MASKED_LM_ARCH: MASKED}
    if meta["arch"] not in objectives:
        raise CheckpointError(
            f"{checkpoint}: arch '{meta['arch']}' is not a language model (expected {', '.join(objectives)})"
        )
    torch_device = select_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=torch_device)
    return LanguageModel(model, KmerTokenizer.from_dict(meta["vocab"]), objectives[meta["arch"]], torch_device,
                         str(checkpoint))  # fmt: skip


def phase_tokenizer(tokenizer: KmerTokenizer) -> KmerTokenizer:
    """The model's tokenizer on the stride grid only (no tail token, UNK for non-ACGT), for one phase."""
    return KmerTokenizer(tokenizer.k, stride=tokenizer.stride, include_tail=False, unknown="unk")


def phase_batch(tokenizer: KmerTokenizer, seqs: list[str], phase: int) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [B, T] padded with PAD, lengths [B]) of `seq[phase:]` for every sequence."""
    return phase_tokenizer(tokenizer).encode_batch([seq[phase:] for seq in seqs])


def _model_outputs(lm: LanguageModel, tokens: np.ndarray, lengths: np.ndarray) -> tuple[Any, Any]:
    """(logits [B, T, V] or None for an MLM, final hidden states [B, T, C]) in float32, no gradients."""
    import torch

    batch = torch.from_numpy(tokens).to(lm.device)
    with torch.no_grad():
        if lm.objective == NEXT:
            logits, raw, _ = lm.model(batch)
            return logits.float(), raw[-1].float()
        real = (
            torch.arange(batch.shape[1], device=lm.device)[None, :] < torch.from_numpy(lengths).to(lm.device)[:, None]
        )
        real[:, 0] = True  # an empty row still needs one visible position
        return None, lm.model.encoder(batch, real).float()


def _check_width(lm: LanguageModel, width: int) -> None:
    if lm.objective == MASKED and width > lm.model.config.max_tokens:
        raise ConfigError(
            f"{lm.path or 'masked LM'}: windows of {width} tokens exceed its context (max_tokens "
            f"{lm.model.config.max_tokens}); lower the flank"
        )


def next_token_log_likelihood(lm: LanguageModel, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Per row: sum over positions 1..len-1 of log P(token | previous tokens), float64 (0 for len <= 1)."""
    import torch

    logits, _ = _model_outputs(lm, tokens, lengths)
    log_probs = torch.log_softmax(logits[:, :-1].double(), dim=-1)
    targets = torch.from_numpy(tokens[:, 1:]).to(lm.device)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    real = (
        torch.arange(targets.shape[1], device=lm.device)[None, :]
        < (torch.from_numpy(lengths).to(lm.device) - 1)[:, None]
    )
    return (picked * real).sum(dim=1).cpu().numpy()


def sequence_log_likelihood(lm: LanguageModel, seqs: list[str], batch_size: int = 64) -> np.ndarray:
    """Next-token log-likelihood of each sequence, averaged over the tokenizer's `stride` phases (module doc)."""
    if lm.objective != NEXT:
        raise ConfigError(f"{lm.path or 'model'}: a sequence log-likelihood needs a next-token LM (AWD-LSTM)")
    out = np.zeros(len(seqs), dtype=np.float64)
    stride = lm.tokenizer.stride
    for first in range(0, len(seqs), batch_size):
        part = seqs[first : first + batch_size]
        for phase in range(stride):
            tokens, lengths = phase_batch(lm.tokenizer, part, phase)
            if tokens.shape[1] > 1:
                out[first : first + len(part)] += next_token_log_likelihood(lm, tokens, lengths) / stride
    return out


def embed_windows(lm: LanguageModel, seqs: list[str], batch_size: int = 64) -> np.ndarray:
    """`[N, C]` float64: final hidden states averaged over each sequence's tokens, then over the phases."""
    import torch

    stride = lm.tokenizer.stride
    chunks = []
    for first in range(0, len(seqs), batch_size):
        part = seqs[first : first + batch_size]
        total = None
        for phase in range(stride):
            tokens, lengths = phase_batch(lm.tokenizer, part, phase)
            if tokens.shape[1] == 0:
                tokens, lengths = np.full((len(part), 1), PAD, np.int64), np.zeros(len(part), np.int64)
            _check_width(lm, tokens.shape[1])
            _, hidden = _model_outputs(lm, tokens, lengths)
            real = (
                torch.arange(hidden.shape[1], device=lm.device)[None, :]
                < torch.from_numpy(lengths).to(lm.device)[:, None]
            )
            counts = real.sum(dim=1, keepdim=True).clamp(min=1).double()
            pooled = (hidden.double() * real.unsqueeze(-1)).sum(dim=1) / counts
            total = pooled if total is None else total + pooled
        chunks.append((total / stride).cpu().numpy())
    width = chunks[0].shape[1] if chunks else 0
    return np.concatenate(chunks) if chunks else np.zeros((0, width))


def masked_marginal(lm: LanguageModel, refs: list[str], alts: list[str], batch_size: int = 64) -> np.ndarray:
    """log P(ALT tokens) - log P(REF tokens) at the tokens overlapping the changed bases, all masked in one pass
    per phase, averaged over phases. REF and ALT windows have equal lengths (substitutions); NaN where a phase has
    no token over the change (a window shorter than k) or nothing changed."""
    import torch

    if lm.objective != MASKED:
        raise ConfigError(f"{lm.path or 'model'}: the masked marginal needs a masked LM (transformer)")
    k, stride = lm.tokenizer.k, lm.tokenizer.stride
    out = np.zeros(len(refs), dtype=np.float64)
    for first in range(0, len(refs), batch_size):
        part = slice(first, first + batch_size)
        ref_part, alt_part = refs[part], alts[part]
        for phase in range(stride):
            ref_tokens, lengths = phase_batch(lm.tokenizer, ref_part, phase)
            alt_tokens, _ = phase_batch(lm.tokenizer, alt_part, phase)
            _check_width(lm, ref_tokens.shape[1])
            starts = phase + stride * np.arange(ref_tokens.shape[1])[None, :]
            changed = np.zeros_like(ref_tokens, dtype=bool)
            for row, (ref, alt) in enumerate(zip(ref_part, alt_part, strict=True)):
                diff = np.flatnonzero(np.frombuffer(ref.encode(), np.uint8) != np.frombuffer(alt.encode(), np.uint8))
                if diff.size:
                    lo, hi = int(diff[0]), int(diff[-1]) + 1
                    changed[row] = (
                        (starts[0] < hi) & (starts[0] + k > lo) & (np.arange(ref_tokens.shape[1]) < lengths[row])
                    )
            inputs = np.where(changed, MASK, ref_tokens)
            with torch.no_grad():
                hidden = lm.model.hidden(torch.from_numpy(inputs).to(lm.device), torch.from_numpy(lengths))
                logits = lm.model.decode(hidden)
            log_probs = torch.log_softmax(logits.double(), dim=-1).cpu().numpy()
            rows, cols = np.nonzero(changed)
            delta = log_probs[rows, cols, alt_tokens[rows, cols]] - log_probs[rows, cols, ref_tokens[rows, cols]]
            scores = np.zeros(len(ref_part))
            np.add.at(scores, rows, delta)
            scores[~changed.any(axis=1)] = np.nan
            out[part] += scores / stride
    return out
