"""Unit tests for genolm.streaming (through genolm.datasets' entry points): corpora and read-token files made
chunk by chunk equal in-memory encoding, on both strands, for every policy; memory stays bounded; failures leave
nothing behind."""

from __future__ import annotations

import gzip
import logging
import tracemalloc

import numpy as np
import pytest

from genolm.datasets import load_corpus, load_read_tokens, tokenize_fastq, tokenize_genome
from genolm.errors import ConfigError, InputFormatError
from genolm.kmers import UNK, KmerTokenizer
from genolm.seqio import read_fasta, reverse_complement
from genolm.streaming import write_corpus, write_read_tokens


def random_genome(rng: np.random.Generator, lengths: list[int]) -> dict[str, str]:
    """Contigs of soft-masked ACGT with N runs, single Ns and IUPAC codes (no U: see the U test)."""
    letters = np.array(list("ACGTacgtNRY"))
    weights = np.array([5, 5, 5, 5, 2, 2, 2, 2, 1, 0.3, 0.3])
    contigs = {}
    for i, length in enumerate(lengths):
        seq = rng.choice(letters, size=length, p=weights / weights.sum())
        if length > 40:
            seq[10:30] = "N"  # an assembly gap
        contigs[f"contig{i}"] = "".join(seq)
    return contigs


def write_fasta_text(path, contigs: dict[str, str], width: int = 60) -> None:
    lines = []
    for name, seq in contigs.items():
        lines.append(f">{name} some description")
        lines += [seq[i : i + width] for i in range(0, len(seq), width)]
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, compresslevel=1) if str(path).endswith(".gz") else data)


def expected_streams(contigs: dict[str, str], tokenizer: KmerTokenizer) -> list[np.ndarray]:
    streams = []
    for seq in contigs.values():
        streams += [tokenizer.encode(seq), tokenizer.encode(reverse_complement(seq))]
    return streams


@pytest.mark.parametrize("k", [1, 3, 6, 8])
@pytest.mark.parametrize("stride", [1, 2, 3, 7])
def test_corpus_equals_in_memory_encoding(tmp_path, k: int, stride: int) -> None:
    rng = np.random.default_rng(100 * k + stride)
    contigs = random_genome(rng, [500, 1, k - 1 or 1, k, 97, 1234])
    fasta = tmp_path / "genome.fa.gz"
    write_fasta_text(fasta, contigs)
    for unknown in ("unk", "skip"):
        tokenizer = KmerTokenizer(k, stride=stride, unknown=unknown)
        expected = expected_streams(contigs, tokenizer)
        for chunk_bp in sorted({1, 2, k, k + 1, 61, 100_000}):
            out = tmp_path / f"corpus_{unknown}_{chunk_bp}.npz"
            summary = tokenize_genome(fasta, out, k, stride, unknown=unknown, chunk_bp=chunk_bp)
            streams, loaded = load_corpus(out)
            assert loaded == tokenizer
            assert len(streams) == 2 * len(contigs)
            for got, want in zip(streams, expected, strict=True):
                np.testing.assert_array_equal(got, want, err_msg=f"{unknown} chunk {chunk_bp}")
            assert summary.records == len(contigs)
            assert summary.bases == sum(map(len, contigs.values()))
            assert summary.tokens == sum(stream.size for stream in expected)


def test_corpus_without_tail_and_uncompressed(tmp_path) -> None:
    rng = np.random.default_rng(5)
    contigs = random_genome(rng, [301, 77])
    fasta = tmp_path / "genome.fa"
    write_fasta_text(fasta, contigs, width=13)
    tokenizer = KmerTokenizer(4, stride=3, include_tail=False)
    for compress in (True, False):
        write_corpus(fasta, tmp_path / "corpus.npz", tokenizer, chunk_bp=5, compress=compress)
        streams, loaded = load_corpus(tmp_path / "corpus.npz")
        assert loaded == tokenizer
        for got, want in zip(streams, expected_streams(contigs, tokenizer), strict=True):
            np.testing.assert_array_equal(got, want)
    with pytest.raises(ConfigError, match="chunk_bp"):
        write_corpus(fasta, tmp_path / "x.npz", tokenizer, chunk_bp=0)


def test_corpus_dtypes(tmp_path) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_text(">a\nTTTTTTTTTACGT\n")
    for k, dtype in ((7, np.uint16), (8, np.int32)):
        tokenize_genome(fasta, tmp_path / "c.npz", k, 1)
        with np.load(tmp_path / "c.npz") as data:
            assert data["tokens"].dtype == dtype
        streams, tokenizer = load_corpus(tmp_path / "c.npz")
        assert streams[0][0] == tokenizer.vocab_size - 1  # TTTTTTT(T): the largest id survives the round trip


def test_short_all_n_and_u_contigs(tmp_path, caplog) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_text(">short\nACG\n>gap\nNNNNNN\n>rna\nACUGA\n")
    with caplog.at_level(logging.WARNING, logger="genolm.streaming"):
        tokenize_genome(fasta, tmp_path / "unk.npz", 4, 1)
    assert "contig short (3 bp) gives no tokens (shorter than k=4)" in caplog.text
    streams, _ = load_corpus(tmp_path / "unk.npz")
    # shorter than k: an empty stream on each strand (the contig keeps its place and name)
    assert [stream.size for stream in streams[:2]] == [0, 0]
    assert streams[2].tolist() == streams[3].tolist() == [UNK] * 3  # all-N: every k-mer unknown
    # U is not a DNA base for the tokenizer, on either strand: the minus strand complements ACGT only
    # (seqio.reverse_complement would turn U into A)
    assert streams[4].tolist() == streams[5].tolist() == [UNK, UNK]
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="genolm.streaming"):
        tokenize_genome(fasta, tmp_path / "skip.npz", 4, 1, unknown="skip")
    assert "contig gap (6 bp) gives no tokens (every k-mer skipped)" in caplog.text
    streams, _ = load_corpus(tmp_path / "skip.npz")
    assert [stream.size for stream in streams] == [0] * 6  # all-N and U contigs give no tokens at all


def test_error_policy_names_record_and_position_and_leaves_no_file(tmp_path) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_text(">ok\nACGTACGT\n>chr2 desc\nACGTAC\nGTRACG\n")
    out = tmp_path / "out" / "corpus.npz"
    for stride in (1, 2):
        with pytest.raises(InputFormatError, match=r"^record 'chr2': non-ACGT base 'R' at position 9 \(1-based\)"):
            tokenize_genome(fasta, out, 3, stride, unknown="error", chunk_bp=4)
        assert list(out.parent.iterdir()) == []  # neither the output nor a temporary file is left behind
    tokenize_genome(tmp_path / "g.fa", out, 3, 1, unknown="unk")
    assert [p.name for p in out.parent.iterdir()] == ["corpus.npz"]


def test_bad_fasta_leaves_no_file(tmp_path) -> None:
    fasta = tmp_path / "dup.fa"
    fasta.write_text(">a\nACGT\n>a\nACGT\n")
    with pytest.raises(InputFormatError, match="duplicate record name"):
        tokenize_genome(fasta, tmp_path / "out" / "c.npz", 2, 1)
    assert list((tmp_path / "out").iterdir()) == []


def test_genome_tokenization_memory_is_bounded(tmp_path) -> None:
    """A ~20 Mbp gzipped genome tokenized in 64 kbp chunks: the traced peak stays far below the genome plus
    the token output (~100 MB here), and the tokens equal the in-memory encoding."""
    rng = np.random.default_rng(42)
    lengths = (12_000_000, 8_000_000)
    fasta = tmp_path / "big.fa.gz"
    with gzip.open(fasta, "wb", compresslevel=1) as handle:
        for i, length in enumerate(lengths):
            seq = np.frombuffer(b"ACGT", np.uint8)[rng.integers(0, 4, size=length)]
            seq[rng.random(length) < 0.001] = ord("N")
            seq[1000:60_000] = ord("N")
            seq[length // 2 :] |= 0x20  # soft-mask the second half
            handle.write(f">chr{i}\n".encode())
            handle.write(b"\n".join(seq[j : j + 80].tobytes() for j in range(0, length, 80)) + b"\n")
    tokenizer = KmerTokenizer(6)
    sequence_bytes = sum(lengths)
    output_bytes = 2 * sum(tokenizer.n_tokens(n) for n in lengths) * tokenizer.storage_dtype.itemsize
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        tokenize_genome(fasta, tmp_path / "corpus.npz", 6, 1, chunk_bp=1 << 16)
        peak = tracemalloc.get_traced_memory()[1] - baseline
    finally:
        tracemalloc.stop()
    bound = 12 * 2**20  # measured: 2-3 MiB
    assert peak < bound < (sequence_bytes + output_bytes) / 6, f"peak {peak / 2**20:.1f} MiB"
    streams, _ = load_corpus(tmp_path / "corpus.npz")
    for i, record in enumerate(read_fasta(fasta)):
        forward = tokenizer.encode(record.sequence)
        assert np.array_equal(streams[2 * i], forward)
        assert np.array_equal(streams[2 * i + 1], tokenizer.reverse_complement_tokens(forward))
        del forward
        assert np.array_equal(streams[2 * i + 1], tokenizer.encode(reverse_complement(record.sequence)))


# ---------------------------------------------------------------------------------------------- reads


def write_fastq(path, reads: list[tuple[str, str]], newline: str = "\n") -> None:
    text = "".join(f"@{name} extra{newline}{seq}{newline}+{newline}{'I' * len(seq)}{newline}" for name, seq in reads)
    path.write_bytes(gzip.compress(text.encode()) if str(path).endswith(".gz") else text.encode())


def test_fastq_tokens_are_ragged_per_read(tmp_path, caplog) -> None:
    rng = np.random.default_rng(3)
    reads = [(f"r{i}", "".join(rng.choice(list("ACGTNacgt"), size=int(n)))) for i, n in enumerate([150, 2, 3, 149, 0])]
    reads[-1] = ("empty_tokens", "AC")  # FASTQ forbids empty reads; a read shorter than k has zero tokens
    reads.append(("all_n", "N" * 20))
    fastq = tmp_path / "reads.fq.gz"
    write_fastq(fastq, reads, newline="\r\n")
    for unknown in ("unk", "skip"):
        tokenizer = KmerTokenizer(3, stride=2, unknown=unknown)
        for batch_reads in (1, 2, 4096):
            out = tmp_path / f"reads_{unknown}_{batch_reads}.npz"
            summary = write_read_tokens(fastq, out, tokenizer, batch_reads=batch_reads)
            loaded, loaded_tokenizer = load_read_tokens(out)
            assert loaded_tokenizer == tokenizer
            assert loaded.names == [name for name, _ in reads]
            assert loaded.bp_lengths.tolist() == [len(seq) for _, seq in reads]
            assert len(loaded) == len(reads) == summary.records
            assert loaded.tokens.dtype == np.uint16
            for i, (_, seq) in enumerate(reads):
                assert loaded[i].tolist() == tokenizer.encode(seq).tolist()
    assert loaded[1].size == 0
    with caplog.at_level(logging.WARNING, logger="genolm.streaming"):
        summary = tokenize_fastq(fastq, tmp_path / "default.npz", 3, 2)
    assert "2 of 6 reads give no tokens" in caplog.text
    assert summary.bases == sum(len(seq) for _, seq in reads)
    assert load_read_tokens(tmp_path / "default.npz")[1] == KmerTokenizer(3, stride=2)


def test_fastq_error_policy_and_bad_input(tmp_path) -> None:
    fastq = tmp_path / "reads.fq"
    write_fastq(fastq, [("r1", "ACGTACGT"), ("r2", "ACGTNACG")])
    with pytest.raises(InputFormatError, match=r"^record 'r2': non-ACGT base 'N' at position 5"):
        tokenize_fastq(fastq, tmp_path / "out" / "r.npz", 4, 1, unknown="error")
    assert list((tmp_path / "out").iterdir()) == []
    bad = tmp_path / "bad.fq"
    bad.write_text("@r1\nACGT\n+\nIII\n")
    with pytest.raises(InputFormatError, match=r"bad\.fq: record 'r1' \(line 4\): quality length 3"):
        tokenize_fastq(bad, tmp_path / "out" / "r.npz", 4, 1)
    with pytest.raises(InputFormatError, match="not a genolm read-token file"):
        load_read_tokens(bad)
