"""Classifier embeddings: each model's `embed` is what its output layer reads; t-SNE projections are reproducible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.checkpoint import save_checkpoint
from genolm.datasets import save_token_set, tokenize_sequences
from genolm.embeddings import export_embeddings, project_2d, sample_rows, standardize
from genolm.errors import InputFormatError
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier
from genolm.train import embed_sequences

TOKENIZER = KmerTokenizer(k=2, stride=1)
PARAMS = {
    "cnn": {"embed_dim": 4, "channels": [6], "kernel_sizes": [5], "dilations": [1], "head_hidden": 5},
    "awd_lstm": {"emb_dim": 6, "hidden": 8, "layers": 2},
    "kmer_mlp": {"hidden": [8, 5]},
    "transformer": {"d_model": 8, "n_heads": 2, "layers": 1, "ff_dim": 16, "max_tokens": 12, "overlap": 2},
}
WIDTH = {"cnn": 6, "awd_lstm": 18, "kmer_mlp": 5, "transformer": 8}


def random_set(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(12, 40, n)
    sequences = ["".join(rng.choice(list("ACGT"), size=int(length))) for length in lengths]
    return tokenize_sequences([f"s{i}" for i in range(n)], sequences, rng.integers(0, 2, n), TOKENIZER)


def model_for(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_classifier(arch, PARAMS[arch], TOKENIZER.vocab_size, window_tokens=10).eval()


@pytest.mark.parametrize("arch", sorted(PARAMS))
def test_embed_is_what_the_output_layer_reads(arch):
    model = model_for(arch)
    token_set = random_set(9)
    embeddings = embed_sequences(model, token_set, batch_size=4)
    assert embeddings.shape == (9, WIDTH[arch])
    assert np.isfinite(embeddings).all()
    if arch != "cnn":  # the CNN's head reads per-window features; its embedding is their max over windows
        head = model.head
        with torch.no_grad():
            from_embedding = head(torch.as_tensor(embeddings, dtype=torch.float32)).squeeze(1).numpy()
        one_batch = embed_sequences(model, token_set, batch_size=9)  # same order and values whatever the batch size
        np.testing.assert_allclose(one_batch, embeddings, rtol=1e-6, atol=1e-6)
        from genolm.train import predict_proba

        probabilities = predict_proba(model, token_set)
        np.testing.assert_allclose(1 / (1 + np.exp(-from_embedding)), probabilities, rtol=1e-5, atol=1e-6)


def test_cnn_embedding_ignores_padding():
    model = model_for("cnn")
    token_set = random_set(3, seed=4)
    alone = [embed_sequences(model, token_set.subset(np.array([i]))) for i in range(3)]
    together = embed_sequences(model, token_set)
    np.testing.assert_allclose(np.concatenate(alone), together, rtol=1e-6, atol=1e-6)


def test_projection_is_seeded_and_separates_clear_clusters():
    rng = np.random.default_rng(1)
    points = np.concatenate([rng.normal(0, 1, (40, 6)), rng.normal(8, 1, (40, 6))])
    first, again = project_2d(points, seed=3), project_2d(points, seed=3)
    np.testing.assert_array_equal(first, again)
    assert first.shape == (80, 2)
    centre_a, centre_b = first[:40].mean(axis=0), first[40:].mean(axis=0)
    spread = max(first[:40].std(axis=0).max(), first[40:].std(axis=0).max())
    assert np.linalg.norm(centre_a - centre_b) > 2 * spread


def test_projection_needs_four_points_and_standardize_handles_constant_columns():
    with pytest.raises(InputFormatError, match="at least 4"):
        project_2d(np.zeros((3, 2)), seed=0)
    scaled = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_allclose(scaled, [[-1.0, 0.0], [1.0, 0.0]])


def test_sample_rows_is_seeded_sorted_and_bounded():
    rows = sample_rows(100, 10, seed=2)
    assert len(rows) == 10 and len(set(rows)) == 10 and (np.diff(rows) > 0).all()
    np.testing.assert_array_equal(rows, sample_rows(100, 10, seed=2))
    np.testing.assert_array_equal(sample_rows(5, 10, seed=2), np.arange(5))


def test_export_writes_every_embedding_and_a_bounded_projection(tmp_path):
    model = model_for("kmer_mlp")
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(model, checkpoint, {"arch": "kmer_mlp", "params": PARAMS["kmer_mlp"], "vocab": TOKENIZER.to_dict()})
    tokens = tmp_path / "test.npz"
    token_set = random_set(30)
    save_token_set(token_set, tokens, TOKENIZER)
    table = export_embeddings(
        checkpoint, tokens, tmp_path / "emb.npz", tmp_path / "proj.tsv", seed=1, max_points=20, device="cpu"
    )
    stored = np.load(tmp_path / "emb.npz")
    assert stored["embeddings"].shape == (30, 5)
    assert list(stored["ids"]) == token_set.ids
    written = pd.read_csv(tmp_path / "proj.tsv", sep="\t")
    assert list(written.columns) == ["id", "label", "x", "y"] and len(written) == 20
    assert set(written["id"]) <= set(token_set.ids)
    pd.testing.assert_frame_equal(written, table.round(5), atol=1e-4, check_dtype=False)


def test_export_refuses_tokens_made_with_another_tokenizer(tmp_path):
    model = model_for("kmer_mlp")
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(model, checkpoint, {"arch": "kmer_mlp", "params": PARAMS["kmer_mlp"], "vocab": TOKENIZER.to_dict()})
    other = KmerTokenizer(k=3, stride=1)
    tokens = tmp_path / "test.npz"
    save_token_set(tokenize_sequences(["a", "b"], ["ACGTACGTAC", "GGGCCCAATT"], [0, 1], other), tokens, other)
    with pytest.raises(InputFormatError, match="tokenized with"):
        export_embeddings(checkpoint, tokens, tmp_path / "e.npz", tmp_path / "p.tsv", seed=1, device="cpu")
    assert not (tmp_path / "e.npz").exists()
