"""In-silico mutagenesis (ISM): the change in a classifier's score for every single-base substitution.

What is perturbed: a sequence exactly one model window long is scored as that window. A longer sequence is scored
as the best of its windows (model length, at ``step`` bp, the last window always ending at the sequence end), so
each substitution's delta is the change of the region's maximum window score: windows not covering the base keep
their reference score, those that do are rescored. That is what a scan "sees" in a region, and for a single
window it reduces to the window's own score.

Regions are written ``contig:start-end[:strand]``, 1-based and inclusive at both ends (samtools/IGV style);
strand ``+`` (default) or ``-``. A minus-strand region is read as the reverse complement of the forward bases,
mutated on that strand, and reported in forward genome coordinates. Table alleles ``ref``/``alt`` are forward-
strand bases (as in a VCF), so rows map directly onto variants; ``offset`` is the 0-based position along the
strand the model reads (5' to 3'), which the heat map's columns follow.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import ConfigError, InputFormatError
from genolm.seqio import reverse_complement

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
Scorer = Callable[[list[str]], np.ndarray]
BASES = "ACGT"
TABLE_COLUMNS = ("contig", "position", "ref", "alt", "strand", "offset", "score_ref", "score_alt", "delta")
# Mutant windows per scorer call when a region spans many windows; a single window's 3L mutants are one call.
MAX_WINDOWS_PER_CALL = 200_000
_REGION = re.compile(r"^(?P<contig>.+):(?P<start>[0-9,]+)-(?P<end>[0-9,]+)(?::(?P<strand>[^:]*))?$")
_COMPLEMENT = str.maketrans("ACGT", "TGCA")


@dataclass(frozen=True)
class Region:
    """A genome interval, 0-based half-open ``[start, end)``, read on ``strand``."""

    contig: str
    start: int
    end: int
    strand: str = "+"

    def __str__(self) -> str:
        """The 1-based inclusive form that :func:`parse_region` reads."""
        return f"{self.contig}:{self.start + 1}-{self.end}:{self.strand}"

    @property
    def length(self) -> int:
        return self.end - self.start

    def genome_position(self, offset: int) -> int:
        """0-based forward coordinate of the base ``offset`` bases from the region's 5' end on its strand."""
        return self.start + offset if self.strand == "+" else self.end - 1 - offset


def parse_region(text: str, lengths: Mapping[str, int] | None = None) -> Region:
    """``contig:start-end[:strand]`` (1-based, inclusive) as a Region, checked against contig ``lengths``."""
    match = _REGION.match(text.strip())
    if not match:
        raise ConfigError(f"region '{text}': expected contig:start-end:strand, e.g. chrom:1001-1081:+ (1-based)")
    contig = match["contig"]
    start, end = int(match["start"].replace(",", "")), int(match["end"].replace(",", ""))
    strand = match["strand"] if match["strand"] is not None else "+"
    if strand not in ("+", "-"):
        raise ConfigError(f"region '{text}': strand must be + or -, got '{strand}'")
    if start < 1 or end < start:
        raise ConfigError(f"region '{text}': start must be >= 1 and <= end (1-based, inclusive)")
    if lengths is not None:
        if contig not in lengths:
            known = ", ".join(list(lengths)[:5]) + (", ..." if len(lengths) > 5 else "")
            raise ConfigError(f"region '{text}': unknown contig '{contig}' (contigs: {known})")
        if end > lengths[contig]:
            raise ConfigError(f"region '{text}': end {end} is past the end of {contig} ({lengths[contig]} bp)")
    return Region(contig, start - 1, end, strand)


def tss_region(contig: str, tss: int, strand: str, window: int, tss_offset: int) -> Region:
    """The model window that puts a TSS (0-based forward position) at ``tss_offset`` on its strand (as the scan's
    point calls do, genolm.scan.peak_points)."""
    start = tss - tss_offset if strand == "+" else tss - window + 1 + tss_offset
    return Region(contig, start, start + window, strand)


def window_starts(length: int, window: int, step: int) -> np.ndarray:
    """Starts of the windows scored in a sequence: every ``step`` bp, plus one ending at the sequence end."""
    if length < window:
        raise InputFormatError(f"sequence of {length} bp is shorter than the model window ({window} bp)")
    if step < 1:
        raise ConfigError(f"ISM step must be >= 1, got {step}")
    starts = np.arange(0, length - window + 1, step)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    return starts


def _alts(ref: str) -> list[int]:
    return [b for b, base in enumerate(BASES) if base != ref]


def mutagenesis(sequence: str, scorer: Scorer, window: int, step: int = 1) -> tuple[float, np.ndarray]:
    """(reference score, deltas ``[L, 4]``) of every substitution of ``sequence`` (as the model reads it).

    ``deltas[j, b]`` = score with base ``j`` set to ``BASES[b]`` minus the reference score; 0 where b is the
    reference base. Non-ACGT reference bases are substituted by all four.
    """
    sequence = sequence.upper()
    length = len(sequence)
    starts = window_starts(length, window, step)
    ref_windows = [sequence[s : s + window] for s in starts]
    ref_scores = np.asarray(scorer(ref_windows), dtype=np.float64)
    ref_score = float(ref_scores.max())
    # Best reference score among windows before index i (prefix) and from index i on (suffix): the untouched part.
    prefix = np.r_[-np.inf, np.maximum.accumulate(ref_scores)]
    suffix = np.r_[np.maximum.accumulate(ref_scores[::-1])[::-1], -np.inf]
    deltas = np.zeros((length, 4))
    positions = np.arange(length)
    first = np.searchsorted(starts, positions - window, side="right")  # first window covering each base
    last = np.searchsorted(starts, positions, side="right")  # one past the last window covering it
    pending: list[str] = []
    jobs: list[tuple[int, int, int]] = []  # (position, alt index, number of windows)

    def flush() -> None:
        if not pending:
            return
        scores = np.asarray(scorer(pending), dtype=np.float64)
        cursor = 0
        for j, b, n in jobs:
            rescored = scores[cursor : cursor + n].max()
            kept = max(prefix[first[j]], suffix[last[j]])
            deltas[j, b] = max(rescored, kept) - ref_score
            cursor += n
        pending.clear()
        jobs.clear()

    for j in range(length):
        covering = starts[first[j] : last[j]]
        for b in _alts(sequence[j]):
            mutant = sequence[:j] + BASES[b] + sequence[j + 1 :]
            pending.extend(mutant[s : s + window] for s in covering)
            jobs.append((j, b, covering.size))
        if len(pending) >= MAX_WINDOWS_PER_CALL:
            flush()
    flush()
    return ref_score, deltas


def importance(sequence: str, deltas: np.ndarray) -> np.ndarray:
    """Per-position importance: reference score minus the mean score of the substitutions (= -mean delta)."""
    n_alts = np.array([len(_alts(base)) for base in sequence.upper()])
    return -deltas.sum(axis=1) / n_alts


@dataclass(frozen=True)
class IsmResult:
    """ISM of one target: ``sequence`` and ``deltas`` follow the strand the model reads, 5' to 3'."""

    name: str
    region: Region
    sequence: str
    ref_score: float
    deltas: np.ndarray
    origin: int = 0  # offset shown as 0 on the x axis (the TSS for promoters)
    origin_label: str = "region start"

    @property
    def importance(self) -> np.ndarray:
        return importance(self.sequence, self.deltas)

    def table(self) -> pd.DataFrame:
        """One row per substitution, in genome coordinates (1-based ``position``, forward-strand alleles)."""
        rows = []
        minus = self.region.strand == "-"
        for offset, base in enumerate(self.sequence):
            position = self.region.genome_position(offset) + 1
            for b in _alts(base):
                ref, alt = base, BASES[b]
                if minus:
                    ref, alt = ref.translate(_COMPLEMENT), alt.translate(_COMPLEMENT)
                delta = float(self.deltas[offset, b])
                rows.append(
                    (self.region.contig, position, ref, alt, self.region.strand, offset, self.ref_score,
                     self.ref_score + delta, delta)
                )  # fmt: skip
        table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
        return table.sort_values(["position", "alt"], kind="stable").reset_index(drop=True)


def run_ism(
    name: str,
    region: Region,
    sequence: str,
    scorer: Scorer,
    window: int,
    step: int = 1,
    origin: int = 0,
    origin_label: str = "region start",
) -> IsmResult:
    """ISM of ``sequence`` (the region's bases on its strand)."""
    if len(sequence) != region.length:
        raise InputFormatError(f"{name}: {len(sequence)} bases for region {region} of {region.length} bp")
    ref_score, deltas = mutagenesis(sequence, scorer, window, step)
    log.info("%s (%s): reference score %.4f, max |delta| %.4f", name, region, ref_score, np.abs(deltas).max())
    return IsmResult(name, region, sequence.upper(), ref_score, deltas, origin, origin_label)


def region_bases(fasta: PathLike | Sequence[PathLike], regions: Sequence[Region]) -> list[str]:
    """Each region's bases on its strand (reverse complement for ``-``), upper case, in the order given."""
    from genolm.scan_blocks import fetch_regions

    keys = sorted({(r.contig, r.start, r.end) for r in regions})
    bases = {(contig, start, end): seq for contig, start, end, seq in fetch_regions(fasta, keys)}
    return [
        bases[(r.contig, r.start, r.end)] if r.strand == "+" else reverse_complement(bases[(r.contig, r.start, r.end)])
        for r in regions
    ]


def ism_figure(result: IsmResult):
    """Heat map (bases x positions, diverging colours centred on 0) above a track of the reference bases drawn
    as letters scaled by their importance (reference minus mean alternative score)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import TwoSlopeNorm

    from genolm.logos import draw_logo

    length = len(result.sequence)
    x = np.arange(length) - result.origin
    figure, (heat, track) = plt.subplots(
        2, 1, figsize=(min(4 + length * 0.09, 30), 4.2), sharex=True, gridspec_kw={"height_ratios": [1.2, 1]}
    )
    limit = max(float(np.abs(result.deltas).max()), 1e-6)
    image = heat.imshow(
        result.deltas.T,
        aspect="auto",
        cmap="RdBu_r",
        norm=TwoSlopeNorm(vcenter=0.0, vmin=-limit, vmax=limit),
        extent=(x[0] - 0.5, x[-1] + 0.5, 3.5, -0.5),
        interpolation="nearest",
    )
    heat.set_yticks(range(4), list(BASES))
    heat.set_ylabel("substituted base")
    heat.set_title(
        f"{result.name}: {result.region} (score {result.ref_score:.3f}); "
        f"bases 5'->3' on the {result.region.strand} strand",
        fontsize=9,
        loc="left",
    )
    figure.colorbar(image, ax=[heat], label="score change", fraction=0.02, pad=0.01)
    ref_heights = np.zeros((length, 4))
    for j, base in enumerate(result.sequence):
        if base in BASES:
            ref_heights[j, BASES.index(base)] = result.importance[j]
    draw_logo(track, ref_heights, x0=float(x[0]))
    track.axhline(0, color="black", linewidth=0.5)
    track.set_ylabel("importance")
    track.set_xlabel(f"position relative to {result.origin_label}")
    figure.colorbar(image, ax=[track], fraction=0.02, pad=0.01).remove()  # keep both panels the same width
    return figure


def write_ism(result: IsmResult, table_path: PathLike, figure_path: PathLike) -> pd.DataFrame:
    """The substitution table (TSV) and the figure (PNG), each written atomically."""
    import matplotlib.pyplot as plt

    table = result.table()
    with atomic_path(table_path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    figure = ism_figure(result)
    with atomic_path(figure_path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return table


# -----------------------------------------------------------------------------
# Targets of the pipeline rule


def known_tss_windows(
    truth_gff: PathLike, lengths: Mapping[str, int], window: int, tss_offset: int
) -> list[tuple[str, Region]]:
    """(promoter ID, model window) of every known TSS whose window lies inside its contig."""
    from genolm.annotations import TRUTH_TYPES, read_gff3
    from genolm.genome_scan import truth_points

    truth = read_gff3(truth_gff, types={TRUTH_TYPES["promoter"]})
    windows = []
    for row, (contig, tss, strand) in zip(truth.itertuples(), truth_points(truth), strict=True):
        region = tss_region(contig, tss, strand, window, tss_offset)
        if contig in lengths and region.start >= 0 and region.end <= lengths[contig] and strand in "+-":
            windows.append((str(row.attributes.get("ID", f"{contig}:{tss + 1}{strand}")), region))
    return windows


def interpret_target(
    checkpoint: PathLike,
    fasta: PathLike | Sequence[PathLike],
    target: str,
    task: Mapping[str, Any],
    table_path: PathLike,
    figure_path: PathLike,
    truth: PathLike | None = None,
    region: str | None = None,
    step: int = 1,
    device: str = "auto",
) -> pd.DataFrame:
    """ISM of one pipeline target: ``siteN`` = the N-th best-scoring known TSS (window scored by the model, TSS at
    the task's ``scan.tss_offset``), else the user ``region``."""
    from genolm.genome_scan import load_scan_model
    from genolm.scan import model_scorer
    from genolm.scan_blocks import contig_lengths

    model, tokenizer, window, torch_device = load_scan_model(checkpoint, device)
    scorer = model_scorer(model, tokenizer, torch_device)
    lengths = contig_lengths(fasta)
    site = re.fullmatch(r"site([1-9][0-9]*)", target)
    if site and region is None:
        if task["kind"] != "promoter" or truth is None:
            raise ConfigError(f"ISM target {target}: known TSS targets need a promoter task and a genome truth GFF3")
        tss_offset = int(task["scan"]["tss_offset"])
        candidates = known_tss_windows(truth, lengths, window, tss_offset)
        rank = int(site[1])
        if len(candidates) < rank:
            raise InputFormatError(f"{truth}: {len(candidates)} known TSSs with a full window, target {target}")
        windows = region_bases(fasta, [region for _, region in candidates])
        scores = scorer(windows)
        order = np.lexsort((np.arange(len(scores)), -scores))
        pick = int(order[rank - 1])
        name, chosen = candidates[pick]
        log.info("%d known TSS windows scored; %s is #%d (%s, %.4f)", len(scores), name, rank, chosen, scores[pick])
        result = run_ism(f"{target} {name}", chosen, windows[pick], scorer, window, step, tss_offset, "TSS")
    else:
        if region is None:
            raise ConfigError(f"ISM target {target}: not siteN and no region given")
        chosen = parse_region(region, lengths)
        origin, label = 0, "region 5' end"
        if task.get("kind") == "promoter" and chosen.length == window:
            origin, label = int(task["scan"]["tss_offset"]), "TSS"
        result = run_ism(target, chosen, region_bases(fasta, [chosen])[0], scorer, window, step, origin, label)
    return write_ism(result, table_path, figure_path)


def window_mutagenesis(sequences: Sequence[str], scorer: Scorer) -> tuple[np.ndarray, np.ndarray]:
    """(reference scores ``[N]``, deltas ``[N, L, 4]``) of sequences that are each exactly one model window,
    their mutants scored together in calls of at most MAX_WINDOWS_PER_CALL windows."""
    sequences = [seq.upper() for seq in sequences]
    if not sequences:
        return np.zeros(0), np.zeros((0, 0, 4))
    length = len(sequences[0])
    if any(len(seq) != length for seq in sequences):
        raise InputFormatError("window_mutagenesis needs sequences of one length")
    ref = np.asarray(scorer(sequences), dtype=np.float64)
    deltas = np.zeros((len(sequences), length, 4))
    pending: list[str] = []
    cells: list[tuple[int, int, int]] = []

    def flush() -> None:
        if pending:
            scores = np.asarray(scorer(pending), dtype=np.float64)
            n, j, b = (np.array(axis) for axis in zip(*cells, strict=True))
            deltas[n, j, b] = scores - ref[n]
            pending.clear()
            cells.clear()

    for n, seq in enumerate(sequences):
        for j, base in enumerate(seq):
            for b in _alts(base):
                pending.append(seq[:j] + BASES[b] + seq[j + 1 :])
                cells.append((n, j, b))
        if len(pending) >= MAX_WINDOWS_PER_CALL:
            flush()
    flush()
    return ref, deltas
