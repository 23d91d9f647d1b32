"""Scan a genome with a trained classifier: both strands, calls, indexed BED/GFF3/bedGraph and a summary.

Promoter tasks give TSS point calls (the peak window's TSS offset, read on its strand); IS tasks give element
calls from merged positive windows. IS windows are strand-agnostic, so an IS call takes the better strand's score
and has no strand ('.').
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.annotations import TRUTH_TYPES, read_gff3
from genolm.evaluate import threshold_from_metrics, write_tsv
from genolm.formats import write_bed, write_bedgraph_tracks, write_gff3
from genolm.kmers import KmerTokenizer
from genolm.provenance import sha256_file
from genolm.scan import (
    Call,
    call_elements,
    call_peaks,
    evaluate_calls,
    evaluate_points,
    iter_windows,
    model_scorer,
    peak_points,
    scan_sequence,
)
from genolm.seqio import read_fasta, reverse_complement

log = logging.getLogger(__name__)

CALL_TYPES = {"promoter": "TSS", "is": "insertion_sequence"}
# Fully convolutional scans run over chunks of this many tokens: big enough to amortise each pass, small enough
# that feature maps stay far below 1 GB (200 kb chunks measured faster than 1 Mb ones).
CHUNK_TOKENS = 200_000


def convolutional_scores(model: Any, tokenizer: KmerTokenizer, sequence: str, starts: np.ndarray, device: Any):
    """Window probabilities from one fully convolutional pass per chunk, equal to scoring each window alone.

    Needs stride 1 so that every base position starts a token; chunks overlap by a window minus one token so no
    window is cut at a chunk edge. A device out of memory halves the chunk and retries (genolm.oom).
    """
    import torch

    from genolm.oom import with_oom_backoff

    span = model.window_tokens
    tokens = tokenizer.encode(sequence)
    logits = np.empty(max(len(tokens) - span + 1, 0), dtype=np.float64)

    def score_positions(positions: np.ndarray) -> None:
        first, last = int(positions[0]), int(positions[-1]) + 1
        chunk = torch.as_tensor(tokens[first : last + span - 1], dtype=torch.long, device=device)[None]
        logits[first:last] = model.position_logits(chunk)[0].float().cpu().numpy()

    with torch.inference_mode():
        with_oom_backoff(score_positions, np.arange(len(logits)), CHUNK_TOKENS, what="convolutional genome scan")
    return 1.0 / (1.0 + np.exp(-logits[starts]))


def score_contig(
    model: Any, tokenizer: KmerTokenizer, sequence: str, window: int, step: int, batch_size: int, device: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, plus, minus) window scores of one contig; the CNN fast path when the model allows it."""
    starts = iter_windows(len(sequence), window, step)
    if starts.size == 0:
        return starts, np.empty(0), np.empty(0)
    if hasattr(model, "position_logits") and tokenizer.stride == 1:
        plus = convolutional_scores(model, tokenizer, sequence, starts, device)
        # The minus-strand window at forward start s is the reverse complement's window at n - s - window.
        rc_starts = len(sequence) - starts - window
        minus = convolutional_scores(model, tokenizer, reverse_complement(sequence), rc_starts, device)
        return starts, plus, minus
    return scan_sequence(
        sequence, model_scorer(model, tokenizer, device=device, batch_size=batch_size), window, step, batch_size
    )


def calls_for_contig(
    contig: str,
    starts: np.ndarray,
    plus: np.ndarray,
    minus: np.ndarray,
    window: int,
    threshold: float,
    task: Mapping[str, Any],
) -> list[Call]:
    """Promoters: local score maxima per strand, as TSS points. IS: merged positive windows of either strand."""
    kind, scan = task["kind"], task["scan"]
    call_type = CALL_TYPES[kind]
    if kind == "promoter":
        peaks = [
            call
            for strand, scores in (("+", plus), ("-", minus))
            for call in call_peaks(contig, starts, scores, strand, window, threshold, scan["peak_distance"], call_type)
        ]
        calls = peak_points(peaks, window, scan["tss_offset"], kind=call_type)
    elif task["strand_specific"]:
        calls = [
            call
            for strand, scores in (("+", plus), ("-", minus))
            for call in call_elements(
                contig,
                starts,
                scores,
                strand,
                window,
                threshold,
                scan["merge_gap"],
                call_type,
                min_windows=scan["min_windows"],
            )
        ]
    else:
        merged = call_elements(
            contig,
            starts,
            np.fmax(plus, minus),
            "+",
            window,
            threshold,
            scan["merge_gap"],
            call_type,
            min_windows=scan["min_windows"],
        )
        calls = [dataclasses.replace(call, strand=".") for call in merged]
    return sorted(calls, key=lambda call: (call.start, call.end, call.strand))


def scan_genome(
    fasta: str | Path,
    checkpoint: str | Path,
    metrics: str | Path | None,
    task: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    genome: str,
    task_name: str,
    model_name: str,
    batch_size: int = 1024,
    device: str = "auto",
    threshold: float | None = None,
) -> pd.DataFrame:
    """Scan every contig of a FASTA on both strands and write calls, scores and a summary (see module doc).

    The decision threshold is the validation-chosen one in `metrics` (evaluate's table) or, without it, `threshold`
    (default 0.5).
    """
    from genolm.checkpoint import load_checkpoint
    from genolm.train import select_device

    torch_device = select_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=torch_device)
    model.eval()
    tokenizer = KmerTokenizer.from_dict(meta["vocab"])
    window = int(meta["window_bp"])
    step = int(task["scan"]["step"])
    if metrics is not None:
        threshold = threshold_from_metrics(metrics)
    elif threshold is None:
        threshold = 0.5
    provenance = {
        "genolm_task": task_name,
        "model": model_name,
        "checkpoint_sha256": sha256_file(checkpoint),
        "fasta": str(fasta),
        "fasta_sha256": sha256_file(fasta),
        "window": window,
        "step": step,
        "threshold": round(threshold, 6),
    }
    started = time.perf_counter()
    calls: list[Call] = []
    tracks, lengths, arrays, skipped = [], {}, {}, []
    for index, record in enumerate(read_fasta(fasta)):
        lengths[record.name] = len(record.sequence)
        starts, plus, minus = score_contig(model, tokenizer, record.sequence, window, step, batch_size, torch_device)
        if starts.size == 0:
            log.warning(
                "%s: contig %s (%d bp) is shorter than the %d bp window",
                fasta,
                record.name,
                len(record.sequence),
                window,
            )
            skipped.append(record.name)
        calls += calls_for_contig(record.name, starts, plus, minus, window, threshold, task)
        tracks.append((record.name, starts, np.fmax(plus, minus)))
        arrays.update(
            {
                f"starts_{index}": starts,
                f"plus_{index}": plus.astype(np.float32),
                f"minus_{index}": minus.astype(np.float32),
            }
        )
        log.info("%s: %d windows per strand scored", record.name, starts.size)
    seconds = time.perf_counter() - started
    contig_order = list(lengths)
    write_bed(calls, outputs["bed"], provenance=provenance, contig_order=contig_order, id_prefix=f"{task_name}_")
    write_gff3(
        calls,
        outputs["gff"],
        provenance=provenance,
        sequence_lengths=lengths,
        contig_order=contig_order,
        id_prefix=f"{task_name}_",
    )
    write_bedgraph_tracks(
        tracks,
        window,
        step,
        outputs["bedgraph"],
        provenance=provenance,
        track_name=f"{task_name}_{model_name}",
        description=f"genolm {task_name} {model_name} window score (max of both strands)",
    )
    np.savez_compressed(
        outputs["scores"],
        contigs=np.asarray(contig_order, dtype=np.str_),
        window=np.int64(window),
        step=np.int64(step),
        threshold=np.float64(threshold),
        **arrays,
    )
    total_bp = sum(lengths.values())
    summary = pd.DataFrame(
        [
            {
                "genome": genome,
                "task": task_name,
                "model": model_name,
                "contigs": len(lengths),
                "contigs_too_short": len(skipped),
                "bp": total_bp,
                "window": window,
                "step": step,
                "threshold": round(threshold, 6),
                "calls": len(calls),
                "calls_plus": sum(call.strand == "+" for call in calls),
                "calls_minus": sum(call.strand == "-" for call in calls),
                "calls_unstranded": sum(call.strand == "." for call in calls),
                "seconds": round(seconds, 2),
                "bp_per_s": round(2 * total_bp / seconds) if seconds > 0 else float("nan"),
            }
        ]
    )
    write_tsv(summary, outputs["summary"])
    return summary


def truth_points(truth: pd.DataFrame) -> list[tuple[str, int, str]]:
    """TSS positions of known promoters: the `tss` attribute (0-based) when present, else the 3' end on its strand."""
    points = []
    for row in truth.itertuples():
        if "tss" in row.attributes:
            position = int(row.attributes["tss"])
        else:
            position = row.end - 1 if row.strand == "+" else row.start
        points.append((row.contig, position, row.strand))
    return points


def evaluate_scan(
    calls_gff: str | Path, truth_gff: str | Path, task: Mapping[str, Any], output: str | Path
) -> pd.DataFrame:
    """Element-level (IS, reciprocal overlap) or point-level (promoter TSS, distance tolerance) scores."""
    kind = task["kind"]
    called = read_gff3(calls_gff, types={CALL_TYPES[kind]})
    truth = read_gff3(truth_gff, types={TRUTH_TYPES[kind]})
    call_rows = [
        Call(r.contig, r.start, r.end, r.strand, float(r.score) if r.score != "." else 0.0, r.start, kind)
        for r in called.itertuples()
    ]
    if kind == "promoter":
        tolerance = task["scan"]["point_tolerance"]
        result = evaluate_points(call_rows, truth_points(truth), tolerance)
        criterion = f"TSS within {tolerance} bp, same strand"
    else:
        overlap = task["scan"]["min_overlap"]
        truth_rows = [(r.contig, r.start, r.end, r.strand) for r in truth.itertuples()]
        result = evaluate_calls(call_rows, truth_rows, overlap, match_strand=False)
        criterion = f"reciprocal overlap >= {overlap}"
    table = pd.DataFrame(
        [{"metric": key, "value": value} for key, value in result.items()]
        + [{"metric": "criterion", "value": criterion}]
    )
    write_tsv(table, output)
    return table
