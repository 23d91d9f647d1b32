"""Shared helpers of the source builders: genome windows, masks, sampling, de-duplication and grouping."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.errors import ConfigError
from genolm.seqio import read_fasta, reverse_complement

log = logging.getLogger(__name__)

# Task-table columns a builder returns: TASK_COLUMNS without `split` (assigned later by similarity clusters).
SOURCE_COLUMNS = ("id", "label", "contig", "start", "end", "strand", "sequence")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:=-]+")


def safe_name(text: str) -> str:
    """An id fragment without whitespace or punctuation that would trouble FASTA headers or file names."""
    return _UNSAFE.sub("_", text).strip("_")


def read_genome(path: str | Path) -> dict[str, str]:
    """All contigs of a (gzipped) FASTA, upper case, by name."""
    return {record.name: record.sequence for record in read_fasta(path)}


def pick_contig(genome: Mapping[str, str], contig: str | None, path: str | Path) -> str:
    """The contig a coordinate-only source (RegulonDB has no sequence names) refers to."""
    if contig is None:
        if len(genome) != 1:
            raise ConfigError(f"{path}: {len(genome)} contigs; name the one the coordinates refer to (contig=...)")
        return next(iter(genome))
    if contig not in genome:
        raise ConfigError(f"{path}: no contig '{contig}'; it has {', '.join(sorted(genome))}")
    return contig


def oriented_interval(anchor: int, strand: str, before: int, after: int) -> tuple[int, int]:
    """Genome interval [start, end) of `before` bases upstream of `anchor` and `after` bases from it (anchor
    included), read on `strand`: on "-" upstream is to the right."""
    if strand == "+":
        return anchor - before, anchor + after
    return anchor - after + 1, anchor + before + 1


def window(sequence: str, start: int, end: int, strand: str) -> str | None:
    """The window oriented on `strand`, or None when it crosses a contig end (circular wrap is not followed)."""
    if start < 0 or end > len(sequence):
        return None
    bases = sequence[start:end]
    return bases if strand == "+" else reverse_complement(bases)


def interval_mask(length: int, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Boolean mask of a contig covered by any of the half-open intervals (clipped to the contig)."""
    delta = np.zeros(length + 1, dtype=np.int64)
    np.add.at(delta, np.clip(starts, 0, length), 1)
    np.add.at(delta, np.clip(ends, 0, length), -1)
    return np.cumsum(delta[:-1]) > 0


def window_starts(allowed: np.ndarray, length: int) -> np.ndarray:
    """Start positions of every `length`-bp window whose bases are all `allowed`."""
    if len(allowed) < length:
        return np.zeros(0, dtype=np.int64)
    counts = np.concatenate([[0], np.cumsum(allowed, dtype=np.int64)])
    return np.flatnonzero(counts[length:] - counts[:-length] == length)


def sample_disjoint(
    starts: np.ndarray, length: int, count: int, occupied: np.ndarray, rng: np.random.Generator
) -> list[int]:
    """Up to `count` windows drawn in random order from `starts` that overlap neither each other nor `occupied`
    (updated in place), so that no two negatives share bases."""
    chosen: list[int] = []
    for start in rng.permutation(starts):
        if len(chosen) == count:
            break
        if not occupied[start : start + length].any():
            occupied[start : start + length] = True
            chosen.append(int(start))
    return chosen


def drop_duplicate_sequences(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Keep one of identical sequences within a class; drop a sequence found in both classes (ambiguous label)."""
    labels_per_sequence = table.groupby("sequence")["label"].nunique()
    ambiguous = table["sequence"].map(labels_per_sequence) > 1
    if ambiguous.any():
        n = int(table.loc[ambiguous, "sequence"].nunique())
        log.warning("%s: %d sequence(s) are in both classes; dropped them (%d records)", source, n, ambiguous.sum())
    kept = table[~ambiguous]
    repeated = kept.duplicated(["label", "sequence"])
    for label, n in kept[repeated]["label"].value_counts().sort_index().items():
        log.info("%s: dropped %d duplicate sequence(s) of class %d", source, n, label)
    return kept[~repeated].reset_index(drop=True)


def overlap_groups(table: pd.DataFrame) -> pd.Series:
    """A group per run of windows that overlap on the genome (either strand), named after its first window, so
    that a split never puts shared bases on both sides. Records without coordinates get their own id."""
    group = table["id"].astype(str).copy()
    placed = table[table["start"] >= 0].sort_values(["contig", "start", "end"])
    contig, reach, name = None, -1, ""
    for index, row in zip(placed.index, placed.itertuples(index=False), strict=True):
        if row.contig != contig or row.start >= reach:
            contig, reach, name = row.contig, row.end, f"{row.contig}:{row.start}"
        reach = max(reach, row.end)
        group[index] = name
    return group


def log_counts(table: pd.DataFrame, source: str) -> None:
    counts = table["label"].value_counts()
    log.info("%s: %d positives, %d negatives", source, counts.get(1, 0), counts.get(0, 0))
