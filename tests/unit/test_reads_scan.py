"""Reads scored with a classifier (genolm.reads_scan): windows, short reads, pairs, batching, malformed FASTQ."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import torch

from genolm.checkpoint import save_checkpoint
from genolm.errors import InputFormatError
from genolm.kmers import KmerTokenizer
from genolm.models import build_classifier
from genolm.reads_scan import iter_read_batches, read_windows, scan_read_files, scan_reads, score_reads
from genolm.scan import model_scorer
from genolm.seqio import read_fasta

MOTIF = "GGGGGGGG"


def motif_scorer(calls=None):
    """1.0 for an input holding MOTIF, else 0.1 + a little per G (deterministic, depends on the string only)."""

    def score(windows):
        if calls is not None:
            calls.append(list(windows))
        return np.array([1.0 if MOTIF in w else 0.1 + 0.001 * w.count("G") for w in windows])

    return score


def random_bases(n, rng):
    return "".join(rng.choice(list("ACT"), n))  # no G, so no motif by chance


def write_fastq(path, reads):
    text = "".join(f"@{name}\n{seq}\n+\n{'I' * len(seq)}\n" for name, seq in reads)
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    return path


@pytest.fixture
def reads():
    rng = np.random.default_rng(0)
    long_plain = random_bases(60, rng)
    return [
        ("r1", random_bases(50, rng) + MOTIF + random_bases(2, rng)),  # motif at the very end of a long read
        ("r2", long_plain),  # negative
        ("r3", random_bases(10, rng) + "CCCCCCCC" + random_bases(12, rng)),  # short read, motif on the minus strand
        ("r4", random_bases(12, rng)),  # too short to score
        ("r5", random_bases(25, rng)),  # short negative
    ]


def test_read_windows_cover_long_reads_and_keep_short_ones_whole():
    assert read_windows("A" * 25, window=10, step=4, min_length=5) == ["A" * 10] * 5  # starts 0, 4, 8, 12, 15
    assert read_windows("ACGTACG", window=10, step=4, min_length=5) == ["ACGTACG"]
    assert read_windows("ACG", window=10, step=4, min_length=5) == []


def test_single_reads_known_positives(tmp_path, reads):
    fastq = write_fastq(tmp_path / "reads.fastq.gz", reads)
    calls = []
    counts = scan_read_files(
        [fastq], motif_scorer(calls), tmp_path / "pos.fasta.gz", window=40, step=7, threshold=0.5, min_length=20
    )
    positives = {record.name: record.sequence for record in read_fasta(tmp_path / "pos.fasta.gz")}
    assert sorted(positives) == ["r1", "r3"] and positives["r1"] == reads[0][1]
    assert (counts.units, counts.units_scored, counts.units_positive) == (5, 4, 2)
    assert (counts.reads_short, counts.reads_too_short) == (2, 1)
    assert counts.table()["fraction_positive"] == pytest.approx(0.5)
    # every input is at most a window long, and each read is scored on both strands
    inputs = [window for call in calls for window in call]
    assert max(map(len, inputs)) == 40 and len(inputs) == 2 * (4 + 4 + 1 + 1)  # 60 bp: windows at 0, 7, 14, 20


def test_a_pair_is_positive_when_either_mate_is(tmp_path, reads):
    first = [("p1/1", reads[0][1]), ("p2/1", reads[1][1]), ("p3/1", reads[4][1])]
    second = [("p1/2", reads[1][1]), ("p2/2", reads[2][1]), ("p3/2", reads[4][1])]
    paths = [write_fastq(tmp_path / "r_1.fastq.gz", first), write_fastq(tmp_path / "r_2.fastq.gz", second)]
    counts = scan_read_files(paths, motif_scorer(), tmp_path / "pos.fasta.gz", 40, 7, 0.5, 20)
    written = [record.name for record in read_fasta(tmp_path / "pos.fasta.gz")]
    assert written == ["p1/1", "p1/2", "p2/1", "p2/2"]  # both mates of each positive pair, p3 left out
    assert (counts.layout, counts.units, counts.units_positive, counts.reads, counts.reads_positive) == (
        "paired", 3, 2, 6, 2
    )  # fmt: skip


def test_batching_does_not_change_results(tmp_path):
    rng = np.random.default_rng(3)
    reads = [(f"r{i}", "".join(rng.choice(list("ACGT"), int(rng.integers(15, 90))))) for i in range(57)]
    fastq = write_fastq(tmp_path / "reads.fastq.gz", reads)
    results = []
    for batch_reads in (1, 7, 1000):
        calls = []
        out = tmp_path / f"pos{batch_reads}.fasta.gz"
        counts = scan_read_files([fastq], motif_scorer(calls), out, 30, 5, 0.115, 20, batch_reads=batch_reads)
        # the scorer never sees more than one batch of reads at a time
        assert max(len(call) for call in calls) <= 2 * batch_reads * ((90 - 30) // 5 + 2)
        results.append((counts.table(), out.read_bytes()))
    assert results[0] == results[1] == results[2]
    assert 0 < results[0][0]["units_positive"] < 57  # the threshold splits the reads


def test_malformed_fastq_names_file_and_record(tmp_path):
    bad = tmp_path / "bad.fastq"
    bad.write_text("@ok\nACGT\n+\nIIII\n@broken\nACGTAC\n+\nIII\n")
    with pytest.raises(InputFormatError, match=r"bad\.fastq: record 'broken' \(line 8\): quality length"):
        scan_read_files([bad], motif_scorer(), tmp_path / "pos.fasta.gz", 40, 7, 0.5, 1)
    assert not (tmp_path / "pos.fasta.gz").exists()  # nothing half-written


def test_mates_out_of_step_are_an_error(tmp_path):
    one = write_fastq(tmp_path / "a_1.fq.gz", [("x/1", "ACGT"), ("y/1", "ACGT")])
    two = write_fastq(tmp_path / "a_2.fq.gz", [("x/2", "ACGT"), ("z/2", "ACGT")])
    with pytest.raises(InputFormatError, match=r"record 'y/1' and .*a_2\.fq\.gz record 'z/2' \(pair #2\)"):
        list(iter_read_batches([one, two], 10))
    short = write_fastq(tmp_path / "b_2.fq.gz", [("x/2", "ACGT")])
    with pytest.raises(
        InputFormatError, match=r"b_2\.fq\.gz: ends after 1 records, but .*a_1\.fq\.gz has record 'y/1'"
    ):
        list(iter_read_batches([one, short], 10))


def test_real_model_scores_reads_like_its_windows(tmp_path):
    """scan_reads with a small CNN checkpoint: a read's score is its best window on either strand."""
    torch.manual_seed(0)
    tokenizer = KmerTokenizer(k=1)
    params = {"embed_dim": 4, "channels": [8], "kernel_sizes": [5], "dilations": [1], "dropout": 0.0}
    model = build_classifier("cnn", params, tokenizer.vocab_size, 40)
    checkpoint = tmp_path / "model.safetensors"
    meta = {"arch": "cnn", "params": params, "vocab": tokenizer.to_dict(), "window_tokens": 40, "window_bp": 40}
    save_checkpoint(model, checkpoint, meta)
    metrics = tmp_path / "metrics.tsv"
    pd.DataFrame({"metric": ["threshold"], "value": [0.5]}).to_csv(metrics, sep="\t", index=False)
    rng = np.random.default_rng(5)
    reads = [(f"r{i}", "".join(rng.choice(list("ACGT"), n))) for i, n in enumerate([25, 40, 77, 101, 10])]
    fastq = write_fastq(tmp_path / "reads.fastq.gz", reads)
    outputs = {"summary": tmp_path / "summary.tsv", "positives": tmp_path / "pos.fasta.gz"}
    task = {"kind": "is", "scan": {"step": 9}}
    summary = scan_reads([fastq], checkpoint, metrics, task, outputs, "s", "is", "cnn", min_length=20, device="cpu")
    row = summary.iloc[0]
    assert (row["units"], row["units_scored"], row["reads_short"], row["reads_too_short"]) == (5, 4, 1, 1)
    scorer = model_scorer(model.eval(), tokenizer, device="cpu")
    expected = score_reads([seq for _, seq in reads], scorer, 40, 9, 20)
    one_by_one = [score_reads([seq], scorer, 40, 9, 20)[0] for _, seq in reads]
    assert np.allclose(expected, one_by_one, equal_nan=True, atol=1e-6)  # mixed-length batches change nothing
    assert row["max_score"] == pytest.approx(np.nanmax(expected), abs=1e-6)
    assert row["units_positive"] == int((expected >= 0.5).sum())
    assert pd.read_csv(outputs["summary"], sep="\t").loc[0, "units_positive"] == row["units_positive"]


@pytest.mark.shared_data
def test_real_paired_reads_stream_in_batches(shared_data):
    folder = shared_data / "fastq_small" / "palidis_SRR532173_subset"
    batches = list(iter_read_batches([folder / "test_1.fastq.gz", folder / "test_2.fastq.gz"], 100))
    assert [len(batch) for batch in batches] == [100, 100, 100, 100, 29]  # 429 pairs, mates in step
    assert all(len(unit) == 2 for batch in batches for unit in batch)
