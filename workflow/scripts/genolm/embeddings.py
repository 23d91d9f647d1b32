"""Sequence embeddings of a trained model, as a table and as a 2-D t-SNE projection (the Nucleotide Transformer
figure).

An embedding is what a classifier's output layer reads (each model's `embed`), so a projection that separates
the classes shows what the model has learnt rather than what the input looks like; a language model's embedding
is its encoder states mean-pooled over the sequence. The table (TSV.gz: id, label, group, dim_0..dim_n) takes ids,
labels and groups from the task table (the IS task's `group` is the IS family of its positives), so a projection
can be coloured by family. t-SNE comes from scikit-learn (a maintained, tested implementation; writing one by
hand would be neither).
"""

from __future__ import annotations

import gzip
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import InputFormatError

log = logging.getLogger(__name__)

PROJECTION_COLUMNS = ("id", "label", "x", "y")
TABLE_COLUMNS = ("id", "label", "group")


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


def mean_pooled_language_model(lm: Any) -> Any:
    """A module whose `embed(tokens, lengths)` is a language model's last encoder states mean-pooled over each
    sequence's real tokens (AWD-LSTM: the top LSTM layer; masked transformer: the encoder body, run over chunks of
    at most `max_tokens`), so LMs fit the classifiers' embedding code."""
    import torch
    from torch import nn

    from genolm.models import AWDLSTMLanguageModel, TransformerMaskedLM

    if not isinstance(lm, AWDLSTMLanguageModel | TransformerMaskedLM):
        raise InputFormatError(f"{type(lm).__name__} is neither a classifier with embed() nor a genolm language model")

    class MeanPooled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lm = lm

        def states(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            if isinstance(self.lm, AWDLSTMLanguageModel):
                raw_outputs, _ = self.lm.encoder(tokens)
                return raw_outputs[-1]
            span = int(self.lm.config.max_tokens)
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            real = positions.unsqueeze(0) < lengths.unsqueeze(1)
            pieces = []
            for first in range(0, tokens.shape[1], span):
                mask = real[:, first : first + span].clone()
                mask[:, 0] = True  # an all-padding chunk would attend to nothing (NaN); its states are masked out
                pieces.append(self.lm.encoder(tokens[:, first : first + span], mask))
            return torch.cat(pieces, dim=1)

        def embed(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
            lengths = lengths.to(tokens.device).clamp(min=1, max=tokens.shape[1])
            states = self.states(tokens, lengths).float()
            positions = torch.arange(tokens.shape[1], device=tokens.device)
            mask = (positions.unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)
            summed = torch.where(mask, states, torch.zeros_like(states)).sum(dim=1)
            return summed / lengths.unsqueeze(1).to(summed.dtype)

    return MeanPooled().eval()


def embedding_model(model: Any) -> Any:
    """The model itself when it has `embed` (classifiers), else its mean-pooled language-model wrapper."""
    return model if hasattr(model, "embed") else mean_pooled_language_model(model)


def annotation_groups(table: pd.DataFrame, annotation: str | Path) -> pd.Series:
    """The `family` of the annotated IS element (GFF3 insertion_sequence) that each positive row lies in, "" for
    the others: groups for task tables without a `group` column (the demo's), from the genome's known elements."""
    from genolm.annotations import TRUTH_TYPES, read_gff3

    features = read_gff3(annotation, types={TRUTH_TYPES["is"]})
    groups = pd.Series("", index=table.index, dtype=object)
    for contig, elements in features.groupby("contig", sort=False):
        family = [str(attrs.get("family", "")) for attrs in elements["attributes"]]
        starts, ends = elements["start"].to_numpy(), elements["end"].to_numpy()
        rows = table.index[(table["contig"] == contig) & (table["label"] == 1)]
        for row in rows:
            inside = np.flatnonzero((starts <= table.at[row, "start"]) & (ends >= table.at[row, "end"]))
            if inside.size:
                groups.at[row] = family[int(inside[0])]
    return groups


def read_labels_and_groups(path: str | Path, annotation: str | Path | None = None) -> pd.DataFrame:
    """id -> label, group of a task table: its `group` column, else (with `annotation`) the IS family of the known
    element a positive lies in (:func:`annotation_groups`), else ""."""
    from genolm.datasets import read_task_table

    table = read_task_table(path)
    if "group" in table.columns:
        groups = table["group"].fillna("").astype(str)
    elif annotation is not None:
        groups = annotation_groups(table, annotation)
    else:
        groups = pd.Series("", index=table.index, dtype=object)
    return pd.DataFrame({"label": table["label"].to_numpy(), "group": groups.to_numpy()}, index=table["id"].to_numpy())


def groups_for(ids: Sequence[str], labels_and_groups: pd.DataFrame, source: str | Path) -> np.ndarray:
    """The group of each id (a reverse-complement copy `x/rc` takes the group of `x`); every id must be known."""
    base = [name.removesuffix("/rc") for name in ids]
    unknown = [name for name in base if name not in labels_and_groups.index]
    if unknown:
        raise InputFormatError(f"{source}: no record '{unknown[0]}' (and {len(unknown) - 1} more) of the tokens")
    return labels_and_groups.loc[base, "group"].to_numpy(dtype=object)


def embedding_table(
    ids: Sequence[str], labels: Sequence[Any], groups: Sequence[Any], embeddings: np.ndarray
) -> pd.DataFrame:
    """id, label, group, dim_0..dim_{D-1}: one row per sequence."""
    embeddings = np.asarray(embeddings)
    table = pd.DataFrame({"id": list(ids), "label": list(labels), "group": list(groups)})
    dims = pd.DataFrame(embeddings, columns=[f"dim_{i}" for i in range(embeddings.shape[1])])
    return pd.concat([table, dims], axis=1)


def write_embedding_table(table: pd.DataFrame, path: str | Path) -> None:
    """TSV (gzip-compressed when the path ends in .gz, with a zero timestamp so reruns are byte-identical)."""
    text = table.to_csv(sep="\t", index=False, float_format="%.6g", lineterminator="\n").encode("utf-8")
    with atomic_path(path) as tmp:
        if str(path).endswith(".gz"):
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as handle:
                handle.write(text)
        else:
            tmp.write_bytes(text)


def read_embedding_table(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"id": str, "group": str}, keep_default_na=False, na_values=[""])
    missing = [column for column in TABLE_COLUMNS if column not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: not an embedding table (no {', '.join(missing)} column)")
    table["group"] = table["group"].fillna("")
    return table


def export_embeddings(
    checkpoint: str | Path,
    tokens: str | Path,
    embeddings_path: str | Path,
    projection_path: str | Path,
    seed: int,
    max_points: int = 1000,
    device: str = "auto",
    task_table: str | Path | None = None,
    table_path: str | Path | None = None,
    annotation: str | Path | None = None,
) -> pd.DataFrame:
    """Embed every sequence of a token set (`embeddings_path`: npz with ids, labels, embeddings) and write the
    t-SNE projection of at most `max_points` of them (`projection_path`: TSV id, label, x, y).

    With the split's `task_table`, the projection also carries each sequence's `group` (IS family of IS
    positives; for tables without groups, from the IS elements of the genome's `annotation`) and `table_path`
    gets every embedding as a table (id, label, group, dim_0..; TSV.gz)."""
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
    groups = None
    if task_table is not None:
        groups = groups_for(token_set.ids, read_labels_and_groups(task_table, annotation), task_table)
    elif table_path is not None:
        groups = np.full(len(token_set), "", dtype=object)
    embeddings = embed_sequences(embedding_model(model), token_set, device=torch_device)
    log.info("%d sequences embedded in %d dimensions", *embeddings.shape)
    with atomic_path(embeddings_path) as tmp, open(tmp, "wb") as handle:
        np.savez_compressed(
            handle, ids=np.asarray(token_set.ids), labels=np.asarray(token_set.labels), embeddings=embeddings
        )
    if table_path is not None:
        write_embedding_table(embedding_table(token_set.ids, token_set.labels, groups, embeddings), table_path)
    rows = sample_rows(len(embeddings), max_points, seed)
    coordinates = project_2d(embeddings[rows], seed)
    columns = {"id": np.asarray(token_set.ids)[rows], "label": np.asarray(token_set.labels)[rows]}
    if task_table is not None:
        columns["group"] = groups[rows]
    table = pd.DataFrame({**columns, "x": coordinates[:, 0], "y": coordinates[:, 1]})
    with atomic_path(projection_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table


def load_any_model(model: str | Path, device: str = "auto") -> tuple[Any, Any, str]:
    """(module with embed, its tokenizer, torch device) of an export folder or any checkpoint (classifier or LM)."""
    from genolm.checkpoint import load_checkpoint
    from genolm.kmers import KmerTokenizer
    from genolm.train import select_device

    path = Path(model)
    torch_device = select_device(device)
    if path.is_dir():
        from genolm.model_export import load_model

        exported = load_model(path, device=str(torch_device))
        return exported.model, exported.tokenizer, torch_device
    loaded, meta = load_checkpoint(path, map_location=torch_device)
    return embedding_model(loaded), KmerTokenizer.from_dict(meta["vocab"]), torch_device


def read_sequences(fasta: str | Path | None = None, table: str | Path | None = None) -> pd.DataFrame:
    """id, label, group, sequence of a FASTA (label and group empty) or of a task table (its own values)."""
    if (fasta is None) == (table is None):
        raise InputFormatError("give either a FASTA or a task table of sequences")
    if fasta is not None:
        from genolm.seqio import read_fasta

        records = [(record.name, record.sequence) for record in read_fasta(fasta)]
        if not records:
            raise InputFormatError(f"{fasta}: no sequences")
        ids, sequences = zip(*records, strict=True)
        return pd.DataFrame({"id": ids, "label": "", "group": "", "sequence": sequences})
    from genolm.datasets import read_task_table

    frame = read_task_table(table)
    groups = frame["group"].fillna("").astype(str) if "group" in frame.columns else ""
    return pd.DataFrame({"id": frame["id"], "label": frame["label"], "group": groups, "sequence": frame["sequence"]})


def embed_file(
    model: str | Path,
    output: str | Path,
    fasta: str | Path | None = None,
    table: str | Path | None = None,
    device: str = "auto",
    batch_size: int = 256,
) -> pd.DataFrame:
    """Embed the sequences of a FASTA or task table with an export folder or checkpoint; write the table."""
    from genolm.datasets import tokenize_sequences
    from genolm.train import embed_sequences

    module, tokenizer, torch_device = load_any_model(model, device)
    records = read_sequences(fasta, table)
    token_set = tokenize_sequences(
        list(records["id"]), list(records["sequence"]), np.zeros(len(records), dtype=np.int64), tokenizer
    )
    embeddings = embed_sequences(module, token_set, batch_size=batch_size, device=torch_device)
    result = embedding_table(records["id"], records["label"], records["group"], embeddings)
    write_embedding_table(result, output)
    return result
