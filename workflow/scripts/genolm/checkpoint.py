"""Pickle-free checkpoints: weights in safetensors, everything needed to rebuild the model in a JSON sidecar.

`model.safetensors` holds the state dict; `model.json` holds the architecture name, its parameters, the
tokenizer dict, the vocabulary size, library versions and the SHA-256 of the weights file. Loading rebuilds
the model from the sidecar with the same builders the pipeline uses, checks the hash, then checks every tensor
name and shape before loading, so a stale or edited sidecar fails loudly instead of loading into the wrong
architecture.
No creation time is stored: the same model and meta always give byte-identical files.
"""

from __future__ import annotations

import json
import logging
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import safetensors
import safetensors.torch
import torch
from torch import nn

import genolm
from genolm.atomic import atomic_path
from genolm.errors import CheckpointError, ConfigError
from genolm.models import (
    MODEL_REGISTRY,
    AWDLSTMLanguageModel,
    TransformerMaskedLM,
    build_classifier,
    build_language_model,
    build_masked_lm,
)
from genolm.provenance import sha256_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
LANGUAGE_MODEL_ARCH = "awd_lstm_lm"
MASKED_LM_ARCH = "transformer_mlm"
# Pretraining models: arch -> (builder from params and vocab_size, model class).
_PRETRAINING_ARCHS: dict[str, tuple[Callable[[dict[str, Any], int], nn.Module], type[nn.Module]]] = {
    LANGUAGE_MODEL_ARCH: (build_language_model, AWDLSTMLanguageModel),
    MASKED_LM_ARCH: (build_masked_lm, TransformerMaskedLM),
}
REQUIRED_META = ("arch", "params", "vocab")
# Keys written by save_checkpoint itself; a meta coming from a loaded checkpoint may carry old values.
_GENERATED_KEYS = ("format_version", "versions", "weights_file", "weights_sha256", "vocab_size")


def sidecar_path(path_safetensors: str | Path) -> Path:
    return Path(path_safetensors).with_suffix(".json")


def _build_model(meta: dict[str, Any]) -> nn.Module:
    arch = meta["arch"]
    if arch in _PRETRAINING_ARCHS:
        return _PRETRAINING_ARCHS[arch][0](meta["params"], int(meta["vocab_size"]))
    # Only the CNN reads window_tokens; other architectures ignore the value.
    return build_classifier(arch, meta["params"], int(meta["vocab_size"]), int(meta.get("window_tokens") or 0))


def _expected_type(arch: str, where: str) -> type[nn.Module]:
    if arch in _PRETRAINING_ARCHS:
        return _PRETRAINING_ARCHS[arch][1]
    if arch not in MODEL_REGISTRY:
        known = ", ".join(sorted([*MODEL_REGISTRY, *_PRETRAINING_ARCHS]))
        raise CheckpointError(f"{where}: unknown arch '{arch}'; known: {known}")
    return MODEL_REGISTRY[arch]


def _state_mismatches(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> list[str]:
    problems = [f"missing tensor '{k}'" for k in sorted(set(expected) - set(found))]
    problems += [f"unexpected tensor '{k}'" for k in sorted(set(found) - set(expected))]
    for key in sorted(set(expected) & set(found)):
        want, got = expected[key], found[key]
        if want.shape != got.shape or want.dtype != got.dtype:
            problems.append(
                f"'{key}' is {got.dtype} {tuple(got.shape)}, the sidecar's model needs {want.dtype} {tuple(want.shape)}"
            )
    return problems


def save_checkpoint(model: nn.Module, path_safetensors: str | Path, meta: dict[str, Any]) -> None:
    """Write `path_safetensors` and its sidecar `path.with_suffix('.json')`, each atomically (weights first,
    so a sidecar never points at weights that are not there). `meta` needs "arch", "params" and "vocab"."""
    path = Path(path_safetensors)
    if path.suffix != ".safetensors":
        raise CheckpointError(f"{path}: checkpoint path must end in .safetensors")
    missing = [key for key in REQUIRED_META if key not in meta]
    if missing:
        raise CheckpointError(f"{path}: checkpoint meta lacks {', '.join(missing)}")
    arch = meta["arch"]
    expected_type = _expected_type(arch, str(path))
    if not isinstance(model, expected_type):
        raise CheckpointError(f"{path}: meta arch '{arch}' but the model is a {type(model).__name__}")

    config = model.config  # every genolm model keeps its dataclass config
    sidecar = {k: v for k, v in meta.items() if k not in _GENERATED_KEYS}
    sidecar["vocab_size"] = int(config.vocab_size)
    if hasattr(config, "window_tokens"):
        if meta.get("window_tokens") not in (None, config.window_tokens):
            raise CheckpointError(
                f"{path}: meta window_tokens {meta['window_tokens']} != model window {config.window_tokens}"
            )
        sidecar["window_tokens"] = int(config.window_tokens)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}

    # Rebuild from the meta alone (on the meta device: no memory, no init cost) so a meta that would not
    # reproduce this model is caught now rather than when someone tries to load it.
    try:
        with torch.device("meta"):
            rebuilt = _build_model(sidecar)
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: meta cannot rebuild the model: {err}") from err
    problems = _state_mismatches(rebuilt.state_dict(), tensors)
    if problems:
        raise CheckpointError(f"{path}: meta params do not describe this model: {'; '.join(problems)}")

    try:  # fail before writing anything
        json.dumps(sidecar)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: checkpoint meta is not JSON-serialisable: {err}") from err
    sidecar.update(
        format_version=FORMAT_VERSION,
        weights_file=path.name,
        versions={
            "genolm": genolm.__version__,
            "torch": torch.__version__,
            "python": platform.python_version(),
        },
    )
    with atomic_path(path) as tmp:
        # A single metadata key: safetensors writes the metadata map in hash order, which varies per call.
        safetensors.torch.save_file(tensors, str(tmp), metadata={"format": "pt"})
        sidecar["weights_sha256"] = sha256_file(tmp)
    text = json.dumps(sidecar, indent=2, sort_keys=True) + "\n"
    with atomic_path(sidecar_path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
    log.info("saved %s checkpoint %s (%d tensors)", arch, path, len(tensors))


def _read_sidecar(path: Path) -> dict[str, Any]:
    side = sidecar_path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint weights file is missing")
    if not side.is_file():
        raise CheckpointError(f"{side}: sidecar JSON of checkpoint {path} is missing")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{side}: sidecar is not valid JSON: {err}") from err
    if not isinstance(meta, dict):
        raise CheckpointError(f"{side}: sidecar must be a JSON object")
    missing = [k for k in (*REQUIRED_META, "vocab_size", "format_version", "weights_sha256") if k not in meta]
    if missing:
        raise CheckpointError(f"{side}: sidecar lacks {', '.join(missing)}")
    if meta["format_version"] != FORMAT_VERSION:
        raise CheckpointError(
            f"{side}: checkpoint format_version {meta['format_version']!r}, this genolm reads {FORMAT_VERSION}"
        )
    return meta


def read_checkpoint_meta(path_safetensors: str | Path) -> dict[str, Any]:
    """The checked sidecar of a checkpoint, without loading its weights."""
    return _read_sidecar(Path(path_safetensors))


def load_checkpoint(
    path_safetensors: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model described by the sidecar and load its weights (eval mode, on `map_location`).

    Only safetensors and JSON are parsed: nothing is unpickled, so a checkpoint cannot execute code.
    """
    path = Path(path_safetensors)
    meta = _read_sidecar(path)
    side = sidecar_path(path)
    if sha256_file(path) != meta["weights_sha256"]:
        raise CheckpointError(f"{path}: weights do not match the SHA-256 recorded in {side}")
    _expected_type(meta["arch"], str(side))
    try:
        model = _build_model(meta)
    except (ConfigError, TypeError, ValueError) as err:
        raise CheckpointError(f"{side}: cannot rebuild model '{meta['arch']}': {err}") from err
    try:
        tensors = safetensors.torch.load_file(str(path), device="cpu")
    except (safetensors.SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: unreadable safetensors file: {err}") from err
    problems = _state_mismatches(model.state_dict(), tensors)
    if problems:
        raise CheckpointError(f"{path}: weights do not fit the model in {side}: {'; '.join(problems)}")
    model.load_state_dict(tensors, strict=True)
    model.to(map_location).eval()
    return model, meta
