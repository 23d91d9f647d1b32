"""Resumable training: the state of a training loop after each epoch, stored without pickle.

A resume state is a folder:

    <resume_path>/state.json                          the commit record: format, epoch, fingerprint, the
                                                      tensors file's name and SHA-256, and every non-tensor
                                                      value (history rows, optimizer/scheduler scalars, early
                                                      stopping counters, RNG states ...)
    <resume_path>/tensors-e0003-<8 hex>.safetensors   every tensor, named by its place in the state

Saving writes a new tensors file (never the one `state.json` names), then swaps in `state.json` by an atomic
rename, then deletes the tensors files it no longer names. A crash at any point leaves either the previous or
the new state, never a mix: `state.json` always names a complete file, whose hash is checked on loading.

In `state.json`, tensors appear as `{"__tensor__": name}`, tuples as `{"__tuple__": [...]}`, dicts with
non-string keys (optimizer state) as `{"__items__": [[key, value], ...]}`, integers beyond 2**53 (numpy's
PCG64 state) as `{"__int__": "digits"}` and non-finite floats as `{"__float__": "nan"}`, so the file is strict
JSON and every value comes back with its exact type and bits.

A state is only resumed when its fingerprint (training config, checksums of the data, model parameter names
and shapes, initial weights, loop settings) equals the new run's; otherwise the run starts fresh with a warning.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import random
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from genolm.atomic import atomic_path, write_text_atomic
from genolm.errors import CheckpointError, ConfigError
from genolm.provenance import sha256_file

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
STATE_FILE = "state.json"
_TENSORS_PREFIX = "tensors-"
_MAX_EXACT_INT = 2**53  # larger integers lose precision in most JSON readers


@dataclass
class ResumeState:
    """A loaded resume state: the last finished epoch, the fingerprint it was written for, and the state tree
    (tensors on the CPU) as the training loop saved it."""

    epoch: int
    fingerprint: dict[str, Any]
    state: dict[str, Any]


# ------------------------------------------------------------------------------------------- JSON tree codec


def _encode(value: Any, path: str, tensors: dict[str, torch.Tensor]) -> Any:
    """A JSON-safe copy of `value`; tensors are copied to the CPU into `tensors` under their path."""
    if isinstance(value, torch.Tensor):
        if path in tensors:
            raise CheckpointError(f"resume state: two tensors would be stored as '{path}'")
        # A copy of its own: safetensors refuses tensors that share memory (tied or viewed weights).
        tensors[path] = value.detach().to("cpu", copy=True).contiguous()
        return {"__tensor__": path}
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return {"__int__": str(value)} if abs(value) >= _MAX_EXACT_INT else value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, np.generic):
        return _encode(value.item(), path, tensors)
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{path}/{i}", tensors) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        if all(isinstance(k, str) and not k.startswith("__") for k in value):
            return {k: _encode(v, f"{path}/{k}", tensors) for k, v in value.items()}
        return {"__items__": [[_encode(k, path, {}), _encode(v, f"{path}/{k}", tensors)] for k, v in value.items()]}
    raise CheckpointError(f"resume state: cannot store {type(value).__name__} at '{path}'")


def _decode(node: Any, tensors: Mapping[str, torch.Tensor]) -> Any:
    if isinstance(node, list):
        return [_decode(v, tensors) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((key, value),) = node.items()
        if key == "__tensor__":
            if value not in tensors:
                raise CheckpointError(f"resume state: tensor '{value}' is missing from the tensors file")
            return tensors[value]
        if key == "__tuple__":
            return tuple(_decode(v, tensors) for v in value)
        if key == "__items__":
            return {_decode(k, tensors): _decode(v, tensors) for k, v in value}
        if key == "__int__":
            return int(value)
        if key == "__float__":
            return float(value)
    return {k: _decode(v, tensors) for k, v in node.items()}


# ---------------------------------------------------------------------------------------------------- RNGs


def capture_rng(rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Every random state a training loop draws from: torch (CPU, and CUDA once initialised), python's
    `random`, numpy's global state and, if given, the loop's own numpy Generator."""
    version, words, gauss_next = random.getstate()
    key, pos, has_gauss, gauss = np.random.get_state(legacy=True)[1:]
    # The two Mersenne-Twister states (625 and 624 words) go to the tensors file, not the JSON.
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else [],
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss_next": gauss_next},
        "numpy_global": {
            "key": torch.from_numpy(key.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "generator": rng.bit_generator.state if rng is not None else None,
    }


def restore_rng(state: Mapping[str, Any], rng: np.random.Generator | None = None) -> None:
    """Put back what `capture_rng` captured (`rng` gets the saved Generator state in place)."""
    torch.set_rng_state(state["torch"])
    cuda = state["cuda"]
    if cuda:
        if torch.cuda.is_available() and torch.cuda.device_count() == len(cuda):
            torch.cuda.set_rng_state_all(cuda)
        else:
            visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
            log.warning("resume state has %d CUDA RNG states but %d devices are visible: GPU randomness will "
                        "differ from an uninterrupted run", len(cuda), visible)  # fmt: skip
    python = state["python"]
    random.setstate((python["version"], tuple(python["words"].tolist()), python["gauss_next"]))
    legacy = state["numpy_global"]
    key = legacy["key"].numpy().astype(np.uint32)
    np.random.set_state(("MT19937", key, legacy["pos"], legacy["has_gauss"], legacy["gauss"]))
    if rng is not None:
        if state["generator"] is None:
            raise CheckpointError("resume state has no numpy Generator state")
        rng.bit_generator.state = state["generator"]


# ------------------------------------------------------------------------------------------------ fingerprint


def _digest_arrays(arrays: Iterable[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape};".encode())
        digest.update(array.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _digest_tensors(state: Mapping[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name, tensor in state.items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(f"{name}:{flat.dtype}{tuple(tensor.shape)};".encode())
        digest.update(memoryview(flat.view(torch.uint8).numpy()))
    return digest.hexdigest()


def fingerprint(
    config: Any, data: Iterable[np.ndarray], model: nn.Module, loop: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What must be equal for a saved state to continue this run: the training config (a dataclass), the
    data (dtype, shape and bytes of every array, SHA-256), the model's tensor names/shapes/dtypes, its
    initial weights (SHA-256) and the loop's own settings. Call it before training changes the model."""
    state = model.state_dict()
    tensors = {name: f"{str(t.dtype).removeprefix('torch.')} {list(t.shape)}" for name, t in state.items()}
    parts = {
        "config": asdict(config) if is_dataclass(config) else dict(config),
        "data_sha256": _digest_arrays(data),
        "model": {"class": type(model).__qualname__, "tensors": tensors},
        "initial_weights_sha256": _digest_tensors(state),
        "loop": dict(loop or {}),
    }
    # The form it has after a round trip through state.json, so comparisons are exact.
    return json.loads(json.dumps(_encode(parts, "fingerprint", {}), allow_nan=False))


# ---------------------------------------------------------------------------------------------- save / load


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_folder(path: Path) -> None:
    if path.exists() and not path.is_dir():
        raise ConfigError(f"resume path {path} is a file; it must be a folder (or not exist yet)")


def save_resume_state(path: str | Path, epoch: int, fprint: Mapping[str, Any], state: Mapping[str, Any]) -> None:
    """Store `state` (a tree of dicts, lists, tuples, scalars and tensors) for `epoch` in the folder `path`,
    replacing the previous state all at once (see the module docstring)."""
    folder = Path(path)
    _check_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors: dict[str, torch.Tensor] = {}
    tree = _encode(dict(state), "state", tensors)
    name = f"{_TENSORS_PREFIX}e{epoch:04d}-{secrets.token_hex(4)}.safetensors"
    with atomic_path(folder / name) as tmp:
        # One metadata key: safetensors writes the metadata map in hash order.
        safetensors.torch.save_file(tensors, str(tmp), metadata={"format": "pt"})
        _fsync(tmp)
        sha = sha256_file(tmp)
    record = {
        "format_version": FORMAT_VERSION,
        "epoch": int(epoch),
        "tensors_file": name,
        "tensors_sha256": sha,
        "fingerprint": dict(fprint),
        "state": tree,
    }
    write_text_atomic(folder / STATE_FILE, json.dumps(record, indent=1, allow_nan=False) + "\n")
    for stale in _our_files(folder):
        if stale.name not in (STATE_FILE, name):
            stale.unlink(missing_ok=True)


def _our_files(folder: Path) -> list[Path]:
    """The files a resume state consists of, including temporary files a killed writer left behind."""
    if not folder.is_dir():
        return []
    return [
        p
        for p in folder.iterdir()
        if p.name == STATE_FILE
        or (p.name.startswith(_TENSORS_PREFIX) and p.name.endswith(".safetensors"))
        or (p.name.startswith((f".{STATE_FILE}.", f".{_TENSORS_PREFIX}")) and p.name.endswith(".tmp"))
    ]


def load_resume_state(path: str | Path) -> ResumeState | None:
    """The state saved in the folder `path`, tensors on the CPU; None when there is none. A state that is
    incomplete, edited or of another format raises CheckpointError."""
    folder = Path(path)
    _check_folder(folder)
    record_path = folder / STATE_FILE
    if not record_path.is_file():
        return None
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{record_path}: resume state is not valid JSON: {err}") from err
    if not isinstance(record, dict) or record.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{record_path}: not a genolm resume state of format {FORMAT_VERSION}")
    missing = [k for k in ("epoch", "tensors_file", "tensors_sha256", "fingerprint", "state") if k not in record]
    if missing:
        raise CheckpointError(f"{record_path}: resume state lacks {', '.join(missing)}")
    tensors_path = folder / str(record["tensors_file"])
    if Path(record["tensors_file"]).name != record["tensors_file"] or not tensors_path.is_file():
        raise CheckpointError(f"{record_path}: its tensors file {tensors_path.name} is missing")
    if sha256_file(tensors_path) != record["tensors_sha256"]:
        raise CheckpointError(f"{tensors_path}: does not match the SHA-256 recorded in {record_path}")
    try:
        tensors = safetensors.torch.load_file(str(tensors_path), device="cpu")
    except (safetensors.SafetensorError, OSError) as err:
        raise CheckpointError(f"{tensors_path}: unreadable safetensors file: {err}") from err
    return ResumeState(int(record["epoch"]), record["fingerprint"], _decode(record["state"], tensors))


def matching_resume_state(path: str | Path, fprint: Mapping[str, Any]) -> ResumeState | None:
    """The saved state if it was written by this same run (equal fingerprint); else None, with a warning
    when a state is there but cannot be used (it is replaced after the first new epoch)."""
    try:
        saved = load_resume_state(path)
    except CheckpointError as err:
        log.warning("ignoring the resume state in %s and starting fresh: %s", path, err)
        return None
    if saved is None:
        return None
    if saved.fingerprint != fprint:
        differ = sorted(k for k in {*saved.fingerprint, *fprint} if saved.fingerprint.get(k) != fprint.get(k))
        log.warning("ignoring the resume state in %s (epoch %d) and starting fresh: it was written for another "
                    "training run (different %s)", path, saved.epoch, ", ".join(differ))  # fmt: skip
        return None
    log.info("resuming training after epoch %d from %s", saved.epoch, path)
    return saved


def clear_resume_state(path: str | Path) -> None:
    """Delete a resume state: its files only (the record first, so a crash midway leaves no state), then
    the folder if that left it empty. A missing folder is fine."""
    folder = Path(path)
    _check_folder(folder)
    (folder / STATE_FILE).unlink(missing_ok=True)
    for file in _our_files(folder):
        file.unlink(missing_ok=True)
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
