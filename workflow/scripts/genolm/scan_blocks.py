"""Bounded-memory access to a genome for scanning: contig lengths, the windows of each scan part, and the sequence
of each block of windows.

A genome is one or more FASTA files (plain, gzipped, or bgzipped with a ``.fai``/``.gzi`` index). Contig names
must be unique over all its files. Scanning never holds a whole contig: the windows of a contig
(:func:`genolm.scan.iter_windows`) are cut into blocks spanning at most ``block_bp`` window starts, and
:func:`iter_block_sequences` yields each block's bases ``[first start, last start + window)`` while reading the
files once, front to back (or fetching the regions through ``pysam.FastaFile`` when the files are indexed). Peak
memory is one block plus one read chunk, whatever the genome or contig size; only the per-window scores (the
output) grow with the genome.

Scatter: the windows of the whole genome, in file and contig order, are split into ``parts`` runs of nearly
equal size. Each part owns a disjoint set of window starts, so its blocks overlap the neighbouring part's
sequence by less than a window but never share a window: gathered scores equal a single job's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from genolm.errors import ConfigError, InputFormatError
from genolm.scan import iter_windows
from genolm.seqio import iter_fasta_chunks

__all__ = [
    "BLOCK_BP",
    "Block",
    "as_paths",
    "contig_lengths",
    "fetch_regions",
    "iter_block_sequences",
    "plan_blocks",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]

# Window starts per block: 1 Mbp of sequence (plus a window) in memory at a time; the CNN pass cuts each block
# further into its own chunks.
BLOCK_BP = 1_000_000
_READ_CHUNK_BP = 1 << 20


@dataclass(frozen=True)
class Block:
    """Consecutive windows of one contig: ``starts`` (forward, 0-based, increasing) and where the block's
    bases lie on the contig, ``[seq_start, seq_end)``."""

    contig: str
    contig_length: int
    starts: np.ndarray
    window: int

    @property
    def seq_start(self) -> int:
        return int(self.starts[0])

    @property
    def seq_end(self) -> int:
        return int(self.starts[-1]) + self.window


def as_paths(
    files: PathLike | Sequence[PathLike], when_empty: str = "a genome needs at least one FASTA file"
) -> list[Path]:
    """One path or several (the files of one genome, the checkpoints of one seed ensemble), as a list; an empty
    sequence is a ConfigError saying `when_empty`."""
    if isinstance(files, str | os.PathLike):
        return [Path(files)]
    paths = [Path(path) for path in files]
    if not paths:
        raise ConfigError(when_empty)
    return paths


def _indexed(path: Path) -> bool:
    """Whether pysam.FastaFile can fetch regions: a .fai, and a .gzi too when the file is compressed."""
    if not Path(f"{path}.fai").exists():
        return False
    with open(path, "rb") as handle:
        compressed = handle.read(2) == b"\x1f\x8b"
    return not compressed or Path(f"{path}.gzi").exists()


def _file_lengths(path: Path) -> Iterator[tuple[str, int, int]]:
    """(name, length, line of the header or 0) of each record, from the index or a streaming pass."""
    if _indexed(path):
        with open(f"{path}.fai") as fai:
            for number, line in enumerate(fai, start=1):
                fields = line.rstrip("\n").split("\t")
                if len(fields) < 2:
                    raise InputFormatError(f"{path}.fai: line {number}: expected name and length")
                yield fields[0], int(fields[1]), 0
        return
    name, length = None, 0
    for record, chunk, last in iter_fasta_chunks(path, _READ_CHUNK_BP):
        name = record
        length += len(chunk)
        if last:
            yield name, length, 0
            length = 0


def contig_lengths(fasta: PathLike | Sequence[PathLike]) -> dict[str, int]:
    """Contig name -> length over every file of a genome, in file then record order.

    A name used twice raises InputFormatError naming the file and record: within one file the FASTA reader
    reports both lines; across files the message names both files.
    """
    lengths: dict[str, int] = {}
    where: dict[str, Path] = {}
    for path in as_paths(fasta):
        for name, length, _ in _file_lengths(path):
            if name in lengths:
                first = where[name]
                detail = "twice in its index" if first == path else f"already a contig of {first}"
                raise InputFormatError(f"{path}: record '{name}': duplicate contig name ({detail})")
            lengths[name] = length
            where[name] = path
    if not lengths:
        raise InputFormatError(f"{', '.join(map(str, as_paths(fasta)))}: no FASTA records")
    return lengths


def plan_blocks(
    lengths: Mapping[str, int],
    window: int,
    step: int,
    *,
    part: int = 0,
    parts: int = 1,
    block_bp: int | None = None,
) -> list[Block]:
    """The blocks of windows that scan part ``part`` (0-based) of ``parts`` owns, in genome order.

    All window starts of the genome (:func:`iter_windows` per contig, contigs never joined) are numbered in
    order and split into ``parts`` runs of nearly equal length; a part may end inside a contig or span several.
    Each run is cut into blocks whose starts span at most ``block_bp`` bases (default :data:`BLOCK_BP`).
    Contigs shorter than the window have no windows and appear in no block.
    """
    if parts < 1 or not 0 <= part < parts:
        raise ConfigError(f"scan part {part} of {parts}: need 0 <= part < parts")
    block_bp = BLOCK_BP if block_bp is None else block_bp
    if block_bp < 1:
        raise ConfigError(f"block_bp must be >= 1, got {block_bp}")
    counts = {name: iter_windows(length, window, step).size for name, length in lengths.items()}
    total = sum(counts.values())
    lo, hi = part * total // parts, (part + 1) * total // parts
    blocks: list[Block] = []
    offset = 0
    for name, length in lengths.items():
        n = counts[name]
        first, last = max(lo - offset, 0), min(hi - offset, n)
        offset += n
        if first >= last:
            continue
        starts = iter_windows(length, window, step)[first:last]
        # block boundaries: the first start at or after each multiple of block_bp past the first owned start
        cuts = np.searchsorted(starts, np.arange(starts[0] + block_bp, starts[-1] + 1, block_bp), side="left")
        for piece in np.split(starts, cuts):
            if piece.size:
                blocks.append(Block(name, length, piece, window))
    return blocks


def _pysam_regions(
    paths: Sequence[Path], wanted: Mapping[str, list[tuple[int, int]]]
) -> Iterator[tuple[str, int, int, str]]:
    import pysam

    for path in paths:
        with pysam.FastaFile(str(path)) as fasta:
            for name in fasta.references:
                for start, end in wanted.get(name, []):
                    yield name, start, end, fasta.fetch(name, start, end).upper()


def _streamed_regions(
    paths: Sequence[Path], wanted: Mapping[str, list[tuple[int, int]]]
) -> Iterator[tuple[str, int, int, str]]:
    """Regions (sorted by start per contig) cut from a front-to-back read, keeping only what a later region
    still needs."""
    for path in paths:
        buffer, buffer_start, position = [], 0, 0  # chunks held, contig coordinate of the first, bases read
        pending: list[tuple[int, int]] = []
        for name, chunk, last in iter_fasta_chunks(path, _READ_CHUNK_BP):
            if position == 0:
                pending = list(wanted.get(name, []))
                buffer, buffer_start = [], 0
            position += len(chunk)
            if pending:
                buffer.append(chunk)
            while pending and pending[0][1] <= position:
                start, end = pending.pop(0)
                held = "".join(buffer)
                yield name, start, end, held[start - buffer_start : end - buffer_start]
                keep_from = min(pending[0][0] if pending else position, position)
                buffer, buffer_start = [held[keep_from - buffer_start :]], keep_from
            if pending and len(buffer) > 1:
                # nothing before the next region's start is needed again
                held = "".join(buffer)
                cut = max(0, min(pending[0][0], position) - buffer_start)
                buffer, buffer_start = [held[cut:]], buffer_start + cut
            if last:
                if pending:
                    raise InputFormatError(f"{path}: record '{name}' ends at {position} bp, before {pending[0]}")
                position = 0


def fetch_regions(
    fasta: PathLike | Sequence[PathLike], regions: Iterable[tuple[str, int, int]]
) -> Iterator[tuple[str, int, int, str]]:
    """(contig, start, end, upper-case bases) of each region, in genome order (file, contig, start).

    Reads each file once, holding at most a read chunk plus the bases between the start of the next region
    and the read position; indexed files are fetched through ``pysam.FastaFile`` instead.
    """
    paths = as_paths(fasta)
    wanted: dict[str, list[tuple[int, int]]] = {}
    for contig, start, end in regions:
        if not 0 <= start < end:
            raise ConfigError(f"region {contig}:{start}-{end} is empty or negative")
        wanted.setdefault(contig, []).append((start, end))
    for spans in wanted.values():
        spans.sort()
    if all(_indexed(path) for path in paths):
        yield from _pysam_regions(paths, wanted)
    else:
        yield from _streamed_regions(paths, wanted)


def iter_block_sequences(fasta: PathLike | Sequence[PathLike], blocks: Sequence[Block]) -> Iterator[tuple[Block, str]]:
    """Each block with its bases ``[seq_start, seq_end)``, in genome order (blocks must be in that order)."""
    by_region = {(b.contig, b.seq_start, b.seq_end): b for b in blocks}
    for contig, start, end, bases in fetch_regions(fasta, by_region):
        block = by_region[(contig, start, end)]
        if len(bases) != end - start:
            raise InputFormatError(
                f"{contig}: expected {end - start} bases at {start}-{end}, read {len(bases)} (index out of date?)"
            )
        yield block, bases
