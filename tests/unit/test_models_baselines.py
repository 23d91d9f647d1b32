from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import safetensors
import torch
import torch.nn.functional as F
from test_checkpoint import trained_like  # the same perturbation the checkpoint tests use (tests/unit is on sys.path)

from genolm.checkpoint import MASKED_LM_ARCH, load_checkpoint, save_checkpoint, sidecar_path
from genolm.datasets import TokenSet
from genolm.errors import CheckpointError, ConfigError
from genolm.kmers import CLS, PAD, UNK, KmerTokenizer
from genolm.models import (
    MODEL_REGISTRY,
    KmerMLPClassifier,
    KmerMLPConfig,
    TransformerClassifier,
    TransformerConfig,
    TransformerMaskedLM,
    build_classifier,
    build_masked_lm,
)
from genolm.models.kmer_mlp import kmer_spectrum
from genolm.models.transformer import sinusoidal_positions
from genolm.train import TrainConfig, predict_proba, train_classifier

VOCAB = 4 + 4**2
VOCAB_DICT = {"k": 2, "stride": 1, "include_tail": True, "version": 2}  # opaque to the checkpoint code


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy machine spinning threads cost ~30x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_tokens(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(4, VOCAB, (batch, length), generator=gen)


def tiny_mlp(**overrides: object) -> KmerMLPClassifier:
    torch.manual_seed(0)
    params: dict[str, object] = {"vocab_size": VOCAB, "hidden": (16, 8), "dropout": 0.0}
    params.update(overrides)
    return KmerMLPClassifier(KmerMLPConfig(**params))


def tiny_transformer_config(**overrides: object) -> TransformerConfig:
    params: dict[str, object] = dict(vocab_size=VOCAB, d_model=16, n_heads=2, layers=2, ff_dim=32, dropout=0.0,
                                     max_tokens=12)  # fmt: skip
    params.update(overrides)
    return TransformerConfig(**params)


def tiny_transformer(**overrides: object) -> TransformerClassifier:
    torch.manual_seed(0)
    return TransformerClassifier(tiny_transformer_config(**overrides)).eval()


def padded_batch(*sequences: torch.Tensor, garbage: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad 1-D token tensors into a batch, filling after each length with `garbage`."""
    width = max(len(s) for s in sequences)
    batch = torch.full((len(sequences), width), garbage, dtype=torch.long)
    for i, seq in enumerate(sequences):
        batch[i, : len(seq)] = seq
    return batch, torch.tensor([len(s) for s in sequences])


def gc_task(n: int, seed: int, k: int = 2) -> TokenSet:
    """GC-rich (label 1, 70% G/C) vs AT-rich (label 0, 30% G/C) sequences of 30..81 bp."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    seqs = []
    for label in labels:
        gc = 0.7 if label else 0.3
        length = int(rng.integers(30, 82))
        seqs.append("".join(rng.choice(list("ACGT"), size=length, p=[(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])))
    tokens, lengths = KmerTokenizer(k=k).encode_batch(seqs)
    return TokenSet(tokens, lengths, labels, [f"s{seed}_{i}" for i in range(n)])


def accuracy_after_training(model: torch.nn.Module, cfg: TrainConfig) -> float:
    result = train_classifier(model, gc_task(160, seed=1), gc_task(60, seed=2), cfg)
    test = gc_task(200, seed=3)
    proba = predict_proba(model, test)
    assert result.best_epoch >= 1
    return float(((proba > 0.5) == (test.labels == 1)).mean())


# ------------------------------------------------------------------------------------------------ k-mer MLP


def test_kmer_spectrum_counts_real_kmers_inside_lengths_only() -> None:
    tokens = torch.tensor([[4, 5, 5, UNK, 7, 9, 9], [6, CLS, 6, 6, 8, PAD, PAD], [UNK, UNK, 4, 4, 4, 4, 4]])
    freq = kmer_spectrum(tokens, torch.tensor([5, 5, 2]), 16)
    expected = torch.zeros(3, 16)
    expected[0, [0, 1, 3]] = torch.tensor([1, 2, 1]) / 4  # UNK is neither counted nor in the denominator
    expected[1, [2, 4]] = torch.tensor([3, 1]) / 4  # nor are the other special tokens
    # Only UNK inside the length: an all-zero spectrum, not NaN.
    torch.testing.assert_close(freq, expected, atol=0, rtol=0)


@pytest.mark.parametrize("transform", ["none", "sqrt", "log"])
def test_kmer_mlp_transforms(transform: str) -> None:
    model = tiny_mlp(transform=transform)
    tokens, lengths = torch.tensor([[4, 4, 4, 5]]), torch.tensor([4])
    freq = torch.zeros(1, 16)
    freq[0, :2] = torch.tensor([0.75, 0.25])
    expected = {"none": freq, "sqrt": freq.sqrt(), "log": torch.log1p(16 * freq)}[transform]
    torch.testing.assert_close(model.features(tokens, lengths), expected)


@pytest.mark.parametrize("norm", ["layer", "batch", "none"])
def test_kmer_mlp_padding_never_changes_logits(norm: str) -> None:
    model = tiny_mlp(norm=norm).eval()
    short, other = random_tokens(1, 9, seed=1)[0], random_tokens(1, 50, seed=2)[0]
    with torch.no_grad():
        alone = model(short[None], torch.tensor([9]))
        in_batch = model(*padded_batch(short, other))
        with_garbage = model(*padded_batch(short, other, garbage=11))  # anything after the length is ignored
    assert in_batch.shape == (2,)
    torch.testing.assert_close(in_batch[:1], alone, atol=1e-6, rtol=0)
    torch.testing.assert_close(with_garbage, in_batch, atol=0, rtol=0)


def test_kmer_mlp_sees_composition_only() -> None:
    model = tiny_mlp().eval()
    seq = random_tokens(1, 30, seed=4)
    shuffled = seq[:, torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    with torch.no_grad():
        logits = [model(x, torch.tensor([x.shape[1]])) for x in (seq, shuffled, seq.repeat(1, 3))]
        changed = seq.clone()
        changed[0, 0] = 4 if seq[0, 0] != 4 else 5
        different = model(changed, torch.tensor([30]))
    torch.testing.assert_close(logits[1], logits[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(logits[2], logits[0], atol=1e-6, rtol=0)  # length-normalised
    assert not torch.equal(different, logits[0])


def test_kmer_mlp_layer_groups_and_config_errors() -> None:
    model = tiny_mlp(hidden=[16, 8, 4])
    assert model.config.hidden == (16, 8, 4) and model.blocks[0][0].in_features == VOCAB - 4
    groups = model.layer_groups()
    assert len(groups) == 4 and groups[-1] == list(model.head.parameters())
    ids = [id(p) for group in groups for p in group]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    for bad, message in [
        ({"transform": "exp"}, "transform"),
        ({"norm": "group"}, "norm"),
        ({"hidden": [8, 0]}, "hidden"),
        ({"dropout": 1.0}, "dropout"),
        ({"vocab_size": 4}, "vocab_size"),
    ]:
        with pytest.raises(ConfigError, match=message):
            KmerMLPConfig(**{"vocab_size": VOCAB, **bad})


def test_kmer_mlp_learns_gc_content() -> None:
    model = tiny_mlp(dropout=0.1)
    cfg = TrainConfig(epochs=10, batch_size=32, lr=3e-2, patience=10, seed=1)
    assert accuracy_after_training(model, cfg) > 0.9


# ---------------------------------------------------------------------------------------------- transformer


def test_transformer_shapes_and_distinct_layers() -> None:
    model = tiny_transformer()
    tokens, lengths = padded_batch(random_tokens(1, 7)[0], random_tokens(1, 30, seed=1)[0])
    with torch.no_grad():
        assert model(tokens, lengths).shape == (2,)
        assert model.encode(tokens, lengths).shape == (2, 16)
        # Length 0 behaves like a single PAD token instead of failing.
        assert torch.isfinite(model(tokens, torch.tensor([0, 30]))).all()
    first, second = model.encoder.transformer.layers
    assert not torch.equal(first.linear1.weight, second.linear1.weight)  # not deep copies of one layer


@pytest.mark.parametrize(
    ("pooling", "positional", "overlap"), [("mean", "learned", 0), ("cls", "sinusoidal", 3), ("mean", "sinusoidal", 5)]
)
def test_transformer_padding_and_batch_never_change_logits(pooling: str, positional: str, overlap: int) -> None:
    model = tiny_transformer(pooling=pooling, positional=positional, overlap=overlap)
    short, medium, long = (random_tokens(1, n, seed=n)[0] for n in (5, 12, 47))  # max_tokens 12: 47 is chunked
    with torch.no_grad():
        alone = torch.cat([model(s[None], torch.tensor([len(s)])) for s in (short, medium, long)])
        in_batch = model(*padded_batch(short, medium, long))
        with_garbage = model(*padded_batch(short, medium, long, garbage=9))
    torch.testing.assert_close(in_batch, alone, atol=1e-5, rtol=0)
    torch.testing.assert_close(with_garbage, alone, atol=1e-5, rtol=0)


def test_transformer_never_truncates() -> None:
    model = tiny_transformer(overlap=2)
    tokens = random_tokens(1, 100, seed=3)
    changed = tokens.clone()
    changed[0, 95] = 4 if tokens[0, 95] != 4 else 5
    with torch.no_grad():
        a, b = model(tokens, torch.tensor([100])), model(changed, torch.tensor([100]))
    assert torch.isfinite(a).all() and not torch.allclose(a, b, atol=1e-6)


def test_transformer_chunk_layout() -> None:
    model = tiny_transformer(max_tokens=10, overlap=3)  # 10 tokens per chunk, a new chunk every 7
    tokens, lengths = padded_batch(random_tokens(1, 37, seed=1)[0], random_tokens(1, 10, seed=2)[0])
    seq, index, chunk_tokens, mask, counts = model._chunks(tokens, lengths)
    assert seq.tolist() == [0] * 5 + [1] and index.tolist() == [0, 1, 2, 3, 4, 0]
    assert counts.tolist() == [10, 10, 10, 10, 9, 10]
    for row, start in enumerate([0, 7, 14, 21, 28]):
        n = counts[row]
        assert torch.equal(chunk_tokens[row, :n], tokens[0, start : start + n])
        assert mask[row].sum() == n and (chunk_tokens[row, n:] == PAD).all()
    # With CLS pooling the CLS takes one of the max_tokens positions.
    cls_model = tiny_transformer(max_tokens=10, overlap=0, pooling="cls")
    assert cls_model._chunks(tokens, lengths)[4].tolist() == [9, 9, 9, 9, 1, 9, 1]


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_transformer_pools_chunks_by_length_weighted_mean(pooling: str) -> None:
    model = tiny_transformer(max_tokens=12, pooling=pooling)
    size = model.config.chunk_tokens
    tokens = random_tokens(1, 2 * size + 5, seed=6)
    pieces = [tokens[:, :size], tokens[:, size : 2 * size], tokens[:, 2 * size :]]
    with torch.no_grad():
        whole = model.encode(tokens, torch.tensor([tokens.shape[1]]))
        parts = [model.encode(p, torch.tensor([p.shape[1]])) * p.shape[1] for p in pieces]
    torch.testing.assert_close(whole, sum(parts) / tokens.shape[1], atol=1e-5, rtol=0)


def test_transformer_layer_groups() -> None:
    model = tiny_transformer(layers=3)
    groups = model.layer_groups()
    assert len(groups) == 3 + 2
    assert groups[0] == [model.encoder.token_embedding.weight, model.encoder.position_embedding.weight]
    assert groups[1] == list(model.encoder.transformer.layers[0].parameters())
    assert groups[-1] == [*model.encoder.transformer.norm.parameters(), *model.head.parameters()]
    ids = [id(p) for group in groups for p in group]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    sinusoidal = tiny_transformer(positional="sinusoidal")
    assert sinusoidal.layer_groups()[0] == [sinusoidal.encoder.token_embedding.weight]
    assert not any("position" in key for key in sinusoidal.state_dict())  # derived from the config, not saved
    torch.testing.assert_close(sinusoidal.encoder.position_table, sinusoidal_positions(12, 16))


def test_sinusoidal_positions() -> None:
    table = sinusoidal_positions(50, 7)  # odd width works
    assert table.shape == (50, 7)
    torch.testing.assert_close(table[0], torch.tensor([0.0, 1.0] * 3 + [0.0]))
    torch.testing.assert_close(table[:, 0], torch.sin(torch.arange(50.0)))
    torch.testing.assert_close(table[:, 3], torch.cos(torch.arange(50.0) * 10000 ** (-2 / 7)))


def test_transformer_config_errors() -> None:
    for bad, message in [
        ({"d_model": 15}, "divisible by n_heads"),
        ({"overlap": 12}, r"overlap must be in 0\.\.11"),
        ({"pooling": "cls", "overlap": 11}, r"overlap must be in 0\.\.10"),
        ({"pooling": "max"}, "pooling"),
        ({"positional": "rotary"}, "positional"),
        ({"max_tokens": 1, "pooling": "cls"}, "max_tokens must be >= 2"),
        ({"dropout": -0.1}, "dropout"),
        ({"layers": 0}, "layers"),
    ]:
        with pytest.raises(ConfigError, match=message):
            tiny_transformer_config(**bad)


def test_masked_lm_tied_decoder_and_shapes() -> None:
    torch.manual_seed(0)
    lm = TransformerMaskedLM(tiny_transformer_config()).eval()
    tokens = random_tokens(3, 12)
    with torch.no_grad():
        logits = lm(tokens)
        expected = lm.hidden(tokens) @ lm.encoder.token_embedding.weight.T + lm.decoder_bias
        padded = lm(tokens, torch.tensor([12, 5, 1]))
        alone = lm(tokens[1:2, :5])
    assert logits.shape == (3, 12, VOCAB)
    torch.testing.assert_close(logits, expected)
    torch.testing.assert_close(padded[1, :5], alone[0], atol=1e-5, rtol=0)
    assert not any("decoder.weight" in name for name, _ in lm.named_parameters())
    with pytest.raises(ValueError, match="max_tokens"):
        lm(random_tokens(1, 13))


def test_transformer_loads_masked_lm_encoder() -> None:
    torch.manual_seed(0)
    lm = TransformerMaskedLM(tiny_transformer_config(pooling="cls"))
    model = TransformerClassifier(tiny_transformer_config())
    model.load_encoder_state(lm.encoder.state_dict())
    for key, value in lm.encoder.state_dict().items():
        assert torch.equal(model.encoder.state_dict()[key], value)
    other = TransformerClassifier(tiny_transformer_config())
    other.load_encoder_state(lm.state_dict())  # whole MLM state: prefix stripped, MLM head ignored
    assert torch.equal(other.encoder.token_embedding.weight, lm.encoder.token_embedding.weight)
    with pytest.raises(CheckpointError, match=r"token_embedding\.weight"):
        model.load_encoder_state(TransformerMaskedLM(tiny_transformer_config(vocab_size=4 + 4**3)).state_dict())
    with pytest.raises(CheckpointError, match=r"missing \['position_embedding\.weight'\]"):
        model.load_encoder_state(TransformerMaskedLM(tiny_transformer_config(positional="sinusoidal")).state_dict())
    with pytest.raises(CheckpointError, match=r"transformer\.layers\.2"):
        model.load_encoder_state(TransformerMaskedLM(tiny_transformer_config(layers=3)).state_dict())


def test_transformer_learns_gc_content() -> None:
    torch.manual_seed(0)
    model = TransformerClassifier(tiny_transformer_config(layers=1, max_tokens=40, dropout=0.0))
    cfg = TrainConfig(epochs=6, batch_size=32, lr=1e-2, patience=6, seed=1, lr_decay_per_group=1.0)
    assert accuracy_after_training(model, cfg) > 0.9  # 29..80 tokens: every batch has chunked sequences


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_transformer_on_cuda_matches_cpu() -> None:
    model = tiny_transformer(overlap=3)
    tokens, lengths = padded_batch(*(random_tokens(1, n, seed=n)[0] for n in (5, 12, 47)))
    with torch.no_grad():
        cpu = model(tokens, lengths)
        model.cuda()
        gpu = model(tokens.cuda(), lengths.cuda()).cpu()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            assert torch.isfinite(model(tokens.cuda(), lengths.cuda())).all()
    torch.testing.assert_close(gpu, cpu, atol=1e-4, rtol=0)


# -------------------------------------------------------------------------------------- builders, checkpoints


def test_builders_for_new_architectures() -> None:
    assert {"kmer_mlp", "transformer"} <= set(MODEL_REGISTRY)
    mlp = build_classifier("kmer_mlp", {"hidden": [8], "transform": "log"}, VOCAB, 81)
    assert isinstance(mlp, KmerMLPClassifier) and mlp.config.hidden == (8,)
    params = {"d_model": 8, "n_heads": 2, "layers": 1, "ff_dim": 16, "max_tokens": 32}
    model = build_classifier("transformer", params, VOCAB, 81)
    assert isinstance(model, TransformerClassifier) and model.config.max_tokens == 32
    lm = build_masked_lm({**params, "pooling": "cls", "overlap": 4}, VOCAB)  # classifier keys are accepted
    assert isinstance(lm, TransformerMaskedLM)
    model.load_encoder_state(lm.encoder.state_dict())
    with pytest.raises(ConfigError, match="'hiden' for model 'kmer_mlp'"):
        build_classifier("kmer_mlp", {"hiden": [8]}, VOCAB, 81)
    with pytest.raises(ConfigError, match="'heads' for model 'transformer'"):
        build_classifier("transformer", {"heads": 2}, VOCAB, 81)
    with pytest.raises(ConfigError, match="'heads' for model 'transformer'"):
        build_masked_lm({"heads": 2}, VOCAB)
    for arch in ("kmer_mlp", "transformer", "cnn", "awd_lstm"):
        with pytest.raises(ConfigError, match=f"'vocab_size' for model '{arch}' is derived from the tokenizer"):
            build_classifier(arch, {"vocab_size": VOCAB}, VOCAB, 81)
    with pytest.raises(ConfigError, match=r"'vocab_size'.*derived"):
        build_masked_lm({"vocab_size": VOCAB}, VOCAB)


ROUND_TRIPS = {
    "kmer_mlp": {"hidden": [8, 4], "norm": "batch", "transform": "log"},
    "transformer": {"d_model": 8, "n_heads": 2, "layers": 2, "ff_dim": 16, "max_tokens": 16, "overlap": 2},
}


@pytest.mark.parametrize("arch", sorted(ROUND_TRIPS))
def test_classifier_checkpoint_round_trip(tmp_path: Path, arch: str) -> None:
    torch.manual_seed(0)
    model = trained_like(build_classifier(arch, ROUND_TRIPS[arch], VOCAB, 81))
    path = tmp_path / "model.safetensors"
    save_checkpoint(model, path, {"arch": arch, "params": ROUND_TRIPS[arch], "vocab": VOCAB_DICT})
    loaded, meta = load_checkpoint(path)
    assert type(loaded) is type(model) and not loaded.training
    assert meta["arch"] == arch and "window_tokens" not in meta  # neither model has a fixed window
    tokens, lengths = padded_batch(*(random_tokens(1, n, seed=n)[0] for n in (40, 3, 17)))
    with torch.no_grad():
        assert torch.equal(model(tokens, lengths), loaded(tokens, lengths))


@pytest.mark.parametrize("positional", ["learned", "sinusoidal"])
def test_masked_lm_checkpoint_round_trip(tmp_path: Path, positional: str) -> None:
    params = {"d_model": 8, "n_heads": 2, "layers": 2, "ff_dim": 16, "max_tokens": 16, "positional": positional}
    torch.manual_seed(0)
    lm = trained_like(build_masked_lm(params, VOCAB))
    path = tmp_path / "mlm.safetensors"
    save_checkpoint(lm, path, {"arch": MASKED_LM_ARCH, "params": params, "vocab": VOCAB_DICT})
    loaded, meta = load_checkpoint(path)
    assert isinstance(loaded, TransformerMaskedLM) and meta["arch"] == "transformer_mlm"
    tokens = random_tokens(2, 16)
    with torch.no_grad():
        assert torch.equal(lm(tokens), loaded(tokens))
    with safetensors.safe_open(str(path), framework="pt") as handle:
        keys = list(handle.keys())
    assert "encoder.token_embedding.weight" in keys and "decoder_bias" in keys  # the tied decoder is stored once
    assert ("encoder.position_embedding.weight" in keys) == (positional == "learned")
    # A classifier built from the same block takes the checkpoint's encoder.
    classifier = build_classifier("transformer", params, VOCAB, 81)
    classifier.load_encoder_state(loaded.encoder.state_dict())


def test_masked_lm_checkpoint_errors(tmp_path: Path) -> None:
    params = {"d_model": 8, "n_heads": 2, "layers": 1, "ff_dim": 16, "max_tokens": 16}
    lm = build_masked_lm(params, VOCAB)
    path = tmp_path / "mlm.safetensors"
    with pytest.raises(CheckpointError, match="model is a TransformerMaskedLM"):
        save_checkpoint(lm, path, {"arch": "awd_lstm_lm", "params": params, "vocab": VOCAB_DICT})
    with pytest.raises(CheckpointError, match="do not describe this model"):
        save_checkpoint(lm, path, {"arch": MASKED_LM_ARCH, "params": {**params, "layers": 2}, "vocab": VOCAB_DICT})
    save_checkpoint(lm, path, {"arch": MASKED_LM_ARCH, "params": params, "vocab": VOCAB_DICT})
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    side.write_text(json.dumps({**meta, "params": {**params, "max_tokens": 32}}))
    with pytest.raises(CheckpointError, match=r"position_embedding\.weight"):
        load_checkpoint(path)
    side.write_text(json.dumps({**meta, "arch": "bert"}))
    with pytest.raises(CheckpointError, match=r"unknown arch 'bert'.*transformer_mlm"):
        load_checkpoint(path)


def test_overfit_one_batch_transformer() -> None:
    torch.manual_seed(0)
    model = TransformerClassifier(tiny_transformer_config(layers=1, max_tokens=16)).train()
    tokens = random_tokens(16, 20, seed=3)
    lengths = torch.tensor([20 - (i % 5) for i in range(16)])
    labels = torch.tensor([0, 1] * 8, dtype=torch.float)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = F.binary_cross_entropy_with_logits(model(tokens, lengths), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]
