from __future__ import annotations

import gzip
import json

import numpy as np
import pandas as pd
import pytest

from genolm.datasets import (
    TokenSet,
    gc_fraction,
    load_corpus,
    load_token_set,
    read_task_table,
    save_token_set,
    summarize_tables,
    tokenize_genome,
    tokenize_sequences,
    tokenize_task,
)
from genolm.errors import InputFormatError
from genolm.kmers import KmerTokenizer


def task_table(split: str, rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "id": name,
                "label": label,
                "split": split,
                "contig": "c",
                "start": 0,
                "end": len(seq),
                "strand": "+",
                "sequence": seq,
            }
            for name, label, seq in rows
        ]
    )


@pytest.fixture
def tables(tmp_path):
    paths = {}
    for split, rows in {
        "train": [("a", 1, "ACGTAC"), ("b", 0, "TTTTGG")],
        "valid": [("c", 1, "ACGNAC")],
        "test": [("d", 0, "GGGCCC"), ("e", 1, "AAAAAA")],
    }.items():
        paths[split] = tmp_path / f"{split}.tsv"
        task_table(split, rows).to_csv(paths[split], sep="\t", index=False)
    return paths


def test_tokenize_task_writes_arrays_with_their_vocabulary(tables, tmp_path):
    arrays = {split: tmp_path / f"{split}.npz" for split in tables}
    tokenize_task(tables, arrays, tmp_path / "vocab.json", k=2, stride=1, augment_reverse_complement=True)
    train, tokenizer = load_token_set(arrays["train"])
    assert tokenizer == KmerTokenizer(k=2, stride=1) == KmerTokenizer.load(tmp_path / "vocab.json")
    # reverse complements are added to the training split only, after the originals
    assert train.ids == ["a", "b", "a/rc", "b/rc"]
    assert train.labels.tolist() == [1, 0, 1, 0]
    assert train.bp_lengths.tolist() == [6, 6, 6, 6]
    assert train.tokens[0].tolist() == tokenizer.encode("ACGTAC").tolist()
    assert train.tokens[2].tolist() == tokenizer.encode("GTACGT").tolist()
    valid, _ = load_token_set(arrays["valid"])
    assert valid.ids == ["c"]
    # every 2-mer touching the N maps to the unknown token
    assert tokenizer.decode(valid.tokens[0][: valid.lengths[0]]) == ["AC", "CG", "<unk>", "<unk>", "AC"]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.assign(label=[2, 0]), "label must be 0 or 1"),
        (lambda t: t.assign(id=["a", "a"]), "duplicate record id 'a'"),
        (lambda t: t.assign(sequence=["ACGT", "ACXT"]), "invalid base(s) 'X'"),
        (lambda t: t.assign(sequence=["ACGT", "acgt"]), "invalid base(s)"),
        (lambda t: t.assign(split=["train", "test"]), "split is 'test'"),
        (lambda t: t.drop(columns=["strand"]), "missing column(s) strand"),
    ],
)
def test_bad_task_tables_name_file_and_record(tmp_path, edit, message):
    path = tmp_path / "train.tsv"
    edit(task_table("train", [("a", 1, "ACGT"), ("b", 0, "ACGT")])).to_csv(path, sep="\t", index=False)
    with pytest.raises(InputFormatError) as error:
        read_task_table(path, "train")
    assert str(path) in str(error.value)
    assert message in str(error.value)


def test_corpus_keeps_contigs_and_strands_apart(tmp_path):
    fasta = tmp_path / "genome.fa.gz"
    with gzip.open(fasta, "wt") as handle:
        handle.write(">chrom\nACGTACGTAA\n>plasmid\nttttcc\n")
    tokenize_genome(fasta, tmp_path / "corpus.npz", k=3, stride=1)
    streams, tokenizer = load_corpus(tmp_path / "corpus.npz")
    assert len(streams) == 4  # chrom+, chrom-, plasmid+, plasmid-
    assert tokenizer.decode(streams[0]) == ["ACG", "CGT", "GTA", "TAC", "ACG", "CGT", "GTA", "TAA"]
    assert tokenizer.decode(streams[2]) == ["TTT", "TTT", "TTC", "TCC"]
    assert tokenizer.decode(streams[3]) == ["GGA", "GAA", "AAA", "AAA"]
    assert all(stream.dtype == np.int64 for stream in streams)
    with np.load(tmp_path / "corpus.npz") as data:
        assert data["tokens"].dtype == np.uint16  # stored compactly; 4 + 4**3 ids fit
        assert data["names"].tolist() == ["chrom+", "chrom-", "plasmid+", "plasmid-"]
        assert data["offsets"].tolist() == [0, 8, 16, 20, 24]


def test_corpus_skip_policy_is_recorded(tmp_path):
    fasta = tmp_path / "genome.fa"
    fasta.write_text(">chrom\nACGTNACGT\n")
    tokenize_genome(fasta, tmp_path / "corpus.npz", k=2, stride=1, unknown="skip")
    streams, tokenizer = load_corpus(tmp_path / "corpus.npz")
    assert tokenizer == KmerTokenizer(k=2, unknown="skip")
    assert tokenizer.decode(streams[0]) == ["AC", "CG", "GT", "AC", "CG", "GT"]  # TN and NA are gone
    assert tokenizer.decode(streams[1]) == ["AC", "CG", "GT", "AC", "CG", "GT"]


def test_load_corpus_reads_older_int32_files_and_checks_offsets(tmp_path):
    tokenizer = KmerTokenizer(k=2)
    vocab_v1 = {key: value for key, value in tokenizer.to_dict().items() if key != "unknown"} | {"version": 1}
    old = tmp_path / "old.npz"  # as written before streaming: int32 tokens, version-1 vocabulary
    tokens = np.array([5, 10, 15, 15, 10, 5], np.int32)
    np.savez_compressed(
        old,
        tokens=tokens,
        offsets=np.array([0, 3, 6]),
        names=np.array(["a+", "a-"]),
        vocab=np.asarray(json.dumps(vocab_v1)),
    )
    streams, loaded = load_corpus(old)
    assert loaded == tokenizer
    assert [stream.tolist() for stream in streams] == [[5, 10, 15], [15, 10, 5]]
    bad = tmp_path / "bad.npz"
    np.savez_compressed(bad, tokens=tokens, offsets=np.array([0, 3, 7]), vocab=np.asarray(json.dumps(vocab_v1)))
    with pytest.raises(InputFormatError, match=r"bad\.npz: offsets do not partition the 6 tokens"):
        load_corpus(bad)
    old.write_bytes(b"junk")
    with pytest.raises(InputFormatError, match=r"old\.npz.*not a genolm corpus"):
        load_corpus(old)


def test_tokenize_sequences_names_the_record_under_the_error_policy():
    tokenizer = KmerTokenizer(k=3, unknown="error")
    token_set = tokenize_sequences(["p1", "p2"], ["ACGTA", "GGCCA"], [1, 0], tokenizer)
    assert token_set.lengths.tolist() == [3, 3]
    with pytest.raises(InputFormatError, match=r"record 'p2': non-ACGT base 'N' at position 4"):
        tokenize_sequences(["p1", "p2"], ["ACGTA", "GGCNA"], [1, 0], tokenizer)


def test_gc_ignores_ambiguous_bases():
    assert gc_fraction("GCNNAT") == 0.5
    assert np.isnan(gc_fraction("NNNN"))


def test_summary_counts_per_split_and_class(tables):
    table = pd.concat(read_task_table(path) for path in tables.values())
    summary = summarize_tables({"toy": table})
    assert summary[["split", "label", "count"]].values.tolist() == [
        ["train", 0, 1],
        ["train", 1, 1],
        ["valid", 1, 1],
        ["test", 0, 1],
        ["test", 1, 1],
    ]
    assert summary.loc[(summary["split"] == "test") & (summary["label"] == 0), "gc_mean"].item() == 1.0


def test_token_set_checks_its_rows():
    with pytest.raises(InputFormatError, match="record 'b' has label 2"):
        TokenSet(np.zeros((2, 3), np.int64), np.array([3, 3]), np.array([0, 2]), ["a", "b"])
    with pytest.raises(InputFormatError, match="length 4"):
        TokenSet(np.zeros((2, 3), np.int64), np.array([3, 4]), np.array([0, 1]), ["a", "b"])
    with pytest.raises(InputFormatError, match="'bp_lengths' must have one entry per row"):
        TokenSet(np.zeros((2, 3), np.int64), np.array([3, 3]), np.array([0, 1]), ["a", "b"], np.array([5]))


def test_token_array_round_trip_and_bad_files(tmp_path):
    tokenizer = KmerTokenizer(k=2)
    tokens, lengths = tokenizer.encode_batch(["ACGTA", "GGN"])
    original = TokenSet(tokens, lengths, np.array([1, 0]), ["r1", "r2"], np.array([5, 3]))
    save_token_set(original, tmp_path / "sub" / "x.npz", tokenizer)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["x.npz"]  # no temporary file left behind
    loaded, loaded_tokenizer = load_token_set(tmp_path / "sub" / "x.npz")
    assert loaded_tokenizer == tokenizer and loaded.ids == original.ids
    for name in ("tokens", "lengths", "labels", "bp_lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name))
    assert loaded.subset([1]).ids == ["r2"] and loaded.subset([1]).bp_lengths.tolist() == [3]
    broken = tmp_path / "broken.npz"
    np.savez(broken, tokens=np.zeros((1, 2), np.int64), labels=np.zeros(1, np.int64))
    with pytest.raises(InputFormatError, match=r"broken\.npz: token array lacks lengths, ids, bp_lengths, vocab"):
        load_token_set(broken)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip")
    with pytest.raises(InputFormatError, match=r"garbage\.npz"):
        load_token_set(garbage)
