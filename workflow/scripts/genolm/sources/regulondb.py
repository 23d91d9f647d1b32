"""RegulonDB PromoterSet (E. coli K-12 TSSs on NC_000913.3) and windows around its TSSs.

Column 4 is the 1-based TSS, and column 6 (-60..+20) puts the upper-case +1 base there, except on the reverse
records of the high-throughput RNA-seq set (names `TSS_<n>`): there the +1 base is at 1-based position+1.
Checked against NC_000913.3 for release 10.6.3: all 2,465 reverse `TSS_*` records with a sequence are shifted,
none of the 1,973 other reverse ones and none of the forward ones. (The folder README describes the shift as if
it applied to every reverse record.) `tss` follows column 6, the curated sequence; the window builder checks it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.annotations import read_gff3
from genolm.errors import ConfigError, InputFormatError
from genolm.seqio import open_text
from genolm.sources.windows import (
    SOURCE_COLUMNS,
    drop_duplicate_sequences,
    interval_mask,
    log_counts,
    oriented_interval,
    overlap_groups,
    pick_contig,
    read_genome,
    safe_name,
    sample_disjoint,
    window,
    window_starts,
)

log = logging.getLogger(__name__)

REGULONDB_COLUMNS = ("promoter_id", "name", "strand", "tss", "sigma", "sequence", "evidence", "confidence")
_STRANDS = {"forward": "+", "reverse": "-"}
_CONFIDENCE = {"Strong", "Weak", "Confirmed", ""}
# Column 6 spans -60..+20 with the +1 base upper case at index 60.
_SEQ_UPSTREAM, _SEQ_DOWNSTREAM = 60, 20
_SEQUENCE = re.compile(r"[acgt]{60}[ACGT][acgt]{20}")
# Reverse records of the RNA-seq TSS set give column 4 one base left of column 6's +1 base.
_SHIFTED_PREFIX = "TSS_"
# A few curated sequences could disagree with the genome; more means a coordinate convention bug.
_MAX_MISMATCHES = 5
# Feature types whose span is not intergenic (RNA genes and pseudogenes included, not only CDS).
_GENIC_TYPES = {"gene", "pseudogene", "CDS", "tRNA", "rRNA", "ncRNA", "tmRNA", "exon"}


def _parse_line(fields: list[str], path: Path, number: int) -> dict:
    where = f"{path}: line {number}"
    if len(fields) != len(REGULONDB_COLUMNS):
        raise InputFormatError(f"{where}: expected 8 tab-separated columns, got {len(fields)}")
    promoter_id, name, strand, position, sigma, sequence, evidence, confidence = fields
    if not promoter_id:
        raise InputFormatError(f"{where}: empty promoter id")
    if strand not in _STRANDS:
        raise InputFormatError(f"{where}: strand must be forward or reverse, got {strand!r}")
    if not position.isdigit():
        raise InputFormatError(f"{where}: TSS position must be a non-negative integer, got {position!r}")
    if sequence and not _SEQUENCE.fullmatch(sequence):
        raise InputFormatError(f"{where}: promoter sequence is not 81 nt of acgt with the +1 base upper case at 61")
    if confidence not in _CONFIDENCE:
        raise InputFormatError(f"{where}: unknown confidence {confidence!r}")
    pos = int(position)  # 0 = no position
    shifted = strand == "reverse" and name.startswith(_SHIFTED_PREFIX)
    tss = -1 if pos == 0 else pos if shifted else pos - 1
    sigmas = dict.fromkeys(part.strip() for part in sigma.split(",") if part.strip())  # ordered, de-duplicated
    return {
        "promoter_id": promoter_id,
        "name": name,
        "strand": _STRANDS[strand],
        "tss": tss,
        "sigma": ",".join(sigmas),
        "sequence": sequence.upper(),
        "evidence": evidence,
        "confidence": confidence,
    }


def read_regulondb(path: str | Path) -> pd.DataFrame:
    """Every record of a RegulonDB PromoterSet.txt (gzip or plain): strand +/-, `tss` 0-based (-1 when the file
    gives no position), `sigma` a comma-separated list ("" when unannotated), `sequence` -60..+20 upper case or ""."""
    path = Path(path)
    rows, seen = [], {}
    with open_text(path) as handle:
        for number, line in enumerate(handle, start=1):
            line = line.rstrip("\n")
            if line.startswith("#") or not line.strip():
                continue
            row = _parse_line(line.split("\t"), path, number)
            if row["promoter_id"] in seen:
                raise InputFormatError(
                    f"{path}: line {number}: promoter id {row['promoter_id']} repeats line {seen[row['promoter_id']]}"
                )
            seen[row["promoter_id"]] = number
            rows.append(row)
    if not rows:
        raise InputFormatError(f"{path}: no promoter records")
    return pd.DataFrame(rows, columns=list(REGULONDB_COLUMNS))


def _agrees(window_sequence: str, column6: str, upstream: int, downstream: int) -> bool:
    """Whether the window equals column 6 where both are defined (they differ in extent when upstream != 60)."""
    before, after = min(upstream, _SEQ_UPSTREAM), min(downstream, _SEQ_DOWNSTREAM)
    return (
        window_sequence[upstream - before : upstream + after + 1]
        == column6[_SEQ_UPSTREAM - before : _SEQ_UPSTREAM + after + 1]
    )


def _positives(
    promoters: pd.DataFrame,
    contig: str,
    sequence: str,
    upstream: int,
    downstream: int,
    source: str,
    shifts: tuple[int, ...] = (0,),
) -> tuple[list[tuple], list[str]]:
    rows, crossing, mismatched = [], 0, []
    for record in promoters.itertuples(index=False):
        for shift in shifts:
            # A shifted window puts the TSS `shift` bp downstream of the window's +1 position (on its strand).
            tss = record.tss - shift if record.strand == "+" else record.tss + shift
            start, end = oriented_interval(tss, record.strand, upstream, downstream + 1)
            bases = window(sequence, start, end, record.strand)
            if bases is None:
                crossing += 1
                continue
            if shift == 0 and record.sequence and not _agrees(bases, record.sequence, upstream, downstream):
                mismatched.append(record.promoter_id)
            suffix = f"_shift{shift:+d}" if shift else ""
            record_id = f"{source}_pos_{safe_name(record.promoter_id)}{suffix}"
            rows.append((record_id, 1, contig, start, end, record.strand, bases))
    if crossing:
        log.info("%s: skipped %d TSS window(s) crossing the ends of %s", source, crossing, contig)
    return rows, mismatched


def _tss_exclusion(length: int, tss: np.ndarray, margin: int) -> np.ndarray:
    """Bases within `margin` of any TSS, wrapping round the circular chromosome."""
    starts, ends = tss - margin, tss + margin + 1
    shifts = (0, length, -length)
    return interval_mask(
        length, np.concatenate([starts + s for s in shifts]), np.concatenate([ends + s for s in shifts])
    )


def _negatives(
    sequence: str,
    contig: str,
    features: pd.DataFrame,
    excluded: np.ndarray,
    count: int,
    length: int,
    coding_fraction: float,
    rng: np.random.Generator,
    source: str,
) -> list[tuple]:
    """`count` disjoint windows, about `coding_fraction` inside CDSs and the rest intergenic, on random strands."""
    n = len(sequence)
    cds = features[features["type"] == "CDS"]
    coding = interval_mask(n, cds["start"].to_numpy(), cds["end"].to_numpy())
    genic = interval_mask(n, features["start"].to_numpy(), features["end"].to_numpy())
    occupied = np.zeros(n, dtype=bool)
    wanted_coding = round(count * coding_fraction)
    intergenic = sample_disjoint(
        window_starts(~genic & ~excluded, length), length, count - wanted_coding, occupied, rng
    )
    if len(intergenic) < count - wanted_coding:
        log.warning(
            "%s: only %d intergenic negative windows available; the other %d are coding",
            source,
            len(intergenic),
            count - wanted_coding - len(intergenic),
        )
    coding_starts = window_starts(coding & ~excluded, length)
    in_cds = sample_disjoint(coding_starts, length, count - len(intergenic), occupied, rng)
    if len(in_cds) + len(intergenic) < count:
        log.warning("%s: only %d negative windows available, %d wanted", source, len(in_cds) + len(intergenic), count)
    rows = []
    for kind, starts in (("intergenic", intergenic), ("coding", in_cds)):
        strands = rng.choice(["+", "-"], size=len(starts))
        for start, strand in zip(starts, strands, strict=True):
            strand = str(strand)
            record_id = f"{source}_neg_{kind}_{safe_name(contig)}_{start}{'f' if strand == '+' else 'r'}"
            bases = window(sequence, start, start + length, strand)
            rows.append((record_id, 0, contig, start, start + length, strand, bases))
    return rows


def regulondb_tss_windows(
    genome_fasta: str | Path,
    promoters_path: str | Path,
    gff: str | Path,
    *,
    upstream: int = 60,
    downstream: int = 20,
    sigma: str | None = "Sigma70",
    negatives_per_positive: float = 1.0,
    coding_fraction: float = 0.5,
    exclusion: int = 100,
    tss_shifts: Sequence[int] = (0,),
    seed: int,
    contig: str | None = None,
    source: str = "regulondb",
) -> pd.DataFrame:
    """Promoter windows -upstream..+downstream (the +1 base included) around RegulonDB TSSs vs. genome background.

    Positives: every TSS whose sigma list includes `sigma` (None: all), on the promoter's strand; windows crossing
    the contig ends are skipped. Where column 6 gives the sequence, the window must equal it (more than a handful
    of mismatches raises: a coordinate bug). Negatives: `negatives_per_positive` times as many disjoint windows of
    the same length, `coding_fraction` inside CDSs and the rest intergenic, on random strands, none within
    `exclusion` bp of any RegulonDB TSS (any sigma). `group` joins windows that overlap on the genome.

    `tss_shifts` adds positives whose window is moved so the TSS lies that many bp downstream (+) or upstream (-)
    of the window's +1 position: a genome scan counts a window as a promoter when a TSS lies near its +1
    position, so a scanning model should learn that tolerance rather than one exact register.
    """
    genome = read_genome(genome_fasta)
    contig = pick_contig(genome, contig, genome_fasta)
    sequence = genome[contig]
    promoters = read_regulondb(promoters_path)
    placed = promoters[promoters["tss"] >= 0]
    beyond = placed[placed["tss"] >= len(sequence)]
    if not beyond.empty:
        raise InputFormatError(
            f"{promoters_path}: TSS of {beyond['promoter_id'].iloc[0]} lies beyond {contig} ({len(sequence)} bp) "
            f"of {genome_fasta}; is it the same assembly (NC_000913.3)?"
        )
    selected = placed if sigma is None else placed[placed["sigma"].str.split(",").map(lambda sigmas: sigma in sigmas)]
    shifts = tuple(int(shift) for shift in tss_shifts)
    if 0 not in shifts or len(set(shifts)) != len(shifts):
        raise ConfigError(f"{source}: tss_shifts must hold 0 and no repeats, got {list(tss_shifts)}")
    rows, mismatched = _positives(selected, contig, sequence, upstream, downstream, source, shifts)
    if len(mismatched) > _MAX_MISMATCHES:
        raise InputFormatError(
            f"{promoters_path}: {len(mismatched)} of {len(rows)} windows on {genome_fasta} differ from the file's "
            f"promoter sequence (first: {mismatched[0]}); wrong genome or TSS convention"
        )
    if mismatched:
        log.warning("%s: %d window(s) differ from RegulonDB's sequence: %s", source, len(mismatched), mismatched)
    features = read_gff3(gff, types=_GENIC_TYPES)
    features = features[features["contig"] == contig]
    excluded = _tss_exclusion(len(sequence), placed["tss"].to_numpy(), exclusion)
    # Per distinct TSS window (shifted copies add positives, not negatives).
    count = round(len({row[-1] for row in rows if "_shift" not in row[0]}) * negatives_per_positive)
    rng = np.random.default_rng(seed)
    length = upstream + downstream + 1
    rows += _negatives(sequence, contig, features, excluded, count, length, coding_fraction, rng, source)
    table = drop_duplicate_sequences(pd.DataFrame(rows, columns=list(SOURCE_COLUMNS)), source)
    table["group"] = overlap_groups(table)
    log_counts(table, source)
    return table
