"""Streaming FASTA/FASTQ readers with line-precise validation, and an atomic FASTA writer.

Readers yield one validated :class:`SeqRecord` at a time; only the current record is held in memory.
:func:`iter_fasta_chunks` goes further and never holds more than a bounded buffer: it yields each record as
fixed-size chunks, with exactly the validation (and error messages) of :func:`read_fasta`, which is built on it.
Every problem raises :class:`~genolm.errors.InputFormatError` with a message of the form
``<path>: record '<name>' (line N): <problem>`` (or ``<path>: line N: <problem>`` before any record).
"""

from __future__ import annotations

import codecs
import gzip
import logging
import os
import re
import zlib
from collections.abc import Generator, Iterable, Iterator
from contextlib import closing
from dataclasses import dataclass
from typing import BinaryIO, Literal, TextIO

from genolm.atomic import atomic_writer
from genolm.errors import ConfigError, InputFormatError

__all__ = [
    "IUPAC_BASES",
    "SeqRecord",
    "iter_fasta_chunks",
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
# The same alphabets on bytes, for the block parser: allowed bytes (plus the newline) and a first-illegal pattern.
_LEGAL_BYTES: dict[str, bytes] = {
    name: (letters + letters.lower() + "\n").encode() for name, letters in _ALPHABETS.items()
}
_ILLEGAL_BYTES: dict[str, re.Pattern[bytes]] = {
    name: re.compile(f"[^{letters}{letters.lower()}]".encode()) for name, letters in _ALPHABETS.items()
}
_UPPER = bytes.maketrans(b"abcdefghijklmnopqrstuvwxyz", b"ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_READ_BLOCK = 1 << 20  # bytes per read of the FASTA block parser
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


def _open_binary(path: PathLike) -> BinaryIO:
    """Binary counterpart of :func:`open_text` (gzip by magic bytes, the same warning), without newline handling."""
    with open(path, "rb") as raw:
        magic = raw.read(2)
    if magic == _GZIP_MAGIC:
        return gzip.open(path, "rb")
    if str(path).endswith(".gz"):
        log.warning("%s: name ends in .gz but the file is not gzip-compressed; reading it as plain text", path)
    return open(path, "rb")


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


def _validated_bases(
    line: str, illegal: re.Pattern[str], path: PathLike, lineno: int, record: str, column: int = 0
) -> str:
    """Reject illegal characters, then upper-case (soft-masked bases are ordinary bases).

    The check runs on the original line: ``str.upper`` maps some non-ASCII letters to ASCII ones
    (U+017F long s -> 'S'), which would otherwise slip through and shift column numbers. ``column`` is the
    number of characters of the line before ``line`` (non-zero for the rest of a line read in pieces).
    """
    bad = illegal.search(line)
    if bad is not None:
        col = column + bad.start()
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


def read_fasta(path: PathLike, *, alphabet: Alphabet = "iupac", whole_headers: bool = False) -> Iterator[SeqRecord]:
    """Stream validated records from a (optionally gzipped) FASTA file.

    Lower-case bases are upper-cased, CRLF and blank lines are accepted. ``alphabet="iupac"`` allows
    ``ACGTURYSWKMBDHVN``; ``"acgtn"`` allows only ``ACGTN``. Gaps ('-') are never allowed.
    A record is yielded as soon as it is complete, before the next one is read.
    ``whole_headers=True`` names records by their whole header line, repeats allowed: for published files whose
    first header words are not identifiers (iPromoter-2L, CNNProm B. subtilis); the caller makes ids unique.
    """
    n_records = 0
    pieces: list[str] = []
    for name, piece in _FastaParser(path, alphabet, whole_headers).events():
        if piece:
            pieces.append(piece.decode("ascii"))
            continue
        yield SeqRecord(name, "".join(pieces))
        pieces = []
        n_records += 1
    log.debug("%s: read %d FASTA records", path, n_records)


def iter_fasta_chunks(
    path: PathLike, chunk_bp: int, *, alphabet: Alphabet = "iupac"
) -> Iterator[tuple[str, str, bool]]:
    """Stream a FASTA file as ``(record name, chunk, is_last)`` with bounded memory.

    Each record comes as consecutive upper-case chunks of exactly ``chunk_bp`` bases, the last one of 1 to
    ``chunk_bp`` bases with ``is_last=True``; joined, they are the record's :func:`read_fasta` sequence.
    Validation and error messages are those of :func:`read_fasta` (which is built on the same parser); an
    error in a record is raised after its earlier chunks were yielded. Memory stays within about
    ``chunk_bp`` plus one 1 MiB read block whatever the line length, since lines are read in pieces.
    """
    if isinstance(chunk_bp, bool) or not isinstance(chunk_bp, int) or chunk_bp < 1:
        raise ConfigError(f"iter_fasta_chunks: chunk_bp must be a positive integer, got {chunk_bp!r}")
    buffer = bytearray()
    for name, piece in _FastaParser(path, alphabet).events():
        if not piece:
            yield name, buffer.decode("ascii"), True
            buffer.clear()
            continue
        buffer += piece
        # Keep at least one base back: only the end-of-record event tells whether a chunk is the last one.
        while len(buffer) > chunk_bp:
            yield name, buffer[:chunk_bp].decode("ascii"), False
            del buffer[:chunk_bp]


class _FastaParser:
    """FASTA parser over binary blocks, so that neither a record nor a line is ever held whole.

    :meth:`events` yields ``(name, bases)`` with validated upper-case ASCII bases (never empty) and then
    ``(name, b"")`` when the record is complete. Runs of sequence lines that are clean (only alphabet letters
    and newlines, the common case) are checked and upper-cased with two C-speed passes over a whole block;
    anything else falls back to line-by-line checks with the exact rules of a line: trailing whitespace is
    stripped, the first illegal character is reported with its line and column. Newlines are universal
    (CRLF and lone CR count as LF) and bytes that are not UTF-8 read as U+FFFD, as :func:`open_text` does.
    """

    def __init__(self, path: PathLike, alphabet: str, whole_headers: bool = False) -> None:
        self.path = path
        self.whole_headers = whole_headers
        self.block = _READ_BLOCK  # read at call time, so that tests can shrink it
        self.illegal = _check_alphabet(alphabet)
        self.legal = _LEGAL_BYTES[alphabet]
        self.illegal_bytes = _ILLEGAL_BYTES[alphabet]
        self.seen: dict[str, int] = {}
        self.name: str | None = None
        self.header_line = 0
        self.n_bases = 0  # of the current record
        self.lineno = 1  # line of the first unconsumed byte
        self.col = 0  # characters of that line consumed already (lines can arrive in pieces)

    def events(self) -> Iterator[tuple[str, bytes]]:
        pending = b""  # unconsumed text: a header (or a line before the first one) or trailing whitespace
        held_cr = False
        with _open_binary(self.path) as handle:
            while True:
                try:
                    data = handle.read1(self.block)
                except _GZIP_ERRORS as exc:
                    # the last line read in full, as when reading line by line
                    raise _gzip_error(self.path, self.name, _GzipStreamError(self.lineno - 1, exc)) from exc
                final = not data
                if held_cr:
                    data = b"\r" + data
                held_cr = not final and data.endswith(b"\r")  # may be the first half of a CRLF
                if held_cr:
                    data = data[:-1]
                data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
                pending = yield from self._consume(pending + data if pending else data, final)
                if final:
                    break
        if self.name is None:
            raise InputFormatError(f"{self.path}: empty file (no FASTA records)")
        yield from self._end_record()

    def _end_record(self) -> Iterator[tuple[str, bytes]]:
        if self.name is not None:
            if not self.n_bases:
                raise _format_error(
                    self.path, self.header_line, self.name, "empty record (no sequence lines after the header)"
                )
            yield self.name, b""

    def _consume(self, text: bytes, final: bool) -> Generator[tuple[str, bytes], None, bytes]:
        """Parse ``text`` (starting at line ``lineno``, column ``col``); returns the unconsumed rest."""
        pos, end = 0, len(text)
        while pos < end:
            if self.col == 0 and (text[pos] == ord(">") or self.name is None):
                newline = text.find(b"\n", pos)
                if newline < 0:
                    if not final:
                        return text[pos:]
                    newline = end
                line = text[pos:newline].decode("utf-8", "replace").rstrip()
                if line.startswith(">"):
                    yield from self._end_record()
                    if self.whole_headers:
                        self.name = line[1:].strip()
                        if not self.name:
                            raise _format_error(self.path, self.lineno, None, f"header line {line!r} is empty")
                    else:
                        self.name = _header_name(line, self.path, self.lineno)
                        _register_name(self.name, self.seen, self.path, self.lineno)
                    self.header_line, self.n_bases = self.lineno, 0
                elif line:
                    raise _format_error(
                        self.path, self.lineno, None, f"text before the first '>' header: {_excerpt(line)}"
                    )
                pos = newline + 1
                self.lineno += 1
                continue
            stop = text.find(b"\n>", pos)  # sequence lines run up to the next header line
            stop = end if stop < 0 else stop + 1
            rest = yield from self._sequence(text[pos:stop] if pos or stop < end else text, stop < end or final)
            if rest:
                return rest
            pos = stop
        return b""

    def _sequence(self, run: bytes, complete: bool) -> Generator[tuple[str, bytes], None, bytes]:
        """Sequence text of the current record; ``complete``: its last line ends here (else more may follow)."""
        assert self.name is not None
        if not run.translate(None, self.legal):
            bases = run.translate(_UPPER, b"\n")
            n_newlines = len(run) - len(bases)
            if n_newlines:
                self.lineno += n_newlines
                self.col = len(run) - 1 - run.rfind(b"\n")
            else:
                self.col += len(run)
            if bases:
                self.n_bases += len(bases)
                yield self.name, bases
            return b""
        lines = run.split(b"\n")
        for index, piece in enumerate(lines):
            if index == len(lines) - 1 and not complete:
                return (yield from self._partial_line(piece))
            line = piece.decode("utf-8", "replace").rstrip()
            if line:
                bases = _validated_bases(line, self.illegal, self.path, self.lineno, self.name, self.col)
                self.n_bases += len(bases)
                yield self.name, bases.encode("ascii")
            if index < len(lines) - 1:
                self.lineno += 1
                self.col = 0
        return b""

    def _partial_line(self, piece: bytes) -> Generator[tuple[str, bytes], None, bytes]:
        """The start of a line whose end is in a later block: emit its clean prefix, keep back what may turn
        out to be trailing whitespace, and raise now if an illegal character is followed by anything else."""
        assert self.name is not None
        bad = self.illegal_bytes.search(piece)
        cut = len(piece) if bad is None else bad.start()
        if bad is not None:
            # final=False keeps back a multi-byte character cut by the block boundary
            tail = codecs.getincrementaldecoder("utf-8")("replace").decode(piece[cut:])
            if tail and not tail.isspace():
                raise _format_error(
                    self.path,
                    self.lineno,
                    self.name,
                    f"illegal sequence character {tail[0]!r} at column {self.col + cut + 1}",
                )
        if cut:
            self.n_bases += cut
            self.col += cut
            yield self.name, piece[:cut].translate(_UPPER)
        return piece[cut:]


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
