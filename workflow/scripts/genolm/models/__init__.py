"""Model zoo: binary classifiers (`forward(tokens[B,T], lengths[B]) -> logits[B]`), the AWD-LSTM LM and the
transformer masked LM.

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
from genolm.models.kmer_mlp import KmerMLPClassifier, KmerMLPConfig
from genolm.models.transformer import (
    TransformerClassifier,
    TransformerConfig,
    TransformerEncoderBody,
    TransformerMaskedLM,
)

__all__ = [
    "MODEL_REGISTRY",
    "AWDLSTMClassifier",
    "AWDLSTMConfig",
    "AWDLSTMEncoder",
    "AWDLSTMLanguageModel",
    "CNNClassifier",
    "CNNConfig",
    "KmerMLPClassifier",
    "KmerMLPConfig",
    "TransformerClassifier",
    "TransformerConfig",
    "TransformerEncoderBody",
    "TransformerMaskedLM",
    "ar_tar_loss",
    "build_classifier",
    "build_language_model",
    "build_masked_lm",
]

MODEL_REGISTRY: dict[str, type[nn.Module]] = {
    "cnn": CNNClassifier,
    "awd_lstm": AWDLSTMClassifier,
    "kmer_mlp": KmerMLPClassifier,
    "transformer": TransformerClassifier,
}

# Keys of the AWD-LSTM classifier head (not part of AWDLSTMConfig, which the LM shares).
_AWD_HEAD_KEYS = ("head_hidden", "head_p", "head_hidden_p")


def _config_keys(config_type: type, *, exclude: tuple[str, ...]) -> list[str]:
    return [f.name for f in fields(config_type) if f.name not in exclude]


def _check_keys(arch: str, params: dict[str, Any], allowed: list[str]) -> None:
    if "vocab_size" in params:
        raise ConfigError(f"parameter 'vocab_size' for model '{arch}' is derived from the tokenizer; remove it")
    for key in params:
        if key not in allowed:
            raise ConfigError(f"unknown parameter '{key}' for model '{arch}'; allowed: {', '.join(sorted(allowed))}")


def build_classifier(arch: str, params: dict[str, Any], vocab_size: int, window_tokens: int) -> nn.Module:
    """Build a classifier from its config block; `vocab_size` comes from the tokenizer, `window_tokens` from
    the task's window (only the CNN uses it: its receptive field is exactly one window; the transformer chunks
    whatever it gets into `max_tokens` pieces and the k-mer MLP is length-free)."""
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
    if arch == "kmer_mlp":
        _check_keys(arch, params, _config_keys(KmerMLPConfig, exclude=("vocab_size",)))
        return KmerMLPClassifier(KmerMLPConfig(vocab_size=vocab_size, **params))
    if arch == "transformer":
        _check_keys(arch, params, _config_keys(TransformerConfig, exclude=("vocab_size",)))
        return TransformerClassifier(TransformerConfig(vocab_size=vocab_size, **params))
    raise ConfigError(f"unknown model architecture '{arch}'; known: {', '.join(sorted(MODEL_REGISTRY))}")


def build_language_model(params: dict[str, Any], vocab_size: int) -> AWDLSTMLanguageModel:
    """Build the AWD-LSTM LM; classifier-head keys are accepted and ignored so one `models.awd_lstm` block can
    configure both pretraining and fine-tuning (their encoders must match)."""
    params = dict(params or {})
    allowed = [*_config_keys(AWDLSTMConfig, exclude=("vocab_size",)), *_AWD_HEAD_KEYS]
    _check_keys("awd_lstm", params, allowed)
    encoder_params = {k: v for k, v in params.items() if k not in _AWD_HEAD_KEYS}
    return AWDLSTMLanguageModel(AWDLSTMConfig(vocab_size=vocab_size, **encoder_params))


def build_masked_lm(params: dict[str, Any], vocab_size: int) -> TransformerMaskedLM:
    """Build the transformer masked LM from the same `models.transformer` block as the classifier (its
    classifier-only keys, pooling and overlap, are accepted and have no effect), so the encoders match."""
    params = dict(params or {})
    _check_keys("transformer", params, _config_keys(TransformerConfig, exclude=("vocab_size",)))
    return TransformerMaskedLM(TransformerConfig(vocab_size=vocab_size, **params))
