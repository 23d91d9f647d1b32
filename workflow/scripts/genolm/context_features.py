"""Gene-context features of promoter scan windows, for the promoter context model (genolm.promoter_context).

Each window of one contig strand is described by the sequence score around it and by where its TSS position lies
relative to the annotated genes:

- its logit averaged over `smooth` windows, and over 5 and 81 (one spiking window is noise; a promoter's score is
  a bump some tens of bp wide), with hinges of the main one at -4, -2, 0, 2 and 4 (the classifier's logit is not
  calibrated for a genome where 1 window in 100 is a TSS, so its effect need not be linear);
- how far each smoothed logit lies below its local maximum (41 and 21 windows), and that fine local maximum: the
  window at the top of a bump is the one a TSS call takes;
- the band of the distance to the next CDS start downstream on its strand (20 bands, finest near the start: most
  sigma70 TSSs lie within 200 bp of one, and the shape of that curve is not a logarithm);
- whether it lies inside a CDS on its own strand, and inside one on the opposite strand;
- the band of the distance to the nearest start of a gene on the opposite strand that reads away from it
  (divergent promoters share an intergenic stretch).

The bands and flags are kept as small integers and expanded into indicator columns only a chunk at a time
(:meth:`WindowContext.design`), so a bacterial genome's windows fit in a few hundred MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from genolm.errors import ConfigError
from genolm.genome_scan import tss_positions

FAR = 100_000  # bp: the distance given to a window with no CDS start downstream on its strand
FINE_SMOOTH, COARSE_SMOOTH = 5, 81  # windows, beside the configured `smooth`
PEAK_REACH, FINE_PEAK_REACH = 41, 21  # windows over which a local maximum is taken
LOGIT_KNOTS = (-4.0, -2.0, 0.0, 2.0, 4.0)
START_DISTANCE_EDGES = (0, 10, 20, 30, 40, 50, 60, 80, 100, 125, 150, 200, 250, 325, 400, 550, 700, 1000, 1500, 3000)
DIVERGENT_EDGES = (0, 100, 300, 1000)  # bands of the distance to an opposite-strand gene start; farther is none
_EPSILON = 1e-6
_SMOOTHED = ("smoothed_logit", "fine_smoothed_logit", "coarse_smoothed_logit")
_PEAKS = ("below_local_peak", "fine_below_local_peak", "fine_local_peak")


def _band_names(prefix: str, edges: tuple[int, ...], last_open: bool) -> tuple[str, ...]:
    bands = [f"{prefix}_{low}_{high}" for low, high in pairwise(edges)]
    return tuple(bands + ([f"{prefix}_{edges[-1]}_up"] if last_open else []))


START_BANDS = _band_names("start_distance", START_DISTANCE_EDGES, last_open=True)
DIVERGENT_BANDS = _band_names("divergent_start", DIVERGENT_EDGES, last_open=False)
FEATURES = (
    *_SMOOTHED,
    *(f"logit_hinge_{knot:g}" for knot in LOGIT_KNOTS),
    *_PEAKS,
    *START_BANDS,
    "inside_cds",
    "inside_opposite_cds",
    *DIVERGENT_BANDS,
)


def smoothed_logit(scores: np.ndarray, smooth: int) -> np.ndarray:
    """Mean logit of the `smooth` windows centred on each window; unscored (NaN) windows are left out of the mean
    and stay NaN themselves."""
    if smooth < 1 or smooth % 2 == 0:
        raise ConfigError(f"context smoothing must be an odd number of windows >= 1, got {smooth}")
    scored = ~np.isnan(scores)
    p = np.clip(np.where(scored, scores, 0.5), _EPSILON, 1 - _EPSILON)
    logit = np.where(scored, np.log(p / (1 - p)), 0.0)
    kernel = np.ones(smooth)
    total = np.convolve(logit, kernel, mode="same")
    count = np.convolve(scored.astype(np.float64), kernel, mode="same")
    return np.where(scored, total / np.maximum(count, 1), np.nan)


def local_maximum(values: np.ndarray, reach: int) -> np.ndarray:
    """The maximum of the `reach` windows centred on each window (`reach` odd); NaN windows never win."""
    half = reach // 2
    padded = np.pad(np.where(np.isnan(values), -np.inf, values), half, constant_values=-np.inf)
    return sliding_window_view(padded, reach).max(axis=1)


def cds_context(cds: pd.DataFrame, positions: np.ndarray, strand: str) -> tuple[np.ndarray, np.ndarray]:
    """(distance to the next CDS start downstream on `strand`, inside a CDS on `strand`) per position; `cds` is one
    contig's CDS table (0-based half-open start/end, strand)."""
    positions = np.asarray(positions, dtype=np.int64)
    own = cds[cds["strand"] == strand]
    if own.empty:
        return np.full(positions.shape, float(FAR)), np.zeros(positions.shape, dtype=bool)
    if strand == "+":
        gene_starts = np.sort(own["start"].to_numpy(dtype=np.int64))
        index = np.searchsorted(gene_starts, positions, side="left")
        found = index < gene_starts.size
        distance = np.where(found, gene_starts[np.minimum(index, gene_starts.size - 1)] - positions, FAR)
    else:  # a minus-strand gene starts at its last base, and downstream is leftwards
        gene_starts = np.sort(own["end"].to_numpy(dtype=np.int64) - 1)
        index = np.searchsorted(gene_starts, positions, side="right") - 1
        found = index >= 0
        distance = np.where(found, positions - gene_starts[np.maximum(index, 0)], FAR)
    order = np.argsort(positions, kind="stable")
    sorted_positions = positions[order]
    edges = np.zeros(positions.size + 1, dtype=np.int64)  # +1 where a CDS begins, -1 where it ends
    np.add.at(edges, np.searchsorted(sorted_positions, own["start"].to_numpy(), side="left"), 1)
    np.add.at(edges, np.searchsorted(sorted_positions, own["end"].to_numpy(), side="left"), -1)
    inside = np.zeros(positions.shape, dtype=bool)
    inside[order] = np.cumsum(edges)[:-1] > 0
    return np.minimum(distance, FAR).astype(np.float64), inside


def divergent_distance(cds: pd.DataFrame, positions: np.ndarray, strand: str) -> np.ndarray:
    """Distance from each position to the nearest start of an opposite-strand gene upstream of it on `strand`,
    that is, a gene reading away from it; :data:`FAR` where there is none."""
    positions = np.asarray(positions, dtype=np.int64)
    opposite = cds[cds["strand"] != strand]
    if opposite.empty:
        return np.full(positions.shape, FAR, dtype=np.int64)
    if strand == "+":  # upstream is leftwards, where minus-strand genes start at their last base
        gene_starts = np.sort(opposite["end"].to_numpy(dtype=np.int64) - 1)
        index = np.searchsorted(gene_starts, positions, side="right") - 1
        distance = np.where(index >= 0, positions - gene_starts[np.maximum(index, 0)], FAR)
    else:
        gene_starts = np.sort(opposite["start"].to_numpy(dtype=np.int64))
        index = np.searchsorted(gene_starts, positions, side="left")
        found = index < gene_starts.size
        distance = np.where(found, gene_starts[np.minimum(index, gene_starts.size - 1)] - positions, FAR)
    return np.minimum(distance, FAR)


def _band(distance: np.ndarray, edges: tuple[int, ...]) -> np.ndarray:
    """Index of the band [edges[i], edges[i + 1]) each distance falls in; len(edges) - 1 from the last edge on."""
    return (np.searchsorted(np.asarray(edges), distance, side="right") - 1).astype(np.int8)


@dataclass(frozen=True)
class WindowContext:
    """The :data:`FEATURES` of one contig strand's windows, compactly: float32 logit columns and small integer
    bands and flags."""

    logits: np.ndarray  # [n, 6]: the _SMOOTHED then the _PEAKS columns, NaN where the window was not scored
    start_band: np.ndarray  # int8 index into START_BANDS
    inside: np.ndarray  # bool
    inside_opposite: np.ndarray  # bool
    divergent_band: np.ndarray  # int8 index into DIVERGENT_BANDS, -1 for none

    def __len__(self) -> int:
        return len(self.start_band)

    @property
    def scored(self) -> np.ndarray:
        return ~np.isnan(self.logits[:, 0])

    def design(self, rows: slice | np.ndarray) -> np.ndarray:
        """`[m, len(FEATURES)]` float64 feature rows (unscored windows get zero logit features)."""
        logits = np.nan_to_num(self.logits[rows].astype(np.float64))
        out = np.zeros((len(logits), len(FEATURES)))
        n_knots, n_start = len(LOGIT_KNOTS), len(START_BANDS)
        out[:, :3] = logits[:, :3]
        out[:, 3 : 3 + n_knots] = np.maximum(logits[:, :1] - np.asarray(LOGIT_KNOTS), 0.0)
        column = 3 + n_knots
        out[:, column : column + 3] = logits[:, 3:]
        column += 3
        rows_index = np.arange(len(logits))
        out[rows_index, column + self.start_band[rows]] = 1.0
        column += n_start
        out[:, column] = self.inside[rows]
        out[:, column + 1] = self.inside_opposite[rows]
        divergent = self.divergent_band[rows]
        has = divergent >= 0
        out[rows_index[has], column + 2 + divergent[has]] = 1.0
        return out


def window_context(
    scores: np.ndarray, starts: np.ndarray, strand: str, window: int, offset: int, cds: pd.DataFrame, smooth: int
) -> WindowContext:
    """The :class:`WindowContext` of one contig strand's windows: `scores` per window start, `cds` that contig's
    CDS table, `offset` the scan's TSS offset."""
    positions = tss_positions(starts, strand, window, offset)
    distance, inside = cds_context(cds, positions, strand)
    _, inside_opposite = cds_context(cds, positions, "-" if strand == "+" else "+")
    main, fine = smoothed_logit(scores, smooth), smoothed_logit(scores, FINE_SMOOTH)
    fine_peak = local_maximum(fine, PEAK_REACH)
    logits = np.column_stack(
        [
            main,
            fine,
            smoothed_logit(scores, COARSE_SMOOTH),
            main - local_maximum(main, PEAK_REACH),
            fine - local_maximum(fine, FINE_PEAK_REACH),
            np.where(np.isnan(main), np.nan, fine_peak),
        ]
    ).astype(np.float32)
    divergent = divergent_distance(cds, positions, strand)
    divergent_band = np.where(divergent < DIVERGENT_EDGES[-1], _band(divergent, DIVERGENT_EDGES), -1)
    return WindowContext(
        logits, _band(distance, START_DISTANCE_EDGES), inside, inside_opposite, divergent_band.astype(np.int8)
    )
