"""Sequence embeddings of a trained classifier and their 2-D t-SNE projection (the Nucleotide Transformer figure).

An embedding is what the classifier's output layer reads (each model's `embed`), so a projection that separates
the classes shows what the model has learnt rather than what the input looks like. t-SNE comes from scikit-learn
(a maintained, tested implementation; writing one by hand would be neither).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import InputFormatError

log = logging.getLogger(__name__)

PROJECTION_COLUMNS = ("id", "label", "x", "y")


def standardize(embeddings: np.ndarray) -> np.ndarray:
    """Each dimension to mean 0 and sd 1 (constant dimensions to 0), so no single unit's scale dominates."""
    centred = embeddings - embeddings.mean(axis=0, keepdims=True)
    scale = centred.std(axis=0, keepdims=True)
    return np.divide(centred, scale, out=np.zeros_like(centred), where=scale > 0)


def project_2d(embeddings: np.ndarray, seed: int, perplexity: float = 30.0) -> np.ndarray:
    """`[N, 2]` t-SNE coordinates of standardized embeddings (PCA initialisation, seeded, so reproducible).

    Perplexity is capped at (N - 1) / 3 so small test sets work; fewer than 4 points cannot be embedded."""
    from sklearn.manifold import TSNE

    n = len(embeddings)
    if n < 4:
        raise InputFormatError(f"t-SNE needs at least 4 sequences, got {n}")
    tsne = TSNE(
        n_components=2,
        perplexity=min(perplexity, (n - 1) / 3),
        init="pca",
        random_state=seed,
        n_jobs=1,  # threads make t-SNE's gradient sums order-dependent; one keeps reruns identical
    )
    return tsne.fit_transform(standardize(np.asarray(embeddings, dtype=np.float64)))


def sample_rows(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Sorted indices of at most `max_rows` of `n` rows, drawn without replacement with `seed`."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_rows, replace=False))


def export_embeddings(
    checkpoint: str | Path,
    tokens: str | Path,
    embeddings_path: str | Path,
    projection_path: str | Path,
    seed: int,
    max_points: int = 1000,
    device: str = "auto",
) -> pd.DataFrame:
    """Embed every sequence of a token set (`embeddings_path`: npz with ids, labels, embeddings) and write the
    t-SNE projection of at most `max_points` of them (`projection_path`: TSV id, label, x, y)."""
    from genolm.checkpoint import load_checkpoint
    from genolm.datasets import load_token_set
    from genolm.train import embed_sequences, select_device

    torch_device = select_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=torch_device)
    token_set, tokenizer = load_token_set(tokens)
    if tokenizer.to_dict() != meta["vocab"]:
        raise InputFormatError(
            f"{tokens}: tokenized with {tokenizer.to_dict()} but {checkpoint} expects {meta['vocab']}"
        )
    embeddings = embed_sequences(model, token_set, device=torch_device)
    log.info("%d sequences embedded in %d dimensions", *embeddings.shape)
    with atomic_path(embeddings_path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle, ids=np.asarray(token_set.ids), labels=np.asarray(token_set.labels), embeddings=embeddings
        )
    rows = sample_rows(len(embeddings), max_points, seed)
    coordinates = project_2d(embeddings[rows], seed)
    table = pd.DataFrame(
        {
            "id": np.asarray(token_set.ids)[rows],
            "label": np.asarray(token_set.labels)[rows],
            "x": coordinates[:, 0],
            "y": coordinates[:, 1],
        }
    )
    with atomic_path(projection_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table
