"""Training steps of the pipeline: ULMFiT language-model pretraining and classifier training, with checkpoints
that record the model, its vocabulary, the resolved settings and the checksums of the data they saw."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from genolm.atomic import write_text_atomic
from genolm.checkpoint import LANGUAGE_MODEL_ARCH, MASKED_LM_ARCH, load_checkpoint, save_checkpoint
from genolm.datasets import TokenSet, load_corpus, load_token_set
from genolm.errors import ConfigError, InputFormatError
from genolm.models import build_classifier, build_language_model, build_masked_lm
from genolm.provenance import provenance
from genolm.train import (
    TrainConfig,
    pretrain_language_model,
    seed_everything,
    select_device,
    train_classifier,
)
from genolm.train_mlm import pretrain_masked_lm
from genolm.train_state import clear_resume_state

log = logging.getLogger(__name__)


def _resume_path(checkpoint_path: str | Path) -> Path:
    """Where a training step keeps its per-epoch state: beside its checkpoint, removed once the step succeeds.
    Not a rule output, so Snakemake leaves it in place when a killed job is rerun, and training resumes."""
    checkpoint_path = Path(checkpoint_path)
    return checkpoint_path.with_name(f".{checkpoint_path.stem}.resume")


def train_config(settings: Mapping[str, Any], seed: int, device: str) -> TrainConfig:
    try:
        return TrainConfig(**settings, seed=seed, device=device)
    except TypeError as error:
        raise ConfigError(f"train settings: {error}") from error


def _write_yaml(data: Mapping[str, Any], path: str | Path) -> None:
    write_text_atomic(path, yaml.safe_dump(dict(data), sort_keys=False))


def fit_language_model(
    corpus_paths: Sequence[str | Path],
    model_settings: Mapping[str, Any],
    seed: int,
    checkpoint_path: str | Path,
    history_path: str | Path,
    device: str = "auto",
) -> None:
    """Genome pretraining over every contig and strand of the pretraining genomes: next-k-mer prediction for
    the AWD-LSTM (ULMFiT stage 1), masked k-mers for the transformer."""
    streams, tokenizer = [], None
    for path in corpus_paths:
        corpus, corpus_tokenizer = load_corpus(path)
        if tokenizer is not None and corpus_tokenizer != tokenizer:
            raise InputFormatError(f"{path}: tokenized differently from {corpus_paths[0]}")
        tokenizer = corpus_tokenizer
        streams.extend(corpus)
    if tokenizer is None:
        raise ConfigError("language-model pretraining needs at least one genome")
    pretrain = dict(model_settings["pretrain"])
    settings = {"epochs": pretrain["epochs"], "batch_size": pretrain["batch_size"], "lr": pretrain["lr"]}
    config = train_config(settings, seed, device)
    seed_everything(seed)
    params = dict(model_settings.get("params", {}))
    resume = _resume_path(checkpoint_path)
    if model_settings["arch"] == "transformer":
        arch = MASKED_LM_ARCH
        model = build_masked_lm(params, tokenizer.vocab_size)
        model.to(select_device(device))
        result = pretrain_masked_lm(
            model, streams, config, context=pretrain["bptt"], k=tokenizer.k, stride=tokenizer.stride,
            history_path=history_path, resume_path=resume,
        )  # fmt: skip
    else:
        arch = LANGUAGE_MODEL_ARCH
        model = build_language_model(params, tokenizer.vocab_size)
        model.to(select_device(device))
        result = pretrain_language_model(
            model, streams, config, bptt=pretrain["bptt"], history_path=history_path, resume_path=resume
        )
    model.load_state_dict(result.state_dict)
    meta = {
        "kind": "language_model",
        "arch": arch,
        "stage": "pretrain",
        "params": params,
        "vocab": tokenizer.to_dict(),
        "train": {**settings, "bptt": pretrain["bptt"], "seed": seed},
        "best_epoch": result.best_epoch,
        "best_valid_loss": result.best_valid_loss,
        "provenance": provenance(dict(model_settings), {f"corpus{i}": p for i, p in enumerate(corpus_paths)}),
    }
    save_checkpoint(model.cpu(), checkpoint_path, meta)
    clear_resume_state(resume)
    log.info("language model saved to %s (best epoch %s)", checkpoint_path, result.best_epoch)


def sequence_streams(token_set: TokenSet) -> list[np.ndarray]:
    """One token stream per sequence (padding cut off): the LM never reads across two unrelated sequences."""
    return [token_set.tokens[i, : token_set.lengths[i]] for i in range(len(token_set))]


def fine_tune_language_model(
    language_model: str | Path,
    train_tokens: str | Path,
    valid_tokens: str | Path,
    model_settings: Mapping[str, Any],
    seed: int,
    checkpoint_path: str | Path,
    history_path: str | Path,
    device: str = "auto",
) -> None:
    """ULMFiT stage 2: continue next-k-mer training of the pretrained LM on the task's training sequences
    (validation sequences score it; test sequences are never read), so the encoder adapts to the task's domain."""
    lm, lm_meta = load_checkpoint(language_model)
    train, tokenizer = load_token_set(train_tokens)
    valid, valid_tokenizer = load_token_set(valid_tokens)
    for path, found in ((train_tokens, tokenizer), (valid_tokens, valid_tokenizer)):
        if lm_meta["vocab"] != found.to_dict():
            raise InputFormatError(f"{path}: tokenized differently from the language model {language_model}")
    finetune = dict(model_settings["finetune"])
    settings = {"epochs": finetune["epochs"], "batch_size": finetune["batch_size"], "lr": finetune["lr"]}
    config = train_config(settings, seed, device)
    seed_everything(seed)
    lm.to(select_device(device))
    resume = _resume_path(checkpoint_path)
    result = pretrain_language_model(
        lm, sequence_streams(train), config, bptt=finetune["bptt"], valid=sequence_streams(valid),
        history_path=history_path, resume_path=resume,
    )  # fmt: skip
    lm.load_state_dict(result.state_dict)
    inputs = {"language_model": language_model, "train": train_tokens, "valid": valid_tokens}
    meta = {
        **{key: lm_meta[key] for key in ("kind", "arch", "params", "vocab")},
        "stage": "finetune",
        "train": {**settings, "bptt": finetune["bptt"], "seed": seed},
        "pretrain_train": lm_meta.get("train"),
        "best_epoch": result.best_epoch,
        "best_valid_loss": result.best_valid_loss,
        "provenance": provenance(dict(model_settings), inputs),
    }
    save_checkpoint(lm.cpu(), checkpoint_path, meta)
    clear_resume_state(resume)
    log.info("fine-tuned language model saved to %s (best epoch %s)", checkpoint_path, result.best_epoch)


def fit_classifier(
    train_tokens: str | Path,
    valid_tokens: str | Path,
    model_settings: Mapping[str, Any],
    seed: int,
    checkpoint_path: str | Path,
    history_path: str | Path,
    config_path: str | Path,
    language_model: str | Path | None = None,
    device: str = "auto",
    task: Mapping[str, Any] | None = None,
) -> None:
    """Train one classifier; with a language model, start from its encoder (ULMFiT stage 3).

    `task` (kind, strand_specific) is stored in the checkpoint so that `genolm scan` knows how to call elements.
    """
    train, tokenizer = load_token_set(train_tokens)
    valid, valid_tokenizer = load_token_set(valid_tokens)
    if valid_tokenizer != tokenizer:
        raise InputFormatError(f"{valid_tokens}: tokenized differently from {train_tokens}")
    window_tokens = int(train.lengths.max())
    window_bp = int(train.bp_lengths.max())
    arch, params = model_settings["arch"], dict(model_settings.get("params", {}))
    config = train_config(dict(model_settings.get("train", {})), seed, device)
    seed_everything(seed)
    model = build_classifier(arch, params, tokenizer.vocab_size, window_tokens)
    transfer = model_settings.get("transfer", "encoder") if language_model else None
    if language_model:
        lm, lm_meta = load_checkpoint(language_model)
        if lm_meta["vocab"] != tokenizer.to_dict():
            raise InputFormatError(f"{language_model}: vocabulary {lm_meta['vocab']} differs from {train_tokens}")
        model.load_encoder_state(lm.encoder.state_dict(), transfer=transfer)
        log.info("classifier initialised from %s (%s)", language_model, transfer)
    model.to(select_device(device))
    resume = _resume_path(checkpoint_path)
    result = train_classifier(model, train, valid, config, history_path=history_path, resume_path=resume)
    model.load_state_dict(result.state_dict)
    inputs = {"train": train_tokens, "valid": valid_tokens}
    if language_model:
        inputs["language_model"] = language_model
    resolved = {
        "arch": arch,
        "params": params,
        "tokenizer": tokenizer.to_dict(),
        "train": {key: getattr(config, key) for key in config.__dataclass_fields__},
        "pretrained": str(language_model) if language_model else None,
        "transfer": transfer,
        "window_tokens": window_tokens,
        "window_bp": window_bp,
        "task": dict(task or {}),
    }
    meta = {
        "kind": "classifier",
        "arch": arch,
        "params": params,
        "vocab": tokenizer.to_dict(),
        "window_tokens": window_tokens,
        "window_bp": window_bp,
        "task": resolved["task"],
        "train": resolved["train"],
        "best_epoch": result.best_epoch,
        "best_valid_loss": result.best_valid_loss,
        "provenance": provenance(resolved, inputs),
    }
    save_checkpoint(model.cpu(), checkpoint_path, meta)
    _write_yaml({**resolved, "best_epoch": result.best_epoch, "provenance": meta["provenance"]}, config_path)
    clear_resume_state(resume)
    log.info("classifier saved to %s (best epoch %s)", checkpoint_path, result.best_epoch)
