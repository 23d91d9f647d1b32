from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
import safetensors
import torch

from genolm.checkpoint import LANGUAGE_MODEL_ARCH, load_checkpoint, save_checkpoint, sidecar_path
from genolm.errors import CheckpointError
from genolm.models import AWDLSTMLanguageModel, build_classifier, build_language_model

VOCAB = 4 + 4**3
VOCAB_DICT = {"k": 3, "stride": 1, "include_tail": True, "version": 1}  # opaque to the checkpoint code
CNN_PARAMS = {
    "embed_dim": 8,
    "channels": [8, 8],
    "kernel_sizes": [5, 3],
    "dilations": [1, 2],
    "head_hidden": 8,
}
AWD_PARAMS = {"emb_dim": 8, "hidden": 12, "layers": 2, "head_hidden": 6}


def tokens_and_lengths() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randint(4, VOCAB, (5, 40), generator=gen)
    lengths = torch.tensor([40, 31, 27, 12, 3])
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n:] = 0
    return tokens, lengths


def trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Perturb every tensor (BatchNorm statistics too) so a round trip cannot pass by re-initialisation."""
    torch.manual_seed(1)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn_like(tensor))
                if "running_var" in name:
                    tensor.abs_()
    return model.eval()


BASELINE_PARAMS = {
    "kmer_mlp": {"hidden": [16, 8]},
    "transformer": {"d_model": 16, "n_heads": 2, "layers": 1, "ff_dim": 32, "max_tokens": 16},
}


def save(tmp_path: Path, arch: str = "cnn") -> tuple[torch.nn.Module, Path]:
    torch.manual_seed(0)
    params = {"cnn": CNN_PARAMS, "awd_lstm": AWD_PARAMS, **BASELINE_PARAMS}[arch]
    model = build_classifier(arch, params, VOCAB, 21 if arch == "cnn" else 81)
    model = trained_like(model)
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path, {"arch": arch, "params": params, "vocab": VOCAB_DICT, "task": "promoter"})
    return model, path


@pytest.mark.parametrize("arch", ["cnn", "awd_lstm", "kmer_mlp", "transformer"])
def test_round_trip_gives_identical_predictions(tmp_path: Path, arch: str) -> None:
    model, path = save(tmp_path, arch)
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    tokens, lengths = tokens_and_lengths()
    with torch.no_grad():
        assert torch.equal(model(tokens, lengths), loaded(tokens, lengths))
    assert meta["vocab"] == VOCAB_DICT and meta["task"] == "promoter"
    assert meta["arch"] == arch and meta["vocab_size"] == VOCAB
    assert set(meta["versions"]) == {"genolm", "torch", "python"}


def test_language_model_round_trip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    lm = trained_like(build_language_model({"emb_dim": 8, "hidden": 12, "layers": 2}, VOCAB))
    path = tmp_path / "lm.safetensors"
    params = {"emb_dim": 8, "hidden": 12, "layers": 2}
    save_checkpoint(lm, path, {"arch": LANGUAGE_MODEL_ARCH, "params": params, "vocab": VOCAB_DICT})
    loaded, _ = load_checkpoint(path)
    assert isinstance(loaded, AWDLSTMLanguageModel)
    tokens, _ = tokens_and_lengths()
    with torch.no_grad():
        assert torch.equal(lm(tokens)[0], loaded(tokens)[0])
    # The tied decoder is stored once, as the embedding.
    with safetensors.safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
    assert "encoder.embedding.weight" in keys
    assert not any(key.startswith("decoder.") for key in keys)


def test_sidecar_contents_and_reproducible_bytes(tmp_path: Path) -> None:
    _, path = save(tmp_path)
    sidecar = json.loads(sidecar_path(path).read_text())
    assert sidecar_path(path) == tmp_path / "model.json"
    assert sidecar["params"] == CNN_PARAMS and sidecar["window_tokens"] == 21
    assert len(sidecar["weights_sha256"]) == 64
    assert not any("time" in key or "date" in key for key in sidecar)
    first = (path.read_bytes(), sidecar_path(path).read_bytes())
    save(tmp_path)
    assert (path.read_bytes(), sidecar_path(path).read_bytes()) == first
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]


def test_loader_never_unpickles(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _, path = save(tmp_path, "awd_lstm")

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("checkpoint loading must not unpickle")

    for module, name in [(pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")]:
        monkeypatch.setattr(module, name, forbidden)
    model, _ = load_checkpoint(path, map_location="cpu")
    assert next(model.parameters()).device.type == "cpu"


def test_missing_files(tmp_path: Path) -> None:
    _, path = save(tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match=r"model\.json.*missing"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="weights file is missing"):
        load_checkpoint(tmp_path / "absent.safetensors")


def edit_sidecar(path: Path, **changes: object) -> None:
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta.update(changes)
    side.write_text(json.dumps(meta))


def test_tampered_sidecar_params(tmp_path: Path) -> None:
    _, path = save(tmp_path, "awd_lstm")
    edit_sidecar(path, params={**AWD_PARAMS, "hidden": 16})
    with pytest.raises(CheckpointError, match=r"do not fit.*rnns\.0\.lstm\.weight_hh_l0"):
        load_checkpoint(path)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arch": "gpt"}, "unknown arch 'gpt'"),
        ({"params": {"kernel": 3}}, "unknown parameter 'kernel'"),
        ({"format_version": 99}, "format_version 99"),
        ({"vocab_size": VOCAB + 1}, "embedding.weight"),
    ],
)
def test_inconsistent_sidecar(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    _, path = save(tmp_path)
    edit_sidecar(path, **changes)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_corrupt_sidecar_and_weights(tmp_path: Path) -> None:
    _, path = save(tmp_path)
    side = sidecar_path(path)
    good = side.read_text()
    side.write_text(good[:-20])
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(path)
    side.write_text(json.dumps({"arch": "cnn"}))
    with pytest.raises(CheckpointError, match="lacks params, vocab"):
        load_checkpoint(path)
    side.write_text(good)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(path)


def test_save_rejects_bad_meta(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_classifier("cnn", CNN_PARAMS, VOCAB, 21)
    path = tmp_path / "model.safetensors"
    with pytest.raises(CheckpointError, match="lacks vocab"):
        save_checkpoint(model, path, {"arch": "cnn", "params": CNN_PARAMS})
    with pytest.raises(CheckpointError, match="model is a CNNClassifier"):
        save_checkpoint(model, path, {"arch": "awd_lstm", "params": {}, "vocab": VOCAB_DICT})
    with pytest.raises(CheckpointError, match="do not describe this model"):
        save_checkpoint(model, path, {"arch": "cnn", "params": {**CNN_PARAMS, "head_hidden": 9}, "vocab": {}})
    with pytest.raises(CheckpointError, match=r"must end in \.safetensors"):
        save_checkpoint(model, tmp_path / "model.pt", {"arch": "cnn", "params": CNN_PARAMS, "vocab": {}})
    with pytest.raises(CheckpointError, match="JSON"):
        save_checkpoint(model, path, {"arch": "cnn", "params": CNN_PARAMS, "vocab": {"k": object()}})
    assert not path.exists() and not sidecar_path(path).exists()
