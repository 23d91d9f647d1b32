"""Resumable training: a run stopped after any epoch (by an exception or SIGKILL) and started again with the same
resume path ends exactly like an uninterrupted run; states of other runs are ignored; divergence keeps the
last good state."""

from __future__ import annotations

import json
import logging
import math
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from genolm.datasets import TokenSet
from genolm.errors import CheckpointError, ConfigError, TrainingDivergedError
from genolm.models import AWDLSTMClassifier, AWDLSTMConfig, AWDLSTMLanguageModel, CNNClassifier, CNNConfig
from genolm.train import TrainConfig, clear_resume_state, pretrain_language_model, train_classifier
from genolm.train_state import (
    STATE_FILE,
    _decode,
    _encode,
    capture_rng,
    load_resume_state,
    restore_rng,
    save_resume_state,
)

VOCAB = 20
COMPARED = ["epoch", "train_loss", "valid_loss", "valid_accuracy", "lr"]
SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"


class StopTrainingError(Exception):
    """Raised from on_epoch to interrupt a run."""


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The tests train with threads=1 (fast on a shared machine); later tests get the count they had."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def token_set(n: int, seed: int) -> TokenSet:
    """Random sequences of 8..20 tokens; label 1 iff token 7 occurs (learnable, not trivial)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(8, 21, size=n)
    tokens = np.zeros((n, 20), dtype=np.int64)
    for i, length in enumerate(lengths):
        tokens[i, :length] = rng.integers(4, VOCAB, size=length)
    labels = (tokens == 7).any(axis=1).astype(np.int64)
    return TokenSet(tokens, lengths, labels, [f"s{seed}_{i}" for i in range(n)])


def tiny_awd() -> AWDLSTMClassifier:
    torch.manual_seed(0)
    return AWDLSTMClassifier(AWDLSTMConfig(VOCAB, emb_dim=8, hidden=8, layers=2), head_hidden=8)


def tiny_cnn() -> CNNClassifier:
    torch.manual_seed(0)
    cfg = CNNConfig(VOCAB, embed_dim=8, channels=(8,), kernel_sizes=(3,), dilations=(1,), window_tokens=8,
                    head_hidden=8, dropout=0.1)  # fmt: skip
    return CNNClassifier(cfg)


def config(**overrides: object) -> TrainConfig:
    params: dict[str, object] = dict(epochs=6, batch_size=16, lr=1e-2, patience=10, seed=5, device="cpu", threads=1)
    params.update(overrides)
    return TrainConfig(**params)


def stop_after(epoch: int):
    def callback(row: dict[str, float]) -> None:
        if row["epoch"] == epoch:
            raise StopTrainingError

    return callback


def assert_same_run(reference, resumed) -> None:
    pd.testing.assert_frame_equal(reference.history[COMPARED], resumed.history[COMPARED], check_exact=True)
    assert reference.best_epoch == resumed.best_epoch
    assert reference.best_valid_loss == resumed.best_valid_loss
    assert reference.state_dict.keys() == resumed.state_dict.keys()
    for key, value in reference.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key]), key


# --------------------------------------------------------------------------------------- in-process resumes


@pytest.mark.parametrize("stop", [2, 5], ids=["at-stage-boundary", "mid-stage"])
def test_classifier_resume_matches_uninterrupted_run(tmp_path: Path, stop: int) -> None:
    # Four layer groups and six epochs: stages of 1, 1, 1 and 3 epochs, each with its own one-cycle schedule.
    train, valid = token_set(64, seed=1), token_set(16, seed=2)
    cfg = config(gradual_unfreezing=True)
    reference = train_classifier(tiny_awd(), train, valid, cfg)
    state = tmp_path / "resume"
    with pytest.raises(StopTrainingError):
        train_classifier(tiny_awd(), train, valid, cfg, resume_path=state, on_epoch=stop_after(stop))
    assert load_resume_state(state).epoch == stop
    seen: list[dict[str, float]] = []
    model = tiny_awd()
    resumed = train_classifier(model, train, valid, cfg, resume_path=state, on_epoch=seen.append)
    assert [row["epoch"] for row in seen] == list(range(stop + 1, 7))
    assert_same_run(reference, resumed)
    assert resumed.history["stage"].tolist() == [1, 2, 3, 4, 4, 4]
    assert resumed.history["trainable_groups"].tolist() == [1, 2, 3, 4, 4, 4]
    assert all(p.requires_grad for p in model.parameters())
    # A finished state is returned as it is, without training again.
    again = train_classifier(tiny_awd(), train, valid, cfg, resume_path=state, on_epoch=seen.append)
    assert len(seen) == 6 - stop
    assert_same_run(reference, again)


def tiny_lm() -> AWDLSTMLanguageModel:
    torch.manual_seed(0)
    return AWDLSTMLanguageModel(AWDLSTMConfig(VOCAB, emb_dim=8, hidden=8, layers=2))


def test_language_model_resume_matches_uninterrupted_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    corpus = [rng.integers(4, VOCAB, size=n) for n in (150, 90, 60)]
    cfg = config(epochs=4, batch_size=4, lr=3e-2)
    reference = pretrain_language_model(tiny_lm(), corpus, cfg, bptt=8)
    state = tmp_path / "lm"
    with pytest.raises(StopTrainingError):
        pretrain_language_model(tiny_lm(), corpus, cfg, bptt=8, resume_path=state, on_epoch=stop_after(2))
    resumed = pretrain_language_model(tiny_lm(), corpus, cfg, bptt=8, resume_path=state)
    assert_same_run(reference, resumed)
    assert resumed.history["epoch"].tolist() == [1, 2, 3, 4]


# ---------------------------------------------------------------------------------------------- a real kill

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    import numpy as np, safetensors.torch, torch
    from genolm.datasets import TokenSet
    from genolm.models import AWDLSTMClassifier, AWDLSTMConfig
    from genolm.train import TrainConfig, train_classifier

    out, resume, pause, reference = Path(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3]), sys.argv[4:]
    def token_set(n, seed):
        rng = np.random.default_rng(seed)
        lengths = rng.integers(8, 21, size=n)
        tokens = np.zeros((n, 20), dtype=np.int64)
        for i, length in enumerate(lengths):
            tokens[i, :length] = rng.integers(4, 20, size=length)
        return TokenSet(tokens, lengths, (tokens == 7).any(axis=1).astype(np.int64), [str(i) for i in range(n)])
    def train(out, resume_path, pause):
        torch.manual_seed(0)
        model = AWDLSTMClassifier(AWDLSTMConfig(20, emb_dim=8, hidden=8, layers=2), head_hidden=8)
        cfg = TrainConfig(epochs=6, batch_size=16, lr=1e-2, patience=10, seed=5, device="cpu", threads=1,
                          gradual_unfreezing=True)
        seen = []
        def on_epoch(row):
            seen.append(row["epoch"])
            time.sleep(pause)  # the killing test needs time to land mid-run
        result = train_classifier(model, token_set(64, 1), token_set(16, 2), cfg, history_path=out / "history.tsv",
                                  resume_path=resume_path, on_epoch=on_epoch)
        safetensors.torch.save_file(result.state_dict, str(out / "weights.safetensors"))
        (out / "run.json").write_text(json.dumps({"best_epoch": result.best_epoch, "epochs_run": seen}))
    if reference:  # an uninterrupted run first (one interpreter start less than a process of its own)
        train(Path(reference[0]), None, 0.0)
    train(out, resume, pause)
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")
def test_killed_training_resumes_to_the_same_result(tmp_path: Path) -> None:
    script = tmp_path / "train_tiny.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])}
    outs = {name: tmp_path / name for name in ("reference", "killed", "resumed")}
    for folder in outs.values():
        folder.mkdir()
    state = tmp_path / "state"

    def start(name: str, pause: float, *reference: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, str(script), str(outs[name]), str(state), str(pause), *map(str, reference)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )

    victim = start("killed", 0.25, outs["reference"])
    deadline = time.monotonic() + 120
    epoch = 0
    while epoch < 2:
        assert victim.poll() is None, victim.stderr.read().decode()
        assert time.monotonic() < deadline, "the training subprocess never saved epoch 2"
        time.sleep(0.02)
        if (state / STATE_FILE).is_file():
            epoch = json.loads((state / STATE_FILE).read_text())["epoch"]
    victim.send_signal(signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    victim.stderr.close()
    killed_at = load_resume_state(state).epoch
    assert 2 <= killed_at < 6 and not (outs["killed"] / "run.json").exists()

    resumed = start("resumed", 0.0)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err.decode()

    runs = {name: json.loads((outs[name] / "run.json").read_text()) for name in ("reference", "resumed")}
    assert runs["resumed"]["epochs_run"] == list(range(killed_at + 1, 7))
    assert runs["resumed"]["best_epoch"] == runs["reference"]["best_epoch"]
    histories = {name: pd.read_csv(outs[name] / "history.tsv", sep="\t") for name in runs}
    pd.testing.assert_frame_equal(histories["reference"][COMPARED], histories["resumed"][COMPARED], check_exact=True)
    weights = {name: safetensors.torch.load_file(str(outs[name] / "weights.safetensors")) for name in runs}
    assert all(torch.equal(value, weights["resumed"][key]) for key, value in weights["reference"].items())


# ---------------------------------------------------------------------------------- states that do not fit


def test_state_of_another_run_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train, valid = token_set(48, seed=1), token_set(16, seed=2)
    state = tmp_path / "resume"
    with pytest.raises(StopTrainingError):
        train_classifier(tiny_cnn(), train, valid, config(), resume_path=state, on_epoch=stop_after(2))
    seen: list[dict[str, float]] = []
    with caplog.at_level(logging.WARNING, logger="genolm.train_state"):
        train_classifier(tiny_cnn(), train, valid, config(lr=5e-3, epochs=2), resume_path=state, on_epoch=seen.append)
    assert "written for another training run (different config)" in caplog.text
    assert [row["epoch"] for row in seen] == [1, 2]  # started fresh
    # Other data is another run too.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="genolm.train_state"):
        train_classifier(tiny_cnn(), token_set(48, seed=9), valid, config(lr=5e-3, epochs=2), resume_path=state)
    assert "(different data_sha256)" in caplog.text


def test_damaged_state_is_ignored_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    train, valid = token_set(48, seed=1), token_set(16, seed=2)
    state = tmp_path / "resume"
    reference = train_classifier(tiny_cnn(), train, valid, config(epochs=2))
    with pytest.raises(StopTrainingError):
        train_classifier(tiny_cnn(), train, valid, config(epochs=2), resume_path=state, on_epoch=stop_after(1))
    (tensors,) = state.glob("tensors-*.safetensors")
    data = bytearray(tensors.read_bytes())
    data[-1] ^= 0xFF
    tensors.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        load_resume_state(state)
    with caplog.at_level(logging.WARNING, logger="genolm.train_state"):
        fresh = train_classifier(tiny_cnn(), train, valid, config(epochs=2), resume_path=state)
    assert "ignoring the resume state" in caplog.text
    assert_same_run(reference, fresh)


# ------------------------------------------------------------------------------------------------ divergence


def test_divergence_names_the_last_good_epoch_and_keeps_its_state(tmp_path: Path) -> None:
    model = tiny_cnn()
    state = tmp_path / "resume"

    def poison(row: dict[str, float]) -> None:
        with torch.no_grad():
            model.head[-1].bias.fill_(float("nan"))

    with pytest.raises(TrainingDivergedError) as caught:
        train_classifier(model, token_set(48, 1), token_set(16, 2), config(), resume_path=state, on_epoch=poison)
    message = str(caught.value)
    assert "epoch 2, step 1" in message
    assert f"The last good epoch was 1; its training state is kept in {state}." in message
    saved = load_resume_state(state)
    assert saved.epoch == 1 and [row["epoch"] for row in saved.state["rows"]] == [1]
    assert all(torch.isfinite(t).all() for t in saved.state["model"].values() if t.is_floating_point())
    fresh = tiny_cnn()
    fresh.load_state_dict(saved.state["model"])


def test_exploding_loss_is_divergence(tmp_path: Path) -> None:
    model = tiny_cnn()

    def blow_up(row: dict[str, float]) -> None:
        with torch.no_grad():
            model.head[-1].weight.mul_(1e7)

    with pytest.raises(TrainingDivergedError, match=r"exploded at epoch 2 .*The last good epoch was 1"):
        train_classifier(model, token_set(48, 1), token_set(16, 2), config(epochs=3), on_epoch=blow_up)
    with pytest.raises(ConfigError, match="explode_factor"):
        config(explode_factor=1.0)


# ----------------------------------------------------------------------------------------- storage details


def test_state_json_is_strict_and_round_trips_exact_types(tmp_path: Path) -> None:
    generator = np.random.default_rng(11)
    tree = {
        "rows": [{"epoch": 1, "auroc": float("nan"), "loss": float("inf")}],
        "betas": (0.9, 0.999),
        "by_index": {0: {"step": torch.tensor(3.0)}, 7: {"exp_avg": torch.arange(4.0)}},
        "generator": generator.bit_generator.state,
        "none": None,
        "weights": {"tied.a": torch.ones(2), "tied.b": torch.ones(2)},
    }
    save_resume_state(tmp_path, 3, {"config": {"lr": 0.1}}, tree)
    # Strict JSON: no NaN/Infinity literals, and no integer beyond 2**53 as a bare number.
    record = json.loads((tmp_path / STATE_FILE).read_text(), parse_constant=lambda name: pytest.fail(name))
    assert "__int__" in json.dumps(record["state"]["generator"])
    loaded = load_resume_state(tmp_path)
    assert loaded.epoch == 3 and loaded.fingerprint == {"config": {"lr": 0.1}}
    state = loaded.state
    assert math.isnan(state["rows"][0]["auroc"]) and state["rows"][0]["loss"] == math.inf
    assert state["betas"] == (0.9, 0.999) and isinstance(state["betas"], tuple)
    assert set(state["by_index"]) == {0, 7} and torch.equal(state["by_index"][7]["exp_avg"], torch.arange(4.0))
    restored = np.random.default_rng(0)
    restored.bit_generator.state = state["generator"]
    assert restored.integers(0, 2**62) == generator.integers(0, 2**62)
    assert _decode(_encode({"__x": 1}, "t", {}), {}) == {"__x": 1}


def test_saving_replaces_the_previous_state_and_clear_removes_only_its_files(tmp_path: Path) -> None:
    folder = tmp_path / "resume"
    save_resume_state(folder, 1, {}, {"w": torch.zeros(3)})
    save_resume_state(folder, 2, {}, {"w": torch.ones(3)})
    assert len(list(folder.glob("tensors-*.safetensors"))) == 1
    assert torch.equal(load_resume_state(folder).state["w"], torch.ones(3))
    (folder / ".tensors-e0003-0000.safetensors.1.abcd.tmp").write_bytes(b"left by a killed writer")
    (folder / "notes.txt").write_text("not ours")
    clear_resume_state(folder)
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert load_resume_state(folder) is None
    (folder / "notes.txt").unlink()
    clear_resume_state(folder)
    assert not folder.exists()
    clear_resume_state(folder)  # nothing there: fine
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="must be a folder"):
        train_classifier(tiny_cnn(), token_set(8, 1), token_set(4, 2), config(epochs=1), resume_path=tmp_path / "file")


def test_rng_capture_restores_every_generator(tmp_path: Path) -> None:
    generator = np.random.default_rng(4)
    random.seed(1)
    np.random.seed(2)
    torch.manual_seed(3)
    save_resume_state(tmp_path, 1, {}, {"rng": capture_rng(generator)})
    first = (random.random(), np.random.random(), torch.rand(2), generator.random())
    restore_rng(load_resume_state(tmp_path).state["rng"], generator)
    again = (random.random(), np.random.random(), torch.rand(2), generator.random())
    assert first[0] == again[0] and first[1] == again[1] and torch.equal(first[2], again[2]) and first[3] == again[3]
    assert len((tmp_path / STATE_FILE).read_text()) < 5000  # the Mersenne-Twister words live in the tensors file


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_resumes(tmp_path: Path) -> None:
    train, valid = token_set(64, seed=1), token_set(16, seed=2)
    cfg = config(epochs=3, device="cuda")
    state = tmp_path / "resume"
    with pytest.raises(StopTrainingError):
        train_classifier(tiny_awd(), train, valid, cfg, resume_path=state, on_epoch=stop_after(1))
    assert load_resume_state(state).state["rng"]["cuda"]  # the CUDA generators are saved too
    seen: list[dict[str, float]] = []
    result = train_classifier(tiny_awd(), train, valid, cfg, resume_path=state, on_epoch=seen.append)
    assert [row["epoch"] for row in seen] == [2, 3] and result.history["epoch"].tolist() == [1, 2, 3]
    assert all(torch.isfinite(t).all() for t in result.state_dict.values() if t.is_floating_point())
