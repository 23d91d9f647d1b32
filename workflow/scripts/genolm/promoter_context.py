"""Promoter window scores in their gene context, for genome-wide ranking on an annotated genome.

A sequence classifier gives a high score to every promoter-like stretch, and most of a bacterial genome is coding
sequence full of them; sigma70 TSSs mostly lie within a few hundred bp upstream of a gene start on their own strand.
The context model is a logistic regression over the gene-context features of each scanned window
(genolm.context_features: the smoothed sequence logit at three scales, its shape around the window, distance bands
to the next gene start, CDS overlap on either strand, divergent gene starts).

It is fitted on the windows of the stretches the classifier trained on (a task split by region) and judged on the
held-out stretch, so the held-out figure measures both models on sequence neither saw. Its TSS point calls (peaks of
the context probability, as a sequence scan calls them) use the threshold that maximises point F1 outside the
held-out stretch. One weight per feature, a bias and that threshold, kept as JSON; :func:`apply_context` rescores
and calls any other annotated genome's scan with them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.amr import read_genbank_annotation, read_gff3_annotation
from genolm.annotations import TRUTH_TYPES, read_gff3
from genolm.atomic import write_text_atomic
from genolm.context_features import FEATURES, WindowContext, window_context
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

# Peaks below this context probability are never called: it bounds the candidates of the threshold search.
CALL_FLOOR = 0.02
_CHUNK = 262_144  # windows whose feature rows are expanded at once (about 80 MB)
# (feature rows, labels) chunks of a fit, produced afresh for each Newton iteration
Blocks = Callable[[], Iterator[tuple[np.ndarray, np.ndarray]]]


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

    def probability(self, context: WindowContext) -> np.ndarray:
        """The context probability of each window; NaN where the scan has no score."""
        weights = np.asarray(self.weights)
        # a row-wise sum, not a BLAS product: each window's score is then the same bits whatever the chunking
        logit = np.concatenate(
            [(context.design(slice(low, low + _CHUNK)) * weights).sum(axis=1) for low in range(0, len(context), _CHUNK)]
            or [np.empty(0)]
        )
        probability = 1.0 / (1.0 + np.exp(-(logit + self.bias)))
        probability[~context.scored] = np.nan
        return probability


def fit_logistic(blocks: Blocks, n_features: int, l2: float = 1e-6, iterations: int = 50) -> np.ndarray:
    """Weights then bias of an L2-regularised logistic regression, by Newton's method (a few dozen features:
    exact and deterministic, no solver dependency). `blocks()` yields (feature rows, labels) chunks, so the rows
    are expanded a chunk at a time and never held all at once. The default penalty is weak: a distance band that
    holds 1% of the windows still needs its own weight."""
    beta = np.zeros(n_features + 1)
    for _ in range(iterations):
        gradient, hessian, n_rows = np.zeros_like(beta), np.zeros((beta.size, beta.size)), 0
        for features, labels in blocks():
            x = np.empty((len(labels), beta.size))
            x[:, :-1], x[:, -1] = features, 1.0
            p = 1.0 / (1.0 + np.exp(-(x @ beta)))
            gradient += x.T @ (p - labels)
            hessian += (x * (p * (1 - p))[:, None]).T @ x
            n_rows += len(labels)
        penalty = l2 * n_rows * np.diag(np.r_[np.ones(n_features), 0.0])
        step = np.linalg.solve(hessian + penalty, gradient + penalty @ beta)
        beta -= step
        if np.abs(step).max() < 1e-8:
            break
    return beta


def matrix_blocks(features: np.ndarray, labels: np.ndarray, chunk: int = _CHUNK) -> Blocks:
    """:func:`fit_logistic`'s blocks of a feature matrix held in memory."""
    return lambda: ((features[low : low + chunk], labels[low : low + chunk]) for low in range(0, len(labels), chunk))


def _contig_windows(
    scores_npz: PathLike, cds: pd.DataFrame, offset: int, smooth: int
) -> list[tuple[str, str, np.ndarray, WindowContext]]:
    """(contig, strand, starts, context) of every contig strand of a scan's scores."""
    result = []
    with np.load(scores_npz, allow_pickle=False) as data:
        window = int(data["window"])
        for index, contig in enumerate(data["contigs"].tolist()):
            starts = data[f"starts_{index}"]
            for strand, key in (("+", "plus"), ("-", "minus")):
                context = window_context(
                    data[f"{key}_{index}"].astype(np.float64),
                    starts,
                    strand,
                    window,
                    offset,
                    cds[cds["contig"] == contig],
                    smooth,
                )
                result.append((contig, strand, starts, context))
    return result


def _fit_blocks(
    rows: Sequence[tuple[str, str, np.ndarray, WindowContext]],
    labels: Sequence[np.ndarray],
    uses: Sequence[np.ndarray],
    max_windows: int,
    seed: int,
) -> tuple[Blocks, np.ndarray]:
    """:func:`fit_logistic`'s blocks of the fit windows (`uses` per contig strand), and their labels; a seeded
    sample of `max_windows` of them when there are more, which bounds the fit's time on large genomes."""
    chosen = [np.flatnonzero(use) for use in uses]
    total = sum(len(index) for index in chosen)
    if total > max_windows:
        keep = np.sort(np.random.default_rng(seed).choice(total, max_windows, replace=False))
        bounds = np.cumsum([0] + [len(index) for index in chosen])
        chosen = [
            index[keep[(keep >= low) & (keep < high)] - low]
            for index, low, high in zip(chosen, bounds[:-1], bounds[1:], strict=True)
        ]

    def blocks() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for (_, _, _, context), label, index in zip(rows, labels, chosen, strict=True):
            for low in range(0, len(index), _CHUNK):
                part = index[low : low + _CHUNK]
                yield context.design(part), label[part].astype(np.float64)

    return blocks, np.concatenate([label[index] for label, index in zip(labels, chosen, strict=True)])


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
    labels, uses = [], []
    for contig, strand, starts, context in rows:
        positions = tss_positions(starts, strand, window, offset)
        tss = [position for name, position, sense in points if name == contig and sense == strand]
        uses.append(~heldout.keep(contig, positions) & context.scored)
        labels.append(window_labels(starts, np.asarray(tss, dtype=np.int64), strand, window, offset, tolerance))
    fit_tss = sum(int((label & use).sum()) for label, use in zip(labels, uses, strict=True))
    if fit_tss in (0, sum(int(use.sum()) for use in uses)):
        raise InputFormatError(f"{truth_gff}: the windows outside the held-out stretch need TSS and non-TSS windows")
    blocks, y = _fit_blocks(rows, labels, uses, max_fit_windows, seed)
    beta = fit_logistic(blocks, len(FEATURES))
    model = ContextModel(tuple(float(value) for value in beta[:-1]), float(beta[-1]), smooth)
    scored = [(contig, strand, starts, model.probability(context)) for contig, strand, starts, context in rows]
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
    scored = [(contig, strand, starts, model.probability(context)) for contig, strand, starts, context in rows]
    write_context_scores(scored, model, window, step, outputs, bedgraph_bin)
    write_context_calls(context_calls(scored, window, task["scan"], model.threshold), model, outputs)


def cds_of(genbank: Sequence[PathLike], fasta: Sequence[PathLike], gff: PathLike | None) -> pd.DataFrame:
    """The CDS table of a genome's annotation: GenBank (+ FASTA) per replicon, else a GFF3."""
    if genbank:
        return read_genbank_annotation(genbank, fasta)[1]
    if gff:
        return read_gff3_annotation(gff)[1]
    raise ConfigError("the promoter context model needs a gene annotation (GenBank of an ncbi genome, or a GFF3)")
