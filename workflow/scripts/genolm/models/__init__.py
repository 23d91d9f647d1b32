"""Model zoo: binary classifiers (`forward(tokens[B,T], lengths[B]) -> logits[B]`) and the AWD-LSTM LM.

Builders take the `models.<name>` block of the config as a plain dict and reject unknown keys by name, so a
typo in the config fails before any training starts.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from torch import nn

from genolm.errors import ConfigError
from genolm.models.awd_lstm import (
    AWDLSTMClassifier,
    AWDLSTMConfig,
    AWDLSTMEncoder,
    AWDLSTMLanguageModel,
    ar_tar_loss,
)
from genolm.models.cnn import CNNClassifier, CNNConfig

__all__ = [
    "MODEL_REGISTRY",
    "AWDLSTMClassifier",
    "AWDLSTMConfig",
    "AWDLSTMEncoder",
    "AWDLSTMLanguageModel",
    "CNNClassifier",
    "CNNConfig",
    "ar_tar_loss",
    "build_classifier",
    "build_language_model",
]

MODEL_REGISTRY: dict[str, type[nn.Module]] = {"cnn": CNNClassifier, "awd_lstm": AWDLSTMClassifier}

# Keys of the AWD-LSTM classifier head (not part of AWDLSTMConfig, which the LM shares).
_AWD_HEAD_KEYS = ("head_hidden", "head_p", "head_hidden_p")


def _config_keys(config_type: type, *, exclude: tuple[str, ...]) -> list[str]:
    return [f.name for f in fields(config_type) if f.name not in exclude]


def _check_keys(arch: str, params: dict[str, Any], allowed: list[str]) -> None:
    for key in params:
        if key not in allowed:
            raise ConfigError(f"unknown parameter '{key}' for model '{arch}'; allowed: {', '.join(sorted(allowed))}")


def build_classifier(arch: str, params: dict[str, Any], vocab_size: int, window_tokens: int) -> nn.Module:
    """Build a classifier from its config block; `vocab_size` comes from the tokenizer, `window_tokens` from
    the task's window (only the CNN uses it: its receptive field is exactly one window)."""
    params = dict(params or {})
    if arch == "cnn":
        allowed = _config_keys(CNNConfig, exclude=("vocab_size", "window_tokens"))
        if "window_tokens" in params:
            raise ConfigError("parameter 'window_tokens' for model 'cnn' is derived from the task window; remove it")
        _check_keys(arch, params, allowed)
        return CNNClassifier(CNNConfig(vocab_size=vocab_size, window_tokens=window_tokens, **params))
    if arch == "awd_lstm":
        allowed = [*_config_keys(AWDLSTMConfig, exclude=("vocab_size",)), *_AWD_HEAD_KEYS]
        _check_keys(arch, params, allowed)
        head = {k: params.pop(k) for k in _AWD_HEAD_KEYS if k in params}
        return AWDLSTMClassifier(AWDLSTMConfig(vocab_size=vocab_size, **params), **head)
    raise ConfigError(f"unknown model architecture '{arch}'; known: {', '.join(sorted(MODEL_REGISTRY))}")


def build_language_model(params: dict[str, Any], vocab_size: int) -> AWDLSTMLanguageModel:
    """Build the AWD-LSTM LM; classifier-head keys are accepted and ignored so one `models.awd_lstm` block can
    configure both pretraining and fine-tuning (their encoders must match)."""
    params = dict(params or {})
    allowed = [*_config_keys(AWDLSTMConfig, exclude=("vocab_size",)), *_AWD_HEAD_KEYS]
    _check_keys("awd_lstm", params, allowed)
    encoder_params = {k: v for k, v in params.items() if k not in _AWD_HEAD_KEYS}
    return AWDLSTMLanguageModel(AWDLSTMConfig(vocab_size=vocab_size, **encoder_params))
