"""Masked-language-model pretraining of the transformer encoder (BERT, Devlin et al. 2019), on k-mer streams.

Each epoch draws random windows of `context` tokens from the per-contig streams (a window never crosses a
contig end), masks about `mask_p` of their k-mer tokens and trains the model to recover them (cross-entropy on
the masked positions only). Masked positions become MASK (80%), a random k-mer (10%) or stay unchanged (10%),
decided per masked span.

Overlapping k-mers leak: with stride s < k, the neighbours of token i share all but s of its bases, so a lone
masked k-mer can be read off its neighbours. Masks therefore come in spans of `ceil(k / s)` consecutive
tokens: then every masked token contains at least one base that no unmasked token covers. (With s >= k the
span is a single token, plain BERT masking.) Span starts are drawn independently per position at the rate that
masks `mask_p` of the tokens in expectation; every window gets at least one span.

The rest mirrors `genolm.train`: AdamW (no weight decay on biases/norms), one-cycle LR, gradient clipping,
bf16 autocast on CUDA only, early stopping on the validation masked-token cross-entropy with the best weights
restored, a per-epoch history TSV, and the same result on CPU for the same seed. Validation windows tile the
held-out tail of every stream and are masked once, so epochs are scored on the same task.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from genolm.errors import ConfigError, InputFormatError, TrainingDivergedError
from genolm.kmers import MASK, PAD, SPECIAL_TOKENS
from genolm.models.transformer import TransformerMaskedLM
from genolm.train import (
    IGNORE_TARGET,
    EpochCallback,
    TrainConfig,
    TrainResult,
    _as_streams,
    _autocast,
    _clip_and_check,
    _configure_threads,
    _diverged,
    _EarlyStopping,
    _end_epoch,
    _make_scheduler,
    _param_groups,
    _Progress,
    _restore_loop,
    _split_valid,
    _write_history,
    seed_everything,
    select_device,
)
from genolm.train_state import fingerprint, matching_resume_state

log = logging.getLogger(__name__)

N_SPECIAL = len(SPECIAL_TOKENS)
# BERT's split of the masked positions: replaced by MASK / by a random k-mer / left unchanged.
_P_MASK_TOKEN = 0.8
_P_RANDOM_TOKEN = 0.1


def mask_span(k: int, stride: int) -> int:
    """Tokens per masked span: the fewest consecutive k-mers that hide at least one base of each of them."""
    if k < 1 or stride < 1:
        raise ConfigError(f"masked LM: k and stride must be >= 1, got k={k}, stride={stride}")
    return -(-k // stride)


def mask_tokens(
    tokens: np.ndarray,
    lengths: np.ndarray,
    rng: np.random.Generator,
    *,
    vocab_size: int,
    mask_p: float = 0.15,
    span: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) for windows `tokens [B, W]` with real lengths `lengths [B]`.

    Only real k-mer tokens (not PAD/UNK/other specials, not past `lengths`) are masked. `targets` holds the
    original token at masked positions and IGNORE_TARGET elsewhere.
    """
    batch, width = tokens.shape
    inside = np.arange(width)[None, :] < lengths[:, None]
    real = inside & (tokens >= N_SPECIAL)
    # A span starting at p covers p .. p + span - 1; starts range over -(span - 1) .. W - 1 so the first tokens
    # are as likely to be masked as the others. Start rate q: a token is covered with probability
    # 1 - (1 - q) ** span = mask_p.
    q = 1.0 - (1.0 - mask_p) ** (1.0 / span)
    starts = rng.random((batch, width + span - 1)) < q
    covered_by = np.concatenate([np.zeros((batch, 1), np.int64), np.cumsum(starts, axis=1)], axis=1)
    masked = (covered_by[:, span:] - covered_by[:, :width] > 0) & real
    # Every window with a real k-mer gets at least one span, starting at a random real token.
    empty = np.flatnonzero(~masked.any(axis=1) & real.any(axis=1))
    if empty.size:
        first = np.argmax(rng.random((empty.size, width)) * real[empty], axis=1)
        offsets = np.arange(width)[None, :] - first[:, None]
        masked[empty] = (offsets >= 0) & (offsets < span) & real[empty]

    # One decision per run of consecutive masked tokens (overlapping spans merge into one run).
    run_start = masked & ~np.concatenate([np.zeros((batch, 1), bool), masked[:, :-1]], axis=1)
    run_of = np.cumsum(run_start.ravel()).reshape(batch, width) - 1
    draw = rng.random(int(run_start.sum()))[run_of[masked]]
    inputs = tokens.copy()
    rows, cols = np.nonzero(masked)
    to_mask = draw < _P_MASK_TOKEN
    to_random = (draw >= _P_MASK_TOKEN) & (draw < _P_MASK_TOKEN + _P_RANDOM_TOKEN)
    inputs[rows[to_mask], cols[to_mask]] = MASK
    inputs[rows[to_random], cols[to_random]] = rng.integers(N_SPECIAL, vocab_size, int(to_random.sum()))
    targets = np.full_like(tokens, IGNORE_TARGET)
    targets[masked] = tokens[masked]
    return inputs, targets


def _gather_windows(
    flat: np.ndarray, window_starts: np.ndarray, window_lengths: np.ndarray, context: int
) -> tuple[np.ndarray, np.ndarray]:
    """(tokens [n, W], lengths [n]) of windows of the flat token array, right-padded with PAD; W <= context."""
    width = int(window_lengths.max())
    offsets = np.arange(width)
    inside = offsets[None, :] < window_lengths[:, None]
    positions = np.minimum(window_starts[:, None] + offsets[None, :], len(flat) - 1)
    return np.where(inside, flat[positions], PAD), window_lengths.astype(np.int64)


def _random_windows(
    flat: np.ndarray, stream_lengths: np.ndarray, n_windows: int, context: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """`n_windows` windows of the concatenated streams `flat`, drawn uniformly over every start that keeps a
    window inside its contig (a contig shorter than `context` offers one start: the whole contig)."""
    bounds = np.concatenate([[0], np.cumsum(stream_lengths)])
    n_starts = np.where(stream_lengths > 0, np.maximum(stream_lengths - context + 1, 1), 0)
    cum = np.cumsum(n_starts)
    slot = rng.integers(0, int(cum[-1]), n_windows)
    contig = np.searchsorted(cum, slot, side="right")
    start = slot - (cum[contig] - n_starts[contig])
    window_lengths = np.minimum(stream_lengths[contig], context)
    return _gather_windows(flat, bounds[contig] + start, window_lengths, context)


def tiled_windows(streams: list[np.ndarray], context: int) -> tuple[np.ndarray, np.ndarray]:
    """Consecutive windows of `context` tokens covering every stream once (the last of each may be shorter)."""
    starts, window_lengths = [], []
    offset = 0
    for stream in streams:
        for begin in range(0, len(stream), context):
            starts.append(offset + begin)
            window_lengths.append(min(context, len(stream) - begin))
        offset += len(stream)
    return _gather_windows(np.concatenate(streams), np.array(starts), np.array(window_lengths), context)


def _masked_ce(
    model: TransformerMaskedLM, inputs: torch.Tensor, lengths: torch.Tensor, targets: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(summed CE, number of correct argmax predictions, number of targets) over the masked positions; only
    those positions are decoded."""
    selected = targets != IGNORE_TARGET
    with _autocast(inputs.device):
        hidden = model.hidden(inputs, lengths)
        logits = model.decode(hidden[selected]).float()
    wanted = targets[selected]
    ce = F.cross_entropy(logits, wanted, reduction="sum")
    return ce, (logits.argmax(-1) == wanted).sum(), selected.sum()


def evaluate_masked(
    model: TransformerMaskedLM,
    windows: tuple[np.ndarray, np.ndarray, np.ndarray],
    batch_size: int,
    device: torch.device,
) -> tuple[float, float]:
    """(mean masked-token CE, accuracy) on fixed masked validation windows (eval mode, no gradients)."""
    inputs, lengths, targets = windows
    ce_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n_total = int((targets != IGNORE_TARGET).sum())
    model.eval()
    with torch.no_grad():
        for first in range(0, len(inputs), batch_size):
            part = slice(first, first + batch_size)
            ce, n_correct, _ = _masked_ce(
                model,
                torch.from_numpy(inputs[part]).to(device),
                torch.from_numpy(lengths[part]).to(device),
                torch.from_numpy(targets[part]).to(device),
            )
            ce_sum += ce.double()
            correct += n_correct
    return float(ce_sum) / n_total, float(correct) / n_total


def pretrain_masked_lm(
    model: TransformerMaskedLM,
    streams: Sequence[np.ndarray],
    cfg: TrainConfig,
    *,
    context: int,
    k: int,
    stride: int,
    mask_p: float = 0.15,
    valid: Sequence[np.ndarray] | None = None,
    valid_fraction: float = 0.1,
    history_path: Path | None = None,
    on_epoch: EpochCallback | None = None,
    resume_path: str | Path | None = None,
) -> TrainResult:
    """Masked-LM pretraining on per-contig token streams (see the module docstring); `k` and `stride` are the
    tokenizer's and set the span length. An epoch draws about as many windows as the training tokens fill.

    Without `valid`, the last `valid_fraction` of every stream is held out. History columns: epoch, train_loss
    (masked-token CE), valid_loss (masked-token CE), valid_accuracy, lr, tokens_per_s, seconds. The model ends
    with the best weights; `on_epoch` receives each history row.
    """
    span = mask_span(k, stride)
    if not 0.0 < mask_p < 1.0:
        raise ConfigError(f"masked LM: mask_p must be in (0, 1), got {mask_p!r}")
    if not span < context <= model.config.max_tokens:
        raise ConfigError(
            f"masked LM: context must be in {span + 1}..{model.config.max_tokens} (more than one mask span of "
            f"{span} tokens, at most the model's max_tokens), got {context}"
        )
    train_streams = _as_streams(list(streams), "training")
    if valid is None:
        train_streams, valid_streams = _split_valid(train_streams, valid_fraction)
    else:
        valid_streams = _as_streams(list(valid), "validation")
    vocab = model.config.vocab_size
    for name, group in (("training", train_streams), ("validation", valid_streams)):
        bad = [i for i, s in enumerate(group) if s.size and (s.min() < 0 or s.max() >= vocab)]
        if bad:
            raise InputFormatError(f"{name} corpus: stream {bad[0]} has token ids outside the vocabulary ({vocab})")
    train_streams = [s for s in train_streams if s.size]
    valid_streams = [s for s in valid_streams if s.size]
    if not train_streams or not valid_streams:
        raise ConfigError("masked LM: the training or validation corpus is empty")

    _configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    rng, valid_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(cfg.seed).spawn(2))
    device = select_device(cfg.device)
    model.to(device)

    valid_tokens, valid_lengths = tiled_windows(valid_streams, context)
    valid_inputs, valid_targets = mask_tokens(
        valid_tokens, valid_lengths, valid_rng, vocab_size=vocab, mask_p=mask_p, span=span
    )
    if not (valid_targets != IGNORE_TARGET).any():
        raise ConfigError("masked LM: the validation corpus has no k-mer token to mask (only UNK/special tokens?)")
    valid_windows = (valid_inputs, valid_lengths, valid_targets)

    n_windows = max(1, round(sum(len(s) for s in train_streams) / context))
    steps_per_epoch = math.ceil(n_windows / cfg.batch_size)
    optimizer = torch.optim.AdamW(_param_groups([list(model.parameters())], cfg.lr, cfg.weight_decay, 1.0), lr=cfg.lr)
    scheduler = _make_scheduler(
        optimizer, [cfg.lr] * len(optimizer.param_groups), cfg.epochs * steps_per_epoch, cfg.one_cycle
    )
    stopper = _EarlyStopping(cfg.patience)
    rows: list[dict[str, float]] = []
    flat = np.concatenate(train_streams)
    stream_lengths = np.array([len(s) for s in train_streams], dtype=np.int64)
    done, stopped, fprint = 0, False, None
    if resume_path is not None:
        data = [stream_lengths, flat, valid_inputs, valid_targets]
        loop = {"loop": "masked_lm", "context": context, "mask_p": mask_p, "span": span}
        fprint = fingerprint(cfg, data, model, loop)
        saved = matching_resume_state(resume_path, fprint)
        if saved is not None:
            # `rng` draws every window and mask: restoring it makes the resumed epochs draw what they would have.
            done, rows, stopped = _restore_loop(saved.state, model, stopper, rng)
            optimizer.load_state_dict(saved.state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved.state["scheduler"])
    for epoch in range(done + 1, cfg.epochs + 1):
        if stopped:
            break
        started = time.perf_counter()
        model.train()
        ce_sum = torch.zeros((), dtype=torch.float64, device=device)
        n_targets = n_tokens = 0
        progress = _Progress(f"MLM epoch {epoch}", steps_per_epoch)
        for step in range(steps_per_epoch):
            # Windows and masks are drawn batch by batch: memory stays at one batch whatever the corpus size.
            n_batch_windows = min(cfg.batch_size, n_windows - step * cfg.batch_size)
            tokens, lengths = _random_windows(flat, stream_lengths, n_batch_windows, context, rng)
            inputs, targets = mask_tokens(tokens, lengths, rng, vocab_size=vocab, mask_p=mask_p, span=span)
            ce, _, n_batch = _masked_ce(
                model,
                torch.from_numpy(inputs).to(device),
                torch.from_numpy(lengths).to(device),
                torch.from_numpy(targets).to(device),
            )
            loss = ce / n_batch.clamp(min=1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            try:
                _clip_and_check(model, loss, cfg.grad_clip, epoch, step + 1, "masked-LM training")
            except TrainingDivergedError as err:
                raise _diverged(str(err), epoch - 1, resume_path) from err
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            ce_sum += ce.detach().double()
            n_targets += int(n_batch)
            n_tokens += int(lengths.sum())
            progress.update(step + 1, float(loss.detach()))
        train_seconds = time.perf_counter() - started
        valid_loss, valid_accuracy = evaluate_masked(model, valid_windows, cfg.batch_size, device)
        row = {
            "epoch": epoch,
            "train_loss": float(ce_sum) / max(n_targets, 1),
            "valid_loss": valid_loss,
            "valid_accuracy": valid_accuracy,
            "lr": float(optimizer.param_groups[0]["lr"]),
            "tokens_per_s": n_tokens / max(train_seconds, 1e-9),
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        stopped = stopper.update(epoch, valid_loss, model)
        _end_epoch(
            "MLM epoch", rows, stopped, (model, optimizer, scheduler, rng), stopper, cfg,
            resume_path=resume_path, fprint=fprint, history_path=history_path, on_epoch=on_epoch,
        )  # fmt: skip
    return stopper.result(model, _write_history(rows, history_path))
