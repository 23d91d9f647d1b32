from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from genolm.errors import CheckpointError, ConfigError
from genolm.models import (
    MODEL_REGISTRY,
    AWDLSTMClassifier,
    AWDLSTMConfig,
    AWDLSTMLanguageModel,
    CNNClassifier,
    CNNConfig,
    ar_tar_loss,
    build_classifier,
    build_language_model,
)
from genolm.models.awd_lstm import WeightDropLSTM, embedding_dropout, locked_dropout

VOCAB = 4 + 4**2


def tiny_cnn(window: int = 21, dropout: float = 0.0) -> CNNClassifier:
    torch.manual_seed(0)
    cfg = CNNConfig(
        vocab_size=VOCAB,
        embed_dim=8,
        channels=(8, 8),
        kernel_sizes=(5, 3),
        dilations=(1, 2),
        dropout=dropout,
        window_tokens=window,
        head_hidden=8,
    )
    return CNNClassifier(cfg)


def tiny_awd_config(**overrides: float) -> AWDLSTMConfig:
    params = dict(vocab_size=VOCAB, emb_dim=12, hidden=16, layers=2)
    params.update(overrides)
    return AWDLSTMConfig(**params)


def no_dropout() -> dict[str, float]:
    return dict(embed_p=0.0, input_p=0.0, hidden_p=0.0, weight_p=0.0, output_p=0.0)


def random_tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (batch, length), generator=gen)


def overfit(model: torch.nn.Module, tokens: torch.Tensor, lengths: torch.Tensor, labels: torch.Tensor) -> list[float]:
    torch.manual_seed(0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    model.train()
    for _ in range(80):
        loss = F.binary_cross_entropy_with_logits(model(tokens, lengths), labels.float())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def fixed_batch(length: int = 24) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tokens = random_tokens(16, length, seed=3)
    lengths = torch.tensor([length - (i % 5) for i in range(16)])
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n:] = 0
    labels = torch.tensor([0, 1] * 8)
    return tokens, lengths, labels


# ------------------------------------------------------------------------------------------------------ CNN


def test_cnn_receptive_field_equals_window() -> None:
    model = tiny_cnn(window=21)
    assert model.config.stack_receptive_field == 1 + 4 * 1 + 2 * 2
    assert model.receptive_field == 21
    model.eval()
    tokens = random_tokens(1, 120)
    changed = tokens.clone()
    changed[0, 50] = 4 if tokens[0, 50] != 4 else 5
    with torch.no_grad():
        diff = (model.position_logits(tokens) - model.position_logits(changed)).abs()[0]
    # Window p covers tokens p .. p+20, so only windows 30..50 can see position 50.
    affected = torch.nonzero(diff > 0).flatten().tolist()
    assert affected == list(range(30, 51))


def test_cnn_position_logits_equal_per_window_forward() -> None:
    model = tiny_cnn(window=21).eval()
    tokens = random_tokens(2, 300, seed=1)
    with torch.no_grad():
        all_positions = model.position_logits(tokens)
        assert all_positions.shape == (2, 300 - 21 + 1)
        windows = tokens.unfold(1, 21, 1).reshape(-1, 21)  # [2 * 280, 21]
        per_window = model(windows, torch.full((windows.shape[0],), 21)).reshape(2, -1)
    torch.testing.assert_close(all_positions, per_window, atol=1e-5, rtol=0)
    # The sequence logit is the best window.
    with torch.no_grad():
        logits = model(tokens, torch.tensor([300, 300]))
    torch.testing.assert_close(logits, all_positions.amax(dim=1), atol=1e-6, rtol=0)


def test_cnn_forward_shapes_and_short_sequences() -> None:
    model = tiny_cnn(window=21).eval()
    tokens = random_tokens(3, 10)
    with torch.no_grad():
        out = model(tokens, torch.tensor([10, 7, 0]))
        assert out.shape == (3,)
        assert torch.isfinite(out).all()
        # Shorter than a window: scored as the sequence right-padded with PAD to one window.
        padded = F.pad(tokens[:1], (0, 11))
        torch.testing.assert_close(out[:1], model(padded, torch.tensor([10])), atol=1e-6, rtol=0)
        assert model.position_logits(tokens).shape == (3, 1)


def test_cnn_padding_does_not_change_logits() -> None:
    model = tiny_cnn(window=21).eval()
    short = random_tokens(1, 30, seed=4)
    other = random_tokens(1, 80, seed=5)
    batch = torch.zeros(2, 80, dtype=torch.long)
    batch[0, :30] = short[0]
    batch[1] = other[0]
    with torch.no_grad():
        alone = model(short, torch.tensor([30]))
        in_batch = model(batch, torch.tensor([30, 80]))
    assert abs(alone.item() - in_batch[0].item()) < 1e-5


def test_cnn_overfits_one_batch() -> None:
    tokens, lengths, labels = fixed_batch()
    losses = overfit(tiny_cnn(window=9), tokens, lengths, labels)
    assert losses[-1] < 0.05 * losses[0]


def test_cnn_config_errors() -> None:
    with pytest.raises(ConfigError, match="window_tokens"):
        CNNConfig(vocab_size=VOCAB, window_tokens=10)  # stack alone sees 1 + 8 + 12 = 21 tokens
    with pytest.raises(ConfigError, match="same length"):
        CNNConfig(vocab_size=VOCAB, channels=(8,), kernel_sizes=(3, 3), dilations=(1, 1))
    assert CNNConfig(vocab_size=VOCAB, channels=[8, 8]).channels == (8, 8)
    assert CNNConfig(vocab_size=VOCAB).head_kernel == 81 - 21 + 1


# ------------------------------------------------------------------------------------------- AWD-LSTM parts


def test_embedding_dropout_drops_whole_rows() -> None:
    torch.manual_seed(0)
    emb = torch.nn.Embedding(VOCAB, 6)
    tokens = torch.arange(4, VOCAB).repeat(3, 1)  # every token type three times
    out = embedding_dropout(emb, tokens, 0.5, training=True)
    dropped = out.abs().sum(-1) == 0
    assert dropped.any() and not dropped.all()
    # A token type is dropped everywhere or nowhere; kept rows are rescaled by 1 / (1 - p).
    assert (dropped == dropped[0]).all()
    kept = ~dropped[0]
    torch.testing.assert_close(out[0, kept], 2.0 * emb.weight[tokens[0, kept]])
    torch.testing.assert_close(embedding_dropout(emb, tokens, 0.5, training=False), emb(tokens))


def test_locked_dropout_shares_mask_over_time() -> None:
    torch.manual_seed(0)
    out = locked_dropout(torch.ones(4, 9, 7), 0.5, training=True)
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert (out == out[:, :1, :]).all()
    x = torch.randn(2, 3, 4)
    assert locked_dropout(x, 0.5, training=False) is x


def test_weight_drop_uses_dropped_hidden_weights() -> None:
    torch.manual_seed(0)
    layer = WeightDropLSTM(3, 5, weight_p=0.5).train()
    x = torch.randn(2, 7, 3)
    torch.manual_seed(11)
    out, _ = layer(x)
    torch.manual_seed(11)  # the dropout mask is the forward's first random draw
    dropped = F.dropout(layer.lstm.weight_hh_l0.detach(), 0.5, training=True)
    reference = copy.deepcopy(layer.lstm)
    with torch.no_grad():
        reference.weight_hh_l0.copy_(dropped)
    torch.testing.assert_close(out, reference(x)[0])
    # The raw weight is still the registered parameter and is untouched by the forward.
    assert [name for name, _ in layer.named_parameters()] == [
        "lstm.weight_ih_l0",
        "lstm.weight_hh_l0",
        "lstm.bias_ih_l0",
        "lstm.bias_hh_l0",
    ]
    layer.eval()
    torch.testing.assert_close(layer(x)[0], copy.deepcopy(layer.lstm)(x)[0])


def test_weight_drop_gradients() -> None:
    torch.manual_seed(0)
    layer = WeightDropLSTM(2, 3, weight_p=0.4).double().train()
    x = torch.randn(2, 4, 2, dtype=torch.double)
    torch.manual_seed(5)
    layer(x)[0].sum().backward()
    torch.manual_seed(5)
    mask = F.dropout(torch.ones_like(layer.lstm.weight_hh_l0), 0.4, training=True) == 0
    grad = layer.lstm.weight_hh_l0.grad
    assert mask.any() and (grad[mask] == 0).all() and (grad[~mask] != 0).all()

    raw = layer.lstm.weight_hh_l0.detach().clone().requires_grad_(True)

    def fixed_mask_forward(weight: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        torch.manual_seed(5)  # same DropConnect mask on every evaluation
        return torch.func.functional_call(layer, {"lstm.weight_hh_l0": weight}, (inputs,))[0]

    assert torch.autograd.gradcheck(fixed_mask_forward, (raw, x.clone().requires_grad_(True)))


def test_weight_drop_resamples_each_forward() -> None:
    torch.manual_seed(0)
    layer = WeightDropLSTM(3, 5, weight_p=0.5).train()
    x = torch.randn(2, 7, 3)
    assert not torch.equal(layer(x)[0], layer(x)[0])


def test_language_model_shapes_and_tied_decoder() -> None:
    torch.manual_seed(0)
    lm = AWDLSTMLanguageModel(tiny_awd_config())
    tokens = random_tokens(3, 11)
    logits, raw, dropped = lm(tokens)
    assert logits.shape == (3, 11, VOCAB)
    assert [r.shape for r in raw] == [(3, 11, 16), (3, 11, 12)]
    assert [d.shape for d in dropped] == [(3, 11, 16), (3, 11, 12)]
    names = {name for name, _ in lm.named_parameters()}
    assert "decoder_bias" in names and not any("decoder.weight" in n for n in names)
    lm.eval()
    with torch.no_grad():
        logits, _, dropped = lm(tokens)
    expected = dropped[-1] @ lm.encoder.embedding.weight.T + lm.decoder_bias
    torch.testing.assert_close(logits, expected)


def test_language_model_state_carry_matches_one_pass() -> None:
    torch.manual_seed(0)
    lm = AWDLSTMLanguageModel(tiny_awd_config()).eval()
    tokens = random_tokens(2, 20)
    with torch.no_grad():
        whole, *_ = lm(tokens)
        first, _, _, state = lm.step(tokens[:, :8])
        second, _, _, _ = lm.step(tokens[:, 8:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, atol=1e-6, rtol=0)


def test_ar_tar_loss_values_and_mask() -> None:
    raw = [torch.randn(2, 5, 3), torch.randn(2, 5, 4, requires_grad=True)]
    dropped = [torch.randn(2, 5, 3), torch.randn(2, 5, 4, requires_grad=True)]
    loss = ar_tar_loss(raw, dropped, alpha=2.0, beta=1.0)
    assert loss.shape == ()
    ar = dropped[-1].pow(2).mean()
    tar = (raw[-1][:, 1:] - raw[-1][:, :-1]).pow(2).mean()
    torch.testing.assert_close(loss, 2.0 * ar + tar)
    loss.backward()
    assert raw[-1].grad is not None and dropped[-1].grad is not None
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    masked = ar_tar_loss(raw, dropped, alpha=1.0, beta=0.0, mask=mask)
    torch.testing.assert_close(masked, dropped[-1][mask].pow(2).mean())
    masked_tar = ar_tar_loss(raw, dropped, alpha=0.0, beta=1.0, mask=mask)
    steps = torch.cat([raw[-1][0, 1:] - raw[-1][0, :-1], raw[-1][1, 1:2] - raw[-1][1, :1]])
    torch.testing.assert_close(masked_tar, steps.pow(2).mean())
    assert AWDLSTMLanguageModel.ar_tar_loss is ar_tar_loss


def test_language_model_overfits_one_batch() -> None:
    torch.manual_seed(0)
    lm = AWDLSTMLanguageModel(tiny_awd_config(emb_dim=32, hidden=64, **no_dropout()))
    tokens = random_tokens(16, 21, seed=7)  # random tokens: only memorisation lowers the loss
    optimizer = torch.optim.Adam(lm.parameters(), lr=2e-2)
    losses = []
    for _ in range(150):
        logits, _, _ = lm(tokens[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, VOCAB), tokens[:, 1:].reshape(-1))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.25 * losses[0]


# ---------------------------------------------------------------------------------------- AWD-LSTM classifier


def test_awd_classifier_padding_does_not_change_logits() -> None:
    torch.manual_seed(0)
    model = AWDLSTMClassifier(tiny_awd_config()).eval()
    short = random_tokens(1, 30, seed=4)
    batch = torch.zeros(3, 55, dtype=torch.long)
    batch[0, :30] = short[0]
    batch[1] = random_tokens(1, 55, seed=5)[0]
    batch[2, :41] = random_tokens(1, 41, seed=6)[0]
    with torch.no_grad():
        alone = model(short, torch.tensor([30]))
        in_batch = model(batch, torch.tensor([30, 55, 41]))
        # Even non-PAD garbage after the length is ignored.
        garbage = batch.clone()
        garbage[0, 30:] = 7
        with_garbage = model(garbage, torch.tensor([30, 55, 41]))
    assert abs(alone.item() - in_batch[0].item()) < 1e-5
    assert abs(alone.item() - with_garbage[0].item()) < 1e-5


def test_awd_classifier_pooling() -> None:
    model = AWDLSTMClassifier(tiny_awd_config())
    outputs = torch.arange(2 * 4 * 1, dtype=torch.float).reshape(2, 4, 1)  # [[0,1,2,3],[4,5,6,7]]
    pooled = model.pool(outputs, torch.tensor([2, 4]))
    torch.testing.assert_close(pooled, torch.tensor([[1.0, 1.0, 0.5], [7.0, 7.0, 5.5]]))
    # Length 0 behaves like a single PAD token instead of failing.
    assert torch.isfinite(model.pool(outputs, torch.tensor([0, 1]))).all()


def test_awd_classifier_never_truncates() -> None:
    torch.manual_seed(0)
    model = AWDLSTMClassifier(tiny_awd_config()).eval()
    tokens = random_tokens(1, 3000)
    changed = tokens.clone()
    changed[0, -1] = 4 if tokens[0, -1] != 4 else 5
    with torch.no_grad():
        a, b = model(tokens, torch.tensor([3000])), model(changed, torch.tensor([3000]))
    assert a.shape == (1,) and not torch.equal(a, b)


def test_awd_classifier_overfits_one_batch() -> None:
    torch.manual_seed(0)
    model = AWDLSTMClassifier(tiny_awd_config(**no_dropout()), head_p=0.0, head_hidden_p=0.0)
    tokens, lengths, labels = fixed_batch()
    losses = overfit(model, tokens, lengths, labels)
    assert losses[-1] < 0.05 * losses[0]


def test_layer_groups_cover_every_parameter_once() -> None:
    model = AWDLSTMClassifier(tiny_awd_config(layers=3))
    groups = model.layer_groups()
    assert len(groups) == 3 + 2
    assert groups[0] == [model.encoder.embedding.weight]
    assert groups[-1] == list(model.head.parameters())
    ids = [id(p) for group in groups for p in group]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())


def test_load_encoder_state_from_language_model() -> None:
    torch.manual_seed(0)
    lm = AWDLSTMLanguageModel(tiny_awd_config())
    model = AWDLSTMClassifier(tiny_awd_config())
    model.load_encoder_state(lm.encoder.state_dict())
    for key, value in lm.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value)
    model2 = AWDLSTMClassifier(tiny_awd_config())
    model2.load_encoder_state(lm.state_dict())  # whole LM state: the "encoder." prefix is stripped
    assert torch.equal(model2.encoder.embedding.weight, lm.encoder.embedding.weight)
    other = AWDLSTMLanguageModel(tiny_awd_config(vocab_size=4 + 4**3))
    with pytest.raises(CheckpointError, match=r"embedding\.weight"):
        model.load_encoder_state(other.encoder.state_dict())


def test_load_encoder_state_can_take_the_embedding_alone() -> None:
    torch.manual_seed(0)
    lm = AWDLSTMLanguageModel(tiny_awd_config())
    model = AWDLSTMClassifier(tiny_awd_config())
    fresh = {key: value.clone() for key, value in model.encoder.state_dict().items()}
    model.load_encoder_state(lm.encoder.state_dict(), transfer="embedding")
    for key, value in model.encoder.state_dict().items():
        expected = lm.encoder.state_dict()[key] if key == "embedding.weight" else fresh[key]
        assert torch.equal(value, expected), key
    assert not torch.equal(model.encoder.embedding.weight, fresh["embedding.weight"])
    with pytest.raises(ConfigError, match="transfer must be one of encoder, embedding"):
        model.load_encoder_state(lm.encoder.state_dict(), transfer="lstm")
    other = AWDLSTMLanguageModel(tiny_awd_config(vocab_size=4 + 4**3))
    with pytest.raises(CheckpointError, match=r"embedding\.weight"):  # still checked, though only one is taken
        model.load_encoder_state(other.encoder.state_dict(), transfer="embedding")


# --------------------------------------------------------------------------------------------------- builders


def test_build_classifier_and_errors() -> None:
    assert set(MODEL_REGISTRY) == {"cnn", "awd_lstm", "kmer_mlp", "transformer"}
    cnn = build_classifier("cnn", {"embed_dim": 8, "channels": [8, 8], "head_hidden": 4}, VOCAB, 41)
    assert isinstance(cnn, CNNClassifier) and cnn.receptive_field == 41
    awd = build_classifier("awd_lstm", {"emb_dim": 8, "hidden": 8, "layers": 1, "head_hidden": 7}, VOCAB, 41)
    assert isinstance(awd, AWDLSTMClassifier) and awd.head[2].out_features == 7
    with pytest.raises(ConfigError, match="'kernel' for model 'cnn'"):
        build_classifier("cnn", {"kernel": 3}, VOCAB, 41)
    with pytest.raises(ConfigError, match="'window_tokens'"):
        build_classifier("cnn", {"window_tokens": 41}, VOCAB, 41)
    with pytest.raises(ConfigError, match="'dropout' for model 'awd_lstm'"):
        build_classifier("awd_lstm", {"dropout": 0.1}, VOCAB, 41)
    with pytest.raises(ConfigError, match="unknown model architecture 'gpt'"):
        build_classifier("gpt", {}, VOCAB, 41)
    with pytest.raises(ConfigError, match="input_p"):
        build_classifier("awd_lstm", {"input_p": 1.5}, VOCAB, 41)


def test_build_language_model_accepts_shared_block() -> None:
    lm = build_language_model({"emb_dim": 8, "hidden": 8, "layers": 2, "head_hidden": 50}, VOCAB)
    assert isinstance(lm, AWDLSTMLanguageModel) and lm.config.emb_dim == 8
    with pytest.raises(ConfigError, match="'hiden'"):
        build_language_model({"hiden": 8}, VOCAB)


def test_published_awd_lstm_size() -> None:
    # Default = Merity et al. / ULMFiT: emb 400, hidden 1150, 3 layers; 3-mer vocabulary (4 specials + 64).
    with torch.device("meta"):
        lm = build_language_model({}, 4 + 4**3)
    n_params = sum(p.numel() for p in lm.parameters())
    lstm = [4 * h * (i + h) + 8 * h for i, h in [(400, 1150), (1150, 1150), (1150, 400)]]
    assert n_params == 68 * 400 + sum(lstm) + 68 == 20_238_868


def test_narrow_cnn_head_is_shift_invariant_and_still_one_window_per_position():
    from genolm.models import CNNClassifier, CNNConfig

    torch.manual_seed(0)
    config = CNNConfig(vocab_size=8, embed_dim=4, channels=(8,), kernel_sizes=(5,), dilations=(1,), window_tokens=40,
                       head_hidden=8, head_width=3, dropout=0.0)  # fmt: skip
    model = CNNClassifier(config).eval()
    assert model.receptive_field == 40 and config.pool_width == 34
    tokens = torch.randint(4, 8, (1, 120))
    with torch.no_grad():
        every = model.position_logits(tokens)[0]
        alone = torch.stack([model.position_logits(tokens[:, s : s + 40])[0, 0] for s in range(81)])
        assert torch.allclose(every, alone, atol=1e-5)
        # a motif anywhere inside the window gives the window the same score: shift invariance
        motif = torch.tensor([[5, 6, 7, 5, 6, 7, 5]])
        background = torch.full((1, 40), 4)
        shifted = [background.clone() for _ in range(2)]
        shifted[0][:, 3:10], shifted[1][:, 25:32] = motif, motif
        lengths = torch.tensor([40])
        assert torch.allclose(model(shifted[0], lengths), model(shifted[1], lengths), atol=1e-6)
    with pytest.raises(ConfigError, match="head_width"):
        CNNConfig(vocab_size=8, channels=(8,), kernel_sizes=(5,), dilations=(1,), window_tokens=40, head_width=37)
