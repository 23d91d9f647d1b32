"""Streaming FASTA/FASTQ readers with line-precise validation, and an atomic FASTA writer.

Readers yield one validated :class:`SeqRecord` at a time; only the current record is held in memory.
Every problem raises :class:`~genolm.errors.InputFormatError` with a message of the form
``<path>: record '<name>' (line N): <problem>`` (or ``<path>: line N: <problem>`` before any record).
"""

from __future__ import annotations

import gzip
import logging
import os
import re
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import Literal, TextIO

from genolm.atomic import atomic_writer
from genolm.errors import ConfigError, InputFormatError

__all__ = [
    "IUPAC_BASES",
    "SeqRecord",
    "open_text",
    "read_fasta",
    "read_fastq",
    "reverse_complement",
    "write_fasta",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Alphabet = Literal["iupac", "acgtn"]

IUPAC_BASES = "ACGTURYSWKMBDHVN"
_ALPHABETS: dict[str, str] = {"iupac": IUPAC_BASES, "acgtn": "ACGTN"}
# One compiled "first illegal character" pattern per alphabet; either case is allowed.
_ILLEGAL: dict[str, re.Pattern[str]] = {
    name: re.compile(f"[^{letters}{letters.lower()}]") for name, letters in _ALPHABETS.items()
}
_GZIP_MAGIC = b"\x1f\x8b"
# Exceptions gzip/zlib raise for a truncated or corrupt stream; they surface lazily, while lines are read.
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
# Phred+33 quality characters are '!'..'~'.
_ILLEGAL_QUALITY = re.compile(r"[^!-~]")
_COMPLEMENT = str.maketrans(
    "ACGTURYSWKMBDHVNacgturyswkmbdhvn",
    "TGCAAYRSWMKVHDBNtgcaayrswmkvhdbn",
)
_ILLEGAL_RC = re.compile("[^" + IUPAC_BASES + IUPAC_BASES.lower() + "]")
_EXCERPT = 40


@dataclass(frozen=True, slots=True)
class SeqRecord:
    """A named sequence; readers guarantee ``sequence`` is non-empty, upper-case and validated."""

    name: str
    sequence: str


def open_text(path: PathLike) -> TextIO:
    """Open a text file for reading, gunzipping it when it starts with the gzip magic bytes.

    The magic bytes decide, not the extension, so mis-named files work. Universal newlines turn CRLF
    (and lone CR) into ``\\n``. Undecodable bytes become U+FFFD so that validators can report them
    with a line and column instead of failing with a bare UnicodeDecodeError.
    """
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline=None)
    if str(path).endswith(".gz"):
        log.warning("%s: name ends in .gz but the file is not gzip-compressed; reading it as plain text", path)
    return open(path, encoding="utf-8", errors="replace", newline=None)


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "...")


def _where(path: PathLike, lineno: int, record: str | None) -> str:
    if record is None:
        return f"{path}: line {lineno}"
    return f"{path}: record '{record}' (line {lineno})"


def _format_error(path: PathLike, lineno: int, record: str | None, problem: str) -> InputFormatError:
    return InputFormatError(f"{_where(path, lineno, record)}: {problem}")


class _GzipStreamError(Exception):
    """Internal: a gzip decompression error plus the number of the last line read before it."""

    def __init__(self, last_line: int, cause: BaseException) -> None:
        super().__init__(last_line, cause)
        self.last_line = last_line
        self.cause = cause


def _gzip_error(path: PathLike, record: str | None, exc: _GzipStreamError) -> InputFormatError:
    cause = f"{type(exc.cause).__name__}: {exc.cause}"
    if exc.last_line == 0:
        return InputFormatError(f"{path}: truncated or corrupt gzip stream before the first line ({cause})")
    return _format_error(path, exc.last_line, record, f"truncated or corrupt gzip stream after this line ({cause})")


def _numbered_lines(path: PathLike) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, line without trailing whitespace).

    Decompression errors surface lazily while reading; they are re-raised as ``_GzipStreamError`` so the
    readers can name the record being read.
    """
    lineno = 0
    with open_text(path) as handle:
        try:
            for lineno, line in enumerate(handle, start=1):
                yield lineno, line.rstrip()
        except _GZIP_ERRORS as exc:
            raise _GzipStreamError(lineno, exc) from exc


def _check_alphabet(alphabet: str) -> re.Pattern[str]:
    try:
        return _ILLEGAL[alphabet]
    except KeyError:
        raise ConfigError(f"unknown alphabet {alphabet!r}; expected one of {sorted(_ALPHABETS)}") from None


def _validated_bases(line: str, illegal: re.Pattern[str], path: PathLike, lineno: int, record: str) -> str:
    """Reject illegal characters, then upper-case (soft-masked bases are ordinary bases).

    The check runs on the original line: ``str.upper`` maps some non-ASCII letters to ASCII ones
    (U+017F long s -> 'S'), which would otherwise slip through and shift column numbers.
    """
    bad = illegal.search(line)
    if bad is not None:
        col = bad.start()
        raise _format_error(path, lineno, record, f"illegal sequence character {bad.group()!r} at column {col + 1}")
    return line.upper()


def _header_name(line: str, path: PathLike, lineno: int) -> str:
    """Record name = first whitespace-delimited word after the '>' or '@' marker."""
    words = line[1:].split(maxsplit=1)
    if not words:
        raise _format_error(path, lineno, None, f"header line {line!r} has no record name")
    return words[0]


def _register_name(name: str, seen: dict[str, int], path: PathLike, lineno: int) -> None:
    first = seen.get(name)
    if first is not None:
        raise _format_error(path, lineno, name, f"duplicate record name (first used at line {first})")
    seen[name] = lineno


def read_fasta(path: PathLike, *, alphabet: Alphabet = "iupac") -> Iterator[SeqRecord]:
    """Stream validated records from a (optionally gzipped) FASTA file.

    Lower-case bases are upper-cased, CRLF and blank lines are accepted. ``alphabet="iupac"`` allows
    ``ACGTURYSWKMBDHVN``; ``"acgtn"`` allows only ``ACGTN``. Gaps ('-') are never allowed.
    """
    illegal = _check_alphabet(alphabet)
    seen: dict[str, int] = {}
    name: str | None = None
    header_line = 0
    chunks: list[str] = []
    n_records = 0
    with closing(_numbered_lines(path)) as lines:
        try:
            for lineno, line in lines:
                if not line:
                    continue
                if line.startswith(">"):
                    if name is not None:
                        yield _finish_fasta_record(name, chunks, path, header_line)
                        n_records += 1
                    name = _header_name(line, path, lineno)
                    _register_name(name, seen, path, lineno)
                    header_line, chunks = lineno, []
                elif name is None:
                    raise _format_error(path, lineno, None, f"text before the first '>' header: {_excerpt(line)}")
                else:
                    chunks.append(_validated_bases(line, illegal, path, lineno, name))
        except _GzipStreamError as exc:
            raise _gzip_error(path, name, exc) from exc.cause
    if name is None:
        raise InputFormatError(f"{path}: empty file (no FASTA records)")
    yield _finish_fasta_record(name, chunks, path, header_line)
    n_records += 1
    log.debug("%s: read %d FASTA records", path, n_records)


def _finish_fasta_record(name: str, chunks: list[str], path: PathLike, header_line: int) -> SeqRecord:
    if not chunks:
        raise _format_error(path, header_line, name, "empty record (no sequence lines after the header)")
    return SeqRecord(name, "".join(chunks))


def read_fastq(path: PathLike, *, alphabet: Alphabet = "iupac") -> Iterator[SeqRecord]:
    """Stream validated records from a (optionally gzipped) 4-line FASTQ file.

    Qualities are checked but not kept.

    Each record is ``@name``, one sequence line, a ``+`` line (optionally repeating the name) and one
    quality line of the same length (Phred+33 characters). Blank lines between records are skipped.
    """
    illegal = _check_alphabet(alphabet)
    seen: dict[str, int] = {}
    name: str | None = None
    n_records = 0
    with closing(_numbered_lines(path)) as lines:
        try:
            for lineno, line in lines:
                if not line:
                    continue
                if not line.startswith("@"):
                    problem = "text before the first '@' header" if n_records == 0 else "expected an '@' header"
                    raise _format_error(path, lineno, None, f"{problem}: {_excerpt(line)}")
                name = _header_name(line, path, lineno)
                _register_name(name, seen, path, lineno)
                yield _read_fastq_body(lines, name, lineno, illegal, path)
                n_records += 1
        except _GzipStreamError as exc:
            raise _gzip_error(path, name, exc) from exc.cause
    if n_records == 0:
        raise InputFormatError(f"{path}: empty file (no FASTQ records)")
    log.debug("%s: read %d FASTQ records", path, n_records)


def _next_line(
    lines: Iterator[tuple[int, str]], path: PathLike, name: str, last_line: int, missing: str
) -> tuple[int, str]:
    try:
        return next(lines)
    except StopIteration:
        raise _format_error(path, last_line, name, f"truncated record: file ends before the {missing}") from None


def _read_fastq_body(
    lines: Iterator[tuple[int, str]], name: str, header_line: int, illegal: re.Pattern[str], path: PathLike
) -> SeqRecord:
    seq_line, seq = _next_line(lines, path, name, header_line, "sequence line")
    if not seq:
        raise _format_error(path, seq_line, name, "empty record (blank sequence line)")
    sequence = _validated_bases(seq, illegal, path, seq_line, name)

    plus_line, plus = _next_line(lines, path, name, seq_line, "'+' separator line")
    if not plus.startswith("+"):
        raise _format_error(
            path,
            plus_line,
            name,
            f"missing '+' separator line, found {_excerpt(plus)} (multi-line FASTQ is not supported)",
        )
    repeated = plus[1:].split(maxsplit=1)
    if repeated and repeated[0] != name:
        raise _format_error(path, plus_line, name, f"'+' line names {repeated[0]!r}, not the header's name")

    qual_line, qual = _next_line(lines, path, name, plus_line, "quality line")
    if len(qual) != len(sequence):
        raise _format_error(path, qual_line, name, f"quality length {len(qual)} != sequence length {len(sequence)}")
    bad = _ILLEGAL_QUALITY.search(qual)
    if bad is not None:
        col = bad.start()
        raise _format_error(path, qual_line, name, f"illegal quality character {qual[col]!r} at column {col + 1}")
    return SeqRecord(name, sequence)


def write_fasta(records: Iterable[SeqRecord], path: PathLike, width: int = 80) -> None:
    """Write records atomically, wrapping sequences at ``width`` columns; gzip when ``path`` ends in .gz.

    Records are checked so that whatever is written can be read back by :func:`read_fasta`.
    Gzip output has a zero timestamp, so identical records give identical bytes.
    """
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ConfigError(f"write_fasta: width must be a positive integer, got {width!r}")
    illegal = _ILLEGAL["iupac"]
    seen: set[str] = set()
    with atomic_writer(path) as raw:
        gz = (
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=6, mtime=0)
            if str(path).endswith(".gz")
            else None
        )
        out = gz if gz is not None else raw
        for index, record in enumerate(records):
            _check_writable(record, index, seen, illegal, path)
            seq = record.sequence
            body = "\n".join(seq[start : start + width] for start in range(0, len(seq), width))
            out.write(f">{record.name}\n{body}\n".encode())
        if gz is not None:
            gz.close()  # writes the gzip trailer; leaves ``raw`` open for atomic_writer to fsync


def _check_writable(record: SeqRecord, index: int, seen: set[str], illegal: re.Pattern[str], path: PathLike) -> None:
    where = f"{path}: record '{record.name}' (#{index + 1})"
    if not record.name or record.name.split(maxsplit=1) != [record.name]:
        raise InputFormatError(f"{where}: name must be non-empty and contain no whitespace")
    if record.name in seen:
        raise InputFormatError(f"{where}: duplicate record name")
    seen.add(record.name)
    if not record.sequence:
        raise InputFormatError(f"{where}: empty sequence")
    bad = illegal.search(record.sequence)
    if bad is not None:
        raise InputFormatError(
            f"{where}: illegal sequence character {bad.group()!r} at position {bad.start() + 1}"
            " (IUPAC nucleotide codes only)"
        )


def reverse_complement(seq: str) -> str:
    """Reverse complement with IUPAC codes (R<->Y, K<->M, B<->V, D<->H; S, W, N fixed); case is kept.

    U complements to A (and A to T), so RNA input comes back as DNA.
    """
    bad = _ILLEGAL_RC.search(seq)
    if bad is not None:
        raise InputFormatError(f"reverse_complement: illegal character {bad.group()!r} at position {bad.start() + 1}")
    return seq.translate(_COMPLEMENT)[::-1]
