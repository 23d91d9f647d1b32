"""Unit tests for genolm.seqio: FASTA/FASTQ parsing, every validation error, gzip handling, chunked FASTA reading
(identical to whole-record reading whatever the chunk and read-block sizes), atomic writes."""

from __future__ import annotations

import gzip
import logging
import random
import re
from pathlib import Path

import pytest

import genolm.seqio
from genolm.errors import ConfigError, InputFormatError
from genolm.seqio import (
    SeqRecord,
    iter_fasta_chunks,
    open_text,
    read_fasta,
    read_fastq,
    reverse_complement,
    write_fasta,
)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def records(path: Path, **kwargs) -> list[tuple[str, str]]:
    return [(rec.name, rec.sequence) for rec in read_fasta(path, **kwargs)]


# ---------------------------------------------------------------------------------------------- FASTA


def test_fasta_lowercase_crlf_blank_lines_and_descriptions(tmp_path: Path) -> None:
    text = "\r\n>chr1 some description\r\nacgtNN\r\n\r\nRYkm\r\n\r\n>plasmid1\r\nTTTT\r\n\r\n"
    path = write(tmp_path, "a.fa", text)
    assert records(path) == [("chr1", "ACGTNNRYKM"), ("plasmid1", "TTTT")]
    rec = next(read_fasta(path))
    assert isinstance(rec, SeqRecord)


def test_fasta_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    data = gzip.compress(b">a\nACGT\n>b\ngg\n")
    for name in ("genome.fa.gz", "genome.fa"):
        assert records(write(tmp_path, name, data)) == [("a", "ACGT"), ("b", "GG")]


def test_plain_text_named_gz_is_read_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, "plain.fa.gz", ">a\nACGT\n")
    with caplog.at_level(logging.WARNING, logger="genolm.seqio"):
        assert records(path) == [("a", "ACGT")]
    assert "not gzip-compressed" in caplog.text


def test_open_text_gunzips_and_normalises_newlines(tmp_path: Path) -> None:
    path = write(tmp_path, "x.txt", gzip.compress(b"one\r\ntwo\n"))
    with open_text(path) as handle:
        assert handle.read() == "one\ntwo\n"


def test_fasta_streams_record_by_record(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">a\nACGT\n>b\nAC?T\n")
    reader = read_fasta(path)
    assert next(reader) == SeqRecord("a", "ACGT")  # yielded before the bad record is reached
    with pytest.raises(InputFormatError, match=re.escape("record 'b'")):
        next(reader)


def test_fasta_alphabets(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">a\nACNT\nACRT\n")
    assert records(path) == [("a", "ACNTACRT")]
    with pytest.raises(InputFormatError) as err:
        records(path, alphabet="acgtn")
    assert str(err.value) == f"{path}: record 'a' (line 3): illegal sequence character 'R' at column 3"
    with pytest.raises(ConfigError, match="unknown alphabet"):
        records(path, alphabet="protein")


def test_fasta_illegal_character_names_char_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">x\nACGT\n>seq1 desc\nACGT\nAC-T\n")
    with pytest.raises(InputFormatError) as err:
        records(path)
    assert str(err.value) == f"{path}: record 'seq1' (line 5): illegal sequence character '-' at column 3"


@pytest.mark.parametrize("bad", ["1", "*", "X", " ", "\u017f", "\u00e9"])
def test_fasta_rejects_other_illegal_characters(tmp_path: Path, bad: str) -> None:
    path = write(tmp_path, "a.fa", f">a\nAC{bad}GT\n")
    expected = f"{path}: record 'a' (line 2): illegal sequence character '{bad}' at column 3"
    with pytest.raises(InputFormatError, match=re.escape(expected)):
        records(path)


def test_fasta_invalid_utf8_byte_is_an_illegal_character(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", b">a\nAC\xffGT\n")
    with pytest.raises(InputFormatError, match=r"line 2\): illegal sequence character '\ufffd' at column 3"):
        records(path)


def test_fasta_text_before_first_header(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", "\nACGT\n>a\nACGT\n")
    with pytest.raises(InputFormatError) as err:
        records(path)
    assert str(err.value) == f"{path}: line 2: text before the first '>' header: 'ACGT'"


def test_fasta_empty_record_in_the_middle_and_at_the_end(tmp_path: Path) -> None:
    middle = write(tmp_path, "m.fa", ">a\n\n>b\nACGT\n")
    with pytest.raises(InputFormatError) as err:
        records(middle)
    assert str(err.value) == f"{middle}: record 'a' (line 1): empty record (no sequence lines after the header)"
    end = write(tmp_path, "e.fa", ">a\nACGT\n>b\n")
    with pytest.raises(InputFormatError, match=r"record 'b' \(line 3\): empty record"):
        records(end)


def test_fasta_header_without_name(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">a\nAC\n>  \nACGT\n")
    with pytest.raises(InputFormatError, match=re.escape("line 3: header line '>' has no record name")):
        records(path)


def test_fasta_duplicate_names(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">a one\nAC\n>b\nGG\n>a two\nGT\n")
    with pytest.raises(InputFormatError) as err:
        records(path)
    assert str(err.value) == f"{path}: record 'a' (line 5): duplicate record name (first used at line 1)"


@pytest.mark.parametrize("content", [b"", b"\n\n  \n", gzip.compress(b"")])
def test_fasta_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path, "empty.fa", content)
    with pytest.raises(InputFormatError, match=r"empty.fa: empty file \(no FASTA records\)"):
        records(path)


def big_fasta_text(n_records: int = 200) -> bytes:
    # varied (not repetitive) content so that the compressed stream is long and can be cut mid-way
    lines = []
    for i in range(n_records):
        lines.append(f">rec{i}")
        lines.extend("".join("ACGT"[(i * 7 + j * j + c * 13) % 4] for c in range(60)) for j in range(10))
    return ("\n".join(lines) + "\n").encode()


def test_fasta_truncated_gzip(tmp_path: Path) -> None:
    data = gzip.compress(big_fasta_text())
    path = write(tmp_path, "cut.fa.gz", data[: len(data) // 2])
    with pytest.raises(InputFormatError) as err:
        records(path)
    message = str(err.value)
    assert message.startswith(f"{path}: record 'rec")
    assert "truncated or corrupt gzip stream" in message
    assert "EOFError" in message
    assert not isinstance(err.value, EOFError)


def test_fasta_corrupt_gzip_checksum(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(big_fasta_text()))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer no longer matches the content
    path = write(tmp_path, "bad.fa.gz", bytes(data))
    with pytest.raises(InputFormatError) as err:
        records(path)
    assert str(err.value).startswith(f"{path}: record 'rec199' (line 2200): truncated or corrupt gzip stream")
    assert "CRC check failed" in str(err.value)


def test_fasta_corrupt_deflate_data(tmp_path: Path) -> None:
    data = bytearray(gzip.compress(big_fasta_text()))
    data[10] = 0xFF  # first deflate block header: block type 3 is invalid
    path = write(tmp_path, "bad.fa.gz", bytes(data))
    with pytest.raises(
        InputFormatError,
        match=r"bad.fa.gz: truncated or corrupt gzip stream before the first line \(error: .*invalid block",
    ):
        records(path)


def test_fasta_truncated_gzip_header(tmp_path: Path) -> None:
    path = write(tmp_path, "tiny.fa.gz", gzip.compress(b">a\nACGT\n")[:5])
    with pytest.raises(
        InputFormatError,
        match=r"tiny.fa.gz: truncated or corrupt gzip stream before the first line \(EOFError",
    ):
        records(path)


def test_fasta_crlf_in_gzip_and_lone_cr(tmp_path: Path) -> None:
    gz = write(tmp_path, "crlf.fa.gz", gzip.compress(b">a x\r\nACgt\r\nNN\r\n>b\r\nTT\r\n"))
    assert records(gz) == [("a", "ACGTNN"), ("b", "TT")]
    old_mac = write(tmp_path, "cr.fa", b">a\rAC\rGT\r>b\rTT")  # lone CR ends a line too, as in open_text
    assert records(old_mac) == [("a", "ACGT"), ("b", "TT")]


def test_fasta_all_n_and_one_base_records_are_valid(tmp_path: Path) -> None:
    # what a tokenizer does with them (UNK, nothing, or an error) is its policy, not the reader's business
    path = write(tmp_path, "a.fa", ">gap\nNNNNNNNN\nnnnn\n>tiny\nA\n")
    assert records(path) == [("gap", "N" * 12), ("tiny", "A")]


# ---------------------------------------------------------------------------------------------- chunked FASTA


def chunked(path: Path, chunk_bp: int, **kwargs) -> list[tuple[str, str]]:
    """Join iter_fasta_chunks output per record, checking the chunk contract on the way."""
    joined: list[tuple[str, str]] = []
    current: list[str] = []
    for name, chunk, is_last in iter_fasta_chunks(path, chunk_bp, **kwargs):
        assert 1 <= len(chunk) <= chunk_bp
        assert is_last or len(chunk) == chunk_bp  # only a record's last chunk may be short
        current.append(chunk)
        if is_last:
            joined.append((name, "".join(current)))
            current = []
    assert not current  # every record ends with an is_last chunk
    return joined


def outcome(read, *args) -> list[tuple[str, str]] | str:
    try:
        return read(*args)
    except InputFormatError as error:
        return f"error: {error}"


@pytest.mark.parametrize("chunk_bp", [1, 2, 3, 7, 60, 61, 1000])
def test_chunks_join_to_read_fasta_records(tmp_path: Path, chunk_bp: int) -> None:
    data = big_fasta_text(12) + b">short desc\r\nac\r\n\r\n>soft\nacgtNNNNrykm\nACGT\n"
    for name, content in (("a.fa", data), ("a.fa.gz", gzip.compress(data))):
        path = write(tmp_path, name, content)
        assert chunked(path, chunk_bp) == records(path)
    chunks = list(iter_fasta_chunks(write(tmp_path, "b.fa", ">x\nACGTA\nCG\n>y\nT\n"), 3))
    assert chunks == [("x", "ACG", False), ("x", "TAC", False), ("x", "G", True), ("y", "T", True)]


def test_chunks_reject_bad_chunk_size(tmp_path: Path) -> None:
    path = write(tmp_path, "a.fa", ">a\nACGT\n")
    for chunk_bp in (0, -5, 2.5, True, None):
        with pytest.raises(ConfigError, match="chunk_bp"):
            next(iter_fasta_chunks(path, chunk_bp))  # type: ignore[arg-type]


BAD_FASTA = {
    "illegal.fa": b">x\nACGT\n>seq1 desc\nACGT\nAC-T\n",
    "inner_space.fa": b">x\nACGT  ACGT\n",
    "utf8.fa": b">a\nAC\xffGT\n",
    "before.fa": b"\nACGT\n>a\nACGT\n",
    "empty_mid.fa": b">a\n\n>b\nACGT\n",
    "empty_end.fa": b">a\nACGT\n>b\n",
    "noname.fa": b">a\nAC\n>  \nACGT\n",
    "dup.fa": b">a one\nAC\n>b\nGG\n>a two\nGT\n",
    "empty.fa": b"\n \n",
    "crlf_dup.fa": b">a\r\nAC\r\n>a\r\nGT\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_FASTA))
def test_chunks_fail_exactly_like_read_fasta(tmp_path: Path, name: str) -> None:
    path = write(tmp_path, name, BAD_FASTA[name])
    expected = outcome(records, path)
    assert expected.startswith(f"error: {path}")
    for chunk_bp in (1, 4, 1000):
        assert outcome(chunked, path, chunk_bp) == expected


def test_chunks_truncated_gzip_names_file_and_record(tmp_path: Path) -> None:
    data = gzip.compress(big_fasta_text())
    path = write(tmp_path, "cut.fa.gz", data[: len(data) // 2])
    seen: list[str] = []
    with pytest.raises(InputFormatError) as err:
        for name, _, _ in iter_fasta_chunks(path, 100):
            seen.append(name)
    assert re.match(rf"{re.escape(str(path))}: record 'rec\d+' \(line \d+\): truncated or corrupt gzip", str(err.value))
    assert seen and f"record '{seen[-1]}'" in str(err.value)  # the record being read when the stream broke
    assert outcome(records, path) == f"error: {err.value}"


def random_fasta(rng: random.Random) -> bytes:
    """Small FASTA-like texts that hit every parser path: long and CRLF lines, blank lines, trailing and inner
    whitespace, multi-byte and invalid UTF-8 characters, misplaced headers."""
    pieces = ["A", "C", "g", "t", "N", "r", "\n", "\n", "\r\n", "\r", " ", "\t", ">", ">a", ">b x", "-", "\xa0", "\xe9"]
    weights = [12, 12, 12, 12, 3, 1, 8, 3, 2, 1, 2, 1, 2, 3, 2, 0.3, 0.5, 0.3]
    text = ">r0\n" * (rng.random() < 0.8) + "".join(rng.choices(pieces, weights, k=rng.randint(0, 60)))
    data = text.encode()
    return data.replace(b"\xc3", b"\xff") if rng.random() < 0.1 else data


def test_read_block_boundaries_never_change_the_outcome(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines and multi-byte characters cut by the parser's read blocks (here shrunk to a few bytes) give the
    same records, or the same error message, as reading in 1 MiB blocks."""
    rng = random.Random(7)
    path = tmp_path / "fuzz.fa"
    for _ in range(300):
        path.write_bytes(random_fasta(rng))
        monkeypatch.setattr(genolm.seqio, "_READ_BLOCK", 1 << 20)
        expected = outcome(records, path)
        for block in (1, 2, 3, 5):
            monkeypatch.setattr(genolm.seqio, "_READ_BLOCK", block)
            assert outcome(records, path) == expected, (path.read_bytes(), block)
            assert outcome(chunked, path, rng.randint(1, 6)) == expected, (path.read_bytes(), block)


def test_long_single_line_record_is_read_in_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(genolm.seqio, "_READ_BLOCK", 64)
    line = "ACGTN" * 400  # one 2,000-base line, far longer than a read block
    path = write(tmp_path, "one_line.fa", f">chr\r\n{line.lower()}  \t\r\n>b\nAC\n")
    assert chunked(path, 100) == [("chr", line), ("b", "AC")]
    bad = write(tmp_path, "bad.fa", f">chr\n{line}  {line}\n")
    with pytest.raises(InputFormatError) as err:
        list(iter_fasta_chunks(bad, 100))
    assert str(err.value) == f"{bad}: record 'chr' (line 2): illegal sequence character ' ' at column 2001"


# ---------------------------------------------------------------------------------------------- FASTQ


def fastq_records(path: Path) -> list[tuple[str, str]]:
    return [(rec.name, rec.sequence) for rec in read_fastq(path)]


def test_fastq_valid_with_crlf_lowercase_and_repeated_name(tmp_path: Path) -> None:
    text = "@r1 extra\r\nacgtn\r\n+r1\r\nIIII#\r\n\r\n@r2\r\nGGA\r\n+\r\n@@@\r\n\r\n"
    path = write(tmp_path, "r.fq", text)
    assert fastq_records(path) == [("r1", "ACGTN"), ("r2", "GGA")]
    gz = write(tmp_path, "r.fq.gz", gzip.compress(text.encode()))
    assert fastq_records(gz) == [("r1", "ACGTN"), ("r2", "GGA")]


def test_fastq_quality_length_mismatch(tmp_path: Path) -> None:
    path = write(tmp_path, "r.fq", "@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nIII\n")
    with pytest.raises(InputFormatError) as err:
        fastq_records(path)
    assert str(err.value) == f"{path}: record 'r2' (line 8): quality length 3 != sequence length 4"


def test_fastq_missing_plus_line(tmp_path: Path) -> None:
    path = write(tmp_path, "r.fq", "@r1\nACGT\nIIII\n@r2\n")
    with pytest.raises(InputFormatError, match=r"record 'r1' \(line 3\): missing '\+' separator line, found 'IIII'"):
        fastq_records(path)


@pytest.mark.parametrize(
    ("text", "line", "missing"),
    [
        ("@r1\nACGT\n+\nIIII\n@r2\n", 5, "sequence line"),
        ("@r1\nACGT\n", 2, "'\\+' separator line"),
        ("@r1\nACGT\n+\n", 3, "quality line"),
    ],
)
def test_fastq_truncated_record(tmp_path: Path, text: str, line: int, missing: str) -> None:
    path = write(tmp_path, "r.fq", text)
    with pytest.raises(InputFormatError, match=rf"line {line}\): truncated record: file ends before the {missing}"):
        fastq_records(path)


def test_fastq_text_before_first_header_and_between_records(tmp_path: Path) -> None:
    before = write(tmp_path, "b.fq", "junk\n@r1\nA\n+\nI\n")
    with pytest.raises(InputFormatError, match=re.escape("b.fq: line 1: text before the first '@' header: 'junk'")):
        fastq_records(before)
    between = write(tmp_path, "m.fq", "@r1\nA\n+\nI\nACGT\n")
    with pytest.raises(InputFormatError, match=re.escape("m.fq: line 5: expected an '@' header: 'ACGT'")):
        fastq_records(between)


def test_fastq_other_errors(tmp_path: Path) -> None:
    cases = {
        "dup.fq": ("@r1\nA\n+\nI\n@r1\nC\n+\nI\n", "record 'r1' \\(line 5\\): duplicate record name"),
        "char.fq": (
            "@r1\nACXT\n+\nIIII\n",
            "record 'r1' \\(line 2\\): illegal sequence character 'X' at column 3",
        ),
        "qual.fq": (
            "@r1\nACGT\n+\nII I\n",
            "record 'r1' \\(line 4\\): illegal quality character ' ' at column 3",
        ),
        "name.fq": ("@r1\nACGT\n+r2\nIIII\n", "record 'r1' \\(line 3\\): '\\+' line names 'r2'"),
        "blank.fq": ("@r1\n\n+\n\n", "record 'r1' \\(line 2\\): empty record"),
        "empty.fq": ("\n", "empty.fq: empty file \\(no FASTQ records\\)"),
    }
    for name, (text, message) in cases.items():
        with pytest.raises(InputFormatError, match=message):
            fastq_records(write(tmp_path, name, text))


def test_fastq_truncated_gzip(tmp_path: Path) -> None:
    text = "".join(f"@r{i}\n{'ACGT' * 20}\n+\n{'I' * 80}\n" for i in range(2000))
    data = gzip.compress(text.encode())
    path = write(tmp_path, "r.fq.gz", data[: len(data) // 2])
    with pytest.raises(InputFormatError, match=r"r.fq.gz: record 'r\d+' \(line \d+\): truncated or corrupt gzip"):
        fastq_records(path)


# ---------------------------------------------------------------------------------------------- writing


def test_write_fasta_wraps_and_round_trips(tmp_path: Path) -> None:
    recs = [SeqRecord("a", "ACGTA"), SeqRecord("b", "GG"), SeqRecord("c", "acgn")]
    path = tmp_path / "out.fa"
    write_fasta(recs, path, width=3)
    assert path.read_text() == ">a\nACG\nTA\n>b\nGG\n>c\nacg\nn\n"
    assert records(path) == [("a", "ACGTA"), ("b", "GG"), ("c", "ACGN")]
    write_fasta(recs, path)  # overwriting an existing file is fine
    assert path.read_text() == ">a\nACGTA\n>b\nGG\n>c\nacgn\n"


def test_write_fasta_gzip_is_deterministic(tmp_path: Path) -> None:
    recs = [SeqRecord("a", "ACGT" * 50)]
    first, second = tmp_path / "one.fa.gz", tmp_path / "two.fa.gz"
    write_fasta(recs, first)
    write_fasta(recs, second)
    assert first.read_bytes()[:2] == b"\x1f\x8b"
    assert first.read_bytes() == second.read_bytes()
    assert records(first) == [("a", "ACGT" * 50)]


def test_write_fasta_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.fa"
    path.write_text(">old\nAAAA\n")

    def failing():
        yield SeqRecord("a", "ACGT")
        raise RuntimeError("upstream failure")

    with pytest.raises(RuntimeError, match="upstream failure"):
        write_fasta(failing(), path)
    assert path.read_text() == ">old\nAAAA\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.fa"]  # the temporary file was removed


@pytest.mark.parametrize(
    ("recs", "message"),
    [
        ([SeqRecord("a b", "AC")], "name must be non-empty and contain no whitespace"),
        ([SeqRecord("", "AC")], "name must be non-empty"),
        ([SeqRecord("a", "AC"), SeqRecord("a", "GT")], "record 'a' \\(#2\\): duplicate record name"),
        ([SeqRecord("a", "")], "record 'a' \\(#1\\): empty sequence"),
        ([SeqRecord("a", "AC-GT")], "illegal sequence character '-' at position 3"),
    ],
)
def test_write_fasta_rejects_unreadable_records(tmp_path: Path, recs: list[SeqRecord], message: str) -> None:
    path = tmp_path / "out.fa"
    with pytest.raises(InputFormatError, match=message):
        write_fasta(recs, path)
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_write_fasta_rejects_bad_width(tmp_path: Path) -> None:
    for width in (0, -1, 2.5, True):
        with pytest.raises(ConfigError, match="width"):
            write_fasta([SeqRecord("a", "AC")], tmp_path / "out.fa", width=width)


# ---------------------------------------------------------------------------------------------- complement


def test_reverse_complement_iupac() -> None:
    assert reverse_complement("ACGT") == "ACGT"
    assert reverse_complement("AAGR") == "YCTT"
    assert reverse_complement("acgtRYKMBVDHSWN") == "NWSDHBVKMRYacgt"
    assert reverse_complement("ACGU") == "ACGT"  # U pairs with A; the result is DNA
    assert reverse_complement("") == ""


def test_reverse_complement_round_trip() -> None:
    seq = "ACGTRYSWKMBDHVNacgtryswkmbdhvnNNAT"
    assert reverse_complement(reverse_complement(seq)) == seq


def test_reverse_complement_rejects_illegal_characters() -> None:
    with pytest.raises(InputFormatError, match=re.escape("illegal character '-' at position 3")):
        reverse_complement("AC-T")


def test_whole_headers_keep_the_line_and_allow_repeats(tmp_path):
    path = tmp_path / "published.fa"
    path.write_text(">Escherichia coli K-12 a\nACGT\n>Escherichia coli K-12 a\nggcc\n")
    records = list(read_fasta(path, whole_headers=True))
    assert [(r.name, r.sequence) for r in records] == [
        ("Escherichia coli K-12 a", "ACGT"),
        ("Escherichia coli K-12 a", "GGCC"),
    ]
    with pytest.raises(InputFormatError, match="duplicate record name"):
        list(read_fasta(path))
