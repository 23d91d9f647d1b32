"""Genomic-ULMFiT's E. coli "promoter" set: windows at CDS starts vs. windows inside CDSs (both on the sense strand).

The positives are CDS-start windows, not mapped TSSs. A CDS may be split over several GFF lines (ribosomal
frameshifts, pseudogenes) sharing one ID; its start is the 5' end of its first part on the sense strand.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.annotations import read_gff3
from genolm.errors import InputFormatError
from genolm.sources.windows import (
    SOURCE_COLUMNS,
    drop_duplicate_sequences,
    log_counts,
    oriented_interval,
    overlap_groups,
    read_genome,
    safe_name,
    window,
)

log = logging.getLogger(__name__)


def read_cds(gff: str | Path) -> pd.DataFrame:
    """One row per CDS ID: contig, strand, anchor (0-based first base of the start codon), parts [(start, end)],
    length (sum of the parts)."""
    lines = read_gff3(gff, types={"CDS"})
    lines["id"] = lines["id"].mask(lines["id"] == "", "line" + lines.index.astype(str))  # an ID-less line stands alone
    rows = []
    for cds_id, parts in lines.groupby("id", sort=False):
        strands = set(parts["strand"])
        if len(strands) != 1 or not strands <= {"+", "-"}:
            raise InputFormatError(f"{gff}: CDS {cds_id} has strand(s) {sorted(strands)}, expected one of +/-")
        strand = strands.pop()
        spans = sorted(zip(parts["start"], parts["end"], strict=True))
        anchor = spans[0][0] if strand == "+" else max(end for _, end in spans) - 1
        rows.append(
            {
                "cds_id": cds_id,
                "contig": parts["contig"].iloc[0],
                "strand": strand,
                "anchor": anchor,
                "parts": spans,
                "length": sum(end - start for start, end in spans),
            }
        )
    return pd.DataFrame(rows, columns=["cds_id", "contig", "strand", "anchor", "parts", "length"])


def _inner_window(
    parts: list[tuple[int, int]], avoid: tuple[int, int], length: int, rng: np.random.Generator
) -> int | None:
    """Start of a random `length`-bp window inside one CDS part that does not overlap `avoid`, or None."""
    ranges = []  # inclusive ranges of allowed window starts
    for start, end in parts:
        low, high = start, end - length
        for a, b in ((low, min(high, avoid[0] - length)), (max(low, avoid[1]), high)):
            if a <= b:
                ranges.append((a, b))
    sizes = np.array([b - a + 1 for a, b in ranges], dtype=np.int64)
    if not sizes.sum():
        return None
    pick = int(rng.integers(sizes.sum()))
    index = int(np.searchsorted(np.cumsum(sizes), pick, side="right"))
    return ranges[index][0] + pick - int(sizes[:index].sum())


def cds_start_windows(
    genome_fasta: str | Path,
    gff: str | Path,
    *,
    upstream: int = 100,
    downstream: int = 50,
    min_cds_length: int = 250,
    seed: int,
    source: str = "cds",
) -> pd.DataFrame:
    """Positives: `upstream` bp before and `downstream` bp from the first base of every CDS start codon (150 bp).

    Negatives: one random window of the same length inside each CDS longer than `min_cds_length`, both on the
    sense strand. Unlike Genomic-ULMFiT the negative never overlaps its own CDS's start window, so a pair shares
    no bases. Windows crossing a contig end are skipped; identical sequences are kept once. `group` joins
    windows that overlap on the genome.
    """
    genome = read_genome(genome_fasta)
    cds = read_cds(gff)
    unknown = sorted(set(cds["contig"]) - set(genome))
    if unknown:
        raise InputFormatError(f"{gff}: CDS on contig(s) {', '.join(unknown)} that {genome_fasta} lacks")
    rng = np.random.default_rng(seed)
    length = upstream + downstream
    rows, crossing, no_room = [], 0, 0
    for record in cds.itertuples(index=False):
        sequence = genome[record.contig]
        name = safe_name(record.cds_id.removeprefix("cds-"))
        start, end = oriented_interval(record.anchor, record.strand, upstream, downstream)
        bases = window(sequence, start, end, record.strand)
        if bases is None:
            crossing += 1
        else:
            rows.append((f"{source}_pos_{name}", 1, record.contig, start, end, record.strand, bases))
        if record.length <= min_cds_length:
            continue
        inner = _inner_window(record.parts, (start, end), length, rng)
        if inner is None:
            no_room += 1
            continue
        negative = window(sequence, inner, inner + length, record.strand)
        rows.append((f"{source}_neg_{name}", 0, record.contig, inner, inner + length, record.strand, negative))
    if crossing:
        log.info("%s: skipped %d CDS-start window(s) crossing a contig end", source, crossing)
    if no_room:
        log.info("%s: %d long CDS(s) had no room for a window apart from the start window", source, no_room)
    table = drop_duplicate_sequences(pd.DataFrame(rows, columns=list(SOURCE_COLUMNS)), source)
    table["group"] = overlap_groups(table)
    log_counts(table, source)
    return table
