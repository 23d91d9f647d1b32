"""Scan a genome with a trained classifier: both strands, calls, indexed BED/GFF3/bedGraph and a summary.

Promoter tasks give TSS point calls (the peak window's TSS offset, read on its strand); IS tasks give element
calls from merged positive windows, their ends moved to terminal inverted repeats where found (genolm.tir). IS
windows are strand-agnostic, so an IS call takes the better strand's score and has no strand ('.').

Scoring streams the genome block by block (genolm.scan_blocks): memory is one block of sequence plus the
per-window scores. A scan can be scattered over ``parts`` jobs (:func:`score_part`), each scoring a disjoint run of
windows; :func:`scan_genome` then gathers their scores and calls elements on the whole genome, so the outputs
equal a single job's. Scores are kept as float32 from the moment they are computed, in one job or many.

Seed ensembles (``scan.seed_ensemble``): given several checkpoints of one model on one task (its seeds), every
window is scored by each of them, block by block, and the scan keeps the mean of their probabilities
(:func:`ensemble_block_scorer`); memory stays one block of scores per model, never a whole genome per model.

Exactness: every model is scored as if each window were cut out and scored alone. The CNN (stride-1 tokens) gets
the logits of all windows of a block from one fully convolutional pass over overlapping chunks; every other model
(AWD-LSTM, transformer, k-mer MLP, CNN with stride > 1) scores batches of window strings, each window tokenized
on its own; both are tested against one-window-at-a-time scans.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.annotations import TRUTH_TYPES, read_gff3, sequence_regions
from genolm.errors import ConfigError, InputFormatError
from genolm.evaluate import threshold_from_metrics, write_tsv
from genolm.formats import write_bed, write_bedgraph_tracks, write_gff3
from genolm.kmers import KmerTokenizer
from genolm.known_is import read_known_is, with_known
from genolm.provenance import sha256_file
from genolm.scan import (
    Call,
    call_elements,
    call_peaks,
    evaluate_calls,
    evaluate_points,
    iter_windows,
    model_scorer,
    non_acgt_fraction,
    peak_points,
    score_windows,
)
from genolm.scan_blocks import as_paths, contig_lengths, fetch_regions, iter_block_sequences, plan_blocks
from genolm.seqio import reverse_complement
from genolm.sources.splits import heldout_regions
from genolm.tir import refine_with_tirs, tir_regions

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
CALL_TYPES = {"promoter": "TSS", "is": "insertion_sequence"}
# Fully convolutional scans run over chunks of this many tokens: big enough to amortise each pass, small enough
# that feature maps stay far below 1 GB (200 kb chunks measured faster than 1 Mb ones).
CHUNK_TOKENS = 200_000
# Scan settings of the config's global `scan:` block, with the schema's defaults.
# zlib level of scores.npz: level 1 takes a tenth of numpy's default (6) time on 9 M scores, for a file 10% larger.
NPZ_LEVEL = 1
SCAN_DEFAULTS = {"max_n_fraction": 0.5, "bedgraph_bin": 10}
TIR_DEFAULTS = {"tir_flank": 150, "tir_min_length": 10, "tir_min_score": 12}

# (plus, minus) float32 scores of the windows of `bases` at relative `starts`; `name` for messages.
BlockScorer = Callable[[str, np.ndarray, str], tuple[np.ndarray, np.ndarray]]
ContigScores = dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]


def convolutional_logits(model: Any, tokens: np.ndarray, device: Any) -> np.ndarray:
    """Logit of the window at every token position (float64), from fully convolutional passes over chunks.

    Chunks overlap by a window minus one token, so no window is cut at a chunk edge. A device out of memory
    halves the chunk and retries (genolm.oom).
    """
    import torch

    from genolm.oom import with_oom_backoff

    span = model.window_tokens
    logits = np.empty(max(len(tokens) - span + 1, 0), dtype=np.float64)

    def score_positions(positions: np.ndarray) -> None:
        first, last = int(positions[0]), int(positions[-1]) + 1
        chunk = torch.as_tensor(tokens[first : last + span - 1], dtype=torch.long, device=device)[None]
        logits[first:last] = model.position_logits(chunk)[0].float().cpu().numpy()

    with torch.inference_mode():
        with_oom_backoff(score_positions, np.arange(len(logits)), CHUNK_TOKENS, what="convolutional genome scan")
    return logits


def convolutional_scores(model: Any, tokenizer: KmerTokenizer, sequence: str, starts: np.ndarray, device: Any):
    """Window probabilities from one fully convolutional pass per chunk, equal to scoring each window alone.

    Needs stride 1 so that every base position starts a token.
    """
    logits = convolutional_logits(model, tokenizer.encode(sequence), device)
    return 1.0 / (1.0 + np.exp(-logits[starts]))


def one_pass(model: Any, tokenizer: KmerTokenizer) -> bool:
    """Whether a model scores all windows of a sequence in one pass: a fully convolutional model on stride-1
    tokens that are never dropped (so the token at position i is the k-mer starting at base i)."""
    return hasattr(model, "position_logits") and tokenizer.stride == 1 and tokenizer.unknown != "skip"


def block_scorer(
    model: Any,
    tokenizer: KmerTokenizer,
    window: int,
    batch_size: int,
    device: Any,
    max_n_fraction: float = 1.0,
) -> BlockScorer:
    """A function scoring the windows of a block of bases on both strands (NaN: over ``max_n_fraction``)."""
    if not 0.0 <= max_n_fraction <= 1.0:
        raise ConfigError(f"scan.max_n_fraction must be in [0, 1], got {max_n_fraction}")
    if one_pass(model, tokenizer):

        def score(bases: str, starts: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
            plus = convolutional_scores(model, tokenizer, bases, starts, device).astype(np.float32)
            # The minus-strand window at forward start s is the reverse complement's window at n - s - window.
            rc_starts = len(bases) - starts - window
            rc = reverse_complement(bases)
            minus = convolutional_scores(model, tokenizer, rc, rc_starts, device).astype(np.float32)
            if max_n_fraction < 1.0:
                unscored = non_acgt_fraction(bases, starts, window) > max_n_fraction
                plus[unscored] = minus[unscored] = np.nan
            return plus, minus

        return score
    scorer = model_scorer(model, tokenizer, device=device, batch_size=batch_size)

    def score_strings(bases: str, starts: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        plus, minus = score_windows(bases, starts, scorer, window, batch_size, max_n_fraction=max_n_fraction, name=name)
        return plus.astype(np.float32), minus.astype(np.float32)

    return score_strings


def score_contig(
    model: Any, tokenizer: KmerTokenizer, sequence: str, window: int, step: int, batch_size: int, device: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(starts, plus, minus) window scores of one whole contig held in memory (float32)."""
    starts = iter_windows(len(sequence), window, step)
    if starts.size == 0:
        return starts, np.empty(0, np.float32), np.empty(0, np.float32)
    plus, minus = block_scorer(model, tokenizer, window, batch_size, device)(sequence.upper(), starts, "sequence")
    return starts, plus, minus


def score_genome_windows(
    fasta: PathLike | Sequence[PathLike],
    scorer: BlockScorer,
    window: int,
    step: int,
    *,
    part: int = 0,
    parts: int = 1,
    lengths: Mapping[str, int] | None = None,
) -> ContigScores:
    """Scores of the windows that part ``part`` of ``parts`` owns, per contig (genolm.scan_blocks)."""
    lengths = contig_lengths(fasta) if lengths is None else lengths
    blocks = plan_blocks(lengths, window, step, part=part, parts=parts)
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    for block, bases in iter_block_sequences(fasta, blocks):
        plus, minus = scorer(bases, block.starts - block.seq_start, block.contig)
        pieces.setdefault(block.contig, []).append((block.starts, plus, minus))
        log.info("%s: %d windows per strand scored at %d-%d", block.contig, block.starts.size, *block.starts[[0, -1]])
    return {
        contig: tuple(np.concatenate(arrays) for arrays in zip(*chunks, strict=True))
        for contig, chunks in pieces.items()
    }


def load_scan_model(checkpoint: PathLike, device: str):
    """A classifier checkpoint ready to scan: (model in eval mode, its tokenizer, window in bp, torch device)."""
    from genolm.checkpoint import load_checkpoint
    from genolm.train import select_device

    torch_device = select_device(device)
    model, meta = load_checkpoint(checkpoint, map_location=torch_device)
    model.eval()
    return model, KmerTokenizer.from_dict(meta["vocab"]), int(meta["window_bp"]), torch_device


def checkpoint_paths(checkpoint: PathLike | Sequence[PathLike]) -> list[Path]:
    """One checkpoint or the several of a seed ensemble, as a list."""
    return as_paths(checkpoint, "a scan needs at least one checkpoint")


def _task_identity(meta: Mapping[str, Any]) -> Any:
    """What makes two checkpoints models of one task: the task settings that shape its training data and
    labels (not its scan settings)."""
    task = meta.get("task")
    if isinstance(task, Mapping):
        return {key: task.get(key) for key in ("source", "kind", "strand_specific", "params", "split")}
    return task


def _describe_vocabulary(vocab: Any) -> str:
    if isinstance(vocab, Mapping):
        return f"k={vocab.get('k')}, stride={vocab.get('stride')}, {vocab.get('vocab_size')} tokens"
    return repr(vocab)


def ensemble_members(checkpoints: Sequence[PathLike]) -> tuple[int, list[str]]:
    """(window in bp, seed of each checkpoint) of the checkpoints a scan averages, from their metadata alone.

    They must score the same windows in the same way: one window length, one vocabulary and one task; otherwise
    InputFormatError names the two files that differ. A seed is the checkpoint's training seed (``train.seed``),
    or its file name when the checkpoint does not record one.
    """
    from genolm.checkpoint import read_checkpoint_meta

    paths = checkpoint_paths(checkpoints)
    metas = [read_checkpoint_meta(path) for path in paths]
    checks = (
        ("window", lambda meta: int(meta["window_bp"]), str),
        ("vocabulary", lambda meta: meta.get("vocab"), _describe_vocabulary),
        ("task", _task_identity, repr),
    )
    for path, meta in zip(paths[1:], metas[1:], strict=True):
        for what, value, describe in checks:
            if value(meta) != value(metas[0]):
                raise InputFormatError(
                    f"seed ensemble scan: {path} and {paths[0]} differ in {what} ({describe(value(meta))} vs "
                    f"{describe(value(metas[0]))}); only checkpoints of one model trained on one task can be averaged"
                )
    seeds = [str((meta.get("train") or {}).get("seed", path.name)) for path, meta in zip(paths, metas, strict=True)]
    return int(metas[0]["window_bp"]), seeds


def ensemble_block_scorer(scorers: Sequence[BlockScorer]) -> BlockScorer:
    """Mean of several models' window probabilities on each block (one scorer: that scorer itself).

    Probabilities are averaged, not logits: a seed ensemble's threshold is chosen by evaluate_ensemble on the mean
    of its seeds' validation probabilities (genolm.evaluate.ensemble_predictions), so only the same mean makes that
    threshold mean the same thing on the genome; scores.npz keeps holding probabilities, as for one model. Only one
    block's scores per model are held at a time. Unscored (NaN) windows are the same for every member, since they
    depend on the bases alone.
    """
    if not scorers:
        raise ConfigError("a seed ensemble needs at least one model")
    if len(scorers) == 1:
        return scorers[0]

    def score(bases: str, starts: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
        plus_sum = np.zeros(starts.size, np.float64)
        minus_sum = np.zeros(starts.size, np.float64)
        for scorer in scorers:
            plus, minus = scorer(bases, starts, name)
            plus_sum += plus
            minus_sum += minus
        return (plus_sum / len(scorers)).astype(np.float32), (minus_sum / len(scorers)).astype(np.float32)

    return score


def ensemble_scorer(
    checkpoints: PathLike | Sequence[PathLike], batch_size: int, device: str, max_n_fraction: float
) -> BlockScorer:
    """The block scorer of one checkpoint, or the mean of several (:func:`ensemble_block_scorer`)."""
    scorers = []
    for path in checkpoint_paths(checkpoints):
        model, tokenizer, window, torch_device = load_scan_model(path, device)
        scorers.append(block_scorer(model, tokenizer, window, batch_size, torch_device, max_n_fraction))
    return ensemble_block_scorer(scorers)


def score_part(
    fasta: PathLike | Sequence[PathLike],
    checkpoint: PathLike | Sequence[PathLike],
    output: PathLike,
    part: int,
    parts: int,
    step: int,
    batch_size: int = 1024,
    device: str = "auto",
    max_n_fraction: float = SCAN_DEFAULTS["max_n_fraction"],
) -> None:
    """Scatter step: score part ``part`` (0-based) of ``parts`` and write its scores to ``output`` (.npz:
    ``contigs``, and ``starts_i``/``plus_i``/``minus_i`` per contig, ``window``, ``step``, ``seconds``,
    ``checkpoint_sha256``). Several checkpoints (a seed ensemble) give the mean of their probabilities."""
    paths = checkpoint_paths(checkpoint)
    window, _ = ensemble_members(paths)
    started = time.perf_counter()
    scorer = ensemble_scorer(paths, batch_size, device, max_n_fraction)
    scores = score_genome_windows(fasta, scorer, window, step, part=part, parts=parts)
    arrays = {}
    for index, (starts, plus, minus) in enumerate(scores.values()):
        arrays.update({f"starts_{index}": starts, f"plus_{index}": plus, f"minus_{index}": minus})
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        output,
        contigs=np.asarray(list(scores), dtype=np.str_),
        window=np.int64(window),
        step=np.int64(step),
        part=np.int64(part),
        parts=np.int64(parts),
        seconds=np.float64(time.perf_counter() - started),
        checkpoint_sha256=np.asarray([sha256_file(path) for path in paths], dtype=np.str_),
        **arrays,
    )


def gather_parts(
    parts: Sequence[PathLike],
    lengths: Mapping[str, int],
    window: int,
    step: int,
    checkpoint_sha256: Sequence[str] | None = None,
) -> tuple[ContigScores, float]:
    """Scores of every part, joined per contig, and the parts' total scoring seconds; checks that together they
    hold each window of the genome exactly once, and with ``checkpoint_sha256`` that every part was scored by
    exactly those checkpoints (one model, or the same seed ensemble)."""
    pieces: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}
    seconds = 0.0
    for path in parts:
        with np.load(path, allow_pickle=False) as data:
            if int(data["window"]) != window or int(data["step"]) != step:
                raise InputFormatError(
                    f"{path}: scores of window {int(data['window'])}/step {int(data['step'])}, expected {window}/{step}"
                )
            if checkpoint_sha256 is not None:
                scored_by = data["checkpoint_sha256"].tolist() if "checkpoint_sha256" in data.files else []
                if scored_by != list(checkpoint_sha256):
                    raise InputFormatError(
                        f"{path}: scored by {len(scored_by)} checkpoint(s) other than the {len(checkpoint_sha256)} "
                        "this scan averages (a part of another model or seed ensemble?)"
                    )
            seconds += float(data["seconds"])
            for index, contig in enumerate(data["contigs"].tolist()):
                chunk = (data[f"starts_{index}"], data[f"plus_{index}"], data[f"minus_{index}"])
                pieces.setdefault(contig, []).append(chunk)
    scores: ContigScores = {}
    for contig, chunks in pieces.items():
        starts, plus, minus = (np.concatenate(arrays) for arrays in zip(*chunks, strict=True))
        order = np.argsort(starts, kind="stable")
        scores[contig] = (starts[order], plus[order], minus[order])
    for contig, length in lengths.items():
        expected = iter_windows(length, window, step)
        got = scores.get(contig, (np.empty(0, np.int64),))[0]
        if not np.array_equal(got, expected):
            raise InputFormatError(
                f"scan parts {', '.join(map(str, parts))}: {contig} has {got.size} scored windows, expected "
                f"{expected.size} (parts of another plan or genome?)"
            )
    return scores, seconds


def save_npz(path: PathLike, arrays: Mapping[str, np.ndarray], level: int = NPZ_LEVEL) -> None:
    """An .npz that np.load reads like np.savez_compressed's, deflated at ``level`` and written atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.part")
    try:
        with zipfile.ZipFile(staged, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=level) as archive:
            for key, value in arrays.items():
                with archive.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)


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


def refine_is_calls(
    calls: list[Call], fasta: PathLike | Sequence[PathLike], lengths: Mapping[str, int], scan: Mapping[str, Any]
) -> list[Call]:
    """IS calls, in the same order, with their ends moved to terminal inverted repeats where found (genolm.tir;
    ``tir_flank: 0`` turns it off)."""
    settings = {**TIR_DEFAULTS, **{key: scan[key] for key in TIR_DEFAULTS if key in scan}}
    flank = int(settings["tir_flank"])
    if flank == 0 or not calls:
        return calls
    wanted = set()
    for call in calls:
        for start, end in tir_regions(call, lengths[call.contig], flank):
            if end > start:
                wanted.add((call.contig, start, end))
    return refine_with_tirs(
        calls,
        fetch_regions(fasta, sorted(wanted)),
        dict(lengths),
        flank=flank,
        min_length=int(settings["tir_min_length"]),
        min_score=int(settings["tir_min_score"]),
    )


def score_track(
    starts: np.ndarray, scores: np.ndarray, window: int, length: int, bin_bp: int
) -> tuple[np.ndarray, np.ndarray]:
    """(bin starts, values) of ``bin_bp`` bins for the bedGraph: the maximum score of the windows centred in each
    bin (NaN windows left out); the last bin is moved back to end at the contig end, and the writer trims it
    to start where its predecessor ends."""
    keep = ~np.isnan(scores)
    centre_bin = (starts[keep] + window // 2) // bin_bp
    values = scores[keep].astype(np.float64)
    if centre_bin.size == 0:
        return centre_bin, values
    firsts = np.flatnonzero(np.r_[True, centre_bin[1:] != centre_bin[:-1]])
    bin_starts = centre_bin[firsts] * bin_bp
    if bin_starts[-1] + bin_bp > length:
        bin_starts[-1] = max(length - bin_bp, 0)
    return bin_starts, np.maximum.reduceat(values, firsts)


def output_paths(prefix: PathLike) -> dict[str, Path]:
    """The files `scan_genome` writes under one folder, by output name (the rule's layout)."""
    prefix = Path(prefix)
    return {
        "bed": prefix / "calls.bed.gz",
        "gff": prefix / "calls.gff3.gz",
        "bedgraph": prefix / "scores.bedgraph.gz",
        "scores": prefix / "scores.npz",
        "summary": prefix / "summary.tsv",
    }


def scan_genome(
    fasta: PathLike | Sequence[PathLike],
    checkpoint: PathLike | Sequence[PathLike],
    metrics: PathLike | None,
    task: Mapping[str, Any],
    outputs: Mapping[str, PathLike],
    genome: str,
    task_name: str,
    model_name: str,
    batch_size: int = 1024,
    device: str = "auto",
    threshold: float | None = None,
    *,
    parts: Sequence[PathLike] = (),
    max_n_fraction: float = SCAN_DEFAULTS["max_n_fraction"],
    bedgraph_bin: int = SCAN_DEFAULTS["bedgraph_bin"],
) -> pd.DataFrame:
    """Scan every contig of a genome (one FASTA or several) on both strands; write calls, scores and a summary.

    Without ``parts`` the genome is scored here; with them (the .npz of :func:`score_part`, scatter) their scores
    are gathered instead. The decision threshold is the validation-chosen one in ``metrics`` (evaluate's table)
    or, without it, ``threshold`` (default 0.5). Windows over ``max_n_fraction`` non-ACGT bases are not scored
    (NaN). The bedGraph holds the best score of both strands, as the maximum per ``bedgraph_bin`` bp when the
    step is finer (scores.npz keeps every window).

    Several checkpoints (``checkpoint`` a list: the seeds of one model, ``scan.seed_ensemble``) score every window
    each and the scan keeps the mean of their probabilities (:func:`ensemble_block_scorer`); ``metrics`` should
    then be the seed ensemble's (evaluate_ensemble), whose threshold was chosen on the same mean. The summary's
    ``seeds`` column, the headers' provenance and scores.npz's ``seeds`` record which seeds were averaged.
    """
    paths = as_paths(fasta)
    checkpoints = checkpoint_paths(checkpoint)
    window, seeds = ensemble_members(checkpoints)
    checkpoint_sha256 = [sha256_file(path) for path in checkpoints]
    step = int(task["scan"]["step"])
    if metrics is not None:
        threshold = threshold_from_metrics(metrics)
    elif threshold is None:
        threshold = 0.5
    lengths = contig_lengths(paths)
    if parts:
        scores, seconds = gather_parts(parts, lengths, window, step, checkpoint_sha256)
    else:
        started = time.perf_counter()
        scorer = ensemble_scorer(checkpoints, batch_size, device, max_n_fraction)
        scores = score_genome_windows(paths, scorer, window, step, lengths=lengths)
        seconds = time.perf_counter() - started
    if len(checkpoints) > 1:
        log.info("%s: seed ensemble of %d checkpoints (seeds %s), mean probability", genome, len(seeds), seeds)
    provenance = {
        "genolm_task": task_name,
        "model": model_name,
        "checkpoint_sha256": ",".join(checkpoint_sha256),
        "seeds": ",".join(seeds),
        "fasta": ",".join(map(str, paths)),
        "fasta_sha256": ",".join(sha256_file(path) for path in paths),
        "window": window,
        "step": step,
        "threshold": round(threshold, 6),
    }
    empty = (np.empty(0, np.int64), np.empty(0, np.float32), np.empty(0, np.float32))
    binned = bedgraph_bin > step
    calls: list[Call] = []
    tracks, arrays, skipped, unscored = [], {}, [], 0
    for index, (contig, length) in enumerate(lengths.items()):
        starts, plus, minus = scores.get(contig, empty)
        if starts.size == 0:
            log.warning("%s: contig %s (%d bp) is shorter than the %d bp window", genome, contig, length, window)
            skipped.append(contig)
        unscored += int(np.isnan(plus).sum())
        calls += calls_for_contig(contig, starts, plus, minus, window, threshold, task)
        best = np.fmax(plus, minus)
        tracks.append(
            (contig, *score_track(starts, best, window, length, bedgraph_bin)) if binned else (contig, starts, best)
        )
        arrays.update({f"starts_{index}": starts, f"plus_{index}": plus, f"minus_{index}": minus})
    n_model_calls = len(calls)
    if task["kind"] == "is":
        calls = refine_is_calls(calls, paths, lengths, task["scan"])
    contig_order = list(lengths)
    write_bed(calls, outputs["bed"], provenance=provenance, contig_order=contig_order, id_prefix=task_name)
    write_gff3(calls, outputs["gff"], provenance=provenance, sequence_lengths=lengths, id_prefix=task_name)
    write_bedgraph_tracks(
        tracks,
        bedgraph_bin if binned else window,
        bedgraph_bin if binned else step,
        outputs["bedgraph"],
        provenance={**provenance, "bedgraph_bin": bedgraph_bin if binned else step},
        track_name=f"{task_name}_{model_name}",
        description=f"genolm {task_name} {model_name} window score, max of both strands"
        + (f" and of the windows centred in each {bedgraph_bin} bp" if binned else ""),
    )
    save_npz(
        outputs["scores"],
        {
            "contigs": np.asarray(contig_order, dtype=np.str_),
            "window": np.int64(window),
            "step": np.int64(step),
            "threshold": np.float64(threshold),
            "seeds": np.asarray(seeds, dtype=np.str_),
            **arrays,
        },
    )
    total_bp = sum(lengths.values())
    row = {
        "genome": genome,
        "task": task_name,
        "model": model_name,
        "contigs": len(lengths),
        "contigs_too_short": len(skipped),
        "bp": total_bp,
        "window": window,
        "step": step,
        "threshold": round(threshold, 6),
        "models_averaged": len(checkpoints),
        "seeds": ",".join(seeds),
        "windows_unscored": unscored,
        "calls": len(calls),
        "calls_plus": sum(call.strand == "+" for call in calls),
        "calls_minus": sum(call.strand == "-" for call in calls),
        "calls_unstranded": sum(call.strand == "." for call in calls),
        "calls_with_tir": sum(any(key == "tir_left" for key, _ in call.attributes) for call in calls),
        "parts": max(len(parts), 1),
        "seconds": round(seconds, 2),
        "bp_per_s": round(2 * total_bp / seconds) if seconds > 0 else float("nan"),
    }
    assert n_model_calls == len(calls)  # refinement moves ends, it never adds or drops calls
    summary = pd.DataFrame([row])
    write_tsv(summary, outputs["summary"])
    return summary


# -----------------------------------------------------------------------------
# Evaluation against the known elements


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


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision (sklearn's definition: tied scores form one
    threshold); NaN without positives."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pos = int(labels.sum())
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, hits = scores[order], labels[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    tp = np.cumsum(hits)[last_of_tie]
    seen = np.flatnonzero(last_of_tie) + 1
    precision = tp / seen
    recall_gain = np.diff(np.r_[0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))


def tss_positions(starts: np.ndarray, strand: str, window: int, offset: int) -> np.ndarray:
    """Where each window puts its TSS, the position its point call would take: ``s + offset`` (plus) or
    ``s + window - 1 - offset`` (minus)."""
    return starts + offset if strand == "+" else starts + window - 1 - offset


def window_labels(
    starts: np.ndarray, tss: np.ndarray, strand: str, window: int, offset: int, tolerance: int
) -> np.ndarray:
    """Window labels for promoter AUPRC: a window is positive when a known TSS on its strand lies within
    ``tolerance`` bp of the window's own TSS position (:func:`tss_positions`)."""
    position = tss_positions(starts, strand, window, offset)
    tss = np.sort(np.asarray(tss, dtype=np.int64))
    lo = np.searchsorted(tss, position - tolerance, side="left")
    hi = np.searchsorted(tss, position + tolerance, side="right")
    return hi > lo


@dataclasses.dataclass(frozen=True)
class HeldOut:
    """Where a scan is evaluated when its model trained on part of the scanned genome (split method `region`):
    the test stretches of the contigs the task was cut from; every other contig is unseen, so whole."""

    regions: tuple[tuple[str, int, int], ...] = ()

    @classmethod
    def from_split_record(cls, splits: PathLike | None) -> HeldOut:
        """The test stretches of a task's split record (genolm.sources.splits); whole genomes without one."""
        return cls(tuple(heldout_regions(splits))) if splits else cls()

    def keep(self, contig: str, positions: np.ndarray) -> np.ndarray:
        """Which positions (0-based) of `contig` count."""
        positions = np.asarray(positions, dtype=np.int64)
        stretches = [(start, end) for name, start, end in self.regions if name == contig]
        if not stretches:
            return np.ones(positions.shape, dtype=bool)
        mask = np.zeros(positions.shape, dtype=bool)
        for start, end in stretches:
            mask |= (positions >= start) & (positions < end)
        return mask

    def contains(self, contig: str, position: int) -> bool:
        """Whether one position (0-based) of `contig` counts."""
        return bool(self.keep(contig, np.array([position]))[0])

    def describe(self) -> str:
        return ", ".join(f"{contig}:{start + 1}-{end}" for contig, start, end in self.regions)


def window_auprc(
    scores_npz: PathLike,
    points: Sequence[tuple[str, int, str]],
    offset: int,
    tolerance: int,
    heldout: HeldOut | None = None,
) -> dict[str, float]:
    """Window-level AUPRC of a promoter scan: every scored window of both strands, labelled by
    :func:`window_labels`; unscored (NaN) windows, and with `heldout` windows whose TSS position lies outside it,
    are left out."""
    heldout = heldout or HeldOut()
    by_key: dict[tuple[str, str], list[int]] = {}
    for contig, position, strand in points:
        by_key.setdefault((contig, strand), []).append(position)
    all_scores, all_labels = [], []
    with np.load(scores_npz, allow_pickle=False) as data:
        window = int(data["window"])
        for index, contig in enumerate(data["contigs"].tolist()):
            starts = data[f"starts_{index}"]
            for strand, key in (("+", "plus"), ("-", "minus")):
                values = data[f"{key}_{index}"]
                keep = ~np.isnan(values) & heldout.keep(contig, tss_positions(starts, strand, window, offset))
                tss = by_key.get((contig, strand), [])
                all_labels.append(window_labels(starts[keep], tss, strand, window, offset, tolerance))
                all_scores.append(values[keep])
    scores = np.concatenate(all_scores) if all_scores else np.empty(0)
    labels = np.concatenate(all_labels) if all_labels else np.empty(0, dtype=bool)
    return {
        "window_auprc": average_precision(scores, labels),
        "window_positive_fraction": float(labels.mean()) if labels.size else float("nan"),
        "windows": int(labels.size),
        "window_tolerance": tolerance,
    }


def _element_scores(calls: list[Call], truth: list[tuple[str, int, int, str]], overlap: float) -> dict[str, float]:
    result = evaluate_calls(calls, truth, overlap, match_strand=False)
    result["fdr"] = result["fp"] / result["n_calls"] if result["n_calls"] else 0.0
    return result


def evaluate_scan(
    calls_gff: PathLike,
    truth_gff: PathLike,
    task: Mapping[str, Any],
    output: PathLike,
    scores: PathLike | None = None,
    known_is: PathLike | None = None,
    known_is_exclude: str = "",
    heldout: HeldOut | None = None,
) -> pd.DataFrame:
    """Element-level (IS: recall, precision, FDR at reciprocal overlap) or point-level (promoter TSS within a
    distance) scores of the calls; for promoters with ``scores`` also the window-level AUPRC (window_auprc).
    For IS with ``known_is`` (genolm.known_is), the same figures again, suffixed ``_with_known_is``, against the
    annotation plus the known elements on the scanned contigs that it lacks. With ``heldout`` (a task split by
    region), only calls, known elements and windows that start inside it count."""
    kind = task["kind"]
    heldout = heldout or HeldOut()
    called = _inside(read_gff3(calls_gff, types={CALL_TYPES[kind]}), heldout)
    truth = read_gff3(truth_gff, types={TRUTH_TYPES[kind]})
    if kind == "promoter":
        truth = truth[[heldout.contains(contig, tss) for contig, tss, _ in truth_points(truth)]]
    else:
        truth = _inside(truth, heldout)
    call_rows = [
        Call(r.contig, r.start, r.end, r.strand, float(r.score) if r.score != "." else 0.0, r.start, kind)
        for r in called.itertuples()
    ]
    if kind == "promoter":
        tolerance = task["scan"]["point_tolerance"]
        points = truth_points(truth)
        result = evaluate_points(call_rows, points, tolerance)
        criterion = f"TSS within {tolerance} bp, same strand"
        if scores is not None:
            window_tolerance = task["scan"].get("window_tolerance", tolerance)
            result.update(window_auprc(scores, points, task["scan"]["tss_offset"], window_tolerance, heldout))
            criterion += (
                f"; windows positive when a true TSS lies within {window_tolerance} bp of the window's TSS "
                "position, same strand"
            )
    else:
        overlap = task["scan"]["min_overlap"]
        truth_rows = [(r.contig, r.start, r.end, r.strand) for r in truth.itertuples()]
        result = _element_scores(call_rows, truth_rows, overlap)
        criterion = f"reciprocal overlap >= {overlap}"
        if known_is:
            contigs = set(sequence_regions(calls_gff))
            known = [
                element
                for element in read_known_is(known_is, known_is_exclude)
                if element[0] in contigs and heldout.contains(element[0], element[1])
            ]
            augmented = _element_scores(call_rows, with_known(truth_rows, known, overlap), overlap)
            result.update({f"{key}_with_known_is": value for key, value in augmented.items() if key != "min_overlap"})
            criterion += f"; known IS from {Path(known_is).name}" + (
                f" without names matching '{known_is_exclude}'" if known_is_exclude else ""
            )
    if heldout.regions:
        criterion += f"; held out: only {heldout.describe()} (the model trained on the rest of that contig)"
    table = pd.DataFrame(
        [{"metric": key, "value": value} for key, value in result.items()]
        + [{"metric": "criterion", "value": criterion}]
    )
    write_tsv(table, output)
    return table


def _inside(features: pd.DataFrame, heldout: HeldOut) -> pd.DataFrame:
    """The features (read_gff3 rows) that start inside the held-out stretches."""
    if not heldout.regions or features.empty:
        return features
    keep = np.zeros(len(features), dtype=bool)
    for contig, rows in features.groupby("contig").indices.items():
        keep[rows] = heldout.keep(contig, features["start"].to_numpy()[rows])
    return features[keep]
