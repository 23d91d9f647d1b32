"""Sliding-window genome scans: windows, two-strand scoring, element/point calls and their evaluation.

Coordinate contract (tested):
- Everything is 0-based half-open, on the forward strand, for both strands. A window is ``[s, s + window)``.
- The minus-strand window at ``s`` is the reverse complement of the forward window ``[s, s + window)``; its
  score is reported at the same forward start ``s``.
- Calls (:class:`Call`) keep forward coordinates and a strand. Only output writers convert (GFF3: 1-based).
- Windows never cross contig ends and contigs are never joined.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from genolm.errors import ConfigError, GenolmError, InputFormatError
from genolm.formats import write_bed, write_bedgraph, write_bedgraph_tracks, write_gff3

__all__ = [
    "Call",
    "ContigScan",
    "ScanConfig",
    "call_elements",
    "call_peaks",
    "calls_from_scan",
    "evaluate_calls",
    "evaluate_points",
    "iter_windows",
    "model_scorer",
    "non_acgt_fraction",
    "peak_points",
    "scan_contigs",
    "scan_sequence",
    "score_windows",
    "write_bed",
    "write_bedgraph",
    "write_bedgraph_tracks",
    "write_gff3",
]

log = logging.getLogger(__name__)

Scorer = Callable[[list[str]], np.ndarray]

_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")


def _reverse_complement(seq: str) -> str:
    """IUPAC reverse complement of an upper-case sequence (private: genolm.seqio owns the public one)."""
    return seq.translate(_COMPLEMENT)[::-1]


# Window step and calling settings of a task's `scan` block when it leaves one out (the schema's defaults): the CLI
# and exported model cards fill gaps from here.
CALL_DEFAULTS = {
    "step": 10,
    "merge_gap": 0,
    "min_windows": 1,
    "peak_distance": 50,
    "tss_offset": 60,
    "point_tolerance": 20,
    "min_overlap": 0.5,
}


@dataclass(frozen=True)
class ScanConfig:
    """Scan parameters (config ``scan:`` block); ``min_windows`` = fewest positive windows per call."""

    window: int
    step: int
    threshold: float
    batch_size: int = 512
    merge_gap: int = 0
    min_windows: int = 1
    max_n_fraction: float = 1.0

    def __post_init__(self) -> None:
        for name in ("window", "step", "batch_size", "min_windows"):
            if getattr(self, name) < 1:
                raise ConfigError(f"scan.{name} must be >= 1, got {getattr(self, name)}")
        if self.merge_gap < 0:
            raise ConfigError(f"scan.merge_gap must be >= 0, got {self.merge_gap}")
        if not 0.0 <= self.max_n_fraction <= 1.0:
            raise ConfigError(f"scan.max_n_fraction must be in [0, 1], got {self.max_n_fraction}")


@dataclass(frozen=True, slots=True)
class Call:
    """A called element (or point) on forward coordinates ``[start, end)``.

    ``peak`` is the forward start of the best-scoring window (leftmost on ties), ``window`` its length
    (0 for point calls), ``n_windows`` the number of windows at or above the threshold that were merged.
    """

    contig: str
    start: int
    end: int
    strand: str
    score: float
    peak: int
    kind: str
    n_windows: int = 1
    window: int = 0
    # Extra GFF3 attributes (key, value), e.g. the terminal inverted repeats of an IS call.
    attributes: tuple[tuple[str, str], ...] = ()


def iter_windows(contig_len: int, window: int, step: int) -> np.ndarray:
    """Starts of the windows fully inside a contig of ``contig_len`` bases, increasing.

    Starts are 0, step, 2*step, ...; if the last one does not reach the contig end, one more window aligned to
    the end (start ``contig_len - window``) is added so the tail is covered. A contig shorter than the window
    has no windows (the caller records it).
    """
    if window < 1 or step < 1:
        raise ConfigError(f"window and step must be >= 1 (got window={window}, step={step})")
    last = contig_len - window
    if last < 0:
        return np.empty(0, dtype=np.int64)
    starts = np.arange(0, last + 1, step, dtype=np.int64)
    if starts[-1] != last:
        starts = np.append(starts, np.int64(last))
    return starts


_ACGT_FLAGS = np.zeros(256, dtype=bool)
_ACGT_FLAGS[list(b"ACGT")] = True


def non_acgt_fraction(seq: str, starts: np.ndarray, window: int) -> np.ndarray:
    """Fraction of non-ACGT bases (N, IUPAC codes; ``seq`` is upper-case) in each window ``[s, s + window)``."""
    bad = ~_ACGT_FLAGS[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    csum = np.zeros(bad.size + 1, dtype=np.int64)
    np.cumsum(bad, out=csum[1:])
    return (csum[starts + window] - csum[starts]) / window


def _score_batch(scorer: Scorer, windows: list[str], name: str, first_start: int) -> np.ndarray:
    if not windows:
        return np.empty(0, dtype=np.float64)
    out = np.asarray(scorer(windows), dtype=np.float64).reshape(-1)
    if out.size != len(windows):
        raise GenolmError(
            f"{name}: scorer returned {out.size} scores for {len(windows)} windows (batch from {first_start})"
        )
    if not np.isfinite(out).all():
        raise GenolmError(f"{name}: scorer returned a non-finite score in the batch starting at {first_start}")
    return out


def score_windows(
    seq: str,
    starts: np.ndarray,
    scorer: Scorer,
    window: int,
    batch_size: int = 512,
    *,
    max_n_fraction: float = 1.0,
    name: str = "sequence",
) -> tuple[np.ndarray, np.ndarray]:
    """``(plus, minus)`` scores of the windows of upper-case ``seq`` starting at ``starts`` (see scan_sequence)."""
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    starts = np.asarray(starts, dtype=np.int64)
    plus = np.full(starts.size, np.nan)
    minus = np.full(starts.size, np.nan)
    if starts.size == 0:
        return plus, minus
    scored = np.flatnonzero(non_acgt_fraction(seq, starts, window) <= max_n_fraction)
    rc = _reverse_complement(seq)
    n = len(seq)
    for b in range(0, scored.size, batch_size):
        idx = scored[b : b + batch_size]
        batch = starts[idx].tolist()
        plus[idx] = _score_batch(scorer, [seq[s : s + window] for s in batch], name, batch[0])
        # The reverse complement of forward [s, s+w) is rc[n-s-w : n-s].
        minus[idx] = _score_batch(scorer, [rc[n - s - window : n - s] for s in batch], name, batch[0])
    return plus, minus


def scan_sequence(
    seq: str,
    scorer: Scorer,
    window: int,
    step: int,
    batch_size: int = 512,
    *,
    max_n_fraction: float = 1.0,
    name: str = "sequence",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Score every window of ``seq`` on both strands: ``(starts, plus_scores, minus_scores)``.

    ``scorer`` gets lists of oriented, upper-case window strings (at most ``batch_size``) and returns one
    probability per window. Windows whose non-ACGT fraction exceeds ``max_n_fraction`` are not scored and get
    NaN (below any threshold; left out of bedGraphs). ``name`` is used in error messages.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    seq = seq.upper()
    starts = iter_windows(len(seq), window, step)
    plus, minus = score_windows(seq, starts, scorer, window, batch_size, max_n_fraction=max_n_fraction, name=name)
    return starts, plus, minus


def _sorted_windows(contig: str, starts: np.ndarray, scores: np.ndarray, strand: str) -> tuple[np.ndarray, np.ndarray]:
    """Checked window starts and scores of one strand, sorted by start."""
    if strand not in ("+", "-"):
        raise InputFormatError(f"{contig}: strand must be '+' or '-', got {strand!r}")
    starts = np.asarray(starts, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if starts.shape != scores.shape:
        raise InputFormatError(f"{contig}: {starts.size} window starts but {scores.size} scores")
    order = np.argsort(starts, kind="stable")
    return starts[order], scores[order]


def call_elements(
    contig: str,
    starts: np.ndarray,
    scores: np.ndarray,
    strand: str,
    window: int,
    threshold: float,
    merge_gap: int = 0,
    kind: str = "element",
    *,
    min_windows: int = 1,
) -> list[Call]:
    """Merge windows scoring ``>= threshold`` into calls, sorted by start.

    Two positive windows join when they overlap, touch, or are separated by at most ``merge_gap`` bases. A
    call spans its first window's start to its last window's end, its score is the maximum window score and
    its peak the start of that best window (leftmost on ties). Calls with fewer than ``min_windows`` positive
    windows are dropped. NaN (unscored) windows never count as positive.
    """
    starts, scores = _sorted_windows(contig, starts, scores, strand)
    hit = np.flatnonzero(scores >= threshold)
    if hit.size == 0:
        return []
    pos = starts[hit]
    # Windows have equal length, so the previous window always has the largest end seen so far.
    breaks = np.flatnonzero(pos[1:] > pos[:-1] + window + merge_gap) + 1
    calls = []
    for group in np.split(hit, breaks):
        if group.size < min_windows:
            continue
        best = group[int(np.argmax(scores[group]))]
        calls.append(
            Call(
                contig=contig,
                start=int(starts[group[0]]),
                end=int(starts[group[-1]]) + window,
                strand=strand,
                score=float(scores[best]),
                peak=int(starts[best]),
                kind=kind,
                n_windows=int(group.size),
                window=window,
            )
        )
    return calls


def call_peaks(
    contig: str,
    starts: np.ndarray,
    scores: np.ndarray,
    strand: str,
    window: int,
    threshold: float,
    min_distance: int,
    kind: str = "peak",
) -> list[Call]:
    """Local maxima: windows scoring ``>= threshold`` that are the best within ``min_distance`` bases, sorted.

    Greedy non-maximum suppression, best score first (ties: leftmost), so neighbouring elements closer than a window
    (promoter clusters) each keep their own call instead of being merged into one region. NaN never counts.
    """
    if min_distance < 0:
        raise ConfigError(f"min_distance must be >= 0, got {min_distance}")
    starts, scores = _sorted_windows(contig, starts, scores, strand)
    hit = np.flatnonzero(scores >= threshold)
    # Window index ranges within min_distance of each window, for suppression in index space.
    low = np.searchsorted(starts, starts - min_distance, side="left")
    high = np.searchsorted(starts, starts + min_distance, side="right")
    suppressed = np.zeros(starts.size, dtype=bool)
    calls = []
    for index in hit[np.lexsort((starts[hit], -scores[hit]))]:
        if suppressed[index]:
            continue
        suppressed[low[index] : high[index]] = True
        start = int(starts[index])
        calls.append(Call(contig, start, start + window, strand, float(scores[index]), start, kind, 1, window))
    return sorted(calls, key=lambda call: call.start)


def peak_points(calls: Iterable[Call], window: int, offset: int, kind: str | None = None) -> list[Call]:
    """Point calls at ``offset`` bases into each call's best window, read on the call's strand.

    For promoter windows TSS-60..TSS+20 use ``offset=60``. Plus strand: position ``peak + offset``; minus
    strand the offset counts from the window end: ``peak + window - 1 - offset``. Each point is a 1-bp call
    ``[p, p + 1)`` with ``peak = p`` and ``window = 0``.
    """
    if not 0 <= offset < window:
        raise ConfigError(f"peak offset must be in [0, {window}), got {offset}")
    points = []
    for c in calls:
        p = c.peak + offset if c.strand == "+" else c.peak + window - 1 - offset
        points.append(Call(c.contig, p, p + 1, c.strand, c.score, p, kind or c.kind, n_windows=c.n_windows, window=0))
    return points


@dataclass(frozen=True)
class ContigScan:
    """Window scores of one contig on both strands (NaN = not scored)."""

    contig: str
    length: int
    starts: np.ndarray
    plus: np.ndarray
    minus: np.ndarray


def _named_sequences(contigs: Mapping[str, str] | Iterable[Any]) -> Iterator[tuple[str, str]]:
    """(name, sequence) pairs from a mapping, (name, seq) tuples, or records with .name/.sequence."""
    items = contigs.items() if isinstance(contigs, Mapping) else contigs
    for item in items:
        if isinstance(item, tuple):
            yield item[0], item[1]
        else:
            yield item.name, item.sequence


def scan_contigs(contigs: Mapping[str, str] | Iterable[Any], scorer: Scorer, cfg: ScanConfig) -> Iterator[ContigScan]:
    """Scan each contig separately (never joined); contigs shorter than the window are logged and skipped."""
    for name, seq in _named_sequences(contigs):
        if len(seq) < cfg.window:
            log.warning(
                "contig %s (%d bp) is shorter than the scan window (%d bp): not scanned",
                name,
                len(seq),
                cfg.window,
            )
            continue
        starts, plus, minus = scan_sequence(
            seq, scorer, cfg.window, cfg.step, cfg.batch_size, max_n_fraction=cfg.max_n_fraction, name=name
        )
        log.info("scanned %s: %d windows per strand", name, starts.size)
        yield ContigScan(name, len(seq), starts, plus, minus)


def calls_from_scan(scan: ContigScan, cfg: ScanConfig, kind: str) -> list[Call]:
    """Calls on both strands of one scanned contig, sorted by start, end, strand."""
    calls = [
        call
        for strand, scores in (("+", scan.plus), ("-", scan.minus))
        for call in call_elements(
            scan.contig,
            scan.starts,
            scores,
            strand,
            cfg.window,
            cfg.threshold,
            cfg.merge_gap,
            kind,
            min_windows=cfg.min_windows,
        )
    ]
    return sorted(calls, key=lambda c: (c.start, c.end, c.strand))


def model_scorer(
    model: Any,
    tokenizer: Any,
    device: Any = None,
    batch_size: int = 512,
) -> Scorer:
    """Wrap a classifier ``model(tokens, lengths) -> logits`` as a scorer of window strings.

    ``tokenizer`` is an object with ``encode_batch`` (e.g. ``genolm.kmers.KmerTokenizer``) or any callable
    ``list[str] -> (tokens[B, T] int64, lengths[B])``. ``device`` defaults to the model's device. The model is
    put in eval mode; scores are sigmoid probabilities (float64). When the GPU runs out of memory, batches are
    halved (genolm.oom) and the smaller size is kept for later calls; scores do not change.
    """
    import torch  # lazy: scan/calling code is usable without torch

    from genolm.oom import with_oom_backoff

    tokenize = tokenizer.encode_batch if hasattr(tokenizer, "encode_batch") else tokenizer
    if not callable(tokenize):
        raise ConfigError(f"tokenizer {tokenizer!r} has no encode_batch and is not callable")
    if device is None:
        first = next(iter(model.parameters()), None)
        device = first.device if first is not None else torch.device("cpu")
    device = torch.device(device)
    model.eval()
    fitting = batch_size

    def score(windows: list[str]) -> np.ndarray:
        nonlocal fitting
        out = np.empty(len(windows), dtype=np.float64)

        def run(idx: np.ndarray) -> None:
            tokens, lengths = tokenize(list(windows[idx[0] : idx[-1] + 1]))
            t = torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=device)
            n = torch.as_tensor(np.asarray(lengths), dtype=torch.long, device=device)
            logits = model(t, n).float().reshape(-1)
            out[idx[0] : idx[0] + t.shape[0]] = torch.sigmoid(logits).cpu().numpy()

        with torch.inference_mode():
            fitting = with_oom_backoff(run, np.arange(len(windows)), fitting, what="scoring windows")
        return out

    return score


# -----------------------------------------------------------------------------
# Evaluation against truth sets


def _interval(item: Any) -> tuple[str, int, int, str]:
    """(contig, start, end, strand) from attributes or a tuple (contig, start, end[, strand])."""
    if isinstance(item, tuple | list):
        strand = item[3] if len(item) > 3 else "."
        return str(item[0]), int(item[1]), int(item[2]), str(strand)
    return str(item.contig), int(item.start), int(item.end), str(getattr(item, "strand", "."))


def _point(item: Any) -> tuple[str, int, str]:
    """(contig, position, strand) from attributes or a tuple (contig, position[, strand])."""
    if isinstance(item, tuple | list):
        strand = item[2] if len(item) > 2 else "."
        return str(item[0]), int(item[1]), str(strand)
    return str(item.contig), int(item.position), str(getattr(item, "strand", "."))


def _prf(n_calls: int, n_truth: int, tp: int) -> dict[str, float]:
    """Counts, precision, recall, F1: precision 0.0 without calls, recall NaN without truth, F1 0 if tp=0."""
    precision = tp / n_calls if n_calls else 0.0
    recall = tp / n_truth if n_truth else float("nan")
    f1 = 2 * tp / (n_calls + n_truth) if tp else 0.0
    return {
        "n_calls": n_calls,
        "n_truth": n_truth,
        "tp": tp,
        "fp": n_calls - tp,
        "fn": n_truth - tp,
        "precision": precision,
        "recall": recall,
        "f1": f1,
    }


def _greedy_match(pairs: list[tuple[float, int, int]]) -> list[tuple[int, int]]:
    """One-to-one matching taking pairs in sort order (best first): each call and truth used at most once."""
    used_c: set[int] = set()
    used_t: set[int] = set()
    matched = []
    for _, ci, ti in sorted(pairs):
        if ci not in used_c and ti not in used_t:
            used_c.add(ci)
            used_t.add(ti)
            matched.append((ci, ti))
    return matched


def _grouped(keys: Sequence[tuple[str, str]], match_strand: bool) -> dict[tuple[str, str], list[int]]:
    groups: dict[tuple[str, str], list[int]] = {}
    for i, (contig, strand) in enumerate(keys):
        groups.setdefault((contig, strand if match_strand else "."), []).append(i)
    return groups


def evaluate_calls(
    calls: Sequence[Any],
    truth_intervals: Sequence[Any],
    min_overlap: float = 0.5,
    *,
    match_strand: bool = True,
) -> dict[str, float]:
    """Element-level precision/recall/F1 at reciprocal overlap ``>= min_overlap``.

    A call and a truth interval are compatible when they share contig (and strand, if ``match_strand``) and
    the overlap covers at least ``min_overlap`` of each. Matching is one-to-one, greedy by overlap length
    (ties: lower call index, then lower truth index). Truth items: objects with contig/start/end/strand
    (e.g. demo features) or tuples ``(contig, start, end[, strand])``; a missing strand reads as "." and then
    only matches with ``match_strand=False``.
    """
    if not 0.0 < min_overlap <= 1.0:
        raise ConfigError(f"min_overlap must be in (0, 1], got {min_overlap}")
    cs = [_interval(c) for c in calls]
    ts = [_interval(t) for t in truth_intervals]
    for contig, start, end, _ in (*cs, *ts):
        if end <= start:
            raise InputFormatError(f"empty or inverted interval {contig}:{start}-{end}")
    truth_groups = _grouped([(t[0], t[3]) for t in ts], match_strand)
    pairs: list[tuple[float, int, int]] = []
    for key, c_idx in _grouped([(c[0], c[3]) for c in cs], match_strand).items():
        t_idx = np.array(truth_groups.get(key, []), dtype=np.int64)
        if t_idx.size == 0:
            continue
        t_idx = t_idx[np.argsort([ts[i][1] for i in t_idx], kind="stable")]
        t_start = np.array([ts[i][1] for i in t_idx])
        t_end = np.array([ts[i][2] for i in t_idx])
        max_len = int((t_end - t_start).max())
        for ci in c_idx:
            _, c_start, c_end, _ = cs[ci]
            # Only truths starting in (c_start - max_len, c_end) can overlap the call.
            lo = np.searchsorted(t_start, c_start - max_len, side="right")
            hi = np.searchsorted(t_start, c_end, side="left")
            s, e = t_start[lo:hi], t_end[lo:hi]
            ov = np.minimum(c_end, e) - np.maximum(c_start, s)
            ok = (ov > 0) & (ov >= min_overlap * (c_end - c_start)) & (ov >= min_overlap * (e - s))
            pairs.extend((-float(o), ci, int(ti)) for o, ti in zip(ov[ok], t_idx[lo:hi][ok], strict=True))
    matched = _greedy_match(pairs)
    out = _prf(len(cs), len(ts), len(matched))
    out["min_overlap"] = min_overlap
    return out


def evaluate_points(
    calls: Sequence[Any], truth_points: Sequence[Any], tolerance: int, *, match_strand: bool = True
) -> dict[str, float]:
    """Point-level precision/recall/F1: a call matches a truth point within ``tolerance`` bases.

    Calls are 1-bp point calls (from :func:`peak_points`); their position is ``start``. Truth points: objects
    with contig/position/strand or tuples ``(contig, position[, strand])``. One-to-one matching, greedy by
    distance (ties: lower call index, then lower truth index). Adds ``median_abs_distance`` of the matches
    (NaN without matches).
    """
    if tolerance < 0:
        raise ConfigError(f"tolerance must be >= 0, got {tolerance}")
    cs = []
    for c in calls:
        contig, start, end, strand = _interval(c)
        if end - start != 1:
            raise InputFormatError(f"evaluate_points needs 1-bp point calls, got {contig}:{start}-{end}")
        cs.append((contig, start, strand))
    ts = [_point(t) for t in truth_points]
    truth_groups = _grouped([(t[0], t[2]) for t in ts], match_strand)
    pairs: list[tuple[float, int, int]] = []
    for key, c_idx in _grouped([(c[0], c[2]) for c in cs], match_strand).items():
        t_idx = np.array(truth_groups.get(key, []), dtype=np.int64)
        if t_idx.size == 0:
            continue
        t_idx = t_idx[np.argsort([ts[i][1] for i in t_idx], kind="stable")]
        t_pos = np.array([ts[i][1] for i in t_idx])
        for ci in c_idx:
            p = cs[ci][1]
            lo = np.searchsorted(t_pos, p - tolerance, side="left")
            hi = np.searchsorted(t_pos, p + tolerance, side="right")
            dist = np.abs(t_pos[lo:hi] - p)
            pairs.extend((float(d), ci, int(ti)) for d, ti in zip(dist, t_idx[lo:hi], strict=True))
    matched = _greedy_match(pairs)
    out = _prf(len(cs), len(ts), len(matched))
    dists = [abs(cs[ci][1] - ts[ti][1]) for ci, ti in matched]
    out["tolerance"] = tolerance
    out["median_abs_distance"] = float(np.median(dists)) if dists else float("nan")
    return out
