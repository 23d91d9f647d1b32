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


def write_task_table(path, token_set, groups):
    pd.DataFrame(
        {
            "id": token_set.ids,
            "label": token_set.labels,
            "split": "test",
            "contig": "chrom",
            "start": np.arange(len(token_set)) * 100,
            "end": np.arange(len(token_set)) * 100 + 40,
            "strand": "+",
            "sequence": ["ACGT" * 10] * len(token_set),
            **({"group": groups} if groups is not None else {}),
        }
    ).to_csv(path, sep="\t", index=False)


def test_export_writes_a_table_and_a_projection_with_groups(tmp_path):
    from genolm.embeddings import read_embedding_table

    model = model_for("kmer_mlp")
    checkpoint = tmp_path / "model.safetensors"
    save_checkpoint(model, checkpoint, {"arch": "kmer_mlp", "params": PARAMS["kmer_mlp"], "vocab": TOKENIZER.to_dict()})
    token_set = random_set(12)
    save_token_set(token_set, tmp_path / "test.npz", TOKENIZER)
    groups = [f"IS{i % 3}" if label else "neg" for i, label in enumerate(token_set.labels)]
    write_task_table(tmp_path / "test.tsv", token_set, groups)
    projection = export_embeddings(
        checkpoint,
        tmp_path / "test.npz",
        tmp_path / "emb.npz",
        tmp_path / "proj.tsv",
        seed=1,
        device="cpu",
        task_table=tmp_path / "test.tsv",
        table_path=tmp_path / "emb.tsv.gz",
    )
    assert list(projection.columns) == ["id", "label", "group", "x", "y"]
    written = pd.read_csv(tmp_path / "proj.tsv", sep="\t")
    assert dict(zip(written["id"], written["group"], strict=True)) == dict(zip(token_set.ids, groups, strict=True))
    table = read_embedding_table(tmp_path / "emb.tsv.gz")
    assert list(table.columns) == ["id", "label", "group", *[f"dim_{i}" for i in range(5)]]
    assert table["id"].tolist() == token_set.ids and table["group"].tolist() == groups
    assert table["label"].tolist() == token_set.labels.tolist()
    np.testing.assert_allclose(table.iloc[:, 3:].to_numpy(), np.load(tmp_path / "emb.npz")["embeddings"], rtol=1e-5)
    first = (tmp_path / "emb.tsv.gz").read_bytes()
    export_embeddings(
        checkpoint, tmp_path / "test.npz", tmp_path / "e2.npz", tmp_path / "p2.tsv", seed=1, device="cpu",
        task_table=tmp_path / "test.tsv", table_path=tmp_path / "emb.tsv.gz",
    )  # fmt: skip
    assert (tmp_path / "emb.tsv.gz").read_bytes() == first  # gzip without a timestamp: reruns are identical


def test_groups_come_from_the_annotation_when_the_table_has_none(tmp_path):
    from genolm.embeddings import read_labels_and_groups

    token_set = random_set(4)
    token_set.labels[:] = [1, 1, 0, 1]
    write_task_table(tmp_path / "t.tsv", token_set, None)
    (tmp_path / "truth.gff3").write_text(
        "##gff-version 3\n"
        "chrom\tdemo\tinsertion_sequence\t1\t150\t.\t+\t.\tID=a;family=ISa\n"  # holds rows 0 (0-40), 1 (100-140)
        "chrom\tdemo\tinsertion_sequence\t201\t260\t.\t+\t.\tID=b;family=ISb\n"  # holds row 2 (a negative)
        "chrom\tdemo\tpromoter\t301\t400\t.\t+\t.\tID=p\n"  # row 3 lies in no IS element
    )
    groups = read_labels_and_groups(tmp_path / "t.tsv", tmp_path / "truth.gff3")["group"].tolist()
    assert groups == ["ISa", "ISa", "", ""]
    assert read_labels_and_groups(tmp_path / "t.tsv")["group"].tolist() == ["", "", "", ""]


def test_groups_of_reverse_complement_copies_and_unknown_ids(tmp_path):
    from genolm.embeddings import groups_for

    known = pd.DataFrame({"label": [1, 0], "group": ["IS1", ""]}, index=["a", "b"])
    assert groups_for(["a", "a/rc", "b"], known, "t.tsv").tolist() == ["IS1", "IS1", ""]
    with pytest.raises(InputFormatError, match="no record 'c'"):
        groups_for(["a", "c"], known, "t.tsv")


@pytest.mark.parametrize("arch", ["awd_lstm_lm", "transformer_mlm"])
def test_language_model_embedding_is_the_mean_of_its_encoder_states(arch):
    from genolm.embeddings import embedding_model
    from genolm.models import build_language_model, build_masked_lm

    torch.manual_seed(0)
    if arch == "awd_lstm_lm":
        lm = build_language_model({"emb_dim": 6, "hidden": 8, "layers": 2}, TOKENIZER.vocab_size).eval()
    else:
        lm = build_masked_lm(PARAMS["transformer"], TOKENIZER.vocab_size).eval()  # max_tokens 12: chunks
    token_set = random_set(5, seed=3)
    embeddings = embed_sequences(embedding_model(lm), token_set, batch_size=2)
    assert embeddings.shape == (5, 6 if arch == "awd_lstm_lm" else 8)
    for i in range(5):
        n = int(token_set.lengths[i])
        tokens = torch.as_tensor(token_set.tokens[i : i + 1, :n])
        with torch.no_grad():
            if arch == "awd_lstm_lm":
                states = lm.encoder(tokens)[0][-1][0]
            else:
                states = torch.cat(
                    [lm.encoder(tokens[:, s : s + 12], torch.ones_like(tokens[:, s : s + 12], dtype=torch.bool))[0]
                     for s in range(0, n, 12)]
                )  # fmt: skip
        np.testing.assert_allclose(embeddings[i], states.mean(dim=0).numpy(), rtol=1e-4, atol=1e-5)
