"""Deterministic synthetic bacterial-like genome with planted promoters and IS elements, truth and tasks.

The embedded demo has to run offline in minutes yet exercise what the real benchmarks do: several contigs,
both strands, element-level truth and labelled windows. Every element is *sampled from a model* (codon usage,
position weight matrices, diverged family consensus) rather than pasted as a fixed string, so a classifier has
to learn motifs instead of memorising one k-mer; negatives are GC-matched so that base composition alone
cannot solve a task.

Layout of one gene block (written on the gene's strand, reverse-complemented for "-" genes)::

    [lead][distal promoter + gap]?[proximal promoter: -35 box, spacer, -10 box, discriminator, +1][5'UTR + SD]
    [ATG ... stop][terminator?]

Blocks are separated by AT-rich filler; IS copies (TSD + IR..transposase..IR + TSD) are only ever inserted
into filler, padded so that no promoter, promoter window or gene is disrupted. Coordinates are therefore exact
by construction: features are recorded while the sequence is assembled.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from genolm.atomic import atomic_writer
from genolm.errors import ConfigError, InputFormatError

log = logging.getLogger(__name__)

__all__ = [
    "PWM_10",
    "PWM_35",
    "SPLITS",
    "TASKS",
    "TASK_COLUMNS",
    "DemoConfig",
    "DemoGenome",
    "Feature",
    "ISFamily",
    "build_task",
    "generate_genome",
    "write_demo",
    "write_gff3",
]

TASKS = ("promoter", "is")
SPLITS = ("train", "valid", "test")
TASK_COLUMNS = ("id", "label", "split", "contig", "start", "end", "strand", "sequence")
GFF_SOURCE = "genolm_demo"

_ASCII = np.frombuffer(b"ACGT", dtype=np.uint8)
_COMPLEMENT = str.maketrans("ACGTNacgtn", "TGCANtgcan")

# Independent random streams, so that e.g. changing the task sampler never changes the genome.
_STREAM_CODONS, _STREAM_IS, _STREAM_LAYOUT, _STREAM_SPLIT, _STREAM_TASK = range(5)


def _pwm(consensus: str, probs: Iterable[float]) -> np.ndarray:
    """4 x n matrix (rows A, C, G, T): consensus base with probability p, the rest shared equally."""
    probs = list(probs)
    mat = np.empty((4, len(consensus)))
    for j, (base, p) in enumerate(zip(consensus, probs, strict=True)):
        mat[:, j] = (1.0 - p) / 3.0
        mat["ACGT".index(base), j] = p
    mat.setflags(write=False)
    return mat


# sigma70 boxes. The spread of conservation follows E. coli sites: the TTG of -35 and the first T, the A and
# the last T of -10 are the best conserved; no position is invariant, so sampled boxes rarely equal consensus.
PWM_35 = _pwm("TTGACA", (0.72, 0.76, 0.68, 0.60, 0.55, 0.55))
PWM_10 = _pwm("TATAAT", (0.80, 0.80, 0.60, 0.62, 0.58, 0.80))
_PWM_SD = _pwm("AGGAGG", (0.70, 0.72, 0.80, 0.70, 0.80, 0.65))
_SPACERS = np.arange(15, 20)
_SPACER_P = np.array([0.06, 0.20, 0.48, 0.20, 0.06])  # 17 bp optimal, 15-19 tolerated
_DISCRIMINATORS = np.arange(5, 10)  # bases between the -10 box and the +1
_DISCRIMINATOR_P = np.array([0.12, 0.30, 0.30, 0.18, 0.10])
_PLUS1_P = np.array([0.50, 0.08, 0.34, 0.08])  # transcription mostly starts at a purine

# Approximate bacterial proteome composition (percent); only the relative sizes matter.
_AA_FREQ = {
    "A": 9.5, "R": 5.5, "N": 3.9, "D": 5.1, "C": 1.1, "Q": 4.4, "E": 5.8, "G": 7.4, "H": 2.3, "I": 6.0,
    "L": 10.7, "K": 4.4, "M": 2.8, "F": 3.9, "P": 4.4, "S": 5.8, "T": 5.4, "W": 1.5, "Y": 2.8, "V": 7.1,
}  # fmt: skip
_CODE_TCAG = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"  # standard code, TCAG order
_ATG, _STOPS = 14, np.array([48, 50, 56])  # codon index 16*b1 + 4*b2 + b3 with A=0 C=1 G=2 T=3: TAA TAG TGA
_CODON_CODES = np.array([[i // 16, (i // 4) % 4, i % 4] for i in range(64)], dtype=np.uint8)

_ISLAND_RATE = 0.012  # chance per gene of entering a genomic island (horizontally acquired, AT-rich genes)
_ISLAND_GENES = (5, 16)
_ISLAND_DROP = 0.08
_GENE_GC_SD = 0.03
_SAME_STRAND = 0.7  # co-directional runs, as in operon-rich bacterial genomes
_MEAN_BLOCK = 1150  # rough bases per gene block, used only to spread IS copies along a contig
_PLASMID_SHARE = 0.1
_SPLIT_BLOCK = 20_000
_GC_BINS = 40


def _genetic_code() -> np.ndarray:
    """Amino-acid letter of each codon index (ACGT order); '*' for stops."""
    aa = np.empty(64, dtype="<U1")
    for k, (a, b, c) in enumerate(product("TCAG", repeat=3)):
        aa[16 * "ACGT".index(a) + 4 * "ACGT".index(b) + "ACGT".index(c)] = _CODE_TCAG[k]
    return aa


_AMINO = _genetic_code()


# --------------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class DemoConfig:
    """Parameters of the demo genome and tasks (mirrored under `demo:` in the config schema)."""

    seed: int = 1
    genome_length: int = 500_000
    contigs: int = 2  # "chrom" + plasmids "plasmid1".. (each plasmid ~10% of the genome)
    gc: float = 0.51  # coding GC; intergenic background is gc - 0.1
    promoters_per_gene_extra: float = 0.3  # expected extra (distal) promoters per gene
    is_families: int = 4
    is_copies_per_family: int = 8
    is_divergence: float = 0.08  # per-copy substitution rate vs the family consensus
    promoter_window: tuple[int, int] = (60, 20)  # bases upstream / downstream of the TSS
    is_window: int = 400
    is_window_step: int = 50
    negatives_per_positive: int = 3
    split_fractions: tuple[float, float, float] = (0.7, 0.15, 0.15)

    def __post_init__(self) -> None:
        _check_int(self, "seed", 0)
        _check_int(self, "genome_length", 2_000)
        _check_int(self, "contigs", 1)
        _check_float(self, "gc", 0.3, 0.75)
        _check_float(self, "promoters_per_gene_extra", 0.0, 3.0)
        _check_int(self, "is_families", 0)
        _check_int(self, "is_copies_per_family", 0)
        _check_float(self, "is_divergence", 0.0, 0.5)
        _check_int(self, "is_window", 20)
        _check_int(self, "is_window_step", 1)
        _check_int(self, "negatives_per_positive", 1)
        win = self.promoter_window
        if len(win) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in win):
            raise ConfigError(f"demo.promoter_window: expected two integers >= 0 (up, down), got {win!r}")
        fr = self.split_fractions
        if len(fr) != 3 or any(isinstance(v, bool) or not isinstance(v, int | float) or v < 0 for v in fr):
            raise ConfigError(f"demo.split_fractions: expected three numbers >= 0, got {fr!r}")
        if abs(sum(fr) - 1.0) > 1e-6 or fr[0] <= 0:
            raise ConfigError(f"demo.split_fractions: must sum to 1 with a non-zero train share, got {fr!r}")
        if self.genome_length / self.contigs < 1_000:
            raise ConfigError(
                f"demo: {self.contigs} contigs do not fit in genome_length {self.genome_length} (>= 1000 bp each)"
            )

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> DemoConfig:
        """Build from a config mapping (e.g. YAML `demo:`); unknown keys are errors, lists become tuples."""
        if d is not None and not isinstance(d, Mapping):
            raise ConfigError(f"demo: expected a mapping of settings, got {type(d).__name__}")
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        for key in d:
            if key not in known:
                raise ConfigError(f"demo: unknown key {key!r} (known keys: {', '.join(sorted(known))})")
        for key in ("promoter_window", "split_fractions"):
            if key in d:
                if not isinstance(d[key], list | tuple):
                    raise ConfigError(f"demo.{key}: expected a list, got {d[key]!r}")
                d[key] = tuple(d[key])
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML/JSON form (tuples as lists), for provenance records."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _check_int(cfg: DemoConfig, name: str, minimum: int) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"demo.{name}: expected an integer >= {minimum}, got {value!r}")


def _check_float(cfg: DemoConfig, name: str, low: float, high: float) -> None:
    value = getattr(cfg, name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"demo.{name}: expected a number in [{low}, {high}], got {value!r}")


# ------------------------------------------------------------------------------------------------ data model


@dataclass(frozen=True)
class Feature:
    """One truth feature: 0-based half-open [start, end) on the forward strand of `contig`."""

    contig: str
    start: int
    end: int
    strand: str
    type: str
    id: str
    attrs: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None


@dataclass(frozen=True)
class ISFamily:
    """Consensus of one IS family, written on the transposase strand."""

    name: str
    consensus: str  # ir_left + spacer + transposase ORF + spacer + ir_right
    ir_left: str
    ir_right: str  # reverse complement of ir_left carrying `ir_mismatches` designed differences
    ir_mismatches: int
    orf_start: int  # transposase ORF [orf_start, orf_end) within the consensus
    orf_end: int
    tsd_length: int


@dataclass(frozen=True)
class DemoGenome:
    contigs: dict[str, str]
    features: list[Feature]
    is_families: dict[str, ISFamily] = field(default_factory=dict)
    config: DemoConfig | None = None


# -------------------------------------------------------------------------------------------- sequence model


def _rc_codes(codes: np.ndarray) -> np.ndarray:
    return (3 - codes)[::-1]  # A0 C1 G2 T3: complement is 3 - code


def _to_str(codes: np.ndarray) -> str:
    return _ASCII[codes].tobytes().decode("ascii")


def _reverse_complement(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


def _sample_pwm(pwm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    cum = np.cumsum(pwm, axis=0)
    u = rng.random(pwm.shape[1])
    return np.minimum((u[None, :] > cum).sum(axis=0), 3).astype(np.uint8)


@dataclass(frozen=True)
class _CodonModel:
    """Codon usage sampled once per seed; per-gene GC varies through an exponential tilt towards GC3."""

    sense: np.ndarray  # codon indices of the 61 sense codons
    weights: np.ndarray  # untilted usage: amino-acid frequency x per-seed synonymous preference
    tilt: np.ndarray  # GC3 + 0.25 (GC1 + GC2): mostly third positions, like real GC3 bias
    beta_grid: np.ndarray
    gc_grid: np.ndarray  # expected coding GC at each beta, increasing
    stop_p: np.ndarray  # TAA, TAG, TGA

    def probs(self, beta: float) -> np.ndarray:
        w = self.weights * np.exp(beta * self.tilt)
        return w / w.sum()

    def beta_for_gc(self, gc: float) -> float:
        return float(np.interp(gc, self.gc_grid, self.beta_grid))


def _codon_model(rng: np.random.Generator) -> _CodonModel:
    sense = np.flatnonzero(_AMINO != "*")
    aa = _AMINO[sense]
    pref = rng.gamma(2.0, 1.0, size=sense.size)
    weights = np.empty(sense.size)
    for letter, freq in _AA_FREQ.items():
        syn = aa == letter
        weights[syn] = freq * pref[syn] / pref[syn].sum()
    is_gc = np.isin(_CODON_CODES[sense], (1, 2)).astype(float)
    tilt = is_gc[:, 2] + 0.25 * (is_gc[:, 0] + is_gc[:, 1])
    beta_grid = np.linspace(-6.0, 6.0, 241)
    w = weights[None, :] * np.exp(beta_grid[:, None] * tilt[None, :])
    gc_grid = np.maximum.accumulate((w / w.sum(axis=1, keepdims=True)) @ is_gc.mean(axis=1))
    return _CodonModel(sense, weights, tilt, beta_grid, gc_grid, rng.dirichlet([12.0, 2.0, 6.0]))


def _orf(rng: np.random.Generator, model: _CodonModel, beta: float, n_codons: int) -> np.ndarray:
    """ATG + sense codons + stop: no in-frame stop by construction."""
    inner = model.sense[rng.choice(model.sense.size, size=n_codons - 2, p=model.probs(beta))]
    stop = _STOPS[rng.choice(3, p=model.stop_p)]
    return _CODON_CODES[np.concatenate([[_ATG], inner, [stop]])].ravel()


def _background_p(gc: float) -> np.ndarray:
    return np.array([(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2])


# ------------------------------------------------------------------------------------------------ IS model


@dataclass(frozen=True)
class _ISCopy:
    family: ISFamily
    copy: int
    codes: np.ndarray  # on the transposase strand
    substitutions: int
    strand: str

    def footprint(self, pad: int) -> int:
        return 2 * pad + 2 * self.family.tsd_length + self.codes.size


def _is_families(cfg: DemoConfig, model: _CodonModel, rng: np.random.Generator) -> list[ISFamily]:
    bg = _background_p(cfg.gc - 0.1)
    families = []
    for k in range(cfg.is_families):
        ir_len = int(rng.integers(15, 36))
        irl = rng.choice(4, size=ir_len, p=[0.27, 0.23, 0.23, 0.27]).astype(np.uint8)
        irr = _rc_codes(irl).copy()
        n_mm = int(rng.integers(1, 3))
        # the outermost bases stay paired: they are what transposases recognise first
        mm = rng.choice(np.arange(2, ir_len - 1), size=n_mm, replace=False)
        irr[mm] = (irr[mm] + rng.integers(1, 4, size=n_mm)) % 4
        left = rng.choice(4, size=int(rng.integers(20, 81)), p=bg).astype(np.uint8)
        right = rng.choice(4, size=int(rng.integers(10, 61)), p=bg).astype(np.uint8)
        beta = model.beta_for_gc(cfg.gc + rng.normal(0.0, 0.02))
        orf = _orf(rng, model, beta, int(rng.integers(300, 501)))  # 900-1500 bp transposase
        consensus = np.concatenate([irl, left, orf, right, irr])
        orf_start = ir_len + left.size
        families.append(
            ISFamily(
                name=f"ISdemo{k + 1}",
                consensus=_to_str(consensus),
                ir_left=_to_str(irl),
                ir_right=_to_str(irr),
                ir_mismatches=n_mm,
                orf_start=orf_start,
                orf_end=orf_start + orf.size,
                tsd_length=int(rng.integers(2, 10)),
            )
        )
    return families


def _is_copies(families: list[ISFamily], cfg: DemoConfig, rng: np.random.Generator) -> list[_ISCopy]:
    copies = []
    for fam in families:
        cons = np.frombuffer(fam.consensus.encode("ascii"), dtype=np.uint8)
        cons = np.searchsorted(_ASCII, cons).astype(np.uint8)
        for c in range(1, cfg.is_copies_per_family + 1):
            codes = cons.copy()
            n_sub = int(rng.binomial(codes.size, cfg.is_divergence))
            where = rng.choice(codes.size, size=n_sub, replace=False)
            codes[where] = (codes[where] + rng.integers(1, 4, size=n_sub)) % 4  # always a different base
            copies.append(_ISCopy(fam, c, codes, n_sub, "+" if rng.random() < 0.5 else "-"))
    return copies


# ------------------------------------------------------------------------------------------ contig assembly


def _contig_lengths(cfg: DemoConfig) -> dict[str, int]:
    n_plasmids = cfg.contigs - 1
    if n_plasmids == 0:
        return {"chrom": cfg.genome_length}
    each = int(cfg.genome_length * min(_PLASMID_SHARE * n_plasmids, 0.5) / n_plasmids)
    lengths = {"chrom": cfg.genome_length - each * n_plasmids}
    lengths.update({f"plasmid{i}": each for i in range(1, n_plasmids + 1)})
    return lengths


def _assign_copies(
    copies: list[_ISCopy], lengths: dict[str, int], pad: int, rng: np.random.Generator
) -> dict[str, list[_ISCopy]]:
    """Spread copies over contigs by length (plasmids are IS-rich, weight x3), at most 60% of a contig."""
    names = list(lengths)
    room = np.array([0.6 * lengths[n] - 2 * pad for n in names])
    weight = np.array([lengths[n] * (1.0 if n == "chrom" else 3.0) for n in names])
    out: dict[str, list[_ISCopy]] = {n: [] for n in names}
    for copy in [copies[i] for i in rng.permutation(len(copies))]:
        size = copy.footprint(pad)
        fits = room >= size
        if not fits.any():
            total = sum(c.footprint(pad) for c in copies)
            raise ConfigError(
                f"demo: genome_length {sum(lengths.values())} is too small for {len(copies)} IS copies "
                f"(~{total} bp); lower is_families/is_copies_per_family or raise genome_length"
            )
        p = np.where(fits, weight, 0.0)
        k = int(rng.choice(len(names), p=p / p.sum()))
        room[k] -= size
        out[names[k]].append(copy)
    return out


def _place(a: int, b: int, unit_start: int, unit_len: int, strand: str) -> tuple[int, int]:
    """Map [a, b) in a unit's own orientation to forward-strand contig coordinates."""
    if strand == "+":
        return unit_start + a, unit_start + b
    return unit_start + unit_len - b, unit_start + unit_len - a


class _ContigBuilder:
    """Appends gene blocks, filler and IS copies left to right, recording features as it goes."""

    def __init__(self, name: str, cfg: DemoConfig, model: _CodonModel, rng: np.random.Generator) -> None:
        self.name, self.cfg, self.model, self.rng = name, cfg, model, rng
        self.bg_p = _background_p(cfg.gc - 0.1)
        self.parts: list[np.ndarray] = []
        self.pos = 0
        self.features: list[Feature] = []
        self.counts = {"cds": 0, "prom": 0, "term": 0}

    def background(self, n: int) -> np.ndarray:
        return self.rng.choice(4, size=int(n), p=self.bg_p).astype(np.uint8)

    def emit(self, codes: np.ndarray) -> None:
        self.parts.append(codes)
        self.pos += codes.size

    def next_id(self, kind: str) -> str:
        self.counts[kind] += 1
        return f"{self.name}_{kind}{self.counts[kind]:04d}"

    # -- gene blocks -------------------------------------------------------------------------------------
    def promoter(self) -> tuple[np.ndarray, dict[str, Any]]:
        rng = self.rng
        box35, box10 = _sample_pwm(PWM_35, rng), _sample_pwm(PWM_10, rng)
        spacer = int(rng.choice(_SPACERS, p=_SPACER_P))
        disc = int(rng.choice(_DISCRIMINATORS, p=_DISCRIMINATOR_P))
        plus1 = np.array([rng.choice(4, p=_PLUS1_P)], dtype=np.uint8)
        codes = np.concatenate([box35, self.background(spacer), box10, self.background(disc), plus1])
        attrs = {"box35": _to_str(box35), "box10": _to_str(box10), "spacer": spacer, "discriminator": disc}
        return codes, attrs

    def upstream(self) -> tuple[np.ndarray, list[tuple[str, int, int, dict[str, Any]]]]:
        """Promoter(s) + 5'UTR in gene orientation, ending just before the ATG."""
        rng = self.rng
        extra = self.cfg.promoters_per_gene_extra
        n_prom = 1 + math.floor(extra) + int(rng.random() < extra - math.floor(extra))
        pieces = [self.background(rng.integers(0, 11))]
        feats = []
        cursor = pieces[0].size
        for rank in range(n_prom, 0, -1):  # distal first, proximal (rank 1) next to the gene
            codes, attrs = self.promoter()
            feats.append(("promoter", cursor, cursor + codes.size, {**attrs, "rank": rank}))
            pieces.append(codes)
            cursor += codes.size
            if rank > 1:
                pieces.append(self.background(rng.integers(20, 121)))
                cursor += pieces[-1].size
        utr = 16 + min(int(rng.gamma(2.0, 10.0)), 100)
        if rng.random() < 0.85:  # Shine-Dalgarno 5-10 bp before the start codon
            sd_gap = int(rng.integers(5, 11))
            pieces += [self.background(utr - 6 - sd_gap), _sample_pwm(_PWM_SD, rng), self.background(sd_gap)]
        else:
            pieces.append(self.background(utr))
        return np.concatenate(pieces), feats

    def downstream(self) -> tuple[np.ndarray, list[tuple[str, int, int, dict[str, Any]]]]:
        """Rho-independent terminator (GC-rich hairpin + U-tract) after most genes."""
        rng = self.rng
        if rng.random() >= 0.6:
            return self.background(rng.integers(0, 21)), []
        pre = self.background(rng.integers(5, 31))
        stem = rng.choice(4, size=int(rng.integers(6, 11)), p=[0.1, 0.4, 0.4, 0.1]).astype(np.uint8)
        loop = self.background(rng.integers(3, 6))
        tract = np.where(rng.random(8) < 0.8, 3, self.background(8)).astype(np.uint8)
        hairpin = np.concatenate([stem, loop, _rc_codes(stem), tract])
        post = self.background(rng.integers(0, 11))
        feat = ("terminator", pre.size, pre.size + hairpin.size, {"stem": stem.size})
        return np.concatenate([pre, hairpin, post]), [feat]

    def gene_block(self, strand: str, gc_target: float) -> tuple[np.ndarray, list]:
        rng = self.rng
        n_codons = int(np.clip(rng.lognormal(math.log(800 / 3), 0.45), 100, 1000))
        beta = self.model.beta_for_gc(gc_target)
        cds = _orf(rng, self.model, beta, n_codons)
        up, up_feats = self.upstream()
        down, down_feats = self.downstream()
        offset = up.size + cds.size
        feats = [
            *up_feats,
            ("CDS", up.size, offset, {}),
            *((k, a + offset, b + offset, attrs) for k, a, b, attrs in down_feats),
        ]
        unit = np.concatenate([up, cds, down])
        return (unit if strand == "+" else _rc_codes(unit)), feats

    def add_gene_block(self, unit: np.ndarray, feats: list, strand: str, island: bool) -> None:
        start, n = self.pos, unit.size
        self.emit(unit)
        cds_id = self.next_id("cds")
        for kind, a, b, attrs in feats:
            s, e = _place(a, b, start, n, strand)
            if kind == "CDS":
                fid, attrs = cds_id, ({"island": "true"} if island else {})
            elif kind == "promoter":
                fid = self.next_id("prom")
                tss = e - 1 if strand == "+" else s  # the +1 is the promoter's last base on its strand
                attrs = {"tss": tss, **attrs, "gene": cds_id}
            else:
                fid, attrs = self.next_id("term"), {**attrs, "gene": cds_id}
            self.features.append(Feature(self.name, s, e, strand, kind, fid, attrs))

    # -- IS copies ---------------------------------------------------------------------------------------
    def add_is(self, copy: _ISCopy, pad: int) -> None:
        fam = copy.family
        self.emit(self.background(pad))
        tsd = self.background(fam.tsd_length)
        left = self.pos
        self.emit(tsd)
        start = self.pos
        self.emit(copy.codes if copy.strand == "+" else _rc_codes(copy.codes))
        end = self.pos
        self.emit(tsd.copy())
        self.emit(self.background(pad))
        is_id, n = f"{fam.name}_{copy.copy}", end - start

        def add(s: int, e: int, kind: str, fid: str, attrs: dict[str, Any], parent: str | None) -> None:
            self.features.append(Feature(self.name, s, e, copy.strand, kind, fid, attrs, parent))

        attrs = {
            "family": fam.name,
            "copy": copy.copy,
            "tsd": _to_str(tsd),
            "substitutions": copy.substitutions,
        }
        add(start, end, "insertion_sequence", is_id, attrs, None)
        for side, (a, b) in (("left", (0, len(fam.ir_left))), ("right", (n - len(fam.ir_right), n))):
            s, e = _place(a, b, start, n, copy.strand)
            add(s, e, "inverted_repeat", f"{is_id}_IR{side[0].upper()}", {"side": side}, is_id)
        for tag, s in (("L", left), ("R", end)):
            add(s, s + fam.tsd_length, "target_site_duplication", f"{is_id}_TSD{tag}", {}, is_id)

    def sequence(self) -> str:
        return _to_str(np.concatenate(self.parts)) if self.parts else ""


def _build_contig(
    name: str,
    length: int,
    copies: list[_ISCopy],
    cfg: DemoConfig,
    model: _CodonModel,
    rng: np.random.Generator,
) -> tuple[str, list[Feature]]:
    # `pad` keeps every promoter window inside the contig and free of IS sequence
    pad = max(cfg.promoter_window) + 5
    b = _ContigBuilder(name, cfg, model, rng)
    remaining = list(copies)

    def tail_need(rest: list[_ISCopy]) -> int:
        return sum(c.footprint(pad) for c in rest) + pad

    if pad + tail_need(remaining) > length:
        raise ConfigError(f"demo: contig {name} ({length} bp) is too small for its {len(copies)} IS copies")
    # coding GC averages to cfg.gc once AT-rich islands are accounted for
    island_share = _ISLAND_RATE * np.mean(_ISLAND_GENES)
    base_gc = cfg.gc + _ISLAND_DROP * island_share / (1 + island_share)
    b.emit(b.background(pad))
    strand = "+" if rng.random() < 0.5 else "-"
    island_left = 0
    while True:
        if rng.random() >= _SAME_STRAND:
            strand = "-" if strand == "+" else "+"
        if island_left == 0 and rng.random() < _ISLAND_RATE:
            island_left = int(rng.integers(*_ISLAND_GENES))
        island = island_left > 0
        island_left = max(island_left - 1, 0)
        gc_target = base_gc + rng.normal(0.0, _GENE_GC_SD) - (_ISLAND_DROP if island else 0.0)
        unit, feats = b.gene_block(strand, gc_target)
        filler = int(rng.integers(0, 61))
        hosted: list[_ISCopy] = []
        if remaining:
            gaps_left = max((length - b.pos - tail_need(remaining)) / _MEAN_BLOCK, 1.0)
            if rng.random() < len(remaining) / gaps_left:
                hosted = remaining[:1]
        rest = remaining[len(hosted) :]
        used = filler + sum(c.footprint(pad) for c in hosted) + unit.size
        if b.pos + used + tail_need(rest) > length:
            break
        b.emit(b.background(filler))
        for c in hosted:
            b.add_is(c, pad)
        remaining = rest
        b.add_gene_block(unit, feats, strand, island)
    for c in remaining:
        b.add_is(c, pad)
    b.emit(b.background(length - b.pos))
    return b.sequence(), b.features


def generate_genome(cfg: DemoConfig) -> DemoGenome:
    """The demo genome: contigs (chrom, plasmid1, ...) and exact truth features. Deterministic in `cfg`."""
    model = _codon_model(np.random.default_rng([cfg.seed, _STREAM_CODONS]))
    rng_is = np.random.default_rng([cfg.seed, _STREAM_IS])
    families = _is_families(cfg, model, rng_is)
    copies = _is_copies(families, cfg, rng_is)
    lengths = _contig_lengths(cfg)
    per_contig = _assign_copies(copies, lengths, max(cfg.promoter_window) + 5, rng_is)
    contigs: dict[str, str] = {}
    features: list[Feature] = []
    for k, (name, length) in enumerate(lengths.items()):
        rng = np.random.default_rng([cfg.seed, _STREAM_LAYOUT, k])
        seq, feats = _build_contig(name, length, per_contig[name], cfg, model, rng)
        contigs[name] = seq
        features.extend(feats)
    order = {name: i for i, name in enumerate(contigs)}
    features.sort(key=lambda f: (order[f.contig], f.start, -f.end, f.id))
    counts = pd.Series([f.type for f in features]).value_counts().to_dict()
    log.info(
        "demo genome seed=%d: %s bp in %d contigs, features %s",
        cfg.seed,
        cfg.genome_length,
        len(contigs),
        counts,
    )
    return DemoGenome(contigs, features, {f.name: f for f in families}, cfg)


# ------------------------------------------------------------------------------------------------------ GFF3

_GFF_RESERVED = set(";=&,%\t\n\r")


def _gff_escape(text: str) -> str:
    return "".join(f"%{ord(ch):02X}" if ch in _GFF_RESERVED or ord(ch) < 32 else ch for ch in text)


def _gff_text(genome: DemoGenome, path: str | Path) -> str:
    lines = ["##gff-version 3"]
    lines += [f"##sequence-region {_gff_escape(n)} 1 {len(s)}" for n, s in genome.contigs.items()]
    order = {name: i for i, name in enumerate(genome.contigs)}
    for f in sorted(genome.features, key=lambda f: (order.get(f.contig, -1), f.start, -f.end, f.id)):
        if f.contig not in genome.contigs:
            raise InputFormatError(f"{path}: feature {f.id} is on unknown contig {f.contig!r}")
        if not 0 <= f.start < f.end <= len(genome.contigs[f.contig]) or f.strand not in ("+", "-", "."):
            raise InputFormatError(
                f"{path}: feature {f.id} has invalid coordinates {f.contig}:{f.start}-{f.end}({f.strand})"
            )
        attrs = [("ID", f.id)] + ([("Parent", f.parent)] if f.parent else []) + list(f.attrs.items())
        col9 = ";".join(f"{_gff_escape(str(k))}={_gff_escape(str(v))}" for k, v in attrs)
        phase = "0" if f.type == "CDS" else "."
        cols = [
            _gff_escape(f.contig),
            GFF_SOURCE,
            f.type,
            str(f.start + 1),
            str(f.end),
            ".",
            f.strand,
            phase,
            col9,
        ]
        lines.append("\t".join(cols))
    return "\n".join(lines) + "\n"


def write_gff3(genome: DemoGenome, path: str | Path) -> None:
    """Truth as GFF3 (1-based closed coordinates, ID/Parent, escaped attributes), written atomically."""
    _atomic_write(Path(path), _gff_text(genome, path))


# ----------------------------------------------------------------------------------------------------- tasks


def _allocate(n: int, fractions: tuple[float, float, float]) -> list[int]:
    """Largest-remainder counts; every split with a non-zero share gets one item when there are enough."""
    raw = [n * f for f in fractions]
    counts = [math.floor(r) for r in raw]
    for i in sorted(range(3), key=lambda i: (counts[i] - raw[i], i))[: n - sum(counts)]:
        counts[i] += 1
    for i in range(3):
        if fractions[i] > 0 and counts[i] == 0 and n >= sum(f > 0 for f in fractions):
            counts[i] += 1
            counts[int(np.argmax(counts))] -= 1
    return counts


def _block_size(cfg: DemoConfig) -> int:
    longest = max(sum(cfg.promoter_window) + 1, cfg.is_window)
    return max(4 * longest, min(_SPLIT_BLOCK, cfg.genome_length // 25))


def _block_splits(genome: DemoGenome, cfg: DemoConfig) -> dict[str, np.ndarray]:
    """Split index (0 train, 1 valid, 2 test) of every fixed-size genomic block, shared by both tasks."""
    size = _block_size(cfg)
    n_blocks = {name: -(-len(seq) // size) for name, seq in genome.contigs.items()}
    total = sum(n_blocks.values())
    assigned = np.empty(total, dtype=np.int64)
    order = np.random.default_rng([cfg.seed, _STREAM_SPLIT, 0]).permutation(total)
    bounds = np.cumsum([0, *_allocate(total, cfg.split_fractions)])
    for k in range(3):
        assigned[order[bounds[k] : bounds[k + 1]]] = k
    out, i = {}, 0
    for name, n in n_blocks.items():
        out[name] = assigned[i : i + n]
        i += n
    return out


def _promoter_positives(
    genome: DemoGenome, cfg: DemoConfig, blocks: dict[str, np.ndarray]
) -> tuple[list[tuple], dict[str, list[tuple[int, int]]]]:
    up, down = cfg.promoter_window
    size = _block_size(cfg)
    forbidden: dict[str, list[tuple[int, int]]] = {n: [] for n in genome.contigs}
    windows: dict[str, list[tuple[int, int, str, str]]] = {n: [] for n in genome.contigs}
    skipped = 0
    for f in genome.features:
        if f.type != "promoter":
            continue
        n = len(genome.contigs[f.contig])
        tss = int(f.attrs["tss"])
        s, e = (tss - up, tss + down + 1) if f.strand == "+" else (tss - down, tss + up + 1)
        forbidden[f.contig] += [(max(s, 0), min(e, n)), (f.start, f.end)]
        if s < 0 or e > n:
            skipped += 1
            continue
        windows[f.contig].append((s, e, f.strand, f.id))
    if skipped:
        log.warning("promoter task: %d promoters too close to a contig end for a full window", skipped)
    rows = []
    for contig, wins in windows.items():
        wins.sort()
        cluster_end, split = -1, 0
        for s, e, strand, fid in wins:
            if s >= cluster_end:  # overlapping windows form one cluster, which never straddles splits
                split = int(blocks[contig][s // size])
            cluster_end = max(cluster_end, e)
            rows.append((fid, 1, SPLITS[split], contig, s, e, strand))
    return rows, forbidden


def _is_positives(
    genome: DemoGenome, cfg: DemoConfig, rng: np.random.Generator
) -> tuple[list[tuple], dict[str, list[tuple[int, int]]]]:
    """About one window per `is_window_step` bp inside each copy, at random offsets; one split per copy."""
    copies = [f for f in genome.features if f.type == "insertion_sequence"]
    if not copies:
        raise ConfigError("demo: the IS task needs IS copies, but is_families * is_copies_per_family is 0")
    split_rng = np.random.default_rng([cfg.seed, _STREAM_SPLIT, 1])
    by_family: dict[str, list[Feature]] = {}
    for f in copies:
        by_family.setdefault(str(f.attrs["family"]), []).append(f)
    split_of: dict[str, int] = {}
    for fam in sorted(by_family):  # per family, so every split sees every family
        members = sorted(by_family[fam], key=lambda f: int(f.attrs["copy"]))
        order = split_rng.permutation(len(members))
        bounds = np.cumsum([0, *_allocate(len(members), cfg.split_fractions)])
        for k in range(3):
            for i in order[bounds[k] : bounds[k + 1]]:
                split_of[members[i].id] = k
    forbidden: dict[str, list[tuple[int, int]]] = {n: [] for n in genome.contigs}
    rows = []
    w = cfg.is_window
    for f in copies:
        tsd = len(str(f.attrs["tsd"]))
        forbidden[f.contig].append((f.start - tsd, f.end + tsd))
        # About one window per `is_window_step` bases, each at a random offset: windows on a fixed grid from the
        # element start teach a position-aware model that phase, and a genome scan then misses shifted windows.
        span = f.end - f.start - w
        n_windows = span // cfg.is_window_step + 1 if span >= 0 else 0
        starts = sorted(int(x) for x in f.start + rng.integers(0, span + 1, size=n_windows)) if n_windows else []
        if not starts:
            log.warning("IS task: copy %s (%d bp) is shorter than is_window %d", f.id, f.end - f.start, w)
        strands = np.where(rng.random(len(starts)) < 0.5, "+", "-")
        for k, (s, strand) in enumerate(zip(starts, strands, strict=True)):
            rows.append((f"{f.id}_w{k:02d}", 1, SPLITS[split_of[f.id]], f.contig, s, s + w, str(strand)))
    return rows, forbidden


def _gc_prefix(seq: str) -> np.ndarray:
    arr = np.frombuffer(seq.encode("ascii"), dtype=np.uint8)
    return np.concatenate([[0], np.cumsum((arr == ord("G")) | (arr == ord("C")))])


def _gc_matched(pos_gc: np.ndarray, cand_gc: np.ndarray, ratio: int, rng: np.random.Generator) -> np.ndarray:
    """Pick `ratio` candidates per positive from its GC bin, borrowing from the nearest bins when short."""
    pb = np.minimum((pos_gc * _GC_BINS).astype(np.int64), _GC_BINS - 1)
    cb = np.minimum((cand_gc * _GC_BINS).astype(np.int64), _GC_BINS - 1)
    need = np.bincount(pb, minlength=_GC_BINS) * ratio
    pools = [rng.permutation(np.flatnonzero(cb == b)) for b in range(_GC_BINS)]
    used = np.zeros(_GC_BINS, dtype=np.int64)
    avail = np.array([p.size for p in pools])
    chosen: list[np.ndarray] = []
    short = 0
    # scarcest bins first, so that they are not starved by neighbours that had plenty of their own
    for b in sorted(np.flatnonzero(need), key=lambda b: (avail[b] / need[b], b)):
        k = int(need[b])
        for d in range(_GC_BINS):
            for bb in (b - d, b + d) if d else (b,):
                if k and 0 <= bb < _GC_BINS:
                    take = min(k, int(avail[bb] - used[bb]))
                    chosen.append(pools[bb][used[bb] : used[bb] + take])
                    used[bb] += take
                    k -= take
            if not k:
                break
        short += k
    if short:
        log.warning("GC-matched negatives: %d fewer than requested (candidate pool exhausted)", short)
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def _negatives(
    genome: DemoGenome,
    cfg: DemoConfig,
    positives: list[tuple],
    forbidden: dict[str, list[tuple[int, int]]],
    blocks: dict[str, np.ndarray],
    length: int,
    rng: np.random.Generator,
) -> list[tuple]:
    """GC-matched windows lying inside one block of the same split and touching no positive element."""
    size = _block_size(cfg)
    stride = max(1, length // 4)
    gc_prefix = {n: _gc_prefix(s) for n, s in genome.contigs.items()}
    cands: list[list[tuple[str, np.ndarray, np.ndarray]]] = [[], [], []]
    for contig, seq in genome.contigs.items():
        mask = np.zeros(len(seq) + 1, dtype=np.int64)
        for s, e in forbidden[contig]:
            mask[max(s, 0)] += 1
            mask[min(e, len(seq))] -= 1
        blocked = np.concatenate([[0], np.cumsum(np.cumsum(mask)[:-1] > 0)])
        gcp = gc_prefix[contig]
        for k, split in enumerate(blocks[contig]):
            lo, hi = k * size, min((k + 1) * size, len(seq))
            starts = np.arange(lo + int(rng.integers(stride)), hi - length + 1, stride)
            starts = starts[blocked[starts + length] == blocked[starts]]
            cands[int(split)].append((contig, starts, (gcp[starts + length] - gcp[starts]) / length))
    rows = []
    for k, split in enumerate(SPLITS):
        pos = [r for r in positives if r[2] == split]
        if not pos or not cands[k]:
            continue
        pos_gc = np.array([(gc_prefix[r[3]][r[5]] - gc_prefix[r[3]][r[4]]) / length for r in pos])
        contigs = np.concatenate([np.full(s.size, c, dtype=object) for c, s, _ in cands[k]])
        starts = np.concatenate([s for _, s, _ in cands[k]])
        cand_gc = np.concatenate([g for _, _, g in cands[k]])
        pick = _gc_matched(pos_gc, cand_gc, cfg.negatives_per_positive, rng)
        strands = np.where(rng.random(pick.size) < 0.5, "+", "-")
        for i, strand in zip(pick, strands, strict=True):
            rows.append(("", 0, split, str(contigs[i]), int(starts[i]), int(starts[i]) + length, str(strand)))
    return rows


def build_task(genome: DemoGenome, task: Literal["promoter", "is"], cfg: DemoConfig) -> pd.DataFrame:
    """Labelled windows for one task, with columns TASK_COLUMNS; coordinates are 0-based half-open.

    Positives are oriented on the element's strand (promoter) or a random strand (IS); negatives are
    GC-matched to the positives of their split, never overlap a positive element, and lie inside a single
    genomic block of their split, so no window of one split overlaps a window of another.
    """
    if task not in TASKS:
        raise ConfigError(f"demo: unknown task {task!r} (expected one of {', '.join(TASKS)})")
    blocks = _block_splits(genome, cfg)
    rng = np.random.default_rng([cfg.seed, _STREAM_TASK, TASKS.index(task)])
    if task == "promoter":
        positives, forbidden = _promoter_positives(genome, cfg, blocks)
        length = sum(cfg.promoter_window) + 1
    else:
        positives, forbidden = _is_positives(genome, cfg, rng)
        length = cfg.is_window
    if not positives:
        raise ConfigError(f"demo: the {task} task has no positive windows; raise genome_length")
    negatives = _negatives(genome, cfg, positives, forbidden, blocks, length, rng)
    df = pd.DataFrame(positives + negatives, columns=list(TASK_COLUMNS[:-1]))
    order = {name: i for i, name in enumerate(genome.contigs)}
    df["_contig"] = df["contig"].map(order)
    df = df.sort_values(["_contig", "start", "strand", "label", "id"], kind="mergesort").reset_index(drop=True)
    neg = df["label"] == 0
    df.loc[neg, "id"] = [f"{task}_neg{i:06d}" for i in range(1, int(neg.sum()) + 1)]
    df["sequence"] = [
        genome.contigs[c][s:e] if strand == "+" else _reverse_complement(genome.contigs[c][s:e])
        for c, s, e, strand in zip(df["contig"], df["start"], df["end"], df["strand"], strict=True)
    ]
    df = df[list(TASK_COLUMNS)].astype({"label": "int64", "start": "int64", "end": "int64"})
    for split in SPLITS:
        sub = df[df["split"] == split]
        log.info(
            "%s task %s: %d positives, %d negatives",
            task,
            split,
            int(sub["label"].sum()),
            int((sub["label"] == 0).sum()),
        )
    return df


# ---------------------------------------------------------------------------------------------------- output


def _atomic_write(path: Path, text: str) -> None:
    """Write all or nothing; `.gz` paths are gzip-compressed with a zero timestamp, so reruns are byte-identical."""
    data = text.encode("ascii")
    with atomic_writer(path) as handle:
        if path.suffix == ".gz":
            with gzip.GzipFile(filename="", mode="wb", fileobj=handle, mtime=0) as gz:
                gz.write(data)
        else:
            handle.write(data)


def _fasta_text(contigs: Mapping[str, str], width: int = 80) -> str:
    out = io.StringIO()
    for name, seq in contigs.items():
        out.write(f">{name}\n")
        for i in range(0, len(seq), width):
            out.write(seq[i : i + width] + "\n")
    return out.getvalue()


def write_demo(
    cfg: DemoConfig,
    out_genome_fasta: str | Path,
    out_truth_gff3: str | Path,
    out_tasks: Mapping[str, Mapping[str, str | Path]],
) -> DemoGenome:
    """Generate the genome and write FASTA, GFF3 truth and task tables, each atomically.

    `out_tasks` maps task ("promoter", "is") to {split: path}, split one of train/valid/test or "all" (every
    row). Tables are TSV with a header row (`.gz` paths are gzip-compressed).
    """
    for task, paths in out_tasks.items():
        if task not in TASKS:
            raise ConfigError(f"demo: unknown task {task!r} in outputs (expected one of {', '.join(TASKS)})")
        for split in paths:
            if split not in (*SPLITS, "all"):
                raise ConfigError(f"demo: unknown split {split!r} for task {task} (expected train/valid/test/all)")
    genome = generate_genome(cfg)
    _atomic_write(Path(out_genome_fasta), _fasta_text(genome.contigs))
    write_gff3(genome, out_truth_gff3)
    for task, paths in out_tasks.items():
        table = build_task(genome, task, cfg)
        for split, path in paths.items():
            sub = table if split == "all" else table[table["split"] == split]
            _atomic_write(Path(path), sub.to_csv(sep="\t", index=False, lineterminator="\n"))
    return genome
