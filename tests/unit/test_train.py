from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.datasets import TokenSet
from genolm.errors import ConfigError, InputFormatError, TrainingDivergedError
from genolm.models import AWDLSTMClassifier, AWDLSTMConfig, AWDLSTMLanguageModel, CNNClassifier, CNNConfig
from genolm.train import (
    IGNORE_TARGET,
    TrainConfig,
    _lm_batch,
    _param_groups,
    _unfreezing_stages,
    bucketed_batches,
    jitter_tokens,
    lm_layout,
    predict_proba,
    pretrain_language_model,
    select_device,
    train_classifier,
)

VOCAB = 4 + 4**2
MOTIF = np.array([7, 12, 9, 15])
TIMING_COLUMNS = ["tokens_per_s", "seconds"]


def motif_task(n: int, seed: int, flip: bool = False) -> TokenSet:
    """Random sequences of 12..30 tokens; label 1 iff a fixed 4-token motif is planted."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(12, 31, size=n)
    tokens = np.zeros((n, 30), dtype=np.int64)
    labels = np.arange(n) % 2
    for i, length in enumerate(lengths):
        tokens[i, :length] = rng.integers(4, VOCAB, size=length)
        if labels[i]:
            start = rng.integers(0, length - len(MOTIF) + 1)
            tokens[i, start : start + len(MOTIF)] = MOTIF
    if flip:
        labels = 1 - labels
    return TokenSet(tokens, lengths, labels, [f"seq{seed}_{i}" for i in range(n)])


def small_cnn() -> CNNClassifier:
    torch.manual_seed(0)
    cfg = CNNConfig(VOCAB, embed_dim=8, channels=(8,), kernel_sizes=(3,), dilations=(1,), window_tokens=8,
                    head_hidden=8, dropout=0.1)  # fmt: skip
    return CNNClassifier(cfg)


def small_awd(layers: int = 2) -> AWDLSTMClassifier:
    torch.manual_seed(0)
    return AWDLSTMClassifier(AWDLSTMConfig(VOCAB, emb_dim=8, hidden=12, layers=layers), head_hidden=8)


def fast_config(**overrides: object) -> TrainConfig:
    params: dict[str, object] = dict(epochs=3, batch_size=16, lr=1e-2, patience=5, seed=3, device="cpu")
    params.update(overrides)
    return TrainConfig(**params)


# ------------------------------------------------------------------------------------------- config, devices


def test_train_config_validation() -> None:
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ConfigError, match="threads"):
        TrainConfig(threads=0)
    with pytest.raises(ConfigError, match="explode_factor"):
        TrainConfig(explode_factor=0.5)
    assert TrainConfig(explode_factor=None).explode_factor is None
    with pytest.raises(ConfigError, match="shift_jitter"):
        TrainConfig(shift_jitter=-1)


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert select_device("auto").type == expected
    with pytest.raises(ConfigError, match="bogus"):
        select_device("bogus")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA is not available"):
            select_device("cuda")


# -------------------------------------------------------------------------------------------------- batching


def test_bucketed_batches_cover_every_example_once() -> None:
    lengths = np.random.default_rng(0).integers(1, 500, size=1001)
    batches = bucketed_batches(lengths, 8, np.random.default_rng(1))
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(1001))
    assert len(batches) == len(bucketed_batches(lengths, 8, np.random.default_rng(2)))
    # Within a batch, lengths are sorted (one bucket); the batch order is shuffled.
    assert all(np.all(np.diff(lengths[b]) >= 0) for b in batches)
    assert [b.tolist() for b in batches] == [b.tolist() for b in bucketed_batches(lengths, 8, np.random.default_rng(1))]
    # 1001 = 125 * 8 + 1: the single leftover joins another batch (BatchNorm needs > 1 example).
    assert min(len(b) for b in batches) > 1 and len(batches) == 125


# ---------------------------------------------------------------------------------------------- classifiers


def test_train_classifier_learns_and_writes_history(tmp_path, caplog) -> None:
    train, valid = motif_task(192, seed=1), motif_task(64, seed=2)
    rows = []
    history_path = tmp_path / "history.tsv"
    model = small_cnn()
    with caplog.at_level(logging.INFO, logger="genolm.train"):
        result = train_classifier(model, train, valid, fast_config(epochs=4), history_path=history_path,
                                  on_epoch=rows.append)  # fmt: skip
    history = result.history
    assert list(history.columns) == [
        "epoch", "train_loss", "valid_loss", "valid_accuracy", "valid_auroc", "lr", "tokens_per_s", "seconds",
        "stage", "trainable_groups",
    ]  # fmt: skip
    assert history["epoch"].tolist() == [1, 2, 3, 4] and len(rows) == 4
    assert history["stage"].tolist() == [1] * 4 and history["trainable_groups"].tolist() == [1] * 4
    # Progress in the log: each epoch's last step, and a summary line with the time left.
    assert "epoch 2: step 12/12 (100%), loss " in caplog.text
    assert "epoch 2/4: train_loss " in caplog.text and "s left for 2 more epochs at most" in caplog.text
    on_disk = pd.read_csv(history_path, sep="\t")
    np.testing.assert_allclose(on_disk["valid_loss"], history["valid_loss"], rtol=1e-5)
    assert history["valid_auroc"].iloc[-1] > 0.9
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]
    best = int(history["valid_loss"].idxmin())
    assert result.best_epoch == history["epoch"][best]
    assert result.best_valid_loss == history["valid_loss"][best]
    # The model ends in its best state.
    for key, value in model.state_dict().items():
        assert torch.equal(value, result.state_dict[key])


def test_jitter_moves_each_row_within_its_length() -> None:
    tokens = torch.tensor([[5, 6, 7, 8, 9, 10], [11, 12, 13, 0, 0, 0]])
    lengths = torch.tensor([6, 3])
    seen: set[tuple[int, ...]] = set()
    rng = np.random.default_rng(0)
    for _ in range(200):
        moved = jitter_tokens(tokens, lengths, 2, rng)
        assert moved.shape == tokens.shape and moved.dtype == tokens.dtype
        assert moved[1, 3:].tolist() == [0, 0, 0]  # padding beyond the length stays padding
        for row, length in ((0, 6), (1, 3)):
            kept = [int(t) for t in moved[row, :length] if t != 0]
            original = tokens[row, :length].tolist()
            # What is left is one contiguous run of the original, at most 2 tokens from its place.
            start = original.index(kept[0])
            assert kept == original[start : start + len(kept)] and len(kept) >= length - 2
            offset = int((moved[row, :length] != 0).nonzero()[0]) - start
            assert abs(offset) <= 2
        seen.add(tuple(moved[0].tolist()))
    shifted = {tuple(([0] * d + list(range(5, 11)))[:6]) for d in range(3)}
    shifted |= {tuple((list(range(5, 11)) + [0] * d)[d:]) for d in range(3)}
    assert seen == shifted  # every shift from -2 to 2 occurs, and nothing else
    assert torch.equal(jitter_tokens(tokens, lengths, 0, rng), tokens)


def test_shift_jitter_trains_deterministically_and_differs_from_no_jitter() -> None:
    train, valid = motif_task(96, seed=1), motif_task(32, seed=2)
    runs = []
    for jitter in (2, 2, 0):
        model = small_cnn()
        result = train_classifier(model, train, valid, fast_config(epochs=2, shift_jitter=jitter))
        runs.append(result.history["train_loss"].tolist())
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_training_is_deterministic_on_cpu() -> None:
    train, valid = motif_task(96, seed=1), motif_task(32, seed=2)
    outputs = []
    for _ in range(2):
        model = small_awd()
        result = train_classifier(model, train, valid, fast_config(epochs=2))
        outputs.append((result.history.drop(columns=TIMING_COLUMNS), predict_proba(model, valid)))
    pd.testing.assert_frame_equal(outputs[0][0], outputs[1][0], check_exact=True)
    assert np.array_equal(outputs[0][1], outputs[1][1])


def test_early_stopping_restores_best_epoch() -> None:
    # Validation labels are the opposite of training labels, so validation loss rises after the first epoch.
    train, valid = motif_task(192, seed=1), motif_task(64, seed=2, flip=True)
    model = small_cnn()
    result = train_classifier(model, train, valid, fast_config(epochs=10, patience=2, lr=3e-2))
    assert result.best_epoch == 1
    assert len(result.history) == 3
    proba = predict_proba(model, valid)
    # Restored weights reproduce the best epoch's validation loss (class-balanced BCE; classes are 1:1 here).
    labels = valid.labels
    loss = -np.mean(labels * np.log(proba) + (1 - labels) * np.log1p(-proba))
    assert loss == pytest.approx(result.best_valid_loss, rel=1e-5)


def test_nan_loss_raises_training_diverged() -> None:
    model = small_cnn()
    with torch.no_grad():
        model.head[-1].bias.fill_(float("nan"))
    with pytest.raises(TrainingDivergedError, match=r"epoch 1, step 1 .*No epoch finished before that"):
        train_classifier(model, motif_task(32, seed=1), motif_task(8, seed=2), fast_config())


def test_vocab_mismatch_is_reported() -> None:
    ts = motif_task(8, seed=1)
    ts.tokens[0, 0] = VOCAB
    with pytest.raises(InputFormatError, match="token set: record 'seq1_0' has token id 20, outside the model"):
        train_classifier(small_cnn(), ts, motif_task(8, seed=2), fast_config())


def test_discriminative_learning_rates() -> None:
    model = small_awd(layers=2)
    groups = _param_groups(model.layer_groups(), 1e-2, 0.1, 2.6)
    embedding = model.encoder.embedding.weight
    by_param = {id(p): g for g in groups for p in g["params"]}
    assert by_param[id(embedding)]["lr"] == pytest.approx(1e-2 / 2.6**3)
    assert by_param[id(model.encoder.rnns[1].lstm.weight_hh_l0)]["lr"] == pytest.approx(1e-2 / 2.6)
    assert by_param[id(model.head[-1].weight)]["lr"] == pytest.approx(1e-2)
    # No weight decay on biases and BatchNorm scales.
    assert by_param[id(model.head[-1].bias)]["weight_decay"] == 0.0
    assert by_param[id(model.head[0].weight)]["weight_decay"] == 0.0
    assert by_param[id(model.head[-1].weight)]["weight_decay"] == 0.1


def test_unfreezing_stages() -> None:
    assert _unfreezing_stages(6, 4, gradual=True) == [(1, 1), (1, 2), (1, 3), (3, 4)]
    assert _unfreezing_stages(2, 4, gradual=True) == [(1, 1), (1, 2)]
    assert _unfreezing_stages(5, 4, gradual=False) == [(5, 4)]


def test_gradual_unfreezing_trains_one_more_group_per_epoch() -> None:
    model = small_awd(layers=2)  # groups: embedding, LSTM 1, LSTM 2, head
    groups = model.layer_groups()
    snapshots = [[torch.cat([p.detach().flatten() for p in g]).clone() for g in groups]]

    def snapshot(_row: dict[str, float]) -> None:
        snapshots.append([torch.cat([p.detach().flatten() for p in g]).clone() for g in groups])

    cfg = fast_config(epochs=4, gradual_unfreezing=True, patience=10)
    train_classifier(model, motif_task(64, seed=1), motif_task(16, seed=2), cfg, on_epoch=snapshot)
    changed = [
        [not torch.equal(before, after) for before, after in zip(snapshots[e], snapshots[e + 1], strict=True)]
        for e in range(4)
    ]
    assert changed == [
        [False, False, False, True],
        [False, False, True, True],
        [False, True, True, True],
        [True, True, True, True],
    ]
    assert all(p.requires_grad for p in model.parameters())


def test_predict_proba_order_and_range() -> None:
    model = small_awd().eval()
    ts = motif_task(20, seed=5)
    proba = predict_proba(model, ts, batch_size=7)
    assert proba.dtype == np.float64 and proba.shape == (20,)
    assert ((proba > 0) & (proba < 1)).all()
    with torch.no_grad():
        single = [
            torch.sigmoid(model(torch.from_numpy(ts.tokens[i : i + 1, : ts.lengths[i]]), torch.tensor([ts.lengths[i]])))
            for i in range(20)
        ]
    np.testing.assert_allclose(proba, torch.cat(single).double().numpy(), atol=1e-6)
    assert model.training is False


# ---------------------------------------------------------------------------------------- language modelling


def test_lm_layout_never_joins_contigs() -> None:
    lengths = [23, 5, 1, 40]
    flat = np.concatenate([np.full(n, 100 * (c + 1)) + np.arange(n) for c, n in enumerate(lengths)])
    flat = np.concatenate([flat, [0, 0]])
    layout = lm_layout(lengths, [0, 0, 0, 3], bptt=6, batch_size=3, order=np.array([3, 0, 1, 2]))
    pairs = []
    for step in range(layout.starts.shape[0]):
        inputs, targets, keep = _lm_batch(flat, layout, step, 6, torch.device("cpu"))
        real = targets != IGNORE_TARGET
        assert (inputs[~real] == 0).all()
        pairs += list(zip(inputs[real].tolist(), targets[real].tolist(), strict=True))
        # A row's state is kept only when its piece continues the same contig as its previous piece.
        for b in range(3):
            if keep[0, b, 0] == 1:
                assert layout.starts[step, b] == layout.starts[step - 1, b] + 6
    # Every target is the successor within the same contig (ids encode contig * 100 + position).
    assert all(t == i + 1 and t // 100 == i // 100 for i, t in pairs)
    expected = (23 - 1) + (5 - 1) + (40 - 3 - 1)  # the 1-token contig has no successor; offset 3 skips 3
    assert len(pairs) == len(set(pairs)) == expected


def test_pretrain_language_model_lowers_loss(tmp_path) -> None:
    # Two contigs repeating a 7-token period: the next token is predictable from the previous one.
    period = np.array([4, 9, 5, 13, 6, 17, 8])
    corpus = [np.tile(period, 60), np.tile(np.roll(period, 3), 40)]
    torch.manual_seed(0)
    dropouts = dict(embed_p=0.05, input_p=0.2, hidden_p=0.1, weight_p=0.2, output_p=0.1)
    lm = AWDLSTMLanguageModel(AWDLSTMConfig(VOCAB, emb_dim=16, hidden=24, layers=2, **dropouts))
    history_path = tmp_path / "lm.tsv"
    result = pretrain_language_model(lm, corpus, fast_config(epochs=6, batch_size=4, lr=3e-2), bptt=10,
                                     history_path=history_path)  # fmt: skip
    history = result.history
    assert list(history.columns) == [
        "epoch", "train_loss", "valid_loss", "valid_accuracy", "valid_perplexity",
        "lr", "tokens_per_s", "seconds",
    ]  # fmt: skip
    assert history_path.is_file()
    assert history["valid_loss"].iloc[0] > 0.75 * math.log(VOCAB)
    assert history["valid_loss"].iloc[-1] < 0.6 * history["valid_loss"].iloc[0]
    assert history["valid_accuracy"].iloc[-1] > 0.9
    assert result.best_valid_loss == history["valid_loss"].min()


def test_pretrain_language_model_input_errors() -> None:
    lm = AWDLSTMLanguageModel(AWDLSTMConfig(VOCAB, emb_dim=8, hidden=8, layers=1))
    with pytest.raises(InputFormatError, match="outside the vocabulary"):
        pretrain_language_model(lm, np.array([4, 5, VOCAB, 6] * 10), fast_config(epochs=1))
    with pytest.raises(ConfigError, match="no token with a successor"):
        pretrain_language_model(lm, [np.array([4])], fast_config(epochs=1), valid=[np.array([4, 5])])


# ------------------------------------------------------------------------------------------------------- GPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("make_model", [small_cnn, small_awd])
def test_cuda_training_matches_cpu_inference(make_model: object) -> None:
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    train, valid = motif_task(96, seed=1), motif_task(32, seed=2)
    model = make_model()
    result = train_classifier(model, train, valid, fast_config(epochs=2, device="cuda"))
    assert np.isfinite(result.best_valid_loss)
    assert next(model.parameters()).is_cuda
    gpu = predict_proba(model, valid)
    cpu = predict_proba(model.to("cpu"), valid)
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
