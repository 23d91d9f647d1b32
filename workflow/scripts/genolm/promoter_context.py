"""Promoter window scores in their gene context, for genome-wide ranking on an annotated genome.

A sequence classifier gives a high score to every promoter-like stretch, and most of a bacterial genome is coding
sequence full of them; sigma70 TSSs mostly lie within a few hundred bp upstream of a gene start on their own strand.
The context model is a logistic regression over four features of each scanned window:

- the window's logit, averaged over the `smooth` windows around it (a TSS counts within 20 bp of a window's TSS
  position, so neighbouring windows should agree; one spiking window is noise);
- log1p(d / 50) and log1p(d / 300), d the distance from the window's TSS position to the next annotated CDS start
  downstream on its strand (two scales: the core promoter sits within 50 bp, operon leaders within a few hundred);
- whether that position lies inside a CDS on its strand.

It is fitted on the windows of the stretches the classifier trained on (a task split by region) and judged on the
held-out stretch, so the held-out figure measures both models on sequence neither saw. Its TSS point calls (peaks of
the context probability, as a sequence scan calls them) use the threshold that maximises point F1 outside the
held-out stretch. Five numbers and that threshold, kept as JSON; :func:`apply_context` rescores and calls any other
annotated genome's scan with them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.amr import read_genbank_annotation, read_gff3_annotation
from genolm.annotations import TRUTH_TYPES, read_gff3
from genolm.atomic import write_text_atomic
from genolm.errors import ConfigError, InputFormatError
from genolm.evaluate import write_tsv
from genolm.formats import write_bed, write_bedgraph_tracks, write_gff3
from genolm.genome_scan import (
    CALL_TYPES,
    SCAN_DEFAULTS,
    HeldOut,
    PathLike,
    save_npz,
    score_track,
    truth_points,
    tss_positions,
    window_auprc,
    window_labels,
)
from genolm.scan import Call, call_peaks, evaluate_points, peak_points

log = logging.getLogger(__name__)

FEATURES = ("smoothed_logit", "log_start_distance_50", "log_start_distance_300", "inside_cds")
FAR = 100_000  # bp: the distance given to a window with no CDS start downstream on its strand
# Peaks below this context probability are never called: it bounds the candidates of the threshold search.
CALL_FLOOR = 0.02
_EPSILON = 1e-6


@dataclass(frozen=True)
class ContextModel:
    weights: tuple[float, ...]
    bias: float
    smooth: int
    threshold: float = 0.5  # context probability from which a peak becomes a TSS call
    features: tuple[str, ...] = FEATURES

    def save(self, path: PathLike, **provenance: object) -> None:
        write_text_atomic(path, json.dumps({**asdict(self), **provenance}, indent=1) + "\n")

    @classmethod
    def load(cls, path: PathLike) -> ContextModel:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if tuple(record.get("features", ())) != FEATURES:
            raise InputFormatError(f"{path}: context model features {record.get('features')}, expected {FEATURES}")
        if "threshold" not in record:
            raise InputFormatError(f"{path}: context model without a call threshold (written by an older genolm)")
        return cls(tuple(record["weights"]), float(record["bias"]), int(record["smooth"]), float(record["threshold"]))

    def score(self, features: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-(features @ np.asarray(self.weights) + self.bias)))

    def probability(self, features: np.ndarray) -> np.ndarray:
        """The context probability of each window of `window_features`; NaN where the scan has no score."""
        scored = self.score(np.nan_to_num(features))
        scored[np.isnan(features[:, 0])] = np.nan
        return scored


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


def window_features(
    scores: np.ndarray, starts: np.ndarray, strand: str, window: int, offset: int, cds: pd.DataFrame, smooth: int
) -> np.ndarray:
    """`[n, 4]` :data:`FEATURES` of one contig strand's windows (NaN rows where the window was not scored)."""
    distance, inside = cds_context(cds, tss_positions(starts, strand, window, offset), strand)
    return np.column_stack(
        [smoothed_logit(scores, smooth), np.log1p(distance / 50), np.log1p(distance / 300), inside.astype(np.float64)]
    )


def fit_logistic(features: np.ndarray, labels: np.ndarray, l2: float = 1e-4, iterations: int = 50) -> np.ndarray:
    """Weights then bias of an L2-regularised logistic regression, by Newton's method (four features: exact and
    deterministic, no solver dependency)."""
    x = np.column_stack([features, np.ones(len(features))])
    y = labels.astype(np.float64)
    beta = np.zeros(x.shape[1])
    penalty = l2 * len(y) * np.diag(np.r_[np.ones(features.shape[1]), 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ beta)))
        gradient = x.T @ (p - y) + penalty @ beta
        hessian = (x * (p * (1 - p))[:, None]).T @ x + penalty
        step = np.linalg.solve(hessian, gradient)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def _contig_windows(
    scores_npz: PathLike,
    cds: pd.DataFrame,
    offset: int,
    smooth: int,
) -> list[tuple[str, str, np.ndarray, np.ndarray]]:
    """(contig, strand, starts, features) of every contig strand of a scan's scores."""
    result = []
    with np.load(scores_npz, allow_pickle=False) as data:
        window = int(data["window"])
        for index, contig in enumerate(data["contigs"].tolist()):
            starts = data[f"starts_{index}"]
            for strand, key in (("+", "plus"), ("-", "minus")):
                features = window_features(
                    data[f"{key}_{index}"].astype(np.float64),
                    starts,
                    strand,
                    window,
                    offset,
                    cds[cds["contig"] == contig],
                    smooth,
                )
                result.append((contig, strand, starts, features))
    return result


def promoter_context(
    scores_npz: PathLike,
    truth_gff: PathLike,
    cds: pd.DataFrame,
    task: Mapping[str, object],
    heldout: HeldOut,
    outputs: Mapping[str, PathLike],
    smooth: int = 21,
    max_fit_windows: int = 2_000_000,
    seed: int = 0,
    bedgraph_bin: int = SCAN_DEFAULTS["bedgraph_bin"],
) -> pd.DataFrame:
    """Fit the context model on the windows outside `heldout` and write it (`outputs['model']`), the context
    scores (:func:`write_context_scores`: `outputs['scores']`, `outputs['bedgraph']`), and the held-out window
    AUPRC of the sequence scores and of the context scores side by side (`outputs['evaluation']`)."""
    if not heldout.regions:
        raise ConfigError(
            "the promoter context model needs a task split by region (split.method: region): fitted and judged on "
            "the same windows its figure would be in-sample"
        )
    scan_settings = task["scan"]
    offset, tolerance = int(scan_settings["tss_offset"]), int(scan_settings.get("window_tolerance", 20))
    points = truth_points(read_gff3(truth_gff, types={TRUTH_TYPES["promoter"]}))
    window, step = _window_and_step(scores_npz)
    rows = _contig_windows(scores_npz, cds, offset, smooth)
    fit_x, fit_y = [], []
    for contig, strand, starts, features in rows:
        positions = tss_positions(starts, strand, window, offset)
        tss = [position for name, position, sense in points if name == contig and sense == strand]
        use = ~heldout.keep(contig, positions) & ~np.isnan(features[:, 0])
        fit_x.append(features[use])
        fit_y.append(window_labels(starts, np.asarray(tss, dtype=np.int64), strand, window, offset, tolerance)[use])
    x, y = np.concatenate(fit_x), np.concatenate(fit_y)
    if not y.any() or y.all():
        raise InputFormatError(f"{truth_gff}: the windows outside the held-out stretch need TSS and non-TSS windows")
    if len(y) > max_fit_windows:  # a seeded sample keeps the fit's memory and time bounded on large genomes
        keep = np.sort(np.random.default_rng(seed).choice(len(y), max_fit_windows, replace=False))
        x, y = x[keep], y[keep]
    beta = fit_logistic(x, y)
    model = ContextModel(tuple(float(value) for value in beta[:-1]), float(beta[-1]), smooth)
    scored = [(contig, strand, starts, model.probability(features)) for contig, strand, starts, features in rows]
    candidates = context_calls(scored, window, scan_settings, CALL_FLOOR)
    point_tolerance = int(scan_settings["point_tolerance"])
    outside = [call for call in candidates if not heldout.contains(call.contig, call.start)]
    fit_truth = [point for point in points if not heldout.contains(point[0], point[1])]
    threshold, fit_f1 = best_f1_threshold(outside, fit_truth, point_tolerance)
    model = dataclasses.replace(model, threshold=threshold)
    log.info("context model on %d windows (%d TSS windows): %s; call threshold %.4f (point F1 %.3f outside the "
             "held-out stretch)", len(y), int(y.sum()), model, threshold, fit_f1)  # fmt: skip
    write_context_scores(scored, model, window, step, outputs, bedgraph_bin)
    calls = [call for call in candidates if call.score >= threshold]
    write_context_calls(calls, model, outputs)
    model.save(
        outputs["model"],
        fit_windows=len(y),
        fit_tss_windows=int(y.sum()),
        heldout=heldout.describe(),
        tss_offset=offset,
        peak_distance=int(scan_settings["peak_distance"]),
    )
    sequence = window_auprc(scores_npz, points, offset, tolerance, heldout)
    context = window_auprc(outputs["scores"], points, offset, tolerance, heldout)
    held_calls = [call for call in calls if heldout.contains(call.contig, call.start)]
    held_truth = [point for point in points if heldout.contains(point[0], point[1])]
    held_points = evaluate_points(held_calls, held_truth, point_tolerance)
    metrics: dict[str, object] = {
        "window_auprc_sequence": sequence["window_auprc"],
        "window_auprc_context": context["window_auprc"],
        "window_positive_fraction": context["window_positive_fraction"],
        "windows": context["windows"],
        "fit_windows": len(y),
        **{f"weight_{name}": weight for name, weight in zip(FEATURES, model.weights, strict=True)},
        "bias": model.bias,
        "call_threshold": threshold,
        "fit_point_f1": fit_f1,
        **{f"point_{key}": value for key, value in held_points.items() if key != "tolerance"},
        "criterion": f"held out: only {heldout.describe()}; windows positive when a true TSS lies within {tolerance} "
        f"bp of the window's TSS position, same strand; point calls match a true TSS within {point_tolerance} bp, "
        "same strand",
    }
    table = pd.DataFrame({"metric": list(metrics), "value": list(metrics.values())})
    write_tsv(table, outputs["evaluation"])
    return table


def _window_and_step(scores_npz: PathLike) -> tuple[int, int]:
    with np.load(scores_npz, allow_pickle=False) as data:
        return int(data["window"]), int(data["step"])


def write_context_scores(
    scored: Sequence[tuple[str, str, np.ndarray, np.ndarray]],
    model: ContextModel,
    window: int,
    step: int,
    outputs: Mapping[str, PathLike],
    bedgraph_bin: int,
) -> None:
    """The context probability of every window ((contig, strand, starts, probability) rows): `outputs['scores']`
    in the scan's .npz layout (NaN where the scan has none) and `outputs['bedgraph']`, the best of both strands per
    `bedgraph_bin` bp, bgzipped and indexed."""
    arrays: dict[str, np.ndarray] = {"window": np.array(window), "step": np.array(step)}
    contigs: list[str] = []
    for contig, strand, starts, probability in scored:
        if contig not in contigs:
            contigs.append(contig)
            arrays[f"starts_{len(contigs) - 1}"] = starts
        arrays[f"{'plus' if strand == '+' else 'minus'}_{contigs.index(contig)}"] = probability.astype(np.float32)
    arrays["contigs"] = np.array(contigs)
    tracks = []
    for index, contig in enumerate(contigs):
        starts = arrays[f"starts_{index}"]
        length = int(starts[-1]) + window if starts.size else window  # the last window ends at the contig end
        best = np.fmax(arrays[f"plus_{index}"], arrays[f"minus_{index}"])
        tracks.append((contig, *score_track(starts, best, window, length, bedgraph_bin)))
    save_npz(outputs["scores"], arrays)
    write_bedgraph_tracks(
        tracks,
        bedgraph_bin,
        bedgraph_bin,
        outputs["bedgraph"],
        provenance={"context_model": asdict(model), "bedgraph_bin": bedgraph_bin},
        track_name="genolm_promoter_context",
        description=f"genolm promoter probability in gene context, max of both strands per {bedgraph_bin} bp",
    )


def context_calls(
    scored: Sequence[tuple[str, str, np.ndarray, np.ndarray]],
    window: int,
    scan_settings: Mapping[str, object],
    floor: float,
) -> list[Call]:
    """TSS point calls at the context probability's peaks scoring `floor` or more, both strands, as a sequence
    scan calls them (`peak_distance`, `tss_offset`). A higher threshold keeps a subset of them: a peak is only
    ever suppressed by a better one."""
    calls: list[Call] = []
    for contig, strand, starts, probability in scored:
        peaks = call_peaks(contig, starts, probability, strand, window, floor, int(scan_settings["peak_distance"]))
        calls += peak_points(peaks, window, int(scan_settings["tss_offset"]), kind=CALL_TYPES["promoter"])
    return sorted(calls, key=lambda call: (call.contig, call.start, call.strand))


def best_f1_threshold(
    calls: Sequence[Call], truth: Sequence[tuple[str, int, str]], tolerance: int
) -> tuple[float, float]:
    """The call score from which point calls have the best F1 against `truth` (within `tolerance` bp, same strand)
    and that F1. For the search, a call is right when a true TSS lies within reach and a TSS is found when a call
    at or above the threshold lies within reach (no one-to-one matching: that is for the reported figures)."""
    if not calls or not truth:
        return 1.0, 0.0
    listed: dict[tuple[str, str], list[int]] = {}
    for contig, position, strand in truth:
        listed.setdefault((contig, strand), []).append(position)
    by_key = {key: np.sort(np.asarray(value, dtype=np.int64)) for key, value in listed.items()}
    scores = np.array([call.score for call in calls])
    right = np.zeros(len(calls), dtype=bool)
    best_near_truth = {key: np.full(len(value), -np.inf) for key, value in by_key.items()}
    for index, call in enumerate(calls):
        positions = by_key.get((call.contig, call.strand))
        if positions is None:
            continue
        low = np.searchsorted(positions, call.start - tolerance, side="left")
        high = np.searchsorted(positions, call.start + tolerance, side="right")
        if high > low:
            right[index] = True
            near = best_near_truth[(call.contig, call.strand)][low:high]
            np.maximum(near, call.score, out=near)
    truth_best = np.sort(np.concatenate(list(best_near_truth.values())))
    order = np.argsort(scores, kind="stable")
    ranked, right_before = scores[order], np.concatenate([[0], np.cumsum(right[order])])
    candidates = np.unique(scores)
    below = np.searchsorted(ranked, candidates, side="left")  # calls under each candidate threshold
    n_calls, n_right = len(scores) - below, right_before[-1] - right_before[below]
    found = len(truth_best) - np.searchsorted(truth_best, candidates, side="left")
    precision, recall = n_right / n_calls, found / len(truth_best)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1))
    return float(candidates[best]), float(f1[best])


def write_context_calls(calls: Sequence[Call], model: ContextModel, outputs: Mapping[str, PathLike]) -> None:
    """The context model's TSS calls as BED6 and GFF3, bgzipped and tabix-indexed (`outputs['bed']`, `['gff']`)."""
    provenance = {"context_model": json.dumps(asdict(model)), "threshold": round(model.threshold, 6)}
    write_bed(calls, outputs["bed"], provenance=provenance, id_prefix="context")
    write_gff3(calls, outputs["gff"], provenance=provenance, id_prefix="context")


def apply_context(
    scores_npz: PathLike,
    model_json: PathLike,
    cds: pd.DataFrame,
    task: Mapping[str, object],
    outputs: Mapping[str, PathLike],
    bedgraph_bin: int = SCAN_DEFAULTS["bedgraph_bin"],
) -> None:
    """Rescore and call another annotated genome's promoter scan with a fitted context model (no known TSSs
    needed): scores as in :func:`write_context_scores`, calls at the model's threshold as in
    :func:`write_context_calls`."""
    model = ContextModel.load(model_json)
    window, step = _window_and_step(scores_npz)
    rows = _contig_windows(scores_npz, cds, int(task["scan"]["tss_offset"]), model.smooth)
    scored = [(contig, strand, starts, model.probability(features)) for contig, strand, starts, features in rows]
    write_context_scores(scored, model, window, step, outputs, bedgraph_bin)
    write_context_calls(context_calls(scored, window, task["scan"], model.threshold), model, outputs)


def cds_of(genbank: Sequence[PathLike], fasta: Sequence[PathLike], gff: PathLike | None) -> pd.DataFrame:
    """The CDS table of a genome's annotation: GenBank (+ FASTA) per replicon, else a GFF3."""
    if genbank:
        return read_genbank_annotation(genbank, fasta)[1]
    if gff:
        return read_gff3_annotation(gff)[1]
    raise ConfigError("the promoter context model needs a gene annotation (GenBank of an ncbi genome, or a GFF3)")
