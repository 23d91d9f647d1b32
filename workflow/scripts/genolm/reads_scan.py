"""Score sequencing reads with a trained IS or promoter classifier: the fraction of reads with a signal, and the
positive reads as gzipped FASTA.

What a read's score is (tested):

- a read at least as long as the model's window is cut into windows of that length, ``step`` apart, the last one
  aligned to the read's end (:func:`genolm.scan.iter_windows`, as a genome scan does), so no base is dropped;
- a read shorter than the window but at least ``min_length`` bases is scored whole, as one shorter input: every
  genolm model takes inputs of any length (the CNN pads to one window, the LSTM and transformer mask the padding).
  Such reads are counted apart (``reads_short``) because the model never saw inputs that short in training;
- a read shorter than ``min_length`` (or than one k-mer) is not scored and counted as ``reads_too_short``;
- both strands are scored (a read's strand is unknown), and the read's score is the best window of either strand. A
  read is positive when that score reaches the validation-chosen threshold of the classifier (the one the genome scan
  uses); with several windows per read the chance of one false positive window grows, so long reads are called
  positive more easily than single windows are;
- paired reads: each mate is scored alone (mates are never joined); a pair is positive when either mate is, and
  both mates of a positive pair are written (``<name>/1``, ``<name>/2``).

Reads are streamed in batches of ``batch_reads`` reads (or pairs): memory does not depend on the number of reads,
and the batch size does not change any score. FASTQ problems raise InputFormatError naming file, record and line
(genolm.seqio.read_fastq); so do mates whose names disagree or files that end at different records.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.errors import ConfigError, GenolmError, InputFormatError
from genolm.evaluate import threshold_from_metrics, write_tsv
from genolm.scan import iter_windows
from genolm.seqio import SeqRecord, read_fastq, reverse_complement, write_fasta

__all__ = [
    "ReadCounts",
    "iter_read_batches",
    "mate_base",
    "read_windows",
    "scan_read_files",
    "scan_reads",
    "score_reads",
]

log = logging.getLogger(__name__)

Scorer = Callable[[list[str]], np.ndarray]
_MATE_SUFFIX = re.compile(r"/[12]$")


def mate_base(name: str) -> str:
    """A read name without its ``/1`` or ``/2`` mate suffix."""
    return _MATE_SUFFIX.sub("", name)


def iter_read_batches(paths: Sequence[str | Path], batch_reads: int) -> Iterator[list[tuple[SeqRecord, ...]]]:
    """Batches of at most ``batch_reads`` units: 1-tuples (single reads) or 2-tuples (mates of a pair).

    Two paths are read in lockstep as mates 1 and 2: their names must agree once ``/1``/``/2`` is removed, and both
    files must hold the same number of records.
    """
    if batch_reads < 1:
        raise ConfigError(f"batch_reads must be >= 1, got {batch_reads}")
    if len(paths) not in (1, 2):
        raise ConfigError(f"reads: expected one FASTQ (single) or two (paired), got {len(paths)}")
    units = _paired(*paths) if len(paths) == 2 else ((record,) for record in read_fastq(paths[0]))
    while batch := list(islice(units, batch_reads)):
        yield batch


def _paired(first: str | Path, second: str | Path) -> Iterator[tuple[SeqRecord, SeqRecord]]:
    mates1, mates2 = read_fastq(first), read_fastq(second)
    number = 0
    for number, one in enumerate(mates1, start=1):
        two = next(mates2, None)
        if two is None:
            raise InputFormatError(f"{second}: ends after {number - 1} records, but {first} has record '{one.name}'")
        if mate_base(one.name) != mate_base(two.name):
            raise InputFormatError(
                f"{first} record '{one.name}' and {second} record '{two.name}' (pair #{number}) are not mates:"
                " paired files must list the same reads in the same order"
            )
        yield one, two
    extra = next(mates2, None)
    if extra is not None:
        raise InputFormatError(f"{first}: ends after {number} records, but {second} has record '{extra.name}'")


def read_windows(sequence: str, window: int, step: int, min_length: int) -> list[str]:
    """The inputs a read is scored as, on its forward strand: windows, the whole read, or none (too short)."""
    n = len(sequence)
    if n < min_length:
        return []
    if n <= window:
        return [sequence]
    return [sequence[start : start + window] for start in iter_windows(n, window, step).tolist()]


def score_reads(sequences: Sequence[str], scorer: Scorer, window: int, step: int, min_length: int) -> np.ndarray:
    """Best score over both strands and all windows of each read; NaN for reads too short to score.

    All windows of the batch go to the scorer in one call, ordered by length so that padding stays small; scores
    are mapped back to their reads, so neither the order nor the batch changes a read's score.
    """
    inputs: list[str] = []
    owners: list[int] = []
    for index, sequence in enumerate(sequences):
        windows = read_windows(sequence, window, step, min_length)
        inputs += windows
        inputs += [reverse_complement(piece) for piece in windows]
        owners += [index] * (2 * len(windows))
    best = np.full(len(sequences), np.nan)
    if not inputs:
        return best
    order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
    scores = np.asarray(scorer([inputs[i] for i in order]), dtype=np.float64).reshape(-1)
    if scores.size != len(inputs):
        raise GenolmError(f"scorer returned {scores.size} scores for {len(inputs)} read windows")
    if not np.isfinite(scores).all():
        raise GenolmError("scorer returned a non-finite score for a read window")
    owner = np.asarray(owners, dtype=np.int64)[order]
    np.fmax.at(best, owner, scores)
    return best


@dataclass
class ReadCounts:
    """What :func:`scan_read_files` counted; ``units`` are reads (single) or pairs (paired)."""

    layout: str
    units: int = 0
    units_scored: int = 0
    units_positive: int = 0
    reads: int = 0
    reads_scored: int = 0
    reads_short: int = 0
    reads_too_short: int = 0
    reads_positive: int = 0
    max_score: float = float("nan")

    def add(self, lengths: np.ndarray, scores: np.ndarray, window: int, threshold: float) -> np.ndarray:
        """Count one batch (``lengths``/``scores`` of shape [units, mates]); returns which units are positive."""
        scored = ~np.isnan(scores)
        positive = scored & (scores >= threshold)
        unit_positive = positive.any(axis=1)
        self.units += scores.shape[0]
        self.units_scored += int(scored.any(axis=1).sum())
        self.units_positive += int(unit_positive.sum())
        self.reads += scores.size
        self.reads_scored += int(scored.sum())
        self.reads_short += int((scored & (lengths < window)).sum())
        self.reads_too_short += int((~scored).sum())
        self.reads_positive += int(positive.sum())
        if scored.any():
            self.max_score = float(np.fmax(self.max_score, scores[scored].max()))
        return unit_positive

    def table(self) -> dict[str, Any]:
        row = asdict(self)
        row["fraction_positive"] = self.units_positive / self.units_scored if self.units_scored else float("nan")
        row["fraction_positive_of_all"] = self.units_positive / self.units if self.units else float("nan")
        return row


def scan_read_files(
    paths: Sequence[str | Path],
    scorer: Scorer,
    positives: str | Path,
    window: int,
    step: int,
    threshold: float,
    min_length: int = 1,
    batch_reads: int = 4096,
) -> ReadCounts:
    """Score every read of one run (see the module doc), write the positive reads and return the counts."""
    if window < 1 or step < 1 or min_length < 1:
        raise ConfigError(f"window, step and min_length must be >= 1 (got {window}, {step}, {min_length})")
    counts = ReadCounts("paired" if len(paths) == 2 else "single")

    def positive_records() -> Iterator[SeqRecord]:
        for batch in iter_read_batches(paths, batch_reads):
            mates = len(batch[0])
            flat = [record.sequence for unit in batch for record in unit]
            scores = score_reads(flat, scorer, window, step, min_length).reshape(len(batch), mates)
            lengths = np.array([len(sequence) for sequence in flat], dtype=np.int64).reshape(len(batch), mates)
            for unit, keep in zip(batch, counts.add(lengths, scores, window, threshold), strict=True):
                if not keep:
                    continue
                if mates == 1:
                    yield unit[0]
                else:
                    base = mate_base(unit[0].name)
                    yield from (SeqRecord(f"{base}/{m + 1}", record.sequence) for m, record in enumerate(unit))
            log.info("%d %s scored, %d positive so far", counts.units, counts.layout, counts.units_positive)

    write_fasta(positive_records(), positives)
    return counts


def scan_reads(
    reads: Sequence[str | Path],
    checkpoint: str | Path,
    metrics: str | Path,
    task: Mapping[str, Any],
    outputs: Mapping[str, str | Path],
    sample: str,
    task_name: str,
    model_name: str,
    batch_size: int = 1024,
    batch_reads: int = 4096,
    min_length: int = 30,
    device: str = "auto",
) -> pd.DataFrame:
    """Rule scan_reads: score a read set with one classifier; write ``outputs["summary"]`` and
    ``outputs["positives"]``. The threshold is the validation-chosen one in ``metrics``."""
    from genolm.genome_scan import load_scan_model
    from genolm.scan import model_scorer

    model, tokenizer, window, torch_device = load_scan_model(checkpoint, device)
    scorer = model_scorer(model, tokenizer, device=torch_device, batch_size=batch_size)
    step = int(task["scan"]["step"])
    threshold = threshold_from_metrics(metrics)
    shortest = max(min_length, tokenizer.k)  # a read needs at least one k-mer
    started = time.perf_counter()
    counts = scan_read_files(reads, scorer, outputs["positives"], window, step, threshold, shortest, batch_reads)
    seconds = time.perf_counter() - started
    row = {
        "sample": sample,
        "task": task_name,
        "kind": task["kind"],
        "model": model_name,
        "window": window,
        "step": step,
        "threshold": round(threshold, 6),
        "min_length": shortest,
        **counts.table(),
        "seconds": round(seconds, 2),
        "files": ",".join(str(path) for path in reads),
    }
    summary = pd.DataFrame([row])
    write_tsv(summary, outputs["summary"])
    log.info(
        "%s: %d of %d %s positive for %s (%s)",
        sample,
        counts.units_positive,
        counts.units_scored,
        counts.layout,
        task_name,
        model_name,
    )
    return summary
