"""Motifs a classifier has learnt, from in-silico mutagenesis of its best-scored positive sequences.

Algorithm (deliberately simple, so a reader can check it):

1. Importance: per base, reference score minus the mean score of its three substitutions (genolm.mutagenesis;
   works for every model family). Positive = the base supports the positive call.
2. Seqlets: in each sequence, the ``k``-bp stretch with the largest summed positive importance, then the next
   best not overlapping it, ... up to ``max_per_sequence`` while a stretch keeps ``min_fraction`` of the first
   one's importance. A seqlet is its core plus ``flank`` bases each side.
3. Grouping, greedy: every k-mer's support = number of remaining seqlets holding a k-mer within ``mismatches``
   (Hamming) of it (for strand-agnostic tasks, of it or its reverse complement). The best-supported k-mer seeds
   a motif; each remaining seqlet joins at its best-matching offset (and orientation) when within
   ``mismatches``, and leaves the pool. The motif is the PWM of the members' aligned k-mers widened by ``pad``
   bases each side (read from the full sequence), its low-information edge columns trimmed. Repeat until the
   best support falls below ``min_seqlets`` or ``max_motifs`` motifs exist.
4. Each motif: supporting seqlets, consensus, information content (bits, uniform background, no small-sample
   correction), median centre position in the window (promoters: relative to the TSS), and for promoter tasks
   the best match among known motifs (sigma70 -35 TTGACA and -10 TATAAT) by column Pearson correlation: the
   mean, over the known motif's columns, of the correlation between its column and the aligned motif column
   (0 where the motif has no column there), at the best offset (TomTom's PCC column score, without p-values).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import InputFormatError
from genolm.logos import BASES, information_content
from genolm.seqio import reverse_complement

log = logging.getLogger(__name__)

PathLike = str | os.PathLike[str]
MOTIF_COLUMNS = (
    "motif", "source", "seqlets", "consensus", "width", "information_content", "position", "position_sd",
    "position_origin", "best_match", "match_score", "match_offset", "match_strand",
)  # fmt: skip
_CODES = {base: code for code, base in enumerate(BASES)}


def consensus_pwm(consensus: str, p: float = 0.85) -> np.ndarray:
    """A PWM ``[L, 4]`` with the consensus base at ``p`` and the others sharing the rest."""
    pwm = np.full((len(consensus), 4), (1 - p) / 3)
    for j, base in enumerate(consensus):
        pwm[j, _CODES[base]] = p
    return pwm


KNOWN_MOTIFS = {"sigma70_-35": consensus_pwm("TTGACA"), "sigma70_-10": consensus_pwm("TATAAT")}


@dataclass(frozen=True)
class Seqlet:
    """A high-importance stretch: ``core`` bases from ``start`` in sequence ``index``; ``score`` its importance."""

    index: int
    start: int
    core: int
    score: float


@dataclass
class Motif:
    name: str
    pwm: np.ndarray  # [W, 4] probabilities
    sites: list[tuple[int, int, str]] = field(default_factory=list)  # (sequence index, start, strand)
    source: str = "ism"

    @property
    def consensus(self) -> str:
        return "".join(
            BASES[b] if ic >= 0.5 else "N"
            for b, ic in zip(self.pwm.argmax(axis=1), information_content(self.pwm), strict=True)
        )

    @property
    def information(self) -> float:
        return float(information_content(self.pwm).sum())


def find_seqlets(
    importances: Sequence[np.ndarray], k: int = 6, max_per_sequence: int = 3, min_fraction: float = 0.5
) -> list[Seqlet]:
    """Seqlets of each sequence's importance track (step 2 of the module docstring)."""
    seqlets = []
    for index, track in enumerate(importances):
        track = np.clip(np.asarray(track, dtype=np.float64), 0, None)
        if track.size < k:
            continue
        sums = np.convolve(track, np.ones(k), mode="valid")
        best = 0.0
        for _ in range(max_per_sequence):
            start = int(np.argmax(sums))
            score = float(sums[start])
            if score <= 0 or score < min_fraction * best:
                break
            best = max(best, score)
            seqlets.append(Seqlet(index, start, k, score))
            sums[max(0, start - k + 1) : start + k] = -np.inf
    return seqlets


def _kmer_codes(seq: str, k: int) -> list[str]:
    return [seq[i : i + k] for i in range(len(seq) - k + 1)]


def _neighbours(kmer: str, mismatches: int) -> set[str]:
    """Every string within ``mismatches`` substitutions of ``kmer`` (itself included)."""
    found = {kmer}
    for positions in itertools.combinations(range(len(kmer)), mismatches):
        for bases in itertools.product(BASES, repeat=mismatches):
            chars = list(kmer)
            for position, base in zip(positions, bases, strict=True):
                chars[position] = base
            found.add("".join(chars))
    return found


def _hamming(a: str, b: str) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def _seqlet_text(sequences: Sequence[str], seqlet: Seqlet, flank: int) -> tuple[str, int]:
    """The seqlet's bases with ``flank`` each side (clipped at the ends), and where they start in the sequence."""
    seq = sequences[seqlet.index]
    left = max(0, seqlet.start - flank)
    return seq[left : seqlet.start + seqlet.core + flank], left


def pwm_from_sites(sites: Sequence[str], pseudocount: float = 0.0) -> np.ndarray:
    """Column base frequencies ``[W, 4]`` of aligned sites; non-ACGT bases are not counted."""
    width = len(sites[0])
    counts = np.full((width, 4), pseudocount)
    for site in sites:
        for j, base in enumerate(site):
            if base in _CODES:
                counts[j, _CODES[base]] += 1
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.full_like(counts, 0.25), where=totals > 0)


def discover_motifs(
    sequences: Sequence[str],
    importances: Sequence[np.ndarray],
    *,
    both_strands: bool,
    k: int = 6,
    flank: int = 3,
    mismatches: int = 1,
    pad: int = 3,
    min_seqlets: int = 10,
    max_motifs: int = 5,
    max_per_sequence: int = 3,
    min_fraction: float = 0.5,
    trim_bits: float = 0.5,
) -> tuple[list[Motif], list[Seqlet]]:
    """Motifs of high-importance stretches (module docstring), and the seqlets they were built from."""
    sequences = [seq.upper() for seq in sequences]
    seqlets = find_seqlets(importances, k, max_per_sequence, min_fraction)
    texts = [_seqlet_text(sequences, seqlet, flank) for seqlet in seqlets]
    log.info("%d seqlets from %d sequences", len(seqlets), len(sequences))
    pool = set(range(len(seqlets)))
    motifs = []
    while pool and len(motifs) < max_motifs:
        support: Counter[str] = Counter()
        for i in pool:
            kmers = set(_kmer_codes(texts[i][0], k))
            if both_strands:
                kmers |= {reverse_complement(kmer) for kmer in kmers}
            support.update(set().union(*(_neighbours(kmer, mismatches) for kmer in kmers)) if kmers else set())
        if not support:
            break
        seed, count = min(support.items(), key=lambda item: (-item[1], item[0]))
        if count < min_seqlets:
            break
        sites, members, matched = [], [], set()
        for i in sorted(pool):
            text, left = texts[i]
            best = None
            for offset, kmer in enumerate(_kmer_codes(text, k)):
                options = [(_hamming(kmer, seed), "+")]
                if both_strands:
                    options.append((_hamming(reverse_complement(kmer), seed), "-"))
                for distance, strand in options:
                    if distance <= mismatches and (best is None or distance < best[0]):
                        best = (distance, left + offset, strand)
            if best is None:
                continue
            matched.add(i)
            start = best[1] - pad
            seq = sequences[seqlets[i].index]
            if start < 0 or start + k + 2 * pad > len(seq):
                continue  # the widened site would leave the sequence
            site = seq[start : start + k + 2 * pad]
            sites.append(site if best[2] == "+" else reverse_complement(site))
            members.append((i, start, best[2]))
        pool -= matched  # always shrinks: the seed's support counted at least min_seqlets matching seqlets
        if len(members) < min_seqlets:
            continue  # too many sites near a sequence end to widen
        pwm = pwm_from_sites(sites)
        ic = information_content(pwm)
        keep = np.flatnonzero(ic >= trim_bits)
        lo, hi = (int(keep[0]), int(keep[-1]) + 1) if keep.size else (pad, pad + k)
        name = f"motif{len(motifs) + 1}"
        motif_sites = [(seqlets[i].index, start + lo, strand) for i, start, strand in members]
        motifs.append(Motif(name, pwm[lo:hi], motif_sites))
        log.info("%s: seed %s, %d seqlets, consensus %s", name, seed, len(members), motifs[-1].consensus)
    return motifs, seqlets


def _column_pcc(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    norm = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / norm) if norm > 0 else 0.0


def pwm_similarity(motif: np.ndarray, known: np.ndarray) -> tuple[float, int]:
    """(score, offset) of the best placement of ``known`` against ``motif``: the mean column PCC over the known
    motif's columns (columns falling outside ``motif`` count 0); ``offset`` = motif column of known column 0."""
    best = (-np.inf, 0)
    for offset in range(-len(known) + 1, len(motif)):
        total = 0.0
        for j in range(len(known)):
            if 0 <= offset + j < len(motif):
                total += _column_pcc(motif[offset + j], known[j])
        best = max(best, (total / len(known), -offset))
    return best[0], -best[1]


def best_known_match(
    pwm: np.ndarray, known: Mapping[str, np.ndarray] = KNOWN_MOTIFS, both_strands: bool = False
) -> tuple[str, float, int, str]:
    """(name, score, offset, strand) of the known motif most similar to ``pwm`` (:func:`pwm_similarity`)."""
    best = ("", -np.inf, 0, "+")
    for name, matrix in known.items():
        options = [("+", matrix)] + ([("-", matrix[::-1, ::-1])] if both_strands else [])
        for strand, oriented in options:
            score, offset = pwm_similarity(pwm, oriented)
            if score > best[1]:
                best = (name, score, offset, strand)
    return best


def motif_table(
    motifs: Sequence[Motif],
    origin: int,
    both_strands: bool,
    origin_label: str,
    known: Mapping[str, np.ndarray] = KNOWN_MOTIFS,
) -> pd.DataFrame:
    """One row per motif (columns MOTIF_COLUMNS); ``position`` = median site centre minus ``origin``
    (robust to the few sites a degenerate seed picks up elsewhere); ``position_sd`` their spread."""
    rows = []
    for motif in motifs:
        centres = np.array([start + len(motif.pwm) / 2 - 0.5 for _, start, _ in motif.sites], dtype=np.float64)
        name, score, offset, strand = ("", float("nan"), 0, "")
        if known:  # no known motifs (IS tasks): the match columns stay empty
            name, score, offset, strand = best_known_match(motif.pwm, known, both_strands=both_strands)
        rows.append(
            {
                "motif": motif.name,
                "source": motif.source,
                "seqlets": len(motif.sites),
                "consensus": motif.consensus,
                "width": len(motif.pwm),
                "information_content": round(motif.information, 3),
                "position": float(np.median(centres) - origin) if centres.size else float("nan"),
                "position_sd": float(centres.std()) if centres.size else float("nan"),
                "position_origin": origin_label,
                "best_match": name,
                "match_score": round(score, 3),
                "match_offset": offset,
                "match_strand": strand,
            }
        )
    return pd.DataFrame(rows, columns=list(MOTIF_COLUMNS))


# -----------------------------------------------------------------------------
# MEME minimal motif format (what TomTom, FIMO and MEME-ChIP read)


def write_meme(motifs: Sequence[Motif], path: PathLike, both_strands: bool) -> None:
    """Motifs as a MEME minimal motif file (version 4, uniform background)."""
    lines = [
        "MEME version 4",
        "",
        "ALPHABET= ACGT",
        "",
        f"strands: {'+ -' if both_strands else '+'}",
        "",
        "Background letter frequencies",
        "A 0.25 C 0.25 G 0.25 T 0.25",
        "",
    ]
    for motif in motifs:
        lines.append(f"MOTIF {motif.name} {motif.consensus}")
        lines.append(f"letter-probability matrix: alength= 4 w= {len(motif.pwm)} nsites= {len(motif.sites)} E= 0")
        lines += [" ".join(f"{p:.6f}" for p in row) for row in motif.pwm]
        lines.append("")
    with atomic_path(path) as tmp:
        Path(tmp).write_text("\n".join(lines), encoding="ascii")


def read_meme(path: PathLike) -> dict[str, np.ndarray]:
    """Motif name -> probability matrix ``[W, 4]`` from a MEME minimal motif file (DNA, A C G T order)."""
    motifs: dict[str, np.ndarray] = {}
    lines = Path(path).read_text(encoding="ascii").splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("MOTIF"):
            name = lines[i].split()[1]
            header = re.search(r"w=\s*(\d+)", lines[i + 1])
            if not lines[i + 1].startswith("letter-probability matrix") or header is None:
                raise InputFormatError(f"{path}: line {i + 2}: expected 'letter-probability matrix: ... w= N'")
            width = int(header[1])
            rows = [[float(value) for value in lines[i + 2 + j].split()] for j in range(width)]
            matrix = np.array(rows)
            if matrix.shape != (width, 4) or not np.allclose(matrix.sum(axis=1), 1, atol=1e-3):
                raise InputFormatError(f"{path}: motif {name}: rows must be 4 probabilities summing to 1")
            motifs[name] = matrix
            i += 2 + width
        else:
            i += 1
    return motifs


# -----------------------------------------------------------------------------
# Terminal inverted repeats of IS calls


def tir_sites(calls_gff: PathLike, fasta: PathLike | Sequence[PathLike], width: int) -> list[str]:
    """``width`` bases inward from each outer end of the IS calls whose ends are TIRs (GFF3 ``tir_left`` and
    ``tir_right`` of genolm.tir): the left end as read, the right end reverse complemented, so both read from
    the element's end inwards and align base by base."""
    from genolm.annotations import read_gff3
    from genolm.scan_blocks import contig_lengths, fetch_regions

    calls = read_gff3(calls_gff, types={"insertion_sequence"})
    lengths = contig_lengths(fasta)
    wanted = []
    for row in calls.itertuples():
        if "tir_left" not in row.attributes or "tir_right" not in row.attributes:
            continue
        left = int(row.attributes["tir_left"].split("-")[0]) - 1
        right = int(row.attributes["tir_right"].split("-")[1])
        if left + width <= lengths[row.contig] and right - width >= 0:
            wanted += [(row.contig, left, left + width, "+"), (row.contig, right - width, right, "-")]
    bases = {(c, s, e): seq for c, s, e, seq in fetch_regions(fasta, sorted({w[:3] for w in wanted}))}
    return [bases[w[:3]] if w[3] == "+" else reverse_complement(bases[w[:3]]) for w in wanted]


# -----------------------------------------------------------------------------
# The pipeline step


def motifs_figure(motifs: Sequence[Motif], table: pd.DataFrame):
    """One probability logo per motif, stacked, each titled with its support, position and best known match."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genolm.logos import probability_logo

    rows = max(len(motifs), 1)
    width = max([len(m.pwm) for m in motifs] + [6])
    figure, axes = plt.subplots(rows, 1, figsize=(1.2 + 0.45 * width, 1.6 * rows), squeeze=False)
    if not motifs:
        axes[0, 0].text(0.5, 0.5, "no motif found", ha="center", va="center")
        axes[0, 0].set_axis_off()
    for ax, motif, row in zip(axes[:, 0], motifs, table.itertuples(), strict=True):
        where = "" if np.isnan(row.position) else f", at {row.position:+.1f} from {row.position_origin}"
        title = f"{motif.name} ({row.source}): {row.seqlets} sites{where}"
        if isinstance(row.best_match, str) and row.best_match:
            title += f"; best match {row.best_match} (PCC {row.match_score:.2f})"
        probability_logo(ax, motif.pwm, x0=1, title=title)
        ax.set_xticks(range(1, len(motif.pwm) + 1))
    figure.tight_layout()
    return figure


def model_motifs(
    checkpoint: PathLike,
    test_table: PathLike,
    task: Mapping[str, object],
    outputs: Mapping[str, PathLike],
    sequences: int = 200,
    max_bases: int = 20_000,
    calls: Sequence[tuple[PathLike, PathLike | Sequence[PathLike]]] = (),
    device: str = "auto",
    settings: Mapping[str, object] | None = None,
    tir_width: int = 20,
) -> pd.DataFrame:
    """Motifs of a classifier from ISM of its ``sequences`` best-scored positive test sequences (windows of the
    model's length, at most ``max_bases`` bases in all: ISM costs 3 model windows per base; promoter positions
    relative to the task's ``scan.tss_offset``), plus for IS tasks the logo of
    the terminal inverted repeats of the IS ``calls`` ((GFF3, FASTA) pairs). ``outputs``: motifs (TSV), meme,
    logos (PNG), seqlets (TSV)."""
    import matplotlib.pyplot as plt

    from genolm.genome_scan import load_scan_model
    from genolm.mutagenesis import importance, window_mutagenesis
    from genolm.scan import model_scorer

    model, tokenizer, window, torch_device = load_scan_model(checkpoint, device)
    scorer = model_scorer(model, tokenizer, torch_device)
    table = pd.read_csv(test_table, sep="\t", usecols=["id", "label", "sequence"], dtype={"sequence": str})
    positives = table[(table["label"] == 1) & (table["sequence"].str.len() == window)]
    if positives.empty:
        raise InputFormatError(f"{test_table}: no positive sequence of the model's window length ({window} bp)")
    dropped = int((table["label"] == 1).sum()) - len(positives)
    if dropped:
        log.warning("%d positive sequences of another length than %d bp left out", dropped, window)
    scores = scorer(positives["sequence"].str.upper().tolist())
    best = np.lexsort((np.arange(len(scores)), -scores))[: max(1, min(sequences, max_bases // window))]
    chosen = positives.iloc[best]
    seqs = chosen["sequence"].str.upper().tolist()
    _, deltas = window_mutagenesis(seqs, scorer)
    importances = [importance(seq, d) for seq, d in zip(seqs, deltas, strict=True)]
    both_strands = not bool(task.get("strand_specific", True))
    motifs, seqlets = discover_motifs(seqs, importances, both_strands=both_strands, **dict(settings or {}))
    promoter = task.get("kind") == "promoter"
    origin = int(task["scan"]["tss_offset"]) if promoter else 0  # type: ignore[index]
    origin_label = "TSS" if promoter else "window start"
    known = KNOWN_MOTIFS if promoter else {}  # sigma70 boxes mean nothing inside IS elements
    frame = motif_table(motifs, origin, both_strands, origin_label, known)
    if task.get("kind") == "is":
        sites = [site for gff, fasta in calls for site in tir_sites(gff, fasta, tir_width)]
        log.info("%d TIR ends aligned", len(sites))
        if sites:
            tir = Motif("TIR", pwm_from_sites(sites), [(-1, 0, "+")] * len(sites), source="tir")
            row = motif_table([tir], 0, True, "element end", known)
            row["position"] = row["position_sd"] = float("nan")
            motifs.append(tir)
            frame = pd.concat([frame, row], ignore_index=True)
    with atomic_path(outputs["motifs"]) as tmp:
        frame.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    write_meme(motifs, outputs["meme"], both_strands)
    seqlet_rows = pd.DataFrame(
        {
            "id": [chosen["id"].iloc[s.index] for s in seqlets],
            "start": [s.start - origin for s in seqlets],
            "core": [seqs[s.index][s.start : s.start + s.core] for s in seqlets],
            "importance": [s.score for s in seqlets],
        }
    )
    with atomic_path(outputs["seqlets"]) as tmp:
        seqlet_rows.to_csv(tmp, sep="\t", index=False, float_format="%.4g")
    figure = motifs_figure(motifs, frame)
    with atomic_path(outputs["logos"]) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(figure)
    return frame
