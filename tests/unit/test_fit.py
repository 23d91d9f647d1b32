"""ULMFiT stages as the rules run them: pretrain -> fine-tune on the task -> classifier, through checkpoints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.checkpoint import load_checkpoint, read_checkpoint_meta, save_checkpoint
from genolm.datasets import save_token_set, tokenize_sequences
from genolm.errors import InputFormatError
from genolm.fit import fine_tune_language_model, fit_classifier, sequence_streams
from genolm.kmers import KmerTokenizer
from genolm.models import build_language_model

# No dropout: a few dozen steps must show that the LM learns the overlap of consecutive k-mers.
PARAMS = {"emb_dim": 16, "hidden": 24, "layers": 2, "embed_p": 0.0, "input_p": 0.0, "hidden_p": 0.0, "weight_p": 0.0}
SETTINGS = {
    "arch": "awd_lstm",
    "params": PARAMS,
    "pretrain": {"genomes": ["g"], "epochs": 1, "bptt": 20, "batch_size": 8, "lr": 0.003},
    "finetune": {"epochs": 3, "bptt": 20, "batch_size": 8, "lr": 0.03},
    "train": {"epochs": 3, "batch_size": 16, "lr": 0.003, "patience": 3, "gradual_unfreezing": True},
}


def _sequences(rng: np.random.Generator, n: int, motif: str) -> list[str]:
    out = []
    for _ in range(n):
        seq = list(rng.choice(list("ACGT"), 60))
        if motif:
            start = int(rng.integers(0, 60 - len(motif)))
            seq[start : start + len(motif)] = motif
        out.append("".join(seq))
    return out


@pytest.fixture
def task(tmp_path):
    """Token sets of a toy task (TATAAT-carrying positives) and an untrained LM checkpoint with its tokenizer."""
    rng = np.random.default_rng(0)
    tokenizer = KmerTokenizer(k=3, stride=1)
    paths = {}
    for split, n in (("train", 48), ("valid", 16)):
        seqs = _sequences(rng, n, "TATAAT") + _sequences(rng, n, "")
        ids = [f"{split}{i}" for i in range(2 * n)]
        token_set = tokenize_sequences(ids, seqs, [1] * n + [0] * n, tokenizer)
        paths[split] = tmp_path / f"{split}.npz"
        save_token_set(token_set, paths[split], tokenizer)
    lm = build_language_model(PARAMS, tokenizer.vocab_size)
    paths["lm"] = tmp_path / "pretrain" / "lm.safetensors"
    paths["lm"].parent.mkdir()
    meta = {"kind": "language_model", "arch": "awd_lstm_lm", "params": PARAMS, "vocab": tokenizer.to_dict()}
    save_checkpoint(lm, paths["lm"], meta)
    return paths


def test_sequence_streams_drop_padding():
    tokenizer = KmerTokenizer(k=2, stride=1)
    token_set = tokenize_sequences(["a", "b"], ["ACGTAC", "ACG"], [1, 0], tokenizer)
    streams = sequence_streams(token_set)
    assert [len(s) for s in streams] == [5, 2]
    assert all((s != 0).all() for s in streams)


def test_fine_tuned_lm_lowers_task_loss_and_feeds_the_classifier(task, tmp_path):
    out = tmp_path / "finetune" / "lm.safetensors"
    out.parent.mkdir()
    fine_tune_language_model(task["lm"], task["train"], task["valid"], SETTINGS, 1, out, tmp_path / "ft.tsv", "cpu")
    history = pd.read_csv(tmp_path / "ft.tsv", sep="\t")
    assert list(history["epoch"]) == [1, 2, 3]
    # next 3-mer given the last one: 4 choices; below uniform over the 64 3-mers means it learned the overlap
    assert history["valid_loss"].iloc[-1] < np.log(64) - 0.5
    meta = read_checkpoint_meta(out)
    assert meta["stage"] == "finetune" and meta["train"]["epochs"] == 3
    assert set(meta["provenance"]["inputs"]) == {"language_model", "train", "valid"}
    tuned, _ = load_checkpoint(out)
    start, _ = load_checkpoint(task["lm"])
    moved = (tuned.encoder.embedding.weight - start.encoder.embedding.weight).detach()
    assert float(moved.abs().max()) > 0  # the encoder was trained, not copied

    model_path = tmp_path / "clf" / "model.safetensors"
    model_path.parent.mkdir()
    fit_classifier(
        task["train"], task["valid"], SETTINGS, 1, model_path, tmp_path / "clf.tsv", tmp_path / "clf.yaml",
        language_model=out, device="cpu",
    )  # fmt: skip
    assert read_checkpoint_meta(model_path)["provenance"]["settings"]["pretrained"] == str(out)


def test_fine_tuning_refuses_another_tokenization(task, tmp_path):
    other = KmerTokenizer(k=2, stride=1)
    token_set = tokenize_sequences(["a", "b"], ["ACGTACGT", "TTTTGGGG"], [1, 0], other)
    save_token_set(token_set, tmp_path / "other.npz", other)
    out = tmp_path / "ft.safetensors"
    with pytest.raises(InputFormatError, match="tokenized differently from the language model"):
        fine_tune_language_model(task["lm"], tmp_path / "other.npz", task["valid"], SETTINGS, 1, out, tmp_path / "h")
    assert not out.exists()


def test_a_killed_training_step_resumes_where_it_stopped(task, tmp_path, monkeypatch, caplog):
    """What a rerun of a killed train_classifier job sees: the resume folder beside the checkpoint is picked up,
    the result equals an uninterrupted run, and the folder is gone once the checkpoint is written."""
    import genolm.fit

    def fit(folder, **kwargs):
        folder.mkdir(exist_ok=True)
        fit_classifier(
            task["train"], task["valid"], SETTINGS, 1, folder / "model.safetensors", folder / "history.tsv",
            folder / "config.yaml", device="cpu", **kwargs,
        )  # fmt: skip
        return pd.read_csv(folder / "history.tsv", sep="\t")

    reference = fit(tmp_path / "reference")
    assert not (tmp_path / "reference" / ".model.resume").exists()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed before the checkpoint was written")

    with monkeypatch.context() as patch:
        patch.setattr(genolm.fit, "save_checkpoint", killed)
        with pytest.raises(KeyboardInterrupt):
            fit(tmp_path / "run")
    assert (tmp_path / "run" / ".model.resume" / "state.json").is_file()
    with caplog.at_level("INFO", logger="genolm"):
        resumed = fit(tmp_path / "run")
    assert "resuming training after epoch 3" in caplog.text
    columns = ["epoch", "train_loss", "valid_loss", "valid_accuracy", "lr"]
    pd.testing.assert_frame_equal(resumed[columns], reference[columns])
    assert not (tmp_path / "run" / ".model.resume").exists()
    first, _ = load_checkpoint(tmp_path / "reference" / "model.safetensors")
    second, _ = load_checkpoint(tmp_path / "run" / "model.safetensors")
    assert all((a == b).all() for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))


def test_a_classifier_can_start_from_the_language_models_embedding_alone(task, tmp_path, monkeypatch):
    import genolm.fit

    lm, _ = load_checkpoint(task["lm"])
    seen = {}
    real_train = genolm.fit.train_classifier

    def train_and_record(model, *args, **kwargs):
        seen.update({key: value.clone() for key, value in model.encoder.state_dict().items()})
        return real_train(model, *args, **kwargs)

    monkeypatch.setattr(genolm.fit, "train_classifier", train_and_record)
    settings = {**SETTINGS, "transfer": "embedding", "train": {**SETTINGS["train"], "gradual_unfreezing": False}}
    model_path = tmp_path / "model.safetensors"
    fit_classifier(
        task["train"], task["valid"], settings, 1, model_path, tmp_path / "h.tsv", tmp_path / "c.yaml",
        language_model=task["lm"], device="cpu",
    )  # fmt: skip
    pretrained = lm.encoder.state_dict()
    assert torch.equal(seen["embedding.weight"], pretrained["embedding.weight"])
    lstm_weights = [key for key in pretrained if key.startswith("rnns.")]
    assert lstm_weights and not any(torch.equal(seen[key], pretrained[key]) for key in lstm_weights)
    assert read_checkpoint_meta(model_path)["provenance"]["settings"]["transfer"] == "embedding"
