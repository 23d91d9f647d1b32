"""Bounded-memory tokenization of a genome FASTA or a FASTQ into an .npz token file.

Sequences are read in fixed-size chunks (:func:`genolm.seqio.iter_fasta_chunks`) and encoded with
:meth:`genolm.kmers.KmerTokenizer.encode_stream`; tokens go to an anonymous temporary file beside the output
as they are made, and the .npz members are then written from it block by block. Memory use is a few read
and chunk buffers whatever the genome or chromosome size; the temporary file holds the tokens once.

File layouts (all arrays 1-D; ``vocab`` is the tokenizer's JSON, so tokens are never decoded with other
settings):

- corpus (``write_corpus``): ``tokens`` (uint16, or int32 for k=8) of every contig's + then - strand,
  concatenated; ``offsets`` (int64, one more than streams) so that stream i is ``tokens[offsets[i]:offsets[i+1]]``;
  ``names`` ("<contig>+", "<contig>-").
- reads (``write_read_tokens``): ``tokens``, ``offsets`` as above but one stream per read, ``names`` (read
  names) and ``bp_lengths`` (read lengths in bases, int64).

The minus strand of a contig is the reverse complement of ACGT only: every other byte stays a non-ACGT byte
(so ``U``, which :func:`genolm.seqio.reverse_complement` turns into ``A``, stays unknown on both strands).
With stride 1 it is made by arithmetic on the forward tokens (each id mapped to its reverse complement's id,
read backwards from the temporary file); with a larger stride the grid starts differ between strands, so the
contig's bases are kept in a second temporary file and encoded again, read backwards and complemented.
Both are exact: they equal ``encode`` of the reverse-complemented contig.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO

import numpy as np

from genolm.atomic import atomic_writer
from genolm.errors import ConfigError
from genolm.kmers import KmerTokenizer
from genolm.seqio import iter_fasta_chunks, read_fastq

__all__ = ["DEFAULT_CHUNK_BP", "StreamSummary", "write_corpus", "write_read_tokens"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

DEFAULT_CHUNK_BP = 1 << 18  # 256 kbp: ~4 MiB peak; larger chunks are no faster
_BLOCK_ITEMS = 1 << 18  # array items per block read back from a temporary file
_READ_BATCH = 4096  # reads encoded together by write_read_tokens
# zlib level of compressed .npz members: on k-mer ids, level 1 is several times faster than numpy's default (6)
# for files a few per cent larger. Even so, compression takes most of the time of tokenizing a genome.
_ZIP_LEVEL = 1
_COMPLEMENT_ACGT = bytes.maketrans(b"ACGTacgt", b"TGCAtgca")


@dataclass(frozen=True)
class StreamSummary:
    """What a streaming tokenization wrote."""

    records: int
    bases: int
    tokens: int


class _Spill:
    """A growing 1-D little-endian array in an anonymous temporary file; only blocks are ever in memory."""

    def __init__(self, dtype: np.dtype | type, directory: PathLike, stack: ExitStack) -> None:
        self.dtype = np.dtype(dtype).newbyteorder("<")
        self.file: BinaryIO = stack.enter_context(tempfile.TemporaryFile(dir=directory))  # noqa: SIM115 (stack closes it)
        self.size = 0

    def append(self, values: np.ndarray | Iterable[int]) -> None:
        array = np.ascontiguousarray(values, dtype=self.dtype)
        self.file.seek(self.size * self.dtype.itemsize)
        self.file.write(memoryview(array).cast("B"))
        self.size += array.size

    def clear(self) -> None:
        self.size = 0
        self.file.truncate(0)

    def read(self, start: int, stop: int) -> np.ndarray:
        self.file.seek(start * self.dtype.itemsize)
        return np.frombuffer(self.file.read((stop - start) * self.dtype.itemsize), dtype=self.dtype)

    def blocks(self, start: int = 0, stop: int | None = None, reverse: bool = False) -> Iterator[np.ndarray]:
        """Consecutive blocks of items ``start..stop``, last block first when ``reverse``; bounds are taken now,
        so appending while iterating is safe."""
        stop = self.size if stop is None else stop
        bounds = [(lo, min(lo + _BLOCK_ITEMS, stop)) for lo in range(start, stop, _BLOCK_ITEMS)]
        for lo, hi in reversed(bounds) if reverse else bounds:
            yield self.read(lo, hi)


class _SpillNames:
    """Record names, one per line, in a temporary file (names never contain whitespace)."""

    def __init__(self, directory: PathLike, stack: ExitStack) -> None:
        self.file: IO[str] = stack.enter_context(
            tempfile.TemporaryFile("w+", encoding="utf-8", dir=directory)  # noqa: SIM115 (stack closes it)
        )
        self.size = 0
        self.width = 1

    def extend(self, names: list[str]) -> None:
        self.file.writelines(f"{name}\n" for name in names)
        self.size += len(names)
        self.width = max([self.width, *map(len, names)])

    def blocks(self) -> Iterator[np.ndarray]:
        self.file.seek(0)
        lines = (line.rstrip("\n") for line in self.file)
        while batch := list(itertools.islice(lines, _BLOCK_ITEMS // 8)):
            yield np.asarray(batch, dtype=f"<U{self.width}")


def _write_member(archive: zipfile.ZipFile, key: str, value: np.ndarray | _Spill | _SpillNames) -> None:
    """One .npy member of an .npz, streamed from a temporary file when ``value`` is one."""
    with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
        if isinstance(value, np.ndarray):
            np.lib.format.write_array(member, value, allow_pickle=False)
            return
        dtype = np.dtype(f"<U{value.width}") if isinstance(value, _SpillNames) else value.dtype
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": (value.size,)}
        np.lib.format.write_array_header_1_0(member, header)
        for block in value.blocks():
            member.write(memoryview(np.ascontiguousarray(block)).cast("B"))


def _write_npz(handle: BinaryIO, members: dict[str, np.ndarray | _Spill | _SpillNames], compress: bool) -> None:
    """An .npz that ``np.load`` reads like one from ``np.savez_compressed`` (or ``np.savez``)."""
    compression = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(handle, "w", compression=compression, compresslevel=_ZIP_LEVEL) as archive:
        for key, value in members.items():
            _write_member(archive, key, value)


def _vocab_array(tokenizer: KmerTokenizer) -> np.ndarray:
    return np.asarray(json.dumps(tokenizer.to_dict(), sort_keys=True))


def _reverse_complement_chunks(bases: _Spill, length: int, chunk_bp: int) -> Iterator[bytes]:
    """The reverse complement (of ACGT; other bytes kept) of the first ``length`` bases, in chunks."""
    for stop in range(length, 0, -chunk_bp):
        block = bases.read(max(0, stop - chunk_bp), stop).tobytes()
        yield block.translate(_COMPLEMENT_ACGT)[::-1]


class _RecordChunks:
    """The chunk strings of one record, counted and also appended to ``bases`` when given."""

    def __init__(self, chunks: Iterable[tuple[str, str, bool]], bases: _Spill | None) -> None:
        self.chunks = chunks
        self.bases = bases
        self.length = 0

    def __iter__(self) -> Iterator[str]:
        for _, chunk, _ in self.chunks:
            self.length += len(chunk)
            if self.bases is not None:
                self.bases.append(np.frombuffer(chunk.encode("ascii"), dtype=np.uint8))
            yield chunk


def _batches(items: Iterable, size: int) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def write_corpus(
    fasta: PathLike,
    corpus_path: PathLike,
    tokenizer: KmerTokenizer,
    *,
    chunk_bp: int = DEFAULT_CHUNK_BP,
    compress: bool = False,
) -> StreamSummary:
    """Tokenize every contig of ``fasta`` on both strands into a corpus .npz (layout in the module docstring).

    Contigs are never joined. Reads ``chunk_bp`` bases at a time; the output replaces ``corpus_path`` only
    when complete. ``compress=True`` deflates the members: about 1.5x smaller but several times slower, so it is
    off by default.
    """
    if isinstance(chunk_bp, bool) or not isinstance(chunk_bp, int) or chunk_bp < 1:
        raise ConfigError(f"chunk_bp must be a positive integer, got {chunk_bp!r}")
    dtype = tokenizer.storage_dtype
    names: list[str] = []
    offsets = [0]
    n_records = n_bases = 0
    with atomic_writer(corpus_path) as handle, ExitStack() as stack:
        directory = Path(corpus_path).parent
        tokens = _Spill(dtype, directory, stack)
        bases = _Spill(np.uint8, directory, stack) if tokenizer.stride > 1 else None
        # grouping by name is safe: the reader rejects a duplicate name before yielding any of its bases
        records = itertools.groupby(iter_fasta_chunks(fasta, chunk_bp), key=lambda item: item[0])
        for name, chunks in records:
            if bases is not None:
                bases.clear()  # one contig's bases at a time
            start = tokens.size
            record = _RecordChunks(chunks, bases)
            for ids in tokenizer.encode_stream(record, name=name, dtype=dtype):
                tokens.append(ids)
            plus_end = tokens.size
            if bases is None:
                for block in tokens.blocks(start, plus_end, reverse=True):
                    tokens.append(tokenizer.reverse_complement_tokens(block))
            else:
                minus = _reverse_complement_chunks(bases, record.length, chunk_bp)
                for ids in tokenizer.encode_stream(minus, name=name, dtype=dtype):
                    tokens.append(ids)
            names += [f"{name}+", f"{name}-"]
            offsets += [plus_end, tokens.size]
            n_records += 1
            n_bases += record.length
            if plus_end == start:
                reason = f"shorter than k={tokenizer.k}" if record.length < tokenizer.k else "every k-mer skipped"
                log.warning("%s: contig %s (%d bp) gives no tokens (%s)", fasta, name, record.length, reason)
            log.debug("%s: %s tokenized, %d tokens per strand", fasta, name, plus_end - start)
        _write_npz(
            handle,
            {
                "tokens": tokens,
                "offsets": np.asarray(offsets, dtype=np.int64),
                "names": np.asarray(names, dtype=np.str_),
                "vocab": _vocab_array(tokenizer),
            },
            compress,
        )
    log.info("%s: %d contigs, %d tokens on both strands -> %s", fasta, n_records, tokens.size, corpus_path)
    return StreamSummary(records=n_records, bases=n_bases, tokens=tokens.size)


def write_read_tokens(
    fastq: PathLike,
    out_path: PathLike,
    tokenizer: KmerTokenizer,
    *,
    batch_reads: int = _READ_BATCH,
    compress: bool = False,
) -> StreamSummary:
    """Tokenize every read of ``fastq`` into a ragged read-token .npz (layout in the module docstring).

    Reads are encoded ``batch_reads`` at a time; reads shorter than k get zero tokens (and keep their name).
    """
    if isinstance(batch_reads, bool) or not isinstance(batch_reads, int) or batch_reads < 1:
        raise ConfigError(f"batch_reads must be a positive integer, got {batch_reads!r}")
    dtype = tokenizer.storage_dtype
    with atomic_writer(out_path) as handle, ExitStack() as stack:
        directory = Path(out_path).parent
        tokens, offsets = _Spill(dtype, directory, stack), _Spill(np.int64, directory, stack)
        lengths, names = _Spill(np.int64, directory, stack), _SpillNames(directory, stack)
        offsets.append([0])
        n_bases = n_empty = 0
        for batch in _batches(read_fastq(fastq), batch_reads):
            batch_names = [record.name for record in batch]
            sequences = [record.sequence for record in batch]
            matrix, counts = tokenizer.encode_batch(sequences, names=batch_names)
            tokens.append(matrix[np.arange(matrix.shape[1]) < counts[:, None]])
            offsets.append(tokens.size - counts.sum() + np.cumsum(counts))
            lengths.append([len(sequence) for sequence in sequences])
            n_bases += sum(len(sequence) for sequence in sequences)
            n_empty += int((counts == 0).sum())
            names.extend(batch_names)
        _write_npz(
            handle,
            {
                "tokens": tokens,
                "offsets": offsets,
                "names": names,
                "bp_lengths": lengths,
                "vocab": _vocab_array(tokenizer),
            },
            compress,
        )
        summary = StreamSummary(records=names.size, bases=n_bases, tokens=tokens.size)
    if n_empty:
        log.warning(
            "%s: %d of %d reads give no tokens (shorter than k=%d or, under 'skip', no clean k-mer)",
            fastq,
            n_empty,
            summary.records,
            tokenizer.k,
        )
    log.info("%s: %d reads, %d tokens -> %s", fastq, summary.records, summary.tokens, out_path)
    return summary
