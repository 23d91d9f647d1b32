"""Writers for scan results: BED6, GFF3 and bedGraph, each bgzip-compressed and tabix-indexed through pysam.

Every file carries its provenance (a dict: model, checkpoint, threshold, config...) as ``#`` comment lines, is
sorted for tabix, and is written atomically (temporary files in the target folder, then renamed). An empty
call set still gives a valid, indexed file holding only the header.

Coordinates: calls are 0-based half-open internally. BED and bedGraph keep that; GFF3 is 1-based closed.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import numpy as np
import pysam

from genolm.errors import ConfigError, InputFormatError

if TYPE_CHECKING:
    from genolm.scan import Call

log = logging.getLogger(__name__)

# Characters GFF3 allows unescaped in column 1 (seqid) and in attribute values (besides alphanumerics).
_GFF_SEQID_SAFE = ".:^*$@!+_?-|"
_GFF_ATTR_SAFE = " .:^*$@!+_?-|/()[]{}<>#~'\"`"


def provenance_lines(provenance: Mapping[str, Any] | None) -> list[str]:
    """``#key: value`` comment lines; non-string values as compact sorted JSON so they stay on one line."""
    lines: list[str] = []
    for key, value in (provenance or {}).items():
        text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
        text = text.replace("\r", "\\r").replace("\n", "\\n")
        lines.append(f"#{key}: {text}")
    return lines


def sort_calls(calls: Iterable[Call], contig_order: Sequence[str] | None = None) -> list[Call]:
    """Calls sorted by contig (``contig_order`` if given, else by name), start, end, strand."""
    calls = list(calls)
    if contig_order is None:
        rank = {name: i for i, name in enumerate(sorted({c.contig for c in calls}))}
    else:
        rank = {name: i for i, name in enumerate(contig_order)}
        missing = sorted({c.contig for c in calls} - rank.keys())
        if missing:
            raise InputFormatError(f"calls on contigs {missing} that are not in contig_order")
    return sorted(calls, key=lambda c: (rank[c.contig], c.start, c.end, c.strand))


def call_ids(calls: Sequence[Call], prefix: str | None = None) -> list[str]:
    """Stable IDs ``<prefix or kind>_<n>`` numbered in the given (sorted) order, shared by BED and GFF3."""
    return [f"{prefix or c.kind}_{i + 1:06d}" for i, c in enumerate(calls)]


def _check_gz_path(path: str | Path) -> Path:
    path = Path(path)
    if not path.name.endswith(".gz"):
        raise ConfigError(f"{path}: bgzip output must end in '.gz' (the tabix index is written next to it)")
    return path


def _write_indexed(lines: Iterable[str], path: Path, index_args: dict[str, Any]) -> None:
    """Write text lines, bgzip and tabix-index them, then move ``path`` and ``path.tbi`` into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        plain = tmpdir / "body.txt"
        with plain.open("w", encoding="ascii", newline="\n") as fh:
            for line in lines:
                fh.write(line)
                fh.write("\n")
        gz = tmpdir / "body.txt.gz"
        pysam.tabix_compress(str(plain), str(gz), force=True)
        tbi = tmpdir / "body.txt.gz.tbi"
        pysam.tabix_index(str(gz), force=True, index=str(tbi), **index_args)
        os.replace(gz, path)
        os.replace(tbi, f"{path}.tbi")
    finally:
        for leftover in tmpdir.iterdir():
            leftover.unlink()
        tmpdir.rmdir()
    log.info("wrote %s (+ .tbi)", path)


def _bed_score(score: float) -> int:
    """BED column 5 is an integer 0..1000 by convention; probabilities are scaled by 1000."""
    return int(min(1000, max(0, round(score * 1000))))


def write_bed(
    calls: Iterable[Call],
    path: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    contig_order: Sequence[str] | None = None,
    id_prefix: str | None = None,
) -> None:
    """BED6, 0-based half-open: contig, start, end, ID, round(1000 * score), strand; bgzip + tabix "bed"."""
    path = _check_gz_path(path)
    ordered = sort_calls(calls, contig_order)
    ids = call_ids(ordered, id_prefix)
    body = (
        f"{c.contig}\t{c.start}\t{c.end}\t{name}\t{_bed_score(c.score)}\t{c.strand}"
        for c, name in zip(ordered, ids, strict=True)
    )
    _write_indexed([*provenance_lines(provenance), *body], path, {"preset": "bed"})


def _gff_escape(text: str, safe: str) -> str:
    return quote(str(text), safe=safe)


def write_gff3(
    calls: Iterable[Call],
    path: str | Path,
    source: str = "genolm",
    *,
    provenance: Mapping[str, Any] | None = None,
    sequence_lengths: Mapping[str, int] | None = None,
    contig_order: Sequence[str] | None = None,
    id_prefix: str | None = None,
) -> None:
    """GFF3 (1-based closed), sorted, bgzip + tabix ("gff").

    Column 3 is the call's ``kind`` (use Sequence Ontology terms such as "promoter", "insertion_sequence").
    Attributes: ID (same as the BED name), best_window (1-based closed interval of the best-scoring window),
    n_windows, then the call's own ``attributes`` (e.g. the terminal inverted repeats of an IS call).
    ``sequence_lengths`` adds ``##sequence-region`` directives, in ``contig_order`` if given.
    """
    path = _check_gz_path(path)
    order = contig_order
    if order is None and sequence_lengths is not None:
        order = list(sequence_lengths)
    ordered = sort_calls(calls, order)
    ids = call_ids(ordered, id_prefix)
    header = ["##gff-version 3"]
    for contig, length in (sequence_lengths or {}).items():
        header.append(f"##sequence-region {_gff_escape(contig, _GFF_SEQID_SAFE)} 1 {int(length)}")
    header += provenance_lines(provenance)
    src = _gff_escape(source, _GFF_SEQID_SAFE + " ")
    body = []
    for c, call_id in zip(ordered, ids, strict=True):
        if sequence_lengths is not None and c.contig in sequence_lengths and c.end > sequence_lengths[c.contig]:
            raise InputFormatError(
                f"{path}: call {call_id} ends at {c.end}, past the end of {c.contig} ({sequence_lengths[c.contig]} bp)"
            )
        attrs = [f"ID={_gff_escape(call_id, _GFF_ATTR_SAFE)}"]
        window = getattr(c, "window", 0)
        if window > 0:  # point calls (window 0) have no best window
            attrs.append(f"best_window={c.peak + 1}-{c.peak + window}")
        attrs.append(f"n_windows={getattr(c, 'n_windows', 1)}")
        attrs += [
            f"{_gff_escape(key, _GFF_SEQID_SAFE)}={_gff_escape(value, _GFF_ATTR_SAFE)}"
            for key, value in getattr(c, "attributes", ())
        ]
        body.append(
            "\t".join(
                (
                    _gff_escape(c.contig, _GFF_SEQID_SAFE),
                    src,
                    _gff_escape(c.kind, _GFF_SEQID_SAFE),
                    str(c.start + 1),
                    str(c.end),
                    f"{c.score:.6g}",
                    c.strand,
                    ".",
                    ";".join(attrs),
                )
            )
        )
    _write_indexed([*header, *body], path, {"preset": "gff"})


def bedgraph_bins(
    starts: np.ndarray, scores: np.ndarray, window: int, step: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Map window scores to non-overlapping, sorted intervals ``(bin_starts, bin_ends, values)``.

    Each window's score goes to the ``step``-wide bin centred on the window centre, clipped to the window; a
    bin overlapping its predecessor (the end-aligned last window of a contig) is trimmed to start where the
    predecessor ends. NaN scores (unscored windows) are left out, and touching bins with equal values are
    merged.
    """
    starts = np.asarray(starts, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    if starts.shape != scores.shape:
        raise InputFormatError(f"bedGraph: {starts.size} window starts but {scores.size} scores")
    if starts.size and np.any(np.diff(starts) <= 0):
        raise InputFormatError("bedGraph: window starts must be strictly increasing")
    centre = starts + window // 2
    b0 = np.maximum(centre - step // 2, starts)
    b1 = np.minimum(centre - step // 2 + step, starts + window)
    # b1 is non-decreasing (starts increase, window fixed), so trimming against the previous end suffices.
    if b0.size:
        b0[1:] = np.maximum(b0[1:], b1[:-1])
    keep = (b1 > b0) & ~np.isnan(scores)
    b0, b1, vals = b0[keep], b1[keep], scores[keep]
    if vals.size:
        new_run = np.r_[True, (b0[1:] != b1[:-1]) | (vals[1:] != vals[:-1])]
        last = np.r_[np.flatnonzero(new_run)[1:] - 1, vals.size - 1]
        b0, b1, vals = b0[new_run], b1[last], vals[new_run]
    return b0, b1, vals


def write_bedgraph_tracks(
    tracks: Iterable[tuple[str, np.ndarray, np.ndarray]],
    window: int,
    step: int,
    path: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    track_name: str = "genolm",
    description: str | None = None,
) -> None:
    """bedGraph of several contigs ``(contig, starts, scores)``, in the given contig order; bgzip + tabix.

    The first line is the UCSC ``track type=bedGraph`` line (skipped by the index), then provenance comments.
    """
    path = _check_gz_path(path)
    if window < 1 or step < 1:
        raise ConfigError(f"{path}: window and step must be >= 1 (got {window}, {step})")

    def clean(text: str) -> str:
        return text.replace('"', "'").replace("\n", " ")

    track = f'track type=bedGraph name="{clean(track_name)}"'
    if description:
        track += f' description="{clean(description)}"'
    lines = [track, *provenance_lines(provenance)]
    seen: set[str] = set()
    for contig, starts, scores in tracks:
        if contig in seen:
            raise InputFormatError(f"{path}: contig {contig!r} given twice; tabix needs one block per contig")
        seen.add(contig)
        b0, b1, vals = bedgraph_bins(starts, scores, window, step)
        lines.extend(f"{contig}\t{s}\t{e}\t{v:.6g}" for s, e, v in zip(b0, b1, vals, strict=True))
    # No preset: presets force line_skip=0 and the track line is not a '#' comment.
    _write_indexed(lines, path, {"seq_col": 0, "start_col": 1, "end_col": 2, "zerobased": True, "line_skip": 1})


def write_bedgraph(
    contig: str,
    starts: np.ndarray,
    scores: np.ndarray,
    window: int,
    step: int,
    path: str | Path,
    *,
    provenance: Mapping[str, Any] | None = None,
    track_name: str = "genolm",
    description: str | None = None,
) -> None:
    """bedGraph of one contig's window scores; see :func:`write_bedgraph_tracks`."""
    write_bedgraph_tracks(
        [(contig, starts, scores)],
        window,
        step,
        path,
        provenance=provenance,
        track_name=track_name,
        description=description,
    )
