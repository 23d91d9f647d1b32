"""Zero-shot variant effect scores from a language model, and the demo's labelled variant set.

Each ALT allele of a VCF record (SNVs, MNVs and short indels; one score per ALT of a multi-allelic record) is
scored on a REF window (the REF allele with `flank` bp of reference on each side) and an ALT window (the same
flanks around the ALT allele):

- `llr`: log P(ALT window) - log P(REF window) under a next-token LM (genolm.lm_scoring: mean over the stride
  phases); for a masked LM, the masked marginal of substitutions (NaN for indels);
- `l1`, `cosine`, `dot`: L1 distance, cosine distance (1 - cosine similarity) and dot product between the two
  windows' mean-pooled LM embeddings;
- `delta_prob` (with a classifier): the change of the classifier's best probability over every window that
  contains the variant, on either strand (ALT minus REF).

Windows stop at contig ends (contigs are not treated as circular), so a variant near an end has a shorter
flank on that side; `flank_left`/`flank_right` report what was used. Symbolic (`<DEL>`), breakend, `*`,
missing and non-ACGTN alleles are not scored: their row says why in `status`, their scores are NaN (`.` in
the VCF). A REF allele that differs from the reference, or an unknown contig, is an InputFormatError naming
the VCF record.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from genolm.atomic import atomic_path
from genolm.errors import ConfigError, InputFormatError

log = logging.getLogger(__name__)

SCORE_COLUMNS = ("llr", "l1", "cosine", "dot", "delta_prob")
TSV_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "kind", "status", "class", "flank_left", "flank_right",
               *SCORE_COLUMNS)  # fmt: skip
# INFO fields added to the annotated VCF (one value per ALT allele).
INFO_FIELDS = {
    "llr": ("LM_LLR", "Language-model log-likelihood ratio log P(ALT window) - log P(REF window)"),
    "l1": ("LM_L1", "L1 distance between REF and ALT window embeddings"),
    "cosine": ("LM_COS", "Cosine distance (1 - cosine similarity) between REF and ALT window embeddings"),
    "dot": ("LM_DOT", "Dot product of REF and ALT window embeddings"),
    "delta_prob": ("LM_DPROB", "Change of the classifier's best window probability (ALT - REF)"),
}
_ALLELE = re.compile(r"^[ACGTN]+$")


@dataclass(frozen=True)
class Allele:
    """One ALT allele of a VCF record with its windows (empty when not scored)."""

    chrom: str
    pos: int  # 1-based, as in the VCF
    id: str
    ref: str
    alt: str
    kind: str  # snv, mnv, insertion, deletion, complex, symbolic, other
    status: str  # "scored" or why not
    label: str  # the record's INFO/CLASS when present
    ref_window: str = ""
    alt_window: str = ""
    flank_left: int = 0
    flank_right: int = 0


def allele_kind(ref: str, alt: str) -> str:
    if alt.startswith("<") or "[" in alt or "]" in alt:
        return "symbolic"
    if alt in ("*", ".") or not _ALLELE.match(alt) or not _ALLELE.match(ref):
        return "other"
    if len(ref) == len(alt):
        return "snv" if len(ref) == 1 else "mnv"
    if ref[0] == alt[0] and (len(ref) == 1 or len(alt) == 1):
        return "insertion" if len(alt) > len(ref) else "deletion"
    return "complex"


def read_reference(fasta: str | Path) -> dict[str, str]:
    """Contig name -> upper-case sequence."""
    from genolm.seqio import read_fasta

    return {record.name: record.sequence for record in read_fasta(fasta)}


def _record_name(vcf: str | Path, record: Any) -> str:
    alts = ",".join(record.alts or ())
    rid = f" {record.id}" if record.id else ""
    return f"{vcf}: record {record.chrom}:{record.pos}{rid} {record.ref}>{alts}"


def read_alleles(vcf: str | Path, reference: Mapping[str, str], flank: int, max_allele: int = 50) -> list[Allele]:
    """Every ALT allele of the VCF with its REF/ALT windows; REF checked against the reference."""
    import pysam

    if flank < 0:
        raise ConfigError(f"variant scoring: flank must be >= 0, got {flank}")
    alleles: list[Allele] = []
    try:
        handle = pysam.VariantFile(str(vcf))
    except (OSError, ValueError) as err:
        raise InputFormatError(f"{vcf}: cannot read as VCF: {err}") from err
    with handle:
        has_class = "CLASS" in handle.header.info
        for record in handle:
            where = _record_name(vcf, record)
            if record.chrom not in reference:
                raise InputFormatError(f"{where}: contig '{record.chrom}' is not in the reference FASTA")
            seq = reference[record.chrom]
            ref = record.ref.upper()
            start, end = record.pos - 1, record.pos - 1 + len(ref)
            if end > len(seq):
                raise InputFormatError(
                    f"{where}: REF ends at {end}, past the end of contig {record.chrom} ({len(seq)} bp)"
                )
            if _ALLELE.match(ref) and seq[start:end] != ref:
                raise InputFormatError(f"{where}: REF '{ref}' does not match the reference '{seq[start:end]}'")
            label = ""
            if has_class and record.info.get("CLASS") is not None:
                value = record.info["CLASS"]
                label = str(value[0] if isinstance(value, tuple) else value)
            left = max(0, start - flank)
            right = min(len(seq), end + flank)
            for alt in record.alts or (".",):
                alt_upper = alt.upper()
                kind = allele_kind(ref, alt_upper)
                base = dict(chrom=record.chrom, pos=record.pos, id=record.id or ".", ref=record.ref, alt=alt,
                            kind=kind, label=label)  # fmt: skip
                if kind in ("symbolic", "other"):
                    alleles.append(Allele(**base, status=f"skipped: {kind} allele"))
                elif max(len(ref), len(alt_upper)) > max_allele:
                    alleles.append(Allele(**base, status=f"skipped: allele longer than {max_allele} bp"))
                else:
                    alleles.append(
                        Allele(
                            **base,
                            status="scored",
                            ref_window=seq[left:right],
                            alt_window=seq[left:start] + alt_upper + seq[end:right],
                            flank_left=start - left,
                            flank_right=right - end,
                        )
                    )
    return alleles


def _classifier_delta(alleles: Sequence[Allele], classifier: str | Path, device: str, batch_size: int) -> np.ndarray:
    """ALT minus REF of the best classifier probability over all windows containing the changed bases, both strands."""
    from genolm.genome_scan import load_scan_model
    from genolm.scan import model_scorer
    from genolm.seqio import reverse_complement

    model, tokenizer, window, torch_device = load_scan_model(classifier, device)
    scorer = model_scorer(model, tokenizer, torch_device, batch_size=batch_size)
    out = np.full(len(alleles), np.nan)
    for index, allele in enumerate(alleles):
        best = []
        for seq, changed in ((allele.ref_window, len(allele.ref)), (allele.alt_window, len(allele.alt))):
            lo, hi = allele.flank_left, allele.flank_left + changed
            first = max(0, hi - window)
            last = min(lo, len(seq) - window)
            if last < first:
                break
            windows = [seq[s : s + window] for s in range(first, last + 1)]
            probs = scorer(windows + [reverse_complement(w) for w in windows])
            best.append(float(np.max(probs)))
        if len(best) == 2:
            out[index] = best[1] - best[0]
    if len(alleles) and np.isnan(out).all():
        log.warning(
            "%s: no %d bp classifier window fits the variant windows; delta_prob is empty (raise the flank to at "
            "least %d bp)",
            classifier,
            window,
            window // 2,
        )
    return out


def score_alleles(
    alleles: Sequence[Allele],
    lm: Any,
    batch_size: int = 64,
    classifier: str | Path | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """The TSV table (TSV_COLUMNS) of scores for `alleles` under a loaded LM (genolm.lm_scoring.LanguageModel)."""
    from genolm.lm_scoring import NEXT, embed_windows, masked_marginal, sequence_log_likelihood

    rows = pd.DataFrame(
        {
            "chrom": [a.chrom for a in alleles],
            "pos": [a.pos for a in alleles],
            "id": [a.id for a in alleles],
            "ref": [a.ref for a in alleles],
            "alt": [a.alt for a in alleles],
            "kind": [a.kind for a in alleles],
            "status": [a.status for a in alleles],
            "class": [a.label for a in alleles],
            "flank_left": [a.flank_left for a in alleles],
            "flank_right": [a.flank_right for a in alleles],
        }
    )
    for column in SCORE_COLUMNS:
        rows[column] = np.nan
    scored = [i for i, a in enumerate(alleles) if a.status == "scored"]
    if not scored:
        return rows
    refs = [alleles[i].ref_window for i in scored]
    alts = [alleles[i].alt_window for i in scored]
    if lm.objective == NEXT:
        llr = sequence_log_likelihood(lm, alts, batch_size) - sequence_log_likelihood(lm, refs, batch_size)
    else:
        same = [i for i, j in enumerate(scored) if alleles[j].kind in ("snv", "mnv")]
        llr = np.full(len(scored), np.nan)
        if same:
            llr[same] = masked_marginal(lm, [refs[i] for i in same], [alts[i] for i in same], batch_size)
    ref_emb, alt_emb = embed_windows(lm, refs, batch_size), embed_windows(lm, alts, batch_size)
    norms = np.linalg.norm(ref_emb, axis=1) * np.linalg.norm(alt_emb, axis=1)
    dot = np.einsum("ij,ij->i", ref_emb, alt_emb)
    rows.loc[scored, "llr"] = llr
    rows.loc[scored, "l1"] = np.abs(ref_emb - alt_emb).sum(axis=1)
    rows.loc[scored, "cosine"] = 1.0 - np.divide(dot, norms, out=np.ones_like(dot), where=norms > 0)
    rows.loc[scored, "dot"] = dot
    if classifier is not None:
        rows.loc[scored, "delta_prob"] = _classifier_delta([alleles[i] for i in scored], classifier, device, 512)
    return rows


def write_scores_tsv(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="NA")


def read_scores_tsv(path: str | Path) -> pd.DataFrame:
    table = pd.read_csv(path, sep="\t", dtype={"chrom": str, "id": str, "ref": str, "alt": str, "class": str},
                        keep_default_na=False, na_values={c: ["NA"] for c in SCORE_COLUMNS})  # fmt: skip
    missing = [c for c in TSV_COLUMNS if c not in table.columns]
    if missing:
        raise InputFormatError(f"{path}: not a variant score table (missing columns {', '.join(missing)})")
    return table


def write_annotated_vcf(vcf_in: str | Path, table: pd.DataFrame, vcf_out: str | Path) -> None:
    """Copy of `vcf_in` with the score columns as Number=A INFO fields; bgzipped and tabix-indexed when
    `vcf_out` ends in .gz. Both files appear together or not at all."""
    import pysam

    values: dict[tuple[str, int, str, str], dict[str, float]] = {}
    for row in table.itertuples(index=False):
        values[(row.chrom, int(row.pos), row.ref, row.alt)] = {c: getattr(row, c) for c in SCORE_COLUMNS}
    out = Path(vcf_out)
    compressed = out.suffix == ".gz"
    with pysam.VariantFile(str(vcf_in)) as source:
        header = source.header.copy()
        for column, (key, text) in INFO_FIELDS.items():
            if column == "delta_prob" and table[column].isna().all():
                continue
            header.add_meta("INFO", items=[("ID", key), ("Number", "A"), ("Type", "Float"), ("Description", text)])
        with atomic_path(out) as tmp:
            plain = tmp.with_name(tmp.name + ".vcf")
            try:
                with pysam.VariantFile(str(plain), "w", header=header) as sink:
                    for record in source:
                        record.translate(header)
                        alts = record.alts or ()
                        for column, (key, _) in INFO_FIELDS.items():
                            if key not in header.info:
                                continue
                            scores = [
                                values.get((record.chrom, record.pos, record.ref, alt), {}).get(column) for alt in alts
                            ]
                            scores = [None if s is None or np.isnan(s) else float(s) for s in scores]
                            if alts and any(s is not None for s in scores):
                                record.info[key] = tuple(scores)
                        sink.write(record)
                if compressed:
                    pysam.tabix_compress(str(plain), str(tmp), force=True)
                    pysam.tabix_index(str(tmp), preset="vcf", force=True)
                else:
                    plain.replace(tmp)
            finally:
                plain.unlink(missing_ok=True)
            if compressed:
                index = Path(str(tmp) + ".tbi")
                index.replace(str(out) + ".tbi")


def score_vcf(
    checkpoint: str | Path,
    fasta: str | Path,
    vcf: str | Path,
    tsv: str | Path,
    vcf_out: str | Path | None = None,
    flank: int = 50,
    batch_size: int = 64,
    classifier: str | Path | None = None,
    device: str = "auto",
) -> pd.DataFrame:
    """Score every ALT allele of `vcf` against `fasta` with the LM at `checkpoint`; write the TSV (and the
    annotated VCF)."""
    from genolm.lm_scoring import load_language_model

    lm = load_language_model(checkpoint, device)
    alleles = read_alleles(vcf, read_reference(fasta), flank)
    table = score_alleles(alleles, lm, batch_size, classifier, device)
    n_scored = int((table["status"] == "scored").sum())
    log.info("%s: %d ALT alleles, %d scored with %s", vcf, len(table), n_scored, checkpoint)
    write_scores_tsv(table, tsv)
    if vcf_out:
        write_annotated_vcf(vcf, table, vcf_out)
    return table


# ------------------------------------------------------------------------------------------- demo variant set


def promoter_box_positions(truth_gff3: str | Path, reference: Mapping[str, str]) -> pd.DataFrame:
    """0-based forward-strand positions of every base of the -35 and -10 boxes of the demo's promoters (columns
    contig, pos, box, promoter), checked against the box sequences recorded in the GFF3."""
    from genolm.annotations import read_gff3
    from genolm.seqio import reverse_complement

    promoters = read_gff3(truth_gff3, {"promoter"})
    rows = []
    for p in promoters.itertuples(index=False):
        attrs = p.attributes
        if "box35" not in attrs or "box10" not in attrs or "spacer" not in attrs:
            continue
        spacer, n35, n10 = int(attrs["spacer"]), len(attrs["box35"]), len(attrs["box10"])
        if p.strand == "+":
            boxes = {"-35": (p.start, p.start + n35), "-10": (p.start + n35 + spacer, p.start + n35 + spacer + n10)}
        else:
            boxes = {"-35": (p.end - n35, p.end), "-10": (p.end - n35 - spacer - n10, p.end - n35 - spacer)}
        for box, (lo, hi) in boxes.items():
            site = reference[p.contig][lo:hi]
            expected = attrs["box35" if box == "-35" else "box10"]
            if (site if p.strand == "+" else reverse_complement(site)) != expected:
                raise InputFormatError(
                    f"{truth_gff3}: promoter {p.id} {box} box {expected} is not at {p.contig}:{lo}-{hi}"
                )
            rows += [(p.contig, pos, box, p.id) for pos in range(lo, hi)]
    return pd.DataFrame(rows, columns=["contig", "pos", "box", "promoter"])


def write_demo_variants(
    fasta: str | Path, truth_gff3: str | Path, vcf_out: str | Path, n_box: int, n_background: int, seed: int
) -> pd.DataFrame:
    """A seeded VCF of SNVs: `n_box` inside planted -10/-35 boxes (INFO CLASS=box, BOX, PROMOTER) and
    `n_background` at random positions outside every promoter (CLASS=background); bgzipped + tabix-indexed."""
    import pysam

    reference = read_reference(fasta)
    boxes = promoter_box_positions(truth_gff3, reference)
    if n_box > len(boxes):
        raise ConfigError(f"demo variants: {n_box} box variants asked for, {len(boxes)} box bases in {truth_gff3}")
    rng = np.random.default_rng([seed, 9])
    chosen = boxes.iloc[np.sort(rng.choice(len(boxes), size=n_box, replace=False))]
    rows = [(r.contig, r.pos, "box", r.box, r.promoter) for r in chosen.itertuples(index=False)]
    from genolm.annotations import read_gff3

    promoters = read_gff3(truth_gff3, {"promoter"})
    inside = {name: np.zeros(len(seq), bool) for name, seq in reference.items()}
    for p in promoters.itertuples(index=False):
        inside[p.contig][p.start : p.end] = True
    names = list(reference)
    lengths = np.array([len(reference[n]) for n in names])
    taken = {(c, p) for c, p, *_ in rows}
    while sum(r[2] == "background" for r in rows) < n_background:
        contig = names[int(rng.choice(len(names), p=lengths / lengths.sum()))]
        pos = int(rng.integers(0, len(reference[contig])))
        if inside[contig][pos] or reference[contig][pos] not in "ACGT" or (contig, pos) in taken:
            continue
        taken.add((contig, pos))
        rows.append((contig, pos, "background", ".", "."))
    order = {n: i for i, n in enumerate(names)}
    rows.sort(key=lambda r: (order[r[0]], r[1]))
    header = pysam.VariantHeader()
    for name in names:
        header.contigs.add(name, length=len(reference[name]))
    described = (
        ("CLASS", "box: inside a planted promoter -10/-35 box; background: outside every promoter"),
        ("BOX", "-10 or -35"),
        ("PROMOTER", "ID of the promoter in the truth GFF3"),
    )
    for key, text in described:
        header.add_meta("INFO", items=[("ID", key), ("Number", "1"), ("Type", "String"), ("Description", text)])
    table = []
    with atomic_path(vcf_out) as tmp:
        plain = tmp.with_name(tmp.name + ".vcf")
        try:
            with pysam.VariantFile(str(plain), "w", header=header) as sink:
                for index, (contig, pos, label, box, promoter) in enumerate(rows, start=1):
                    ref = reference[contig][pos]
                    alt = "ACGT".replace(ref, "")[int(rng.integers(0, 3))]
                    info = {"CLASS": label} | ({"BOX": box, "PROMOTER": promoter} if label == "box" else {})
                    record = header.new_record(contig=contig, start=pos, stop=pos + 1, alleles=(ref, alt),
                                               id=f"demo{index}", info=info)  # fmt: skip
                    sink.write(record)
                    table.append((contig, pos + 1, f"demo{index}", ref, alt, label, box, promoter))
            pysam.tabix_compress(str(plain), str(tmp), force=True)
            pysam.tabix_index(str(tmp), preset="vcf", force=True)
            Path(str(tmp) + ".tbi").replace(str(vcf_out) + ".tbi")
        finally:
            plain.unlink(missing_ok=True)
    log.info("demo variants: %d in promoter boxes, %d background -> %s", n_box, n_background, vcf_out)
    return pd.DataFrame(table, columns=["chrom", "pos", "id", "ref", "alt", "class", "box", "promoter"])
