"""Homology IS caller: IS elements of a genome found by shared k-mers with a reference library (ISfinder).

A window classifier trained on balanced sets cannot reach the specificity a whole genome needs: at one false
window in a thousand, a 4.6 Mbp scan still makes thousands of false calls. This caller is the homology baseline the
learned scans sit beside. It needs no BLAST: everything is numpy.

**Index.** Every canonical k-mer (the smaller of the k-mer and its reverse complement, 2-bit packed into a uint64;
k-mers with a base other than A/C/G/T are skipped) of every library element, as a sorted unique array with the
element of its first occurrence (file order). The library's own sequences (2-bit codes), names, families, groups
and the sha256 of the FASTA it came from go into the same ``.npz`` (plain arrays, loaded without pickle).

**Scan.** Contigs are streamed in chunks (bounded memory: one chunk plus the index plus the hits) and every
position whose canonical k-mer is in the index is kept as a hit (a bitmap of the index's k-mers under a
multiplicative hash turns most genome k-mers away before the binary search). Hits closer than ``max_gap`` bp form
regions. In each region the elements holding most of the hits' k-mers (first-occurrence votes, the top
``candidates``) are mapped exactly: every hit k-mer is placed on each candidate's own k-mers, giving (genome
position, element position, strand) pairs. Pairs on one diagonal (forward: genome - element position; reverse:
genome + element position), within ``band`` bp for small indels and without a gap over ``max_gap`` bp, form a
chain: one copy of that element, or of part of it. The chain with most k-mers is called, its hits are removed and
the region is searched again, so an IS inserted into another (IS30 inside IS911 on MG1655) gives three calls, not
one merged one. Chain ends within k bp of the element's ends are extended to them (a mismatch in the last k bases
otherwise trims the call).

**Calls.** A chain is called when it spans ``min_length`` bp or more, its identity estimate
``kmer_fraction ** (1 / k)`` reaches ``min_identity`` (``kmer_fraction``: the share of the k-mer positions of its
span found on the element; at a per-base identity p about p^k of the k-mers survive; 0.95 is ISfinder's isoform
level), and it covers at least ``min_element_fraction`` of the element (0 by default: annotations such as
RefSeq's list partial copies, 8 of MG1655's 50 IS). Each call has the element's name, family and group, the
strand of the match, the element interval it covers, the k-mer fraction and the identity estimate (the BED
score is 1000 x identity). ISfinder records longer than ``max_element_length`` are not indexed (see
:func:`build_library_index`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from functools import cached_property
from itertools import groupby
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.errors import ConfigError, InputFormatError
from genolm.evaluate import write_tsv
from genolm.formats import write_bed, write_gff3
from genolm.genome_scan import CALL_TYPES, evaluate_scan, save_npz
from genolm.provenance import sha256_file
from genolm.scan import Call
from genolm.scan_blocks import as_paths, contig_lengths
from genolm.seqio import iter_fasta_chunks, open_text
from genolm.sources.splits import BASE_CODES, kmer_codes

__all__ = [
    "HomologyConfig",
    "KmerIndex",
    "build_index",
    "build_library_index",
    "call_elements",
    "canonical_kmers",
    "demo_library",
    "evaluate_homology",
    "genome_hits",
    "load_index",
    "save_index",
    "scan_homology",
    "write_demo_library",
]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
INDEX_FORMAT = "genolm-is-kmer-index"
INDEX_VERSION = 1
MAX_K = 31  # 2 bits per base in a uint64, with the top bits free
CALL_KIND = CALL_TYPES["is"]
ID_PREFIX = "homology"
_CHUNK_BP = 1 << 20  # bases of a contig hashed at a time
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd: a multiplicative hash


@dataclass(frozen=True)
class HomologyConfig:
    """Settings of the caller (config ``homology:`` block); see the module docstring for what each one does."""

    k: int = 21
    max_gap: int = 150
    band: int = 20
    min_length: int = 150
    min_identity: float = 0.95
    min_element_fraction: float = 0.0
    candidates: int = 8

    def __post_init__(self) -> None:
        if not 11 <= self.k <= MAX_K or self.k % 2 == 0:
            raise ConfigError(f"homology.k must be odd and within 11..{MAX_K}, got {self.k}")
        for name in ("max_gap", "band", "min_length", "candidates"):
            if getattr(self, name) < 1:
                raise ConfigError(f"homology.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("min_identity", "min_element_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"homology.{name} must be in [0, 1], got {getattr(self, name)}")

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any]) -> HomologyConfig:
        """The caller's keys of a config block; other keys (``enabled``) are ignored."""
        names = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in settings.items() if key in names})


# -----------------------------------------------------------------------------
# k-mers


def canonical_kmers(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(canonical k-mer, forward is canonical, valid) at every start of a 2-bit code array (4 = not ACGT).

    ``valid`` is False for k-mers holding a code 4; their values are meaningless. Arrays have ``len - k + 1``
    entries (none for a shorter array).
    """
    n = codes.size - k + 1
    if n <= 0:
        return np.empty(0, np.uint64), np.empty(0, bool), np.empty(0, bool)
    bad = codes > 3
    forward, reverse = kmer_codes(np.where(bad, 0, codes).astype(np.uint8), k, np.uint64)
    bad_before = np.concatenate([[0], np.cumsum(bad, dtype=np.int64)])
    valid = bad_before[k:] - bad_before[:n] == 0
    return np.minimum(forward, reverse), forward <= reverse, valid


def _codes(sequence: str) -> np.ndarray:
    """2-bit codes of a sequence (either case); 4 for N, IUPAC codes and anything else."""
    return BASE_CODES[np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)]


# -----------------------------------------------------------------------------
# Index


@dataclass(frozen=True)
class KmerIndex:
    """Sorted unique canonical k-mers of a library, the element of each one's first occurrence, and the library.

    ``codes[offsets[i]:offsets[i + 1]]`` are element i's 2-bit codes (4 = not ACGT).
    """

    k: int
    kmers: np.ndarray  # uint64, sorted, unique
    element: np.ndarray  # uint16 (int32 past 65,535 elements): the first element holding each k-mer
    names: np.ndarray  # str
    families: np.ndarray  # str
    groups: np.ndarray  # str
    offsets: np.ndarray  # int64, n_elements + 1
    codes: np.ndarray  # uint8
    source: str = ""
    source_sha256: str = ""
    max_element_length: int = 0  # longer library records were left out (0: none)

    @property
    def n_elements(self) -> int:
        return int(self.names.size)

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def element_codes(self, element: int) -> np.ndarray:
        return self.codes[self.offsets[element] : self.offsets[element + 1]]

    @cached_property
    def prefilter(self) -> tuple[np.ndarray, int]:
        """(bitmap, bits) of the index's k-mers under a multiplicative hash, about 16 bits per k-mer: most genome
        k-mers miss it, and only the rest pay for a binary search of the whole index."""
        bits = max(16, int(self.kmers.size * 16).bit_length())
        bitmap = np.zeros(1 << (bits - 3), np.uint8)
        slots = _slots(self.kmers, bits)
        np.bitwise_or.at(bitmap, slots >> np.uint64(3), np.left_shift(1, slots & np.uint64(7)).astype(np.uint8))
        return bitmap, bits


def build_index(
    names: Sequence[str],
    sequences: Sequence[str],
    k: int,
    *,
    families: Sequence[str] | None = None,
    groups: Sequence[str] | None = None,
    source: str = "",
    source_sha256: str = "",
    max_element_length: int = 0,
) -> KmerIndex:
    """The k-mer index of a library of named sequences."""
    HomologyConfig(k=k)  # checks k
    n = len(sequences)
    if len(names) != n or n == 0:
        raise InputFormatError(f"IS library: {len(names)} names for {n} sequences (need the same, at least one)")
    lengths = np.fromiter((len(seq) for seq in sequences), np.int64, n)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    codes = _codes("".join(sequences))
    element_dtype = np.uint16 if n <= np.iinfo(np.uint16).max else np.int32
    kmer_parts, element_parts = [], []
    for element in range(n):
        kmers, _, valid = canonical_kmers(codes[offsets[element] : offsets[element + 1]], k)
        kmer_parts.append(kmers[valid])
        element_parts.append(np.full(int(valid.sum()), element, dtype=element_dtype))
    kmers = np.concatenate(kmer_parts)
    owners = np.concatenate(element_parts)
    order = np.argsort(kmers, kind="stable")  # stable: the first occurrence (lowest element) leads each run
    kmers, owners = kmers[order], owners[order]
    first_of_run = np.r_[True, kmers[1:] != kmers[:-1]] if kmers.size else np.empty(0, bool)
    index = KmerIndex(
        k=k,
        kmers=kmers[first_of_run],
        element=owners[first_of_run],
        names=np.asarray(names, dtype=np.str_),
        families=np.asarray(families if families is not None else ["unknown"] * n, dtype=np.str_),
        groups=np.asarray(groups if groups is not None else ["unknown"] * n, dtype=np.str_),
        offsets=offsets,
        codes=codes,
        source=source,
        source_sha256=source_sha256,
        max_element_length=max_element_length,
    )
    log.info(
        "k-mer index: k=%d, %d elements, %d bp, %d k-mers (%d distinct)",
        k,
        n,
        int(offsets[-1]),
        int(first_of_run.size),
        index.kmers.size,
    )
    return index


def save_index(index: KmerIndex, path: PathLike) -> None:
    """The index as an .npz of plain arrays (no pickle), written atomically."""
    arrays = {
        field.name: np.asarray(getattr(index, field.name))
        for field in fields(index)
        if field.name not in ("k", "max_element_length")
    }
    arrays.update(
        {
            "format": np.asarray(INDEX_FORMAT),
            "version": np.int64(INDEX_VERSION),
            "k": np.int64(index.k),
            "max_element_length": np.int64(index.max_element_length),
        }
    )
    save_npz(path, arrays)


def load_index(path: PathLike) -> KmerIndex:
    """An index written by :func:`save_index`; InputFormatError for anything else."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as error:
        raise InputFormatError(f"{path}: cannot read the k-mer index ({error})") from error
    if str(arrays.get("format", "")) != INDEX_FORMAT or int(arrays.get("version", -1)) != INDEX_VERSION:
        raise InputFormatError(f"{path}: not a {INDEX_FORMAT} version {INDEX_VERSION} file")
    names = {field.name for field in fields(KmerIndex)}
    missing = names - arrays.keys()
    if missing:
        raise InputFormatError(f"{path}: k-mer index lacks {', '.join(sorted(missing))}")
    values = {key: arrays[key] for key in names}
    values.update(
        k=int(values["k"]),
        source=str(values["source"]),
        source_sha256=str(values["source_sha256"]),
        max_element_length=int(values["max_element_length"]),
    )
    return KmerIndex(**values)


def build_library_index(
    fasta: PathLike, out: PathLike, k: int, summary_csv: PathLike | None = None, max_element_length: int = 0
) -> KmerIndex:
    """Index an ISfinder FASTA and save it with the FASTA's sha256. Labels come from its headers or the summary
    CSV (genolm.sources.isfinder); identical sequences are indexed once, under their first name. Records longer
    than ``max_element_length`` (0: no limit) are left out: ISfinder's long entries are transposons (Tn3 family,
    Tn*) whose passenger genes (beta-lactamases, integrons) would otherwise be called as IS elements."""
    from genolm.sources.isfinder import read_isfinder

    started = time.perf_counter()
    table = read_isfinder(fasta, summary_csv)
    if max_element_length:
        long = table["length"] > max_element_length
        log.info("%s: leaving out %d records longer than %d bp", fasta, int(long.sum()), max_element_length)
        table = table[~long]
    index = build_index(
        table["name"].tolist(),
        table["sequence"].tolist(),
        k,
        families=table["family"].tolist(),
        groups=table["group"].tolist(),
        source=Path(fasta).name,
        source_sha256=sha256_file(fasta),
        max_element_length=max_element_length,
    )
    save_index(index, out)
    size_mb = Path(out).stat().st_size / 1e6
    log.info("%s: indexed in %.1f s, %.1f MB on disk", out, time.perf_counter() - started, size_mb)
    return index


def demo_library(demo: Mapping[str, Any], seed: int) -> tuple[list[str], list[str]]:
    """(names, consensus sequences) of the demo genome's IS families, regenerated from its config (genolm.demo
    is deterministic; this takes a fraction of a second)."""
    from genolm.demo import DemoConfig, generate_genome

    families = generate_genome(DemoConfig.from_dict({**demo, "seed": seed})).is_families
    return list(families), [family.consensus for family in families.values()]


def write_demo_library(demo: Mapping[str, Any], seed: int, out: PathLike) -> None:
    """The demo's IS family consensus sequences as an ISfinder-style FASTA (``>NAME family=NAME group=NA``)."""
    from genolm.atomic import write_text_atomic

    names, sequences = demo_library(demo, seed)
    text = "".join(f">{name} family={name} group=NA\n{seq}\n" for name, seq in zip(names, sequences, strict=True))
    write_text_atomic(out, text)
    log.info("%s: %d demo IS families", out, len(names))


# -----------------------------------------------------------------------------
# Genome hits


@dataclass(frozen=True)
class Hits:
    """Positions of a contig whose canonical k-mer is in the index: k-mer start, index row, and whether the
    contig's forward k-mer is the canonical one."""

    positions: np.ndarray
    rows: np.ndarray
    forward: np.ndarray

    def take(self, keep: np.ndarray) -> Hits:
        return Hits(self.positions[keep], self.rows[keep], self.forward[keep])

    @classmethod
    def concatenate(cls, parts: Sequence[Hits]) -> Hits:
        if not parts:
            return cls(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, bool))
        return cls(*(np.concatenate([getattr(part, field.name) for part in parts]) for field in fields(cls)))


def _slots(kmers: np.ndarray, bits: int) -> np.ndarray:
    """Fibonacci hashing of k-mers onto ``bits`` bits (the top bits of a 64-bit product)."""
    return (kmers * _GOLDEN) >> np.uint64(64 - bits)


def _lookup(index: KmerIndex, kmers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(indices into ``kmers`` of those in the index, their index rows)."""
    if index.kmers.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    bitmap, bits = index.prefilter
    slots = _slots(kmers, bits)
    maybe = np.flatnonzero(bitmap[slots >> np.uint64(3)] & np.left_shift(1, slots & np.uint64(7)).astype(np.uint8))
    rows = np.searchsorted(index.kmers, kmers[maybe])
    np.minimum(rows, index.kmers.size - 1, out=rows)
    found = index.kmers[rows] == kmers[maybe]
    return maybe[found], rows[found]


def genome_hits(chunks: Iterable[str], index: KmerIndex) -> tuple[Hits, int]:
    """Hits of one contig given as consecutive chunks (any sizes), and its length. Consecutive chunks share
    k - 1 bases so that no k-mer is lost at a chunk boundary."""
    k = index.k
    carry = np.empty(0, np.uint8)
    offset = 0  # contig position of carry[0]
    parts: list[Hits] = []
    for chunk in chunks:
        codes = np.concatenate([carry, _codes(chunk)])
        kmers, forward, valid = canonical_kmers(codes, k)
        if kmers.size:
            where, rows = _lookup(index, kmers)
            keep = valid[where]
            where, rows = where[keep], rows[keep]
            parts.append(Hits(where + offset, rows.astype(np.int32), forward[where]))
        cut = max(codes.size - (k - 1), 0)
        carry, offset = codes[cut:], offset + cut
    return Hits.concatenate(parts), offset + carry.size


# -----------------------------------------------------------------------------
# Chains and calls


@dataclass(frozen=True)
class Chain:
    """Hits on one diagonal of one element: genome ``[start, end)``, element ``[element_start, element_end)``
    (0-based on the element's own strand), strand of the match and the hits used (indices into the region)."""

    element: int
    strand: str
    start: int
    end: int
    element_start: int
    element_end: int
    n_kmers: int
    kmer_fraction: float
    used: np.ndarray

    def key(self) -> tuple[int, float, int]:
        """Sort key, best first: most k-mers, then the higher k-mer fraction, then the earlier element."""
        return (-self.n_kmers, -self.kmer_fraction, self.element)


def _element_kmers(index: KmerIndex, element: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted canonical k-mers, their positions on the element, forward is canonical) of one element."""
    kmers, forward, valid = canonical_kmers(index.element_codes(element), index.k)
    positions = np.flatnonzero(valid)
    order = np.argsort(kmers[positions], kind="stable")
    positions = positions[order]
    return kmers[positions], positions, forward[positions]


def _sorted(arrays: Sequence[np.ndarray], keys: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``arrays`` reordered by ``keys`` (np.lexsort: the last key is the primary one)."""
    order = np.lexsort(keys)
    return [array[order] for array in arrays]


def _chains(index: KmerIndex, element: int, hits: Hits, cfg: HomologyConfig, contig_length: int) -> list[Chain]:
    """Every chain of ``hits`` on one element (see the module docstring)."""
    k = index.k
    element_kmers, element_positions, element_forward = _element_kmers(index, element)
    if element_kmers.size == 0:
        return []
    kmers = index.kmers[hits.rows]
    lo = np.searchsorted(element_kmers, kmers, side="left")
    hi = np.searchsorted(element_kmers, kmers, side="right")
    counts = hi - lo
    if not counts.any():
        return []
    # one (hit, element position) pair per match; a k-mer twice on the element (inverted repeats) gives two
    hit_index = np.repeat(np.arange(kmers.size), counts)
    match = np.repeat(lo - np.cumsum(counts) + counts, counts) + np.arange(hit_index.size)
    genome = hits.positions[hit_index]
    on_element = element_positions[match]
    reverse = hits.forward[hit_index] != element_forward[match]
    diagonal = np.where(reverse, genome + on_element, genome - on_element)
    # single linkage on the diagonal (within `band`), then split where the genome gap exceeds `max_gap`
    genome, on_element, reverse, diagonal, hit_index = _sorted(
        (genome, on_element, reverse, diagonal, hit_index), keys=(genome, diagonal, reverse)
    )
    band_id = np.cumsum(np.r_[True, (reverse[1:] != reverse[:-1]) | (np.diff(diagonal) > cfg.band)])
    genome, on_element, reverse, hit_index, band_id = _sorted(
        (genome, on_element, reverse, hit_index, band_id), keys=(genome, band_id)
    )
    breaks = np.r_[True, (band_id[1:] != band_id[:-1]) | (np.diff(genome) > cfg.max_gap)]
    starts = np.flatnonzero(breaks)
    ends = np.r_[starts[1:], genome.size]
    length = int(index.lengths[element])
    chains = []
    for first, last in zip(starts, ends, strict=True):
        used = np.unique(hit_index[first:last])
        g0, g1 = int(genome[first]), int(genome[last - 1]) + k
        e0, e1 = int(on_element[first:last].min()), int(on_element[first:last].max()) + k
        strand = "-" if reverse[first] else "+"
        positions = max(g1 - g0, e1 - e0) - k + 1
        fraction = used.size / positions
        # a mismatch in the last k bases of a copy trims the chain: extend it to the element's ends when near
        head, tail = (e0 if e0 < k else 0), (length - e1 if length - e1 < k else 0)
        if strand == "+":
            g0, g1 = max(g0 - head, 0), min(g1 + tail, contig_length)
        else:
            g0, g1 = max(g0 - tail, 0), min(g1 + head, contig_length)
        chains.append(Chain(element, strand, g0, g1, e0 - head, e1 + tail, int(used.size), float(fraction), used))
    return chains


def _passes(chain: Chain, index: KmerIndex, cfg: HomologyConfig) -> bool:
    coverage = (chain.element_end - chain.element_start) / int(index.lengths[chain.element])
    return (
        chain.end - chain.start >= cfg.min_length
        and chain.kmer_fraction ** (1 / index.k) >= cfg.min_identity
        and coverage >= cfg.min_element_fraction
    )


def _region_chains(index: KmerIndex, hits: Hits, cfg: HomologyConfig, contig_length: int) -> list[Chain]:
    """Called chains of one region of hits: the best passing chain of the top-voted elements, its hits removed,
    again until none passes."""
    accepted: list[Chain] = []
    remaining = np.ones(hits.positions.size, bool)
    while remaining.any():
        left = np.flatnonzero(remaining)
        votes = np.bincount(index.element[hits.rows[left]], minlength=index.n_elements)
        ranked = np.argsort(-votes, kind="stable")[: cfg.candidates]
        ranked = ranked[votes[ranked] > 0]
        region = hits.take(left)
        candidates = [
            chain
            for element in ranked
            for chain in _chains(index, int(element), region, cfg, contig_length)
            if _passes(chain, index, cfg)
        ]
        candidates = [chain for chain in candidates if not _overlaps(chain, accepted)]
        if not candidates:
            break
        best = min(candidates, key=Chain.key)
        accepted.append(best)
        remaining[left[best.used]] = False
    return accepted


def _overlaps(chain: Chain, accepted: Sequence[Chain], limit: float = 0.5) -> bool:
    """Whether more than ``limit`` of the chain lies inside an accepted one."""
    for other in accepted:
        overlap = min(chain.end, other.end) - max(chain.start, other.start)
        if overlap > limit * (chain.end - chain.start):
            return True
    return False


def _as_call(contig: str, chain: Chain, index: KmerIndex) -> Call:
    length = int(index.lengths[chain.element])
    identity = chain.kmer_fraction ** (1 / index.k)
    attributes = (
        ("Name", str(index.names[chain.element])),
        ("family", str(index.families[chain.element])),
        ("group", str(index.groups[chain.element])),
        ("element_start", str(chain.element_start + 1)),
        ("element_end", str(chain.element_end)),
        ("element_length", str(length)),
        ("element_coverage", f"{(chain.element_end - chain.element_start) / length:.4f}"),
        ("kmers", str(chain.n_kmers)),
        ("kmer_fraction", f"{chain.kmer_fraction:.4f}"),
        ("identity", f"{identity:.4f}"),
    )
    return Call(contig, chain.start, chain.end, chain.strand, float(identity), chain.start, CALL_KIND, 1, 0, attributes)


def call_elements(contig: str, hits: Hits, contig_length: int, index: KmerIndex, cfg: HomologyConfig) -> list[Call]:
    """IS calls of one contig from its hits, sorted by position."""
    if hits.positions.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(hits.positions) > cfg.max_gap) + 1
    calls = []
    for region in np.split(np.arange(hits.positions.size), breaks):
        span = int(hits.positions[region[-1]] - hits.positions[region[0]]) + index.k
        if span < cfg.min_length:
            continue
        for chain in _region_chains(index, hits.take(region), cfg, contig_length):
            calls.append(_as_call(contig, chain, index))
    return sorted(calls, key=lambda call: (call.start, call.end, call.strand))


# -----------------------------------------------------------------------------
# Genome scan


def _has_records(path: Path) -> bool:
    """Whether a FASTA file holds anything but blank lines (an empty genome gives empty outputs, not an error)."""
    with open_text(path) as handle:
        return any(line.strip() for line in handle)


def _contig_chunks(paths: Sequence[Path]) -> Iterator[tuple[str, Iterator[str]]]:
    """(contig, its chunks) in genome order, streamed; each contig's chunks must be read before the next contig."""
    for path in paths:
        for name, pieces in groupby(iter_fasta_chunks(path, _CHUNK_BP), key=itemgetter(0)):
            yield name, (chunk for _, chunk, _ in pieces)


def scan_homology(
    fasta: PathLike | Sequence[PathLike],
    index_path: PathLike,
    outputs: Mapping[str, PathLike],
    genome: str,
    settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Call IS elements on every contig of a genome (one FASTA or several); write BED, GFF3 and a summary row."""
    cfg = HomologyConfig.from_mapping(settings or {})
    started = time.perf_counter()
    index = load_index(index_path)
    if index.k != cfg.k:
        raise ConfigError(f"{index_path}: index built with k={index.k}, but homology.k is {cfg.k}; rebuild it")
    paths = [path for path in as_paths(fasta) if _has_records(path)]
    if not paths:
        log.warning("%s: the genome FASTA holds no records; writing empty outputs", genome)
    lengths = contig_lengths(paths) if paths else {}
    loaded = time.perf_counter() - started
    calls: list[Call] = []
    n_hits, short = 0, []
    for contig, chunks in _contig_chunks(paths):
        hits, length = genome_hits(chunks, index)
        if length < index.k:
            short.append(contig)
        n_hits += hits.positions.size
        contig_calls = call_elements(contig, hits, length, index, cfg)
        log.info("%s: %d bp, %d k-mer hits, %d IS calls", contig, length, hits.positions.size, len(contig_calls))
        calls += contig_calls
    seconds = time.perf_counter() - started
    provenance = {
        "genolm_caller": "is_homology",
        "index_source": index.source,
        "index_source_sha256": index.source_sha256,
        "fasta": ",".join(map(str, as_paths(fasta))),
        "settings": asdict(cfg),
    }
    order = list(lengths)
    write_bed(calls, outputs["bed"], provenance=provenance, contig_order=order, id_prefix=ID_PREFIX)
    write_gff3(calls, outputs["gff"], provenance=provenance, sequence_lengths=lengths, id_prefix=ID_PREFIX)
    total = sum(lengths.values())
    row = {
        "genome": genome,
        "caller": "homology",
        "library": index.source,
        "k": index.k,
        "library_elements": index.n_elements,
        "index_kmers": index.kmers.size,
        "contigs": len(lengths),
        "contigs_shorter_than_k": len(short),
        "bp": total,
        "kmer_hits": n_hits,
        "calls": len(calls),
        "calls_plus": sum(call.strand == "+" for call in calls),
        "calls_minus": sum(call.strand == "-" for call in calls),
        "families": len({dict(call.attributes)["family"] for call in calls}),
        "index_load_seconds": round(loaded, 2),
        "seconds": round(seconds, 2),
        "bp_per_s": round(total / seconds) if seconds > 0 else float("nan"),
    }
    summary = pd.DataFrame([row])
    write_tsv(summary, outputs["summary"])
    return summary


def evaluate_homology(
    calls_gff: PathLike,
    truth_gff: PathLike,
    output: PathLike,
    min_overlap: float = 0.5,
    known_is: PathLike | None = None,
    known_is_exclude: str = "",
) -> None:
    """Recall, precision and FDR of the calls against the known IS elements at ``min_overlap`` reciprocal overlap
    (genolm.genome_scan.evaluate_scan, the model scans' own evaluation), also with ``known_is``."""
    task = {"kind": "is", "scan": {"min_overlap": min_overlap}}
    evaluate_scan(calls_gff, truth_gff, task, output, known_is=known_is, known_is_exclude=known_is_exclude)
