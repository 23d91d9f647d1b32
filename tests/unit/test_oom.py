"""Out-of-memory back-off: batches are halved and retried, with results equal to a run that never ran out."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from genolm.datasets import TokenSet
from genolm.errors import ResourceError
from genolm.oom import with_oom_backoff
from genolm.scan import model_scorer, scan_sequence
from genolm.train import predict_proba


class SmallMemoryModel(nn.Module):
    """Logit = mean token id of the real tokens - 5; runs out of "memory" on batches above `limit` rows."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.limit = limit
        self.batch_sizes: list[int] = []

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        self.batch_sizes.append(tokens.shape[0])
        if tokens.shape[0] > self.limit:
            raise torch.OutOfMemoryError(f"CUDA out of memory. Tried to allocate {tokens.shape[0]} rows")
        mask = torch.arange(tokens.shape[1])[None, :] < lengths[:, None]
        return self.scale * ((tokens * mask).sum(1) / lengths.clamp(min=1) - 5.0)


def test_backoff_halves_retries_and_keeps_the_smaller_size(caplog: pytest.LogCaptureFixture) -> None:
    done: list[list[int]] = []

    def run(idx: np.ndarray) -> None:
        if len(idx) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory")
        done.append(idx.tolist())

    with caplog.at_level(logging.WARNING, logger="genolm.oom"):
        size = with_oom_backoff(run, np.arange(10)[::-1], 16, what="test batches")
    assert size == 2
    assert done == [[9, 8], [7, 6], [5, 4], [3, 2], [1, 0]]  # each item once, in order
    assert "test batches: out of memory with a batch of 10; retrying with batches of 5" in caplog.text
    assert "batch of 5; retrying with batches of 2" in caplog.text


def test_backoff_gives_up_at_a_batch_of_one() -> None:
    def run(idx: np.ndarray) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    with pytest.raises(ResourceError, match=r"scoring: out of memory even with a batch of 1 \(CUDA out of memory"):
        with_oom_backoff(run, np.arange(4), 4, what="scoring")
    other = RuntimeError("not a memory problem")

    def fails(idx: np.ndarray) -> None:
        raise other

    with pytest.raises(RuntimeError, match="not a memory problem"):
        with_oom_backoff(fails, np.arange(4), 4, what="scoring")


def test_predict_proba_after_out_of_memory_equals_a_run_without() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 12, size=23)
    tokens = np.where(np.arange(12)[None, :] < lengths[:, None], rng.integers(4, 10, size=(23, 12)), 0)
    ts = TokenSet(tokens, lengths, np.zeros(23, dtype=np.int64), [str(i) for i in range(23)])
    roomy, tight = SmallMemoryModel(limit=1000), SmallMemoryModel(limit=3)
    expected = predict_proba(roomy, ts, batch_size=8)
    got = predict_proba(tight, ts, batch_size=8)
    assert np.array_equal(got, expected)
    assert max(tight.batch_sizes) == 8 and tight.batch_sizes[1:4] == [4, 2, 2]


def test_model_scorer_after_out_of_memory_equals_a_run_without() -> None:
    class Tokenizer:
        def encode_batch(self, seqs: list[str]) -> tuple[np.ndarray, np.ndarray]:
            tokens = np.array([[4 + "ACGT".index(b) for b in s] for s in seqs], dtype=np.int64)
            return tokens, np.full(len(seqs), tokens.shape[1])

    sequence = "".join(np.random.default_rng(1).choice(list("ACGT"), size=200))
    roomy, tight = SmallMemoryModel(limit=1000), SmallMemoryModel(limit=5)
    expected = scan_sequence(sequence, model_scorer(roomy, Tokenizer(), "cpu", batch_size=16), 20, 7, 16)
    got = scan_sequence(sequence, model_scorer(tight, Tokenizer(), "cpu", batch_size=16), 20, 7, 16)
    for a, b in zip(expected, got, strict=True):
        assert np.array_equal(a, b)
    # The scorer remembers the size that fits: after the first back-off, no batch is too large again.
    assert tight.batch_sizes[:3] == [16, 8, 4] and max(tight.batch_sizes[3:]) <= 4


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_backoff_on_a_real_cuda_out_of_memory() -> None:
    free, _ = torch.cuda.mem_get_info()
    per_item = free // 3  # a batch of 4 or 8 cannot fit, a batch of 2 can
    done: list[int] = []

    def run(idx: np.ndarray) -> None:
        block = torch.empty(len(idx) * per_item, dtype=torch.uint8, device="cuda")
        done.extend(idx.tolist())
        del block

    assert with_oom_backoff(run, np.arange(8), 8, what="cuda test") == 2
    assert done == list(range(8))
    torch.cuda.empty_cache()
