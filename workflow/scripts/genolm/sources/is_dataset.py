"""IS-element classification set: ISfinder elements against length-matched non-IS regions of real replicons.

This follows the design of the original IS study (about 1,800 ISfinder elements against about 1,800 regions
flanking antimicrobial-resistance genes), whose data were never published. Negatives are cut next to AMR genes
of the given replicons where the annotation allows, and from ordinary genomic regions of the same replicons for
the rest; none overlaps an annotated mobile element, a transposase-like CDS or an IS homology hit (plus a margin).
Negative lengths are drawn from the positive lengths, so length alone does not separate the classes.

Negatives never share a base, so the replicons' free sequence caps their number: MG1655 plus the four AMR plasmids
(5.3 Mbp) hold about 3,400 negatives of the ISfinder length distribution, fewer than the ~5,950 IS elements.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from genolm.errors import ConfigError, InputFormatError
from genolm.sources.genbank import Replicon, amr_genes, read_genbank
from genolm.sources.isfinder import read_isfinder
from genolm.sources.windows import SOURCE_COLUMNS, interval_mask, window_starts
from genolm.sources.windows import window as oriented_window

__all__ = ["NEGATIVE_KINDS", "build_is_dataset", "read_is_calls", "read_replicons"]

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
NEGATIVE_KINDS = ("amr_flank", "genomic")


def read_is_calls(path: PathLike) -> pd.DataFrame:
    """IS homology hits (contig, start, end; 0-based half-open) from genolm's scan output or the derived blastn
    table (`seqid`, `start_1based`, `end`)."""
    try:
        table = pd.read_csv(path, sep="\t", comment="#")
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputFormatError(f"{path}: cannot read IS calls ({error})") from error
    if {"seqid", "start_1based", "end"} <= set(table.columns):
        table = table.rename(columns={"seqid": "contig"}).assign(start=table["start_1based"] - 1)
    missing = {"contig", "start", "end"} - set(table.columns)
    if missing:
        raise InputFormatError(f"{path}: IS calls lack column(s) {', '.join(sorted(missing))}")
    bad = table[(table["start"] < 0) | (table["end"] <= table["start"])]
    if not bad.empty:
        row = bad.iloc[0]
        raise InputFormatError(
            f"{path}: IS call on {row['contig']} has invalid coordinates {row['start']}..{row['end']}"
        )
    return table[["contig", "start", "end"]].astype({"contig": str, "start": np.int64, "end": np.int64})


def read_replicons(replicons: Sequence[tuple[PathLike | None, PathLike]]) -> list[Replicon]:
    """Annotated replicons of (FASTA or None, GenBank) pairs; the FASTA supplies CON records' sequence."""
    loaded: list[Replicon] = []
    for fasta, genbank in replicons:
        loaded += read_genbank(genbank, fasta)
    names = [replicon.name for replicon in loaded]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"replicon(s) given more than once: {', '.join(repeated)}")
    return loaded


class _Space:
    """Where negatives may still be cut: per contig, bases blocked by mobile elements (+ margin) or taken by an
    earlier negative (negatives never share a base, so no two are near-duplicates by construction)."""

    def __init__(self, replicons: Sequence[Replicon], calls: pd.DataFrame | None, margin: int) -> None:
        self.sequences = {replicon.name: replicon.sequence for replicon in replicons}
        self.free: dict[str, np.ndarray] = {}
        for replicon in replicons:
            blocked = [replicon.mobile[["start", "end"]].to_numpy(np.int64)]
            if calls is not None:
                blocked.append(calls.loc[calls["contig"] == replicon.name, ["start", "end"]].to_numpy(np.int64))
            spans = np.concatenate(blocked).reshape(-1, 2)
            mask = interval_mask(len(replicon.sequence), spans[:, 0] - margin, spans[:, 1] + margin)
            self.free[replicon.name] = ~mask
            log.info("%s: %.1f%% of %d bp blocked as mobile", replicon.name, 100 * mask.mean(), len(mask))

    def take(self, contig: str, start: int, end: int, strand: str) -> str:
        """Mark a window as used and return its bases, read on `strand`."""
        self.free[contig][start:end] = False
        return oriented_window(self.sequences[contig], start, end, strand)


def _stratified_sample(table: pd.DataFrame, n: int, column: str, rng: np.random.Generator) -> pd.DataFrame:
    """`n` rows with each `column` value represented in proportion (largest remainders), sampled at random."""
    counts = table[column].value_counts().sort_index()
    quota = counts / counts.sum() * n
    take = np.floor(quota).astype(int)
    extra = n - int(take.sum())
    take[(quota - take).sort_values(ascending=False, kind="stable").index[:extra]] += 1
    picks = [rng.choice(table.index[table[column] == value], size=size, replace=False) for value, size in take.items()]
    return table.loc[np.sort(np.concatenate(picks))]


def _positives(
    isfinder_fasta: PathLike,
    summary_csv: PathLike | None,
    n_positives: int | None,
    window_length: int | None,
    max_length: int,
    rng: np.random.Generator,
    report: dict[str, int],
) -> pd.DataFrame:
    elements = read_isfinder(isfinder_fasta, summary_csv)
    report["isfinder_distinct"] = len(elements)
    too_long = elements["length"] > max_length
    report["positives_too_long"] = int(too_long.sum())
    log.info("excluded %d IS elements longer than max_length=%d bp (not truncated)", too_long.sum(), max_length)
    elements = elements[~too_long]
    if window_length is not None:
        too_short = elements["length"] < window_length
        report["positives_too_short"] = int(too_short.sum())
        log.info("excluded %d IS elements shorter than the %d bp window", too_short.sum(), window_length)
        elements = elements[~too_short]
    if n_positives is not None:
        if not 0 < n_positives <= len(elements):
            raise ConfigError(f"n_positives must be 1..{len(elements)} (IS elements available), got {n_positives}")
        elements = _stratified_sample(elements, n_positives, "family", rng)
    starts = np.zeros(len(elements), dtype=np.int64)
    if window_length is not None:
        starts = rng.integers(0, elements["length"].to_numpy() - window_length + 1)
    ends = elements["length"].to_numpy() if window_length is None else starts + window_length
    sequences = [seq[s:e] for seq, s, e in zip(elements["sequence"], starts, ends, strict=True)]
    return pd.DataFrame(
        {
            "id": elements["name"].to_numpy(),
            "label": 1,
            "contig": elements["name"].to_numpy(),
            "start": starts,
            "end": ends,
            "strand": "+",
            "sequence": sequences,
            "group": elements["family"].to_numpy(),
        }
    )


def _negative(kind: str, contig: str, start: int, end: int, strand: str, sequence: str) -> dict:
    return {
        "id": f"{kind}:{contig}:{start}-{end}:{strand}",
        "label": 0,
        "contig": contig,
        "start": start,
        "end": end,
        "strand": strand,
        "sequence": sequence,
        "group": f"{kind}:{contig}",
    }


def _amr_flanks(
    replicons: Sequence[Replicon],
    space: _Space,
    pool: np.ndarray,
    count: int,
    flank: int,
    include_gene: bool,
    rng: np.random.Generator,
) -> list[dict]:
    """Up to `count` windows, at most one per side of each AMR gene, placed at random within `flank` bp of the
    gene (overlapping it when `include_gene`), with a length drawn from `pool`. A side where no free window of
    that length fits gives none: AMR genes sit among IS elements, so many sides are blocked."""
    sides = []
    for replicon in replicons:
        for gene in amr_genes(replicon.cds).itertuples(index=False):
            near, far = (gene.end, gene.start) if include_gene else (gene.start, gene.end)
            strand = gene.strand if gene.strand in ("+", "-") else "+"  # read the flank on the gene's strand
            sides.append((replicon.name, max(gene.start - flank, 0), near, strand))  # left of the gene
            sides.append((replicon.name, far, min(gene.end + flank, len(replicon.sequence)), strand))  # right
    rows = []
    for index in rng.permutation(len(sides)):
        if len(rows) == count:
            break
        contig, low, high, strand = sides[index]
        length = int(rng.choice(pool))
        starts = window_starts(space.free[contig][low:high], length) + low
        if len(starts):
            start = int(rng.choice(starts))
            sequence = space.take(contig, start, start + length, strand)
            rows.append(_negative("amr_flank", contig, start, start + length, strand, sequence))
    log.info("AMR flanks: %d windows from %d gene sides (2 per AMR gene)", len(rows), len(sides))
    return rows


def _free_runs(free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends of the runs of True in a boolean mask."""
    edges = np.diff(np.concatenate([[0], free.view(np.int8), [0]]))
    return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)


def _genomic(space: _Space, pool: np.ndarray, count: int, rng: np.random.Generator) -> list[dict]:
    """`count` windows drawn at random from a tiling of all free bases into back-to-back windows whose lengths
    are drawn from `pool`. Tiling, unlike random placement with rejection, does not jam as space runs out, and
    every window length is an independent draw, so long windows are not harder to place than short ones."""
    tiles = []
    for contig, free in space.free.items():
        for low, high in zip(*_free_runs(free), strict=True):
            position = int(low + rng.integers(0, min(high - low, int(np.median(pool))) + 1))  # random phase
            while True:
                length = int(rng.choice(pool))
                if position + length > high:
                    break
                tiles.append((contig, position, length))
                position += length
    if count > len(tiles):
        log.warning("genomic negatives: only %d free windows in the replicons, %d wanted", len(tiles), count)
    rows = []
    for index in np.sort(rng.choice(len(tiles), size=min(count, len(tiles)), replace=False)):
        contig, start, length = tiles[index]
        strand = "+" if rng.random() < 0.5 else "-"
        sequence = space.take(contig, start, start + length, strand)
        rows.append(_negative("genomic", contig, start, start + length, strand, sequence))
    return rows


def build_is_dataset(
    isfinder_fasta: PathLike,
    replicons: Sequence[tuple[PathLike | None, PathLike]],
    *,
    n_negatives: int | None = None,
    n_positives: int | None = None,
    window: int | None = None,
    flank: int = 5000,
    margin: int = 200,
    max_length: int = 5000,
    include_gene: bool = True,
    is_calls: PathLike | pd.DataFrame | None = None,
    summary_csv: PathLike | None = None,
    seed: int = 0,
) -> pd.DataFrame:
    """ISfinder IS elements (label 1, group = family) against non-IS regions (label 0, group = "kind:contig").

    Positives: distinct ISfinder sequences up to `max_length` bp (longer ones are excluded and counted, never
    truncated); `n_positives` samples that many stratified by family. With `window`, each positive is one random
    `window`-bp stretch of its element and every negative is `window` bp.
    Negatives (`n_negatives`, default as many as positives): first windows within `flank` bp of AMR genes of the
    `replicons` ((FASTA or None, GenBank) pairs; "amr_flank"), then random windows of the same replicons
    ("genomic") for the rest. Lengths are drawn from the positive lengths. No negative overlaps a mobile feature
    or transposase-like CDS of the GenBank files, or an `is_calls` hit, within `margin` bp, nor another negative.
    When fewer negatives fit than the default asks for, positives are sampled down (by family) to the same
    number, so classes stay balanced; an explicit `n_negatives` that does not fit only logs a warning.
    Counts are logged and kept in ``table.attrs["counts"]``.
    """
    rng = np.random.default_rng(seed)
    for name, value in (("flank", flank), ("margin", margin), ("max_length", max_length)):
        if value < 0:
            raise ConfigError(f"{name} must be non-negative, got {value}")
    if window is not None and not 0 < window <= max_length:
        raise ConfigError(f"window must be 1..max_length ({max_length}), got {window}")
    counts: dict[str, int] = {}
    positives = _positives(isfinder_fasta, summary_csv, n_positives, window, max_length, rng, counts)
    if positives.empty:
        raise ConfigError(f"{isfinder_fasta}: no IS element left after the length limits")
    loaded = read_replicons(replicons)
    calls = is_calls if is_calls is None or isinstance(is_calls, pd.DataFrame) else read_is_calls(is_calls)
    space = _Space(loaded, calls, margin)
    wanted = len(positives) if n_negatives is None else n_negatives
    if wanted < 0:
        raise ConfigError(f"n_negatives must be non-negative, got {n_negatives}")
    pool = positives["end"].to_numpy() - positives["start"].to_numpy()
    flanks = _amr_flanks(loaded, space, pool, wanted, flank, include_gene, rng)
    genomic = _genomic(space, pool, wanted - len(flanks), rng)
    n_negatives_placed = len(flanks) + len(genomic)
    if n_negatives_placed < wanted:
        log.warning(
            "placed %d of %d negatives: the replicons' free bases are used up (negatives never share a base)",
            n_negatives_placed,
            wanted,
        )
        if n_negatives is None:  # the default asks for balanced classes: sample positives down, by family
            log.warning(
                "sampling positives down to %d, stratified by family, to keep classes balanced", n_negatives_placed
            )
            positives = _stratified_sample(positives, n_negatives_placed, "group", rng).reset_index(drop=True)
    counts.update(positives=len(positives), amr_flank=len(flanks), genomic=len(genomic), negatives_wanted=wanted)
    log.info(
        "IS dataset: %d positives; %d negatives = %d amr_flank + %d genomic",
        len(positives),
        n_negatives_placed,
        len(flanks),
        len(genomic),
    )
    negatives = pd.DataFrame(flanks + genomic, columns=[*SOURCE_COLUMNS, "group"])
    table = pd.concat([positives, negatives], ignore_index=True)
    table.attrs["counts"] = counts
    return table
