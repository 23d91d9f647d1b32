"""Training loops: binary classifiers (optionally ULMFiT-style) and AWD-LSTM language-model pretraining.

Both loops use AdamW (no weight decay on biases/norms), a one-cycle LR schedule, gradient clipping, bf16
autocast on CUDA only, early stopping on the validation loss with the best weights restored, a per-epoch
history TSV and progress lines in the log, and raise TrainingDivergedError on a non-finite loss or gradient or
an exploding training loss. On CPU the same seed gives identical results.

Given a `resume_path`, both loops save their whole state after every epoch (genolm.train_state) and a rerun
continues after the last finished epoch, ending with the same history, best epoch and weights as a run that
was never interrupted (on CPU). The caller removes the state with `clear_resume_state` once it is done with it.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from genolm.atomic import atomic_path
from genolm.datasets import TokenSet
from genolm.errors import ConfigError, InputFormatError, TrainingDivergedError
from genolm.metrics import auroc
from genolm.models.awd_lstm import AWDLSTMLanguageModel, ar_tar_loss
from genolm.oom import with_oom_backoff
from genolm.train_state import capture_rng, fingerprint, matching_resume_state, restore_rng, save_resume_state
from genolm.train_state import clear_resume_state as clear_resume_state  # for callers of the training loops

log = logging.getLogger(__name__)

PAD_TOKEN = 0
IGNORE_TARGET = -100  # F.cross_entropy's ignore_index
# Length buckets span this many batches: enough to group similar lengths, few enough to keep batches random.
_BATCHES_PER_BUCKET = 50
# One-cycle shape as in fastai's fit_one_cycle (warm-up fraction); torch defaults for the rest.
_ONE_CYCLE_PCT_START = 0.25

EpochCallback = Callable[[dict[str, float]], None]


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-2
    patience: int = 3
    grad_clip: float = 1.0  # max global grad norm; 0 disables clipping
    seed: int = 1
    device: str = "auto"
    threads: int | None = None
    # ULMFiT classifier fine-tuning. Discriminative LRs apply to every model with layer_groups() (group i of n
    # gets lr / lr_decay_per_group ** (n - 1 - i)); set lr_decay_per_group to 1.0 for one LR everywhere.
    gradual_unfreezing: bool = False
    lr_decay_per_group: float = 2.6
    one_cycle: bool = True
    # An epoch whose mean training loss exceeds explode_factor x epoch 1's is treated as divergence (null: off).
    explode_factor: float | None = 1e4
    # Each training sequence moves by a random -n..n tokens per epoch (PAD fills the gap, its length is kept):
    # aligned windows such as TSS-centred promoters stop being memorised by exact position.
    shift_jitter: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"training: {name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("lr", "lr_decay_per_group"):
            if not float(getattr(self, name)) > 0.0:
                raise ConfigError(f"training: {name} must be > 0, got {getattr(self, name)!r}")
        for name in ("weight_decay", "grad_clip"):
            if not float(getattr(self, name)) >= 0.0:
                raise ConfigError(f"training: {name} must be >= 0, got {getattr(self, name)!r}")
        if self.threads is not None and int(self.threads) < 1:
            raise ConfigError(f"training: threads must be >= 1 or null, got {self.threads!r}")
        if int(self.shift_jitter) < 0:
            raise ConfigError(f"training: shift_jitter must be >= 0, got {self.shift_jitter!r}")
        if self.explode_factor is not None and not float(self.explode_factor) > 1.0:
            raise ConfigError(f"training: explode_factor must be > 1 or null, got {self.explode_factor!r}")


@dataclass
class TrainResult:
    best_epoch: int
    best_valid_loss: float
    history: pd.DataFrame
    state_dict: dict[str, torch.Tensor] = field(repr=False)  # best weights, on CPU


def select_device(name: str) -> torch.device:
    """ "auto" -> CUDA if available, else CPU; an explicit CUDA device that is not there is a ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ConfigError(f"training: unknown device '{name}'") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"training: device '{name}' requested but CUDA is not available")
    return device


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) and ask torch for deterministic kernels (warn if none)."""
    # cuBLAS needs this before its first use to be deterministic; harmless elsewhere.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


# ------------------------------------------------------------------------------------------------ token sets


# -------------------------------------------------------------------------------------------------- batching


def bucketed_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random batches of similar lengths: shuffle, sort within buckets of `_BATCHES_PER_BUCKET` batches,
    shuffle the batch order. The batch count depends only on N, so LR schedules can be sized up front. A
    trailing batch of one example joins its neighbour (BatchNorm cannot train on a single example)."""
    order = rng.permutation(len(lengths))
    bucket = batch_size * _BATCHES_PER_BUCKET
    batches: list[np.ndarray] = []
    for start in range(0, len(order), bucket):
        idx = order[start : start + bucket]
        idx = idx[np.argsort(lengths[idx], kind="stable")]
        batches += [idx[i : i + batch_size] for i in range(0, len(idx), batch_size)]
    if len(batches) > 1 and len(batches[-1]) == 1:
        leftover = batches.pop()
        batches[-1] = np.concatenate([batches[-1], leftover])
    return [batches[i] for i in rng.permutation(len(batches))]


def _to_device(ts: TokenSet, idx: np.ndarray, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Batch tensors, with columns trimmed to the batch's longest sequence (never shorter than 1)."""
    lengths = ts.lengths[idx]
    width = max(int(lengths.max()), 1)
    tokens = torch.from_numpy(np.ascontiguousarray(ts.tokens[idx, :width]))
    return (
        tokens.to(device, non_blocking=True),
        torch.from_numpy(lengths).to(device, non_blocking=True),
        torch.from_numpy(ts.labels[idx]).to(device, non_blocking=True),
    )


def jitter_tokens(
    tokens: torch.Tensor, lengths: torch.Tensor, max_shift: int, rng: np.random.Generator
) -> torch.Tensor:
    """Move each row's tokens by its own random shift in -max_shift..max_shift within the row's length: what
    moves past either end is dropped and PAD fills the gap, so lengths (and padding beyond them) stay as they were."""
    shifts = torch.from_numpy(rng.integers(-max_shift, max_shift + 1, size=tokens.shape[0])).to(tokens.device)
    positions = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
    source = positions - shifts.unsqueeze(1)
    row_lengths = lengths.to(tokens.device).unsqueeze(1)
    inside = (source >= 0) & (source < row_lengths) & (positions < row_lengths)
    moved = torch.gather(tokens, 1, source.clamp(0, tokens.shape[1] - 1))
    return moved.masked_fill(~inside, PAD_TOKEN)


def _autocast(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    # bf16 needs no loss scaling; CPU autocast is slower and less exact than fp32 for these small models.
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        model.train(was_training)


def _batched_outputs(
    model: nn.Module, ts: TokenSet, batch_size: int, device: torch.device, method: str = "forward"
) -> np.ndarray:
    """float64 outputs of `model.<method>(tokens, lengths)` in the order of `ts` (fp32 math, eval mode). Batches
    run longest first, so padding is minimal; on running out of GPU memory the batch size is halved (genolm.oom)
    without changing the result."""
    outputs: dict[int, np.ndarray] = {}
    order = np.argsort(-ts.lengths, kind="stable")

    def run(idx: np.ndarray) -> None:
        tokens, lengths, _ = _to_device(ts, idx, device)
        values = getattr(model, method)(tokens, lengths).float().cpu().numpy().astype(np.float64)
        outputs.update(zip(idx.tolist(), values, strict=True))

    with _eval_mode(model):
        with_oom_backoff(run, order, batch_size, what=f"{method} on {ts.source}")
    if not outputs:
        return np.empty(0, dtype=np.float64)
    return np.stack([outputs[i] for i in range(len(ts))])


def _predict_logits(model: nn.Module, ts: TokenSet, batch_size: int, device: torch.device) -> np.ndarray:
    """float64 logits in the order of `ts`."""
    return _batched_outputs(model, ts, batch_size, device)


def embed_sequences(
    model: nn.Module, ts: TokenSet, batch_size: int = 256, device: torch.device | str | None = None
) -> np.ndarray:
    """`[N, D]` float64 sequence embeddings (the classifier's `embed`: what its output layer reads), in order."""
    if not hasattr(model, "embed"):
        raise ConfigError(f"{type(model).__name__} has no embed(); cannot export sequence embeddings")
    device = _model_device(model) if device is None else torch.device(device)
    model.to(device)
    return _batched_outputs(model, ts, batch_size, device, method="embed")


def predict_proba(
    model: nn.Module, ts: TokenSet, batch_size: int = 256, device: torch.device | str | None = None
) -> np.ndarray:
    """P(label 1) per sequence, float64 in the order of `ts`; `device` defaults to the model's device."""
    device = _model_device(model) if device is None else torch.device(device)
    model.to(device)
    logits = _predict_logits(model, ts, batch_size, device)
    return torch.sigmoid(torch.from_numpy(logits)).numpy()


# ---------------------------------------------------------------------------------------- optimiser plumbing


def _configure_threads(threads: int | None) -> None:
    if threads is not None:
        torch.set_num_threads(int(threads))


def _layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The model's groups (input side first) or one group; every parameter must be in exactly one group."""
    groups = model.layer_groups() if hasattr(model, "layer_groups") else [list(model.parameters())]
    grouped = [id(p) for group in groups for p in group]
    if sorted(grouped) != sorted(id(p) for p in model.parameters()):
        raise ConfigError(f"{type(model).__name__}.layer_groups() must list every parameter exactly once")
    return groups


def _param_groups(
    groups: list[list[nn.Parameter]], lr: float, weight_decay: float, decay_per_group: float
) -> list[dict[str, Any]]:
    """AdamW groups: discriminative LR per layer group, and no weight decay on biases / norm scales (1-D)."""
    out = []
    for i, params in enumerate(groups):
        group_lr = lr / decay_per_group ** (len(groups) - 1 - i)
        for wd, selected in (
            (weight_decay, [p for p in params if p.ndim > 1]),
            (0.0, [p for p in params if p.ndim <= 1]),
        ):
            if selected:
                out.append({"params": selected, "lr": group_lr, "weight_decay": wd})
    return out


def _make_scheduler(
    optimizer: torch.optim.Optimizer, max_lrs: list[float], total_steps: int, one_cycle: bool
) -> torch.optim.lr_scheduler.LRScheduler | None:
    for group, lr in zip(optimizer.param_groups, max_lrs, strict=True):
        group["lr"] = lr
    # OneCycleLR needs a non-empty warm-up phase; below 4 steps a cycle is meaningless: keep the LR constant.
    if not one_cycle or total_steps < 4:
        return None
    pct_start = max(_ONE_CYCLE_PCT_START, 2.0 / total_steps)
    return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=max_lrs, total_steps=total_steps, pct_start=pct_start)


def _unfreezing_stages(epochs: int, n_groups: int, gradual: bool) -> list[tuple[int, int]]:
    """(epochs, trainable groups counted from the head) per stage. ULMFiT: one epoch with only the head, then
    one more group per epoch, then everything for the remaining epochs; each stage gets its own LR cycle."""
    if not gradual or n_groups == 1:
        return [(epochs, n_groups)]
    stages = [(1, k) for k in range(1, min(n_groups, epochs + 1))]
    if epochs > len(stages):
        stages.append((epochs - len(stages), n_groups))
    return stages


def _set_trainable(groups: list[list[nn.Parameter]], n_trainable: int) -> None:
    for i, params in enumerate(groups):
        for p in params:
            p.requires_grad_(i >= len(groups) - n_trainable)


def _clip_and_check(model: nn.Module, loss: torch.Tensor, grad_clip: float, epoch: int, step: int, what: str) -> None:
    params = [p for p in model.parameters() if p.grad is not None]
    # max_norm=inf only measures the norm (needed for the finiteness check) without clipping.
    norm = nn.utils.clip_grad_norm_(params, grad_clip if grad_clip > 0 else float("inf"))
    # One host sync per step; checking before optimizer.step() keeps the weights finite.
    if not bool(torch.isfinite(loss.detach()) & torch.isfinite(norm)):
        raise TrainingDivergedError(
            f"{what}: loss or gradient became non-finite at epoch {epoch}, step {step} "
            f"(loss {float(loss.detach()):.4g}); lower the learning rate or enable gradient clipping"
        )


def _cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _write_history(rows: list[dict[str, float]], path: Path | None) -> pd.DataFrame:
    history = pd.DataFrame(rows)
    if path is not None:
        with atomic_path(path) as tmp:
            history.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return history


class _EarlyStopping:
    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best_loss = float("inf")
        self.best_epoch = 0
        self.best_state: dict[str, torch.Tensor] | None = None
        self.bad_epochs = 0

    def update(self, epoch: int, valid_loss: float, model: nn.Module) -> bool:
        """Record the epoch; True when training should stop."""
        if valid_loss < self.best_loss:
            self.best_loss, self.best_epoch, self.bad_epochs = valid_loss, epoch, 0
            self.best_state = _cpu_state(model)
            return False
        self.bad_epochs += 1
        return self.bad_epochs >= self.patience

    def state(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("best_loss", "best_epoch", "best_state", "bad_epochs")}

    def restore(self, state: dict[str, Any]) -> None:
        self.best_loss, self.best_epoch = float(state["best_loss"]), int(state["best_epoch"])
        self.best_state, self.bad_epochs = state["best_state"], int(state["bad_epochs"])

    def result(self, model: nn.Module, history: pd.DataFrame) -> TrainResult:
        if self.best_state is None:  # every validation loss was NaN: keep the last weights
            self.best_state = _cpu_state(model)
        model.load_state_dict(self.best_state)
        return TrainResult(self.best_epoch, self.best_loss, history, self.best_state)


# ------------------------------------------------------------------------------- resume, divergence, logging


def _loop_state(
    epoch: int,
    rows: list[dict[str, float]],
    stopped: bool,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    stopper: _EarlyStopping,
    rng: np.random.Generator | None,
) -> dict[str, Any]:
    """Everything a loop needs to go on after `epoch` exactly as if it had never stopped (see train_state)."""
    return {
        "epoch": epoch,
        "rows": rows,
        "stopped": stopped,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "early_stopping": stopper.state(),
        "rng": capture_rng(rng),
    }


def _restore_loop(
    state: dict[str, Any], model: nn.Module, stopper: _EarlyStopping, rng: np.random.Generator | None
) -> tuple[int, list[dict[str, float]], bool]:
    """Load the weights, early-stopping record and random states of a saved loop; (epoch, rows, stopped).
    The optimizer and scheduler are the loop's to restore: when depends on its LR schedule."""
    model.load_state_dict(state["model"])
    stopper.restore(state["early_stopping"])
    restore_rng(state["rng"], rng)
    return int(state["epoch"]), list(state["rows"]), bool(state["stopped"])


def _diverged(message: str, last_good: int, resume_path: str | Path | None) -> TrainingDivergedError:
    """The divergence error, naming the last good epoch and where its training state is kept."""
    if last_good < 1:
        return TrainingDivergedError(f"{message}. No epoch finished before that.")
    kept = f"; its training state is kept in {resume_path}" if resume_path is not None else ""
    return TrainingDivergedError(f"{message}. The last good epoch was {last_good}{kept}.")


def _check_explosion(
    train_loss: float,
    rows: list[dict[str, float]],
    cfg: TrainConfig,
    epoch: int,
    what: str,
    resume_path: str | Path | None,
) -> None:
    """Divergence that stays finite: an epoch's mean training loss above `explode_factor` x epoch 1's."""
    first = rows[0]["train_loss"] if rows else train_loss
    if math.isfinite(train_loss) and (cfg.explode_factor is None or train_loss <= cfg.explode_factor * first):
        return
    raise _diverged(
        f"{what}: the training loss exploded at epoch {epoch} ({train_loss:.4g}; epoch 1: {first:.4g}, "
        f"explode_factor {cfg.explode_factor}); lower the learning rate or enable gradient clipping",
        epoch - 1,
        resume_path,
    )


def _log_epoch(label: str, row: dict[str, float], rows: list[dict[str, float]], epochs: int) -> None:
    left = epochs - int(row["epoch"])
    eta = left * float(np.mean([r["seconds"] for r in rows]))
    values = ", ".join(f"{k} {v:.4g}" for k, v in row.items() if k != "epoch")
    log.info(
        "%s %d/%d: %s; about %.0f s left for %d more epochs at most", label, row["epoch"], epochs, values, eta, left
    )


# (model, optimizer, scheduler, generator) of a training loop.
_LoopParts = tuple[
    nn.Module, torch.optim.Optimizer, torch.optim.lr_scheduler.LRScheduler | None, np.random.Generator | None
]


def _end_epoch(
    label: str,
    rows: list[dict[str, float]],
    stopped: bool,
    loop: _LoopParts,
    stopper: _EarlyStopping,
    cfg: TrainConfig,
    *,
    resume_path: str | Path | None,
    fprint: Mapping[str, Any] | None,
    history_path: Path | None,
    on_epoch: EpochCallback | None,
) -> None:
    """What every training loop does once an epoch's row is in `rows` and early stopping has judged it: save the
    resume state (before `on_epoch`, which may stop the run), write the history, log, then call `on_epoch`.
    """
    row = rows[-1]
    epoch = int(row["epoch"])
    if resume_path is not None:
        model, optimizer, scheduler, rng = loop
        state = _loop_state(epoch, rows, stopped, model, optimizer, scheduler, stopper, rng)
        save_resume_state(resume_path, epoch, fprint, state)
    _write_history(rows, history_path)
    _log_epoch(label, row, rows, cfg.epochs)
    if stopped:
        log.info("%s: early stop after epoch %d (best epoch %d)", label, epoch, stopper.best_epoch)
    if on_epoch is not None:
        on_epoch(row)


# -------------------------------------------------------------------------------------------- classification


def _bce(logits: torch.Tensor, labels: torch.Tensor, pos_weight: torch.Tensor) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, labels, pos_weight=pos_weight)


def _validate_classifier(
    model: nn.Module, valid: TokenSet, pos_weight: torch.Tensor, device: torch.device
) -> dict[str, float]:
    """Validation loss (same class weighting as training), accuracy at p = 0.5 and AUROC."""
    logits = _predict_logits(model, valid, 256, device)
    labels = torch.from_numpy(valid.labels).double()
    loss = _bce(torch.from_numpy(logits), labels, pos_weight.detach().cpu().double())
    return {
        "valid_loss": float(loss),
        "valid_accuracy": float(((logits > 0) == (valid.labels == 1)).mean()),
        "valid_auroc": auroc(valid.labels, logits),
    }


def _check_vocab(model: nn.Module, ts: TokenSet) -> None:
    vocab_size = getattr(getattr(model, "config", None), "vocab_size", None)
    if vocab_size is not None and ts.tokens.size and int(ts.tokens.max()) >= vocab_size:
        bad = int(np.flatnonzero((ts.tokens >= vocab_size).any(axis=1))[0])
        raise InputFormatError(
            f"{ts.source}: record '{ts.ids[bad]}' has token id {int(ts.tokens[bad].max())}, outside the "
            f"model vocabulary ({vocab_size} tokens); was it tokenized with another k?"
        )


def train_classifier(
    model: nn.Module,
    train: TokenSet,
    valid: TokenSet,
    cfg: TrainConfig,
    *,
    history_path: Path | None = None,
    on_epoch: EpochCallback | None = None,
    resume_path: str | Path | None = None,
) -> TrainResult:
    """Train a binary classifier on `train`, early-stop on `valid`; the model ends with the best weights.

    History columns: epoch, train_loss, valid_loss, valid_accuracy (threshold 0.5), valid_auroc, lr (head
    group, after the epoch's last step), tokens_per_s, seconds, stage (gradual-unfreezing stage, 1-based) and
    trainable_groups. `on_epoch` receives each history row, after the epoch's training state is saved to the
    folder `resume_path` (if given); a later call with the same arguments continues from there.
    """
    if len(train) < 2 or len(valid) < 1:
        raise ConfigError(f"training needs >= 2 training and >= 1 validation sequences, got {len(train)}/{len(valid)}")
    _check_vocab(model, train)
    _check_vocab(model, valid)
    _configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = select_device(cfg.device)
    model.to(device)

    n_pos = int(train.labels.sum())
    n_neg = len(train) - n_pos
    if n_pos == 0 or n_neg == 0:
        log.warning("training set has only one class (%d positives, %d negatives)", n_pos, n_neg)
    # Weight positives so both classes contribute equally to the loss.
    pos_weight = torch.tensor(n_neg / n_pos if n_pos and n_neg else 1.0, device=device)

    groups = _layer_groups(model)
    param_groups = _param_groups(groups, cfg.lr, cfg.weight_decay, cfg.lr_decay_per_group)
    max_lrs = [g["lr"] for g in param_groups]
    optimizer = torch.optim.AdamW(param_groups, lr=cfg.lr)
    steps_per_epoch = len(bucketed_batches(train.lengths, cfg.batch_size, np.random.default_rng(0)))
    stopper = _EarlyStopping(cfg.patience)
    rows: list[dict[str, float]] = []
    epoch, stopped, saved, fprint = 0, False, None, None
    if resume_path is not None:
        data = (train.tokens, train.lengths, train.labels, valid.tokens, valid.lengths, valid.labels)
        fprint = fingerprint(cfg, data, model, {"loop": "classifier"})
        saved = matching_resume_state(resume_path, fprint)
        if saved is not None:
            epoch, rows, stopped = _restore_loop(saved.state, model, stopper, rng)
    stage_end = 0
    try:
        for stage, (stage_epochs, n_trainable) in enumerate(
            _unfreezing_stages(cfg.epochs, len(groups), cfg.gradual_unfreezing), start=1
        ):
            stage_start, stage_end = stage_end, stage_end + stage_epochs
            if stopped or epoch >= stage_end:
                continue
            _set_trainable(groups, n_trainable)
            # Each stage has its own LR cycle. A resumed stage continues the saved one; a resumed run starting
            # a new stage starts its cycle from the optimizer as the previous stage left it.
            if saved is not None and epoch == stage_start:
                optimizer.load_state_dict(saved.state["optimizer"])
            scheduler = _make_scheduler(optimizer, max_lrs, stage_epochs * steps_per_epoch, cfg.one_cycle)
            if saved is not None and epoch > stage_start:
                optimizer.load_state_dict(saved.state["optimizer"])
                if scheduler is not None:
                    scheduler.load_state_dict(saved.state["scheduler"])
            saved = None
            while epoch < stage_end and not stopped:
                epoch += 1
                started = time.perf_counter()
                try:
                    train_loss, n_tokens = _classifier_epoch(
                        model, train, cfg, optimizer, scheduler, pos_weight, rng, device, epoch
                    )
                except TrainingDivergedError as err:
                    raise _diverged(str(err), epoch - 1, resume_path) from err
                _check_explosion(train_loss, rows, cfg, epoch, "classifier training", resume_path)
                train_seconds = time.perf_counter() - started
                row = {
                    "epoch": epoch,
                    "train_loss": train_loss,
                    **_validate_classifier(model, valid, pos_weight, device),
                    "lr": float(optimizer.param_groups[-1]["lr"]),
                    "tokens_per_s": n_tokens / max(train_seconds, 1e-9),
                    "seconds": time.perf_counter() - started,
                    "stage": stage,
                    "trainable_groups": n_trainable,
                }
                rows.append(row)
                # Stop only once every group trains: frozen ULMFiT stages are not judged on their own.
                stopped = stopper.update(epoch, row["valid_loss"], model) and n_trainable == len(groups)
                _end_epoch(
                    "epoch", rows, stopped, (model, optimizer, scheduler, rng), stopper, cfg,
                    resume_path=resume_path, fprint=fprint, history_path=history_path, on_epoch=on_epoch,
                )  # fmt: skip
    finally:
        _set_trainable(groups, len(groups))
    return stopper.result(model, _write_history(rows, history_path))


def _classifier_epoch(
    model: nn.Module,
    train: TokenSet,
    cfg: TrainConfig,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    pos_weight: torch.Tensor,
    rng: np.random.Generator,
    device: torch.device,
    epoch: int,
) -> tuple[float, int]:
    """One pass over `train`; returns (example-weighted mean loss, tokens seen)."""
    model.train()
    total = torch.zeros((), dtype=torch.float64, device=device)
    n_tokens = 0
    batches = bucketed_batches(train.lengths, cfg.batch_size, rng)
    progress = _Progress(f"epoch {epoch}", len(batches))
    for step, idx in enumerate(batches, start=1):
        tokens, lengths, labels = _to_device(train, idx, device)
        if cfg.shift_jitter:
            tokens = jitter_tokens(tokens, lengths, cfg.shift_jitter, rng)
        with _autocast(device):
            logits = model(tokens, lengths)
        loss = _bce(logits.float(), labels.float(), pos_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _clip_and_check(model, loss, cfg.grad_clip, epoch, step, "classifier training")
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.detach().double() * len(idx)
        n_tokens += int(train.lengths[idx].sum())
        progress.update(step, float(loss.detach()))
    return float(total) / len(train), n_tokens


# ---------------------------------------------------------------------------------------- language modelling


@dataclass
class LMLayout:
    """Truncated-BPTT layout: `starts[s, b]` is where row b's piece at step s begins in the flat token array,
    `n_pred[s, b]` its number of predictions (0 = empty filler), `reset[s, b]` whether the piece begins a
    contig (or a row), i.e. the LSTM state must start from zero there."""

    starts: np.ndarray
    n_pred: np.ndarray
    reset: np.ndarray


def _as_streams(corpus: np.ndarray | Sequence[np.ndarray], name: str) -> list[np.ndarray]:
    if isinstance(corpus, np.ndarray) and corpus.ndim == 1:
        streams = [corpus]
    else:
        streams = [np.asarray(s) for s in corpus]
    for i, stream in enumerate(streams):
        if stream.ndim != 1 or not np.issubdtype(stream.dtype, np.integer):
            raise InputFormatError(f"{name} corpus: stream {i} must be a 1-D integer array")
    return [s.astype(np.int64, copy=False) for s in streams]


def lm_layout(
    lengths: Sequence[int], offsets: Sequence[int], bptt: int, batch_size: int, order: np.ndarray
) -> LMLayout:
    """Cut every stream into pieces of `bptt` predictions (contigs in `order`, each skipping its first
    `offsets[c]` tokens) and lay them out as `batch_size` parallel rows, each row continuing its pieces in
    order. Pieces never cross a stream boundary, so contigs are never joined."""
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    starts: list[np.ndarray] = []
    n_pred: list[np.ndarray] = []
    first: list[np.ndarray] = []
    for c in order:
        predictions = int(lengths[c]) - int(offsets[c]) - 1
        if predictions < 1:
            continue
        piece_starts = np.arange(0, predictions, bptt)
        starts.append(bounds[c] + offsets[c] + piece_starts)
        n_pred.append(np.minimum(bptt, predictions - piece_starts))
        first.append(piece_starts == 0)
    if not starts:
        return LMLayout(
            np.zeros((0, batch_size), np.int64),
            np.zeros((0, batch_size), np.int64),
            np.zeros((0, batch_size), bool),
        )
    all_starts, all_n, all_first = np.concatenate(starts), np.concatenate(n_pred), np.concatenate(first)
    steps = -(-len(all_starts) // batch_size)
    filler = steps * batch_size - len(all_starts)
    all_starts = np.concatenate([all_starts, np.zeros(filler, np.int64)])
    all_n = np.concatenate([all_n, np.zeros(filler, np.int64)])
    all_first = np.concatenate([all_first, np.ones(filler, bool)])
    # Row-major fill: row b holds pieces b*steps .. (b+1)*steps-1, so a contig's pieces stay consecutive.
    reset = all_first.reshape(batch_size, steps).T.copy()
    reset[0] = True
    return LMLayout(all_starts.reshape(batch_size, steps).T.copy(), all_n.reshape(batch_size, steps).T.copy(), reset)


def _lm_batch(
    flat: np.ndarray, layout: LMLayout, step: int, bptt: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs [B, bptt], targets [B, bptt] with IGNORE_TARGET on filler, keep-state [1, B, 1])."""
    offsets = np.arange(bptt)
    real = offsets[None, :] < layout.n_pred[step][:, None]
    positions = np.minimum(layout.starts[step][:, None] + offsets[None, :], len(flat) - 2)
    inputs = np.where(real, flat[positions], PAD_TOKEN)
    targets = np.where(real, flat[positions + 1], IGNORE_TARGET)
    keep = (~layout.reset[step]).astype(np.float32)[None, :, None]
    return (
        torch.from_numpy(inputs).to(device, non_blocking=True),
        torch.from_numpy(targets).to(device, non_blocking=True),
        torch.from_numpy(keep).to(device, non_blocking=True),
    )


def _split_valid(streams: list[np.ndarray], fraction: float) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Hold out the tail `fraction` of every stream (contiguous: no token is both trained on and scored)."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"language model: valid_fraction must be in (0, 1), got {fraction!r}")
    cuts = [round(len(s) * (1.0 - fraction)) for s in streams]
    return [s[:c] for s, c in zip(streams, cuts, strict=True)], [s[c:] for s, c in zip(streams, cuts, strict=True)]


def lm_epoch(
    lm: AWDLSTMLanguageModel,
    flat: np.ndarray,
    layout: LMLayout,
    bptt: int,
    device: torch.device,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    alpha: float = 0.0,
    beta: float = 0.0,
    grad_clip: float = 0.0,
    epoch: int = 0,
) -> tuple[float, float, int]:
    """Train (optimizer given) or evaluate over a layout; return (mean next-token CE, accuracy, n targets)."""
    training = optimizer is not None
    lm.train(training)
    batch = layout.starts.shape[1]
    state = lm.encoder.zero_state(batch)
    ce_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    n_total = int(layout.n_pred.sum())
    n_steps = layout.starts.shape[0]
    progress = _Progress(f"LM epoch {epoch}", n_steps) if training else None
    with torch.set_grad_enabled(training):
        for step in range(n_steps):
            inputs, targets, keep = _lm_batch(flat, layout, step, bptt, device)
            # Zero the state of rows whose piece starts a new contig; detach to truncate backpropagation.
            state = [(h.detach() * keep, c.detach() * keep) for h, c in state]
            with _autocast(device):
                logits, raw, dropped, state = lm.step(inputs, state)
            logits = logits.float()
            real = targets != IGNORE_TARGET
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="sum")
            ce_sum += ce.detach().double()
            correct += ((logits.argmax(-1) == targets) & real).sum()
            if training:
                loss = ce / real.sum().clamp(min=1) + ar_tar_loss(raw, dropped, alpha, beta, mask=real)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                _clip_and_check(lm, loss, grad_clip, epoch, step + 1, "language-model training")
                optimizer.step()
                if scheduler is not None:
                    scheduler.step()
                progress.update(step + 1, float(loss.detach()))
    return float(ce_sum) / max(n_total, 1), float(correct) / max(n_total, 1), n_total


class _Progress:
    """A progress line in the rule's log every `every_s` seconds: long epochs on a CPU must show they are alive."""

    def __init__(self, label: str, total: int, every_s: float = 30.0) -> None:
        self.label, self.total, self.every_s = label, total, every_s
        self.started = self.last = time.perf_counter()

    def update(self, done: int, loss: float) -> None:
        now = time.perf_counter()
        if now - self.last < self.every_s and done < self.total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        eta = (self.total - done) / max(rate, 1e-9)
        log.info("%s: step %d/%d (%.0f%%), loss %.4f, %.1f steps/s, about %.0f s left",
                 self.label, done, self.total, 100 * done / self.total, loss, rate, eta)  # fmt: skip


def pretrain_language_model(
    lm: AWDLSTMLanguageModel,
    corpus: np.ndarray | Sequence[np.ndarray],
    cfg: TrainConfig,
    bptt: int = 70,
    *,
    valid: np.ndarray | Sequence[np.ndarray] | None = None,
    valid_fraction: float = 0.1,
    alpha: float = 2.0,
    beta: float = 1.0,
    history_path: Path | None = None,
    on_epoch: EpochCallback | None = None,
    resume_path: str | Path | None = None,
) -> TrainResult:
    """Next-token pretraining with truncated BPTT (state carried across pieces of a contig) plus AR/TAR.

    `corpus` is one token stream or a list of per-contig streams; contigs are never joined: the LSTM state is
    reset at each contig start and no target crosses a boundary. Without `valid`, the last `valid_fraction` of
    every stream is held out. Each epoch shuffles the contig order and shifts piece boundaries by a random
    offset (the contig's first `offset < bptt` tokens are skipped that epoch); all epochs are drawn up front
    from the seed. History columns: epoch, train_loss (CE), valid_loss (CE), valid_accuracy, valid_perplexity,
    lr, tokens_per_s, seconds. `resume_path` and `on_epoch` work as in `train_classifier`.
    """
    if bptt < 1:
        raise ConfigError(f"language model: bptt must be >= 1, got {bptt}")
    streams = _as_streams(corpus, "training")
    if valid is None:
        streams, valid_streams = _split_valid(streams, valid_fraction)
    else:
        valid_streams = _as_streams(valid, "validation")
    vocab = lm.config.vocab_size
    for name, group in (("training", streams), ("validation", valid_streams)):
        bad = [i for i, s in enumerate(group) if s.size and (s.min() < 0 or s.max() >= vocab)]
        if bad:
            raise InputFormatError(f"{name} corpus: stream {bad[0]} has token ids outside the vocabulary ({vocab})")
    _configure_threads(cfg.threads)
    seed_everything(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    device = select_device(cfg.device)
    lm.to(device)

    lengths = [len(s) for s in streams]
    flat = np.concatenate([*streams, np.zeros(2, np.int64)])  # the tail keeps clipped gathers in range
    valid_flat = np.concatenate([*valid_streams, np.zeros(2, np.int64)])
    valid_layout = lm_layout(
        [len(s) for s in valid_streams],
        [0] * len(valid_streams),
        bptt,
        cfg.batch_size,
        np.arange(len(valid_streams)),
    )
    # Draw every epoch's layout now: the one-cycle schedule needs the exact number of steps.
    layouts = []
    for _ in range(cfg.epochs):
        offsets = [int(rng.integers(0, bptt)) if n - 1 > bptt else 0 for n in lengths]
        layouts.append(lm_layout(lengths, offsets, bptt, cfg.batch_size, rng.permutation(len(streams))))
    if not layouts[0].n_pred.sum() or not valid_layout.n_pred.sum():
        raise ConfigError("language model: the training or validation corpus has no token with a successor")

    groups = [list(lm.parameters())]
    optimizer = torch.optim.AdamW(_param_groups(groups, cfg.lr, cfg.weight_decay, 1.0), lr=cfg.lr)
    scheduler = _make_scheduler(
        optimizer, [cfg.lr] * len(optimizer.param_groups), sum(len(x.starts) for x in layouts), cfg.one_cycle
    )
    stopper = _EarlyStopping(cfg.patience)
    rows: list[dict[str, float]] = []
    done, stopped, fprint = 0, False, None
    if resume_path is not None:
        data = [np.array(lengths), flat, np.array([len(s) for s in valid_streams]), valid_flat]
        fprint = fingerprint(cfg, data, lm, {"loop": "language_model", "bptt": bptt, "alpha": alpha, "beta": beta})
        saved = matching_resume_state(resume_path, fprint)
        if saved is not None:
            # The layouts above come from the seed alone, so they need no restoring.
            done, rows, stopped = _restore_loop(saved.state, lm, stopper, None)
            optimizer.load_state_dict(saved.state["optimizer"])
            if scheduler is not None:
                scheduler.load_state_dict(saved.state["scheduler"])
    for epoch, layout in enumerate(layouts, start=1):
        if stopped or epoch <= done:
            continue
        started = time.perf_counter()
        try:
            train_loss, _, n_train = lm_epoch(
                lm, flat, layout, bptt, device, optimizer=optimizer, scheduler=scheduler,
                alpha=alpha, beta=beta, grad_clip=cfg.grad_clip, epoch=epoch,
            )  # fmt: skip
        except TrainingDivergedError as err:
            raise _diverged(str(err), epoch - 1, resume_path) from err
        _check_explosion(train_loss, rows, cfg, epoch, "language-model training", resume_path)
        train_seconds = time.perf_counter() - started
        valid_loss, valid_accuracy, _ = lm_epoch(lm, valid_flat, valid_layout, bptt, device)
        row = {
            "epoch": epoch,
            "train_loss": train_loss,
            "valid_loss": valid_loss,
            "valid_accuracy": valid_accuracy,
            "valid_perplexity": float(np.exp(min(valid_loss, 700.0))),
            "lr": float(optimizer.param_groups[0]["lr"]),
            "tokens_per_s": n_train / max(train_seconds, 1e-9),
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        stopped = stopper.update(epoch, valid_loss, lm)
        _end_epoch(
            "LM epoch", rows, stopped, (lm, optimizer, scheduler, None), stopper, cfg,
            resume_path=resume_path, fprint=fprint, history_path=history_path, on_epoch=on_epoch,
        )  # fmt: skip
    return stopper.result(lm, _write_history(rows, history_path))
