"""Shared fixtures. Real public data is read in place from ../shared/data (or $GENOLM_SHARED_DATA)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    return Path(os.environ.get("GENOLM_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared real-data folder: skipped when absent, a failure when GENOLM_REQUIRE_SHARED_DATA=1 (CI)."""
    path = shared_data_dir()
    if not (path / "README.md").is_file():
        message = f"shared data not found at {path} (set GENOLM_SHARED_DATA)"
        if os.environ.get("GENOLM_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests use tiny models: with two threads per process, OpenMP spin-waiting on a busy 2-core runner made
    single steps up to 30x slower. Code under test that sets its own thread count still may."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def motif_token_sets():
    """A function writing train/valid/test.npz of a tiny task into a folder (positives start with TATAAT, 30 bp,
    `tokenizer`'s k-mers), for the benchmark scripts' command-line tests."""
    import numpy as np

    from genolm.datasets import TokenSet, save_token_set

    def write(folder: Path, tokenizer) -> None:
        rng = np.random.default_rng(0)
        for split, n in (("train", 40), ("valid", 16), ("test", 16)):
            labels = np.arange(n) % 2
            sequences = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(n)]
            sequences = [("TATAAT" + s[6:]) if label else s for s, label in zip(sequences, labels, strict=True)]
            tokens = [tokenizer.encode(s) for s in sequences]
            matrix = np.zeros((n, max(len(t) for t in tokens)), np.int64)
            for i, row in enumerate(tokens):
                matrix[i, : len(row)] = row
            ids = [f"{split}{i}" for i in range(n)]
            token_set = TokenSet(matrix, np.array([len(t) for t in tokens]), labels, ids, bp_lengths=np.full(n, 30))
            save_token_set(token_set, folder / f"{split}.npz", tokenizer)

    return write
