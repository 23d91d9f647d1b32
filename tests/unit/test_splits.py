"""MinHash clusters and leakage-aware splits: synthetic sequences with known relations, then the real IS set."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest
from Bio import SeqIO

from genolm.errors import ConfigError
from genolm.seqio import read_fasta, reverse_complement
from genolm.sources.is_dataset import build_is_dataset
from genolm.sources.splits import (
    EMPTY,
    dataset_overlap,
    minhash_signatures,
    near_duplicates,
    read_split_record,
    similarity_clusters,
    split_at_random,
    split_by_cluster,
    split_by_group,
    write_split_record,
)

RNG = np.random.default_rng(7)


def random_sequence(length: int, rng: np.random.Generator = RNG) -> str:
    return "".join(rng.choice(list("ACGT"), length))


def mutate(sequence: str, n: int, rng: np.random.Generator = RNG) -> str:
    bases = list(sequence)
    for i in rng.choice(len(bases), n, replace=False):
        bases[i] = "ACGT"[("ACGT".index(bases[i]) + 1 + rng.integers(3)) % 4]
    return "".join(bases)


def kmer_jaccard(a: str, b: str, k: int = 15) -> float:
    def canonical(seq: str) -> set[str]:
        return {min(seq[i : i + k], reverse_complement(seq[i : i + k])) for i in range(len(seq) - k + 1)}

    x, y = canonical(a), canonical(b)
    return len(x & y) / len(x | y)


@pytest.fixture(scope="module")
def family():
    """Three relatives of one sequence (copy, 1% mutant, reverse complement) and four unrelated sequences."""
    base = random_sequence(1500)
    return [base, base, mutate(base, 15), reverse_complement(base), *(random_sequence(1500) for _ in range(4))]


def test_signatures_estimate_jaccard_on_both_strands(family):
    signatures = minhash_signatures(family, n_hashes=256)
    assert signatures.dtype == np.uint32 and signatures.shape == (8, 256)
    assert (signatures[0] == signatures[1]).all() and (signatures[0] == signatures[3]).all()
    estimate = (signatures[0] == signatures[2]).mean()
    assert estimate == pytest.approx(kmer_jaccard(family[0], family[2]), abs=0.08)
    assert (signatures[0] == signatures[4]).mean() < 0.02
    assert (minhash_signatures([family[0].lower()], n_hashes=256) == signatures[0]).all()


def test_signatures_are_seeded():
    sequences = [random_sequence(300) for _ in range(5)]
    assert (minhash_signatures(sequences, seed=1) == minhash_signatures(sequences, seed=1)).all()
    assert (minhash_signatures(sequences, seed=1) != minhash_signatures(sequences, seed=2)).any()


def test_ambiguous_bases_and_short_sequences():
    sequence = random_sequence(200)
    with_n = sequence[:100] + "N" + sequence[101:]
    signatures = minhash_signatures([sequence, with_n, "ACGTNACGT", "ACG"], k=15)
    assert 0.6 < (signatures[0] == signatures[1]).mean() < 1  # only the 15 k-mers touching the N are lost
    assert (signatures[2:] == EMPTY).all()  # no valid 15-mer at all
    assert len(set(similarity_clusters(signatures)[2:])) == 2  # empty signatures are never linked


def test_relatives_cluster_and_strangers_do_not(family):
    clusters = similarity_clusters(minhash_signatures(family))
    assert clusters.tolist() == [0, 0, 0, 0, 1, 2, 3, 4]
    assert (similarity_clusters(minhash_signatures(family), bands=128) == clusters).all()  # r=1: exhaustive


def test_clusters_are_transitive_and_respect_the_threshold():
    a = random_sequence(1000)
    b = a[:700] + random_sequence(300)  # shares 70% with a
    c = random_sequence(300) + b[300:]  # shares 70% with b, 40% with a
    signatures = minhash_signatures([a, b, c, random_sequence(1000)])
    assert similarity_clusters(signatures, threshold=0.4).tolist() == [0, 0, 0, 1]
    assert similarity_clusters(signatures, threshold=0.95).tolist() == [0, 1, 2, 3]


def test_near_duplicates_reports_counts_and_best_match(family):
    signatures = minhash_signatures(family)
    result = near_duplicates(signatures[[0, 4]], signatures[[1, 2, 5, 6]], threshold=0.5)
    assert result.counts.tolist() == [2, 0]
    assert result.best.tolist() == [0, -1] and result.similarity[0] == 1.0
    assert result.n_queries_with_match == 1


def labelled(clusters: list[int], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"r{i}" for i in range(len(labels))], "label": labels, "cluster": clusters})


def test_split_by_cluster_keeps_clusters_whole_and_classes_balanced():
    rng = np.random.default_rng(0)
    clusters = np.concatenate([np.repeat(np.arange(40), 5), np.arange(40, 840)])  # 40 families of 5, 800 singles
    table = labelled(clusters.tolist(), rng.integers(0, 2, len(clusters)).tolist())
    table["label"] = table.groupby("cluster")["label"].transform("first")  # a cluster has one class
    split = split_by_cluster(table, clusters, fractions=(0.8, 0.1, 0.1), seed=0)
    assert (table.assign(split=split).groupby("cluster")["split"].nunique() == 1).all()
    for _, rows in table.groupby("label"):
        shares = split[rows.index].value_counts(normalize=True)
        assert shares["train"] == pytest.approx(0.8, abs=0.01) and shares["test"] == pytest.approx(0.1, abs=0.01)
    assert (split_by_cluster(table, clusters, seed=0) == split).all()  # deterministic
    with pytest.raises(ConfigError, match="fractions"):
        split_by_cluster(table, clusters, fractions=(0.8, 0.3, 0.1))


def test_split_at_random_is_stratified_seeded_and_ignores_clusters():
    table = labelled([0] * 1000, [1] * 200 + [0] * 800)
    split = split_at_random(table, fractions=(0.765, 0.085, 0.15), seed=3)
    for label, n in ((1, 200), (0, 800)):
        counts = split[table["label"] == label].value_counts()
        assert counts["train"] == pytest.approx(0.765 * n, abs=1) and counts["test"] == pytest.approx(0.15 * n, abs=1)
    assert (split_at_random(table, fractions=(0.765, 0.085, 0.15), seed=3) == split).all()
    assert (split_at_random(table, fractions=(0.765, 0.085, 0.15), seed=4) != split).any()
    # rows are shuffled, not cut in file order
    assert split.iloc[:200].value_counts()["train"] < 200


def test_split_by_group_holds_out_whole_groups():
    groups = [f"F{i % 12}" for i in range(240)] + ["unknown"] * 60 + ["genomic:chr"] * 300
    table = pd.DataFrame({"label": [1] * 300 + [0] * 300, "group": groups})
    split = split_by_group(table, "group", seed=1)
    positives = table[table["label"] == 1].assign(split=split)
    known = positives[positives["group"] != "unknown"]
    assert (known.groupby("group")["split"].nunique() == 1).all()
    assert set(split[table["label"] == 0]) == {"train", "valid", "test"}  # negatives are not one "group"
    forced = split_by_group(table, "group", test_groups=["F3"], seed=1)
    assert set(table.loc[(forced == "test") & (table["label"] == 1), "group"]) <= {"F3", "unknown"}
    assert (forced[table["group"] == "F3"] == "test").all()
    clusters = np.arange(600)
    clusters[table.index[table["group"] == "F5"]] = clusters[table.index[table["group"] == "F3"][0]]  # F3 ~ F5
    linked = split_by_group(table, "group", clusters=clusters, seed=1)
    assert linked[table["group"] == "F3"].iloc[0] == linked[table["group"] == "F5"].iloc[0]


@pytest.mark.parametrize("suffix", [".json", ".tsv"])
def test_split_record_round_trip(tmp_path, suffix):
    assignments = pd.Series({"a": "train", "b": "test", "c": "valid"})
    path = tmp_path / f"split{suffix}"
    write_split_record(
        path, method="cluster", seed=3, params={"threshold": 0.5, "k": np.int64(15)}, assignments=assignments
    )
    meta, read = read_split_record(path)
    assert meta["method"] == "cluster" and meta["seed"] == 3 and meta["params"] == {"threshold": 0.5, "k": 15}
    assert meta["counts"] == {"train": 1, "valid": 1, "test": 1}
    assert read.to_dict() == assignments.to_dict()
    if suffix == ".json":
        assert json.loads(path.read_text())["assignments"]["b"] == "test"
    with pytest.raises(ConfigError, match="unknown split"):
        write_split_record(path, method="x", seed=0, params={}, assignments={"a": "holdout"})


# --- real data -----------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_isfinder_signatures_are_fast(shared_data):
    sequences = [record.sequence for record in read_fasta(shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz")]
    started = time.perf_counter()
    signatures = minhash_signatures(sequences)
    assert time.perf_counter() - started < 10  # about 1 s for 6,013 sequences (8.9 Mbp) on one core
    assert signatures.shape == (6013, 128) and not (signatures == EMPTY).all(axis=1).any()


@pytest.fixture(scope="module")
def is_table(shared_data):
    folder = shared_data / "is_scan_eval" / "ecoli_amr_plasmids"
    replicons = [(None, shared_data / "ecoli_k12_mg1655" / "GCF_000005845.2_ASM584v2_genomic.gbff.gz")]
    replicons += [(folder / f"{acc}.fasta", folder / f"{acc}.gb") for acc in ("NC_010488", "NC_017645", "NC_018659")]
    table = build_is_dataset(shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz", replicons, seed=0)
    signatures = minhash_signatures(table["sequence"].tolist())
    return table, signatures, similarity_clusters(signatures, threshold=0.5)


@pytest.mark.shared_data
def test_cluster_split_of_the_is_set_has_no_near_duplicates_across(is_table):
    table, signatures, clusters = is_table
    split = split_by_cluster(table, clusters, seed=0)
    for held_out in ("test", "valid"):
        audit = near_duplicates(signatures[(split == held_out).to_numpy()], signatures[(split == "train").to_numpy()])
        assert audit.n_queries_with_match == 0
    shares = pd.crosstab(split, table["label"], normalize="columns")
    assert np.allclose(shares.loc[["train", "valid", "test"]].to_numpy().T, [0.8, 0.1, 0.1], atol=0.01)


@pytest.mark.shared_data
def test_family_split_of_the_is_set_has_disjoint_families(is_table):
    table, signatures, clusters = is_table
    split = split_by_group(table, "group", clusters=clusters, seed=0)
    positives = table["label"] == 1
    families = {name: set(table.loc[positives & (split == name), "group"]) - {"unknown"} for name in split.unique()}
    assert not families["train"] & families["test"] and not families["train"] & families["valid"]
    assert families["test"] and families["valid"]
    audit = near_duplicates(signatures[(split == "test").to_numpy()], signatures[(split == "train").to_numpy()])
    assert audit.n_queries_with_match == 0


@pytest.mark.shared_data
def test_cnnprom_and_ipromoter_overlap_is_detected(shared_data):
    cnnprom = [r.sequence for r in read_fasta(shared_data / "cnnprom_umarov2017" / "Ecoli_prom.fa")]
    ipromoter = [
        str(r.seq).upper() for r in SeqIO.parse(shared_data / "ipromoter2l_ecoli" / "positive2860.txt", "fasta")
    ]
    overlap = dataset_overlap(cnnprom, ipromoter, threshold=0.5)
    assert (overlap["n_a"], overlap["n_b"]) == (839, 2860)
    assert overlap["exact"] >= 794 and overlap["near"] >= overlap["exact"]
