from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.errors import ConfigError, InputFormatError
from genolm.kmers import MASK, PAD, UNK, KmerTokenizer
from genolm.models import TransformerClassifier, TransformerConfig, TransformerMaskedLM
from genolm.train import IGNORE_TARGET, TrainConfig
from genolm.train_mlm import _random_windows, mask_span, mask_tokens, pretrain_masked_lm, tiled_windows

TOKENIZER = KmerTokenizer(k=3)
VOCAB = TOKENIZER.vocab_size
HISTORY_COLUMNS = ["epoch", "train_loss", "valid_loss", "valid_accuracy", "lr", "tokens_per_s", "seconds"]


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from intra-op threads, and on a busy machine spinning threads cost ~30x."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_dna(n: int, seed: int) -> str:
    return "".join(np.random.default_rng(seed).choice(list("ACGT"), size=n))


UNIT = random_dna(6, seed=0)


def repetitive_corpus() -> list[np.ndarray]:
    """Two contigs repeating one 6-bp unit: six 3-mers, equally frequent (1.79 nats without context), each
    predictable from its neighbours."""
    return [TOKENIZER.encode(UNIT * 200), TOKENIZER.encode(UNIT * 130)]


def tiny_mlm(**overrides: object) -> TransformerMaskedLM:
    params: dict[str, object] = dict(vocab_size=VOCAB, d_model=32, n_heads=2, layers=1, ff_dim=64, dropout=0.0,
                                     max_tokens=32)  # fmt: skip
    params.update(overrides)
    torch.manual_seed(0)
    return TransformerMaskedLM(TransformerConfig(**params))


def fast_config(**overrides: object) -> TrainConfig:
    params: dict[str, object] = dict(epochs=40, batch_size=16, lr=1e-2, patience=40, seed=3)
    params.update(overrides)
    return TrainConfig(**params)


# ------------------------------------------------------------------------------------------------- masking


def test_mask_span() -> None:
    assert [mask_span(6, 1), mask_span(6, 3), mask_span(6, 4), mask_span(6, 6), mask_span(3, 5)] == [6, 2, 2, 1, 1]
    with pytest.raises(ConfigError, match="stride"):
        mask_span(3, 0)


def test_mask_tokens_rate_split_and_targets() -> None:
    rng = np.random.default_rng(0)
    tokens = rng.integers(4, VOCAB, size=(400, 64))
    tokens[:, 10] = UNK
    lengths = rng.integers(20, 65, size=400)
    tokens[np.arange(64)[None, :] >= lengths[:, None]] = PAD
    inputs, targets = mask_tokens(tokens, lengths, np.random.default_rng(1), vocab_size=VOCAB, mask_p=0.15, span=3)
    target = targets != IGNORE_TARGET
    real = (tokens >= 4) & (np.arange(64)[None, :] < lengths[:, None])
    assert not (target & ~real).any()  # never PAD, UNK or past the length
    assert abs(target.sum() / real.sum() - 0.15) < 0.02
    assert target.any(axis=1).all()
    np.testing.assert_array_equal(targets[target], tokens[target])
    np.testing.assert_array_equal(inputs[~target], tokens[~target])
    as_mask = (inputs == MASK)[target].mean()
    changed = ((inputs != tokens) & (inputs != MASK))[target].mean()  # random k-mers (a few equal the original)
    assert abs(as_mask - 0.8) < 0.05 and 0.05 < changed < 0.12
    assert (inputs[target & (inputs != MASK)] >= 4).all()
    # Same generator state, same masks.
    again = mask_tokens(tokens, lengths, np.random.default_rng(1), vocab_size=VOCAB, mask_p=0.15, span=3)
    np.testing.assert_array_equal(again[0], inputs)
    np.testing.assert_array_equal(again[1], targets)


def test_mask_tokens_decides_per_span() -> None:
    rng = np.random.default_rng(2)
    tokens = rng.integers(4, VOCAB, size=(300, 40))
    lengths = np.full(300, 40)
    inputs, targets = mask_tokens(tokens, lengths, np.random.default_rng(3), vocab_size=VOCAB, mask_p=0.15, span=4)
    target = targets != IGNORE_TARGET
    for row in range(300):
        runs = np.split(np.flatnonzero(target[row]), np.flatnonzero(np.diff(np.flatnonzero(target[row])) > 1) + 1)
        for run in runs:
            if run[0] > 0 and run[-1] < 39:  # spans cut by the window edge may be shorter
                assert len(run) >= 4
            is_mask = inputs[row, run] == MASK
            assert is_mask.all() or not is_mask.any()  # one 80/10/10 decision per run


@pytest.mark.parametrize(("k", "stride"), [(3, 1), (6, 1), (6, 4), (4, 4)])
def test_span_masking_leaves_no_masked_kmer_readable_from_its_neighbours(k: int, stride: int) -> None:
    """Every target k-mer contains a base that no non-target token covers."""
    tokenizer = KmerTokenizer(k=k, stride=stride, include_tail=False)
    seqs = [random_dna(200, seed=s) for s in range(20)]
    tokens, lengths = tokenizer.encode_batch(seqs)
    _, targets = mask_tokens(
        tokens, lengths, np.random.default_rng(0), vocab_size=tokenizer.vocab_size, span=mask_span(k, stride)
    )
    for row in range(len(seqs)):
        n = int(lengths[row])
        starts = tokenizer.token_starts(200)[:n]
        seen = np.zeros(200, bool)
        for s in starts[targets[row, :n] == IGNORE_TARGET]:
            seen[s : s + k] = True
        for s in starts[targets[row, :n] != IGNORE_TARGET]:
            assert not seen[s : s + k].all()


# ------------------------------------------------------------------------------------------------- windows


def test_random_windows_stay_inside_contigs() -> None:
    streams = [np.arange(100, 150), np.arange(200, 230), np.arange(300, 305)]
    flat = np.concatenate(streams)
    tokens, lengths = _random_windows(flat, np.array([50, 30, 5]), 2000, 16, np.random.default_rng(0))
    assert tokens.shape == (2000, 16)
    seen_starts = set()
    for row, n in zip(tokens, lengths, strict=True):
        window = row[:n]
        assert (row[n:] == PAD).all()
        contig = window[0] // 100 - 1
        if contig == 2:
            assert n == 5  # the short contig is one whole window
        else:
            assert n == 16 and window[-1] // 100 == window[0] // 100
        np.testing.assert_array_equal(np.diff(window), 1)  # consecutive tokens of one contig
        seen_starts.add(int(window[0]))
    # Every start that keeps the window inside its contig is drawn (35 + 15 + 1 of them), no other.
    assert seen_starts == {*range(100, 135), *range(200, 215), 300}


def test_tiled_windows_cover_each_stream_once() -> None:
    streams = [np.arange(100, 135), np.arange(200, 203)]
    tokens, lengths = tiled_windows(streams, 16)
    assert lengths.tolist() == [16, 16, 3, 3]
    covered = np.concatenate([row[:n] for row, n in zip(tokens, lengths, strict=True)])
    np.testing.assert_array_equal(covered, np.concatenate(streams))


# ------------------------------------------------------------------------------------------------ training


def test_pretraining_lowers_the_loss_and_writes_history(tmp_path: Path) -> None:
    lm = tiny_mlm()
    rows: list[dict[str, float]] = []
    history_path = tmp_path / "history.tsv"
    result = pretrain_masked_lm(
        lm, repetitive_corpus(), fast_config(), context=32, k=3, stride=1, history_path=history_path,
        on_epoch=rows.append,
    )  # fmt: skip
    history = result.history
    assert list(history.columns) == HISTORY_COLUMNS and len(rows) == len(history) == 40
    pd.testing.assert_frame_equal(
        pd.read_csv(history_path, sep="\t"), history, check_exact=False, rtol=1e-5, check_dtype=False
    )
    assert len(set(TOKENIZER.encode(UNIT * 3))) == 6
    # Below the 1.79 nats of guessing among the unit's six k-mers: the model reads the context.
    assert history["valid_loss"].iloc[-1] < 0.5 and history["valid_accuracy"].iloc[-1] > 0.9
    assert history["train_loss"].iloc[-1] < 0.2 * history["train_loss"].iloc[0]
    assert result.best_valid_loss == history["valid_loss"].min()
    assert result.best_epoch == int(history.loc[history["valid_loss"].idxmin(), "epoch"])
    for key, value in lm.state_dict().items():
        assert torch.equal(value, result.state_dict[key])  # the model ends with the best weights


def test_pretraining_is_deterministic_on_cpu() -> None:
    runs = []
    for _ in range(2):
        lm = tiny_mlm(dropout=0.1)
        result = pretrain_masked_lm(lm, repetitive_corpus(), fast_config(epochs=3), context=24, k=3, stride=1)
        runs.append(result)
    timing = ["tokens_per_s", "seconds"]
    pd.testing.assert_frame_equal(runs[0].history.drop(columns=timing), runs[1].history.drop(columns=timing))
    for key, value in runs[0].state_dict.items():
        assert torch.equal(value, runs[1].state_dict[key])
    other = pretrain_masked_lm(
        tiny_mlm(dropout=0.1), repetitive_corpus(), fast_config(epochs=3, seed=4), context=24, k=3, stride=1
    )
    assert not other.history["train_loss"].equals(runs[0].history["train_loss"])


def test_interrupted_pretraining_resumes_to_the_same_result(tmp_path: Path) -> None:
    """Windows and masks come from a generator: the resumed epochs must draw exactly what they would have."""

    def run(**kwargs: object):
        return pretrain_masked_lm(
            tiny_mlm(dropout=0.1), repetitive_corpus(), fast_config(epochs=4), context=24, k=3, stride=1, **kwargs
        )

    reference = run()

    def interrupt(row: dict[str, float]) -> None:
        if row["epoch"] == 2:
            raise KeyboardInterrupt("killed after epoch 2")

    with pytest.raises(KeyboardInterrupt):
        run(resume_path=tmp_path / "state", on_epoch=interrupt)
    seen: list[int] = []
    resumed = run(resume_path=tmp_path / "state", on_epoch=lambda row: seen.append(int(row["epoch"])))
    assert seen == [3, 4]  # epochs 1-2 came from the saved state
    timing = ["tokens_per_s", "seconds"]
    pd.testing.assert_frame_equal(resumed.history.drop(columns=timing), reference.history.drop(columns=timing))
    for key, value in reference.state_dict.items():
        assert torch.equal(value, resumed.state_dict[key])


def test_pretrained_encoder_loads_into_classifier() -> None:
    lm = tiny_mlm()
    pretrain_masked_lm(lm, repetitive_corpus(), fast_config(epochs=2), context=32, k=3, stride=1)
    config = TransformerConfig(**{**vars(lm.config), "pooling": "cls", "overlap": 4})
    classifier = TransformerClassifier(config).eval()
    classifier.load_encoder_state(lm.state_dict())
    tokens = torch.from_numpy(repetitive_corpus()[0][:20])[None]
    lm.eval()
    with torch.no_grad():
        mask = torch.ones_like(tokens, dtype=torch.bool)
        torch.testing.assert_close(classifier.encoder(tokens, mask), lm.encoder(tokens, mask))
        long = torch.from_numpy(repetitive_corpus()[0])[None]  # 1198 tokens: 45 chunks of CLS + 31 tokens
        assert torch.isfinite(classifier(long, torch.tensor([long.shape[1]]))).all()


def test_pretraining_errors() -> None:
    corpus = repetitive_corpus()
    with pytest.raises(ConfigError, match=r"context must be in 4\.\.32"):
        pretrain_masked_lm(tiny_mlm(), corpus, fast_config(), context=33, k=3, stride=1)
    with pytest.raises(ConfigError, match=r"context must be in 7\.\.32"):
        pretrain_masked_lm(tiny_mlm(), corpus, fast_config(), context=6, k=6, stride=1)
    with pytest.raises(ConfigError, match="mask_p"):
        pretrain_masked_lm(tiny_mlm(), corpus, fast_config(), context=32, k=3, stride=1, mask_p=0.0)
    with pytest.raises(InputFormatError, match="stream 1 has token ids outside the vocabulary"):
        pretrain_masked_lm(tiny_mlm(), [corpus[0], corpus[1] + VOCAB], fast_config(), context=32, k=3, stride=1)
    with pytest.raises(ConfigError, match="no k-mer token to mask"):
        pretrain_masked_lm(tiny_mlm(), corpus, fast_config(), context=32, k=3, stride=1, valid=[np.full(40, UNK)])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_pretraining_on_cuda() -> None:
    lm = tiny_mlm()
    result = pretrain_masked_lm(
        lm, repetitive_corpus(), fast_config(epochs=3, device="cuda"), context=32, k=3, stride=1
    )
    assert np.isfinite(result.history["valid_loss"]).all()
    assert next(lm.parameters()).device.type == "cuda"
