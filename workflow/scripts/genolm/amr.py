"""IS calls next to antimicrobial-resistance (AMR) genes: the nearest AMR gene of every IS call, and vice versa.

AMR genes are CDS whose /gene or /product name matches the shipped rule table (resources/amr_gene_patterns.tsv: its
header gives the classes, after NCBI AMRFinderPlus, and why regulators, broad efflux pumps, biocide/metal genes and
mobile-element CDS are left out). Annotations come from GenBank (NCBI genomes, one file per replicon; CON records
take their sequence from the FASTA of the same accession) or from a GFF3 whose CDS carry gene=/product= attributes
(RefSeq GFF3, or the demo's synthetic labels from :func:`demo_amr_annotation`).

Distances (tested):

- intervals are 0-based half-open on the forward strand; ``distance_bp`` is the number of bases between an IS call
  and a gene, 0 when they touch or overlap (``overlap_bp`` then says by how many bases they overlap);
- on a circular replicon (GenBank LOCUS ``circular``, GFF3 ``region`` with ``Is_circular=true``) the gap may run
  across the origin, and the shorter way round is taken (``via_origin``); linear replicons never wrap. A gene across
  the origin comes as two parts (genolm.sources.genbank), each measured on its own;
- ``gene_side`` is where the gene lies from the IS, read along the IS strand; genolm's IS scans are strand-agnostic
  (strand '.'), so it is ``unknown`` for them. ``is_side`` is where the IS lies from the gene, read along the gene's
  strand: an IS upstream of a gene can drive its expression (ISEcp1 before blaCTX-M-15). ``orientation`` is
  ``same``/``opposite`` strand, ``unknown`` when either has no strand. Ties go to the leftmost gene (or call).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import cycle
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np
import pandas as pd

from genolm.annotations import read_gff3, sequence_regions
from genolm.atomic import write_text_atomic
from genolm.errors import InputFormatError
from genolm.evaluate import write_tsv
from genolm.seqio import open_text

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

__all__ = [
    "AmrRule",
    "Contig",
    "amr_genes",
    "classify",
    "demo_amr_annotation",
    "is_amr_proximity",
    "nearest",
    "proximity_tables",
    "read_genbank_annotation",
    "read_gff3_annotation",
    "read_is_calls",
    "read_rules",
    "replicon_summary",
]

log = logging.getLogger(__name__)

CDS_COLUMNS = ["contig", "start", "end", "strand", "locus_tag", "gene", "product"]
CALL_COLUMNS = ["id", "contig", "start", "end", "strand", "score"]
RULE_COLUMNS = ["action", "class", "gene_regex", "product_regex", "note"]
IS_CALL_TYPE = "insertion_sequence"


# ----------------------------------------------------------------------------------------------- the rule table


@dataclass(frozen=True)
class AmrRule:
    """One row of the AMR rule table: ``include`` gives a class, ``exclude`` vetoes (checked first)."""

    action: str
    amr_class: str
    gene: re.Pattern[str] | None
    product: re.Pattern[str] | None
    line: int

    def matches(self, gene: str, product: str) -> bool:
        return bool(
            (self.gene is not None and gene and self.gene.search(gene))
            or (self.product is not None and product and self.product.search(product))
        )


def _compile(text: str, flags: int, path: Path, line: int) -> re.Pattern[str] | None:
    if not text:
        return None
    try:
        return re.compile(text, flags)
    except re.error as error:
        raise InputFormatError(f"{path}: line {line}: invalid regex {text!r} ({error})") from error


def read_rules(path: str | Path) -> list[AmrRule]:
    """The rule table (tab-separated, '#' comments; columns :data:`RULE_COLUMNS`), checked line by line."""
    path = Path(path)
    rules: list[AmrRule] = []
    header_seen = False
    with open_text(path) as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip("\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            if not header_seen:
                if fields[: len(RULE_COLUMNS)] != RULE_COLUMNS:
                    raise InputFormatError(f"{path}: line {number}: header must be {'<TAB>'.join(RULE_COLUMNS)}")
                header_seen = True
                continue
            if len(fields) != len(RULE_COLUMNS):
                raise InputFormatError(
                    f"{path}: line {number}: expected {len(RULE_COLUMNS)} columns, got {len(fields)}"
                )
            action, amr_class, gene, product, _ = fields
            if action not in ("include", "exclude"):
                raise InputFormatError(f"{path}: line {number}: action must be include or exclude, got {action!r}")
            if not amr_class or not (gene or product):
                raise InputFormatError(f"{path}: line {number}: needs a class and a gene or product regex")
            rules.append(
                AmrRule(
                    action,
                    amr_class,
                    _compile(gene, 0, path, number),
                    _compile(product, re.IGNORECASE, path, number),
                    number,
                )
            )
    if not any(rule.action == "include" for rule in rules):
        raise InputFormatError(f"{path}: no include rows: nothing would count as an AMR gene")
    return rules


def classify(gene: str, product: str, rules: Sequence[AmrRule]) -> str | None:
    """The AMR class of a CDS from its gene symbol and product name, or None (excluded or no rule matches)."""
    gene, product = gene or "", product or ""
    if any(rule.matches(gene, product) for rule in rules if rule.action == "exclude"):
        return None
    return next((rule.amr_class for rule in rules if rule.action == "include" and rule.matches(gene, product)), None)


def amr_genes(cds: pd.DataFrame, rules: Sequence[AmrRule]) -> pd.DataFrame:
    """The AMR rows of a CDS table (:data:`CDS_COLUMNS`) with their ``amr_class``, in the table's order."""
    classes = [classify(gene, product, rules) for gene, product in zip(cds["gene"], cds["product"], strict=True)]
    table = cds.assign(amr_class=classes)
    return table[table["amr_class"].notna()].reset_index(drop=True)


# ------------------------------------------------------------------------------------------------ annotations


@dataclass(frozen=True)
class Contig:
    """A replicon: its length (None when the annotation does not say) and topology."""

    name: str
    length: int | None
    circular: bool = False


def read_genbank_annotation(
    genbanks: Sequence[str | Path], fastas: Sequence[str | Path]
) -> tuple[dict[str, Contig], pd.DataFrame]:
    """Replicons and CDS of GenBank files, each paired with its FASTA (CON records carry no sequence)."""
    from genolm.sources.genbank import read_genbank  # Biopython only where GenBank is read

    if len(genbanks) != len(fastas):
        raise InputFormatError(f"{len(genbanks)} GenBank files but {len(fastas)} FASTA files")
    contigs: dict[str, Contig] = {}
    tables = []
    for genbank, fasta in zip(genbanks, fastas, strict=True):
        for replicon in read_genbank(genbank, fasta):
            contigs[replicon.name] = Contig(replicon.name, len(replicon.sequence), replicon.topology == "circular")
            tables.append(replicon.cds)
    cds = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=CDS_COLUMNS)
    return contigs, cds[CDS_COLUMNS]


def read_gff3_annotation(path: str | Path) -> tuple[dict[str, Contig], pd.DataFrame]:
    """Replicons (``##sequence-region`` lengths; ``region`` features, ``Is_circular=true``) and CDS of a GFF3.

    The gene symbol is the ``gene`` attribute (else ``Name``), the locus tag ``locus_tag`` (else ``ID``).
    """
    path = Path(path)
    lengths = sequence_regions(path)
    features = read_gff3(path, types={"CDS", "region"})
    contigs = {name: Contig(name, length) for name, length in lengths.items()}
    rows = []
    for row in features.itertuples():
        attributes = row.attributes
        if row.type == "region":
            circular = attributes.get("Is_circular", "").lower() == "true"
            length = lengths.get(row.contig, row.end if row.start == 0 else None)
            contigs[row.contig] = Contig(row.contig, length, circular)
            continue
        contigs.setdefault(row.contig, Contig(row.contig, None))
        rows.append(
            (
                row.contig,
                row.start,
                row.end,
                row.strand,
                attributes.get("locus_tag") or attributes.get("ID", ""),
                attributes.get("gene") or attributes.get("Name", ""),
                attributes.get("product", ""),
            )
        )
    return contigs, pd.DataFrame(rows, columns=CDS_COLUMNS)


def read_is_calls(path: str | Path) -> pd.DataFrame:
    """IS calls (:data:`CALL_COLUMNS`, 0-based half-open) from genolm's calls.gff3.gz or calls.bed.gz."""
    path = Path(path)
    if path.name.endswith((".bed", ".bed.gz")):
        rows = []
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                fields = line.rstrip("\n").split("\t")
                try:
                    contig, start, end, name, score, strand = fields[:6]
                    rows.append((name, contig, int(start), int(end), strand, int(score) / 1000))
                except ValueError:
                    raise InputFormatError(f"{path}: line {number}: expected BED6 (genolm scan calls)") from None
        return pd.DataFrame(rows, columns=CALL_COLUMNS)
    calls = read_gff3(path, types={IS_CALL_TYPE})
    scores = pd.to_numeric(calls["score"].replace(".", np.nan), errors="coerce")
    return calls.assign(score=scores)[CALL_COLUMNS].reset_index(drop=True)


# --------------------------------------------------------------------------------------------------- distances


def _gaps(
    start: int, end: int, starts: np.ndarray, ends: np.ndarray, length: int | None, circular: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(distance, overlap, direction, via_origin) from one interval to each target interval.

    ``direction`` +1: the target lies to the right (higher coordinates, clockwise), -1: to the left, 0: overlap.
    """
    overlap = np.maximum(0, np.minimum(end, ends) - np.maximum(start, starts))
    right = (starts - end).astype(np.float64)  # bases from our end to the target's start, going right
    left = (start - ends).astype(np.float64)  # from the target's end to our start, going left
    wrap = circular and length is not None
    if wrap:
        via_right, via_left = right < 0, left < 0  # a negative gap is only reachable across the origin
        right, left = np.mod(right, length), np.mod(left, length)
    else:
        via_right = via_left = np.zeros(starts.size, dtype=bool)
        right[right < 0], left[left < 0] = np.inf, np.inf
    direction = np.where(right <= left, 1, -1)
    distance = np.minimum(right, left)
    via = np.where(direction == 1, via_right, via_left)
    inside = overlap > 0
    distance[inside], direction[inside], via[inside] = 0, 0, False
    return distance, overlap, direction, via


def nearest(
    queries: pd.DataFrame, targets: pd.DataFrame, contigs: Mapping[str, Contig], near_bp: float = 0
) -> pd.DataFrame:
    """For each query interval, the nearest target on the same contig (row-aligned with ``queries``).

    Columns: ``target`` (positional index into ``targets``, -1 when the contig has none), ``distance``,
    ``overlap``, ``direction`` (of the target from the query: +1 right, -1 left, 0 overlapping), ``via_origin``
    and ``near`` (how many targets lie within ``near_bp``). Ties: larger overlap, then the leftmost target.
    """
    n = len(queries)
    out = {
        "target": np.full(n, -1, dtype=np.int64),
        "distance": np.full(n, np.nan),
        "overlap": np.zeros(n, dtype=np.int64),
        "direction": np.zeros(n, dtype=np.int64),
        "via_origin": np.zeros(n, dtype=bool),
        "near": np.zeros(n, dtype=np.int64),
    }
    by_contig = {contig: np.asarray(index) for contig, index in targets.groupby("contig", sort=False).indices.items()}
    t_start = targets["start"].to_numpy(dtype=np.int64)
    t_end = targets["end"].to_numpy(dtype=np.int64)
    for row, (contig, start, end) in enumerate(queries[["contig", "start", "end"]].itertuples(index=False)):
        index = by_contig.get(contig)
        if index is None:
            continue
        info = contigs.get(contig, Contig(contig, None))
        distance, overlap, direction, via = _gaps(start, end, t_start[index], t_end[index], info.length, info.circular)
        best = np.lexsort((index, t_start[index], -overlap, distance))[0]
        out["target"][row] = index[best]
        out["distance"][row] = distance[best]
        out["overlap"][row] = overlap[best]
        out["direction"][row] = direction[best]
        out["via_origin"][row] = via[best]
        out["near"][row] = int((distance <= near_bp).sum())
    return pd.DataFrame(out, index=queries.index)


def _side(direction: int, strand: str) -> str:
    """Where something at ``direction`` (+1 right, -1 left, 0 overlapping) lies, read along ``strand``."""
    if direction == 0:
        return "overlapping"
    if strand not in ("+", "-"):
        return "unknown"
    return "downstream" if (direction > 0) == (strand == "+") else "upstream"


def _orientation(first: str, second: str) -> str:
    if first not in ("+", "-") or second not in ("+", "-"):
        return "unknown"
    return "same" if first == second else "opposite"


def _nearest_columns(
    queries: pd.DataFrame,
    targets: pd.DataFrame,
    contigs: Mapping[str, Contig],
    columns: Mapping[str, str],
    near_bp: int,
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Each query's nearest target as columns (``columns`` maps target column -> new name; empty where its contig
    has no target) with distance_bp, overlap_bp, via_origin and the count within ``near_bp`` (``near``); also
    (direction, found) arrays."""
    link = nearest(queries, targets, contigs, near_bp)
    found = link["target"].to_numpy() >= 0
    taken = targets.reset_index(drop=True).reindex(link["target"].to_numpy())  # -1 is no row: all NA
    out = pd.DataFrame(index=queries.index)
    for source, name in columns.items():
        values = taken[source].to_numpy()
        if source in ("start", "end"):
            out[name] = pd.array(np.where(found, values, np.nan), dtype="Int64")
        elif source == "score":
            out[name] = pd.to_numeric(values, errors="coerce")
        else:
            out[name] = ["" if pd.isna(value) else value for value in values]
    out["distance_bp"] = pd.array(np.where(found, link["distance"], np.nan), dtype="Int64")
    out["overlap_bp"] = pd.array(np.where(found, link["overlap"], np.nan), dtype="Int64")
    out["via_origin"] = [bool(v) if ok else "" for v, ok in zip(link["via_origin"], found, strict=True)]
    out["near"] = link["near"]
    return out, link["direction"].to_numpy(), found


def proximity_tables(
    calls: pd.DataFrame, genes: pd.DataFrame, contigs: Mapping[str, Contig], near_bp: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per IS call: its nearest AMR gene, per AMR gene: its nearest IS call); see the module doc for columns."""
    calls = calls.reset_index(drop=True)
    genes = genes.reset_index(drop=True)
    gene_columns = {
        "gene": "amr_gene",
        "locus_tag": "amr_locus_tag",
        "amr_class": "amr_class",
        "product": "amr_product",
        "start": "amr_start",
        "end": "amr_end",
        "strand": "amr_strand",
    }
    near_gene, direction, found = _nearest_columns(calls, genes, contigs, gene_columns, near_bp)
    near_gene["amr_gene"] = near_gene["amr_gene"].where(near_gene["amr_gene"] != "", near_gene["amr_locus_tag"])
    strands = zip(calls["strand"], near_gene["amr_strand"], direction, found, strict=True)
    sides = [
        (_orientation(mine, theirs), _side(d, mine), _side(-d, theirs)) if ok else ("", "", "")
        for mine, theirs, d, ok in strands
    ]
    by_call = pd.concat([calls.rename(columns={"id": "call_id"}), near_gene], axis=1)
    by_call[["orientation", "gene_side", "is_side"]] = pd.DataFrame(sides, columns=[0, 1, 2], index=calls.index)
    by_call = by_call.rename(columns={"near": "amr_genes_near"})
    by_call["amr_genes_near"] = by_call.pop("amr_genes_near")  # last column

    call_columns = {
        "id": "nearest_call",
        "start": "call_start",
        "end": "call_end",
        "strand": "call_strand",
        "score": "call_score",
    }
    near_call, direction, found = _nearest_columns(genes, calls, contigs, call_columns, near_bp)
    by_gene = pd.concat([genes, near_call], axis=1)
    strands = zip(genes["strand"], near_call["call_strand"], direction, found, strict=True)
    by_gene["orientation"] = [_orientation(mine, theirs) if ok else "" for mine, theirs, _, ok in strands]
    by_gene["is_side"] = [
        _side(d, mine) if ok else "" for mine, d, ok in zip(genes["strand"], direction, found, strict=True)
    ]
    by_gene = by_gene.rename(columns={"near": "calls_near"})
    by_gene["calls_near"] = by_gene.pop("calls_near")  # last column
    return by_call, by_gene


def replicon_summary(
    contigs: Mapping[str, Contig], cds: pd.DataFrame, by_call: pd.DataFrame, by_gene: pd.DataFrame, near_bp: int
) -> pd.DataFrame:
    """One row per replicon: CDS, AMR genes, IS calls, and how many of each lie within ``near_bp`` of the other."""
    names = list(dict.fromkeys([*contigs, *by_call["contig"]]))
    rows = []
    for name in names:
        info = contigs.get(name, Contig(name, None))
        call_distance = by_call.loc[by_call["contig"] == name, "distance_bp"].dropna()
        gene_rows = by_gene[by_gene["contig"] == name]
        rows.append(
            {
                "contig": name,
                "length": info.length if info.length is not None else pd.NA,
                "topology": "circular" if info.circular else "linear",
                "cds": int((cds["contig"] == name).sum()),
                "amr_genes": len(gene_rows),
                "amr_classes": ",".join(sorted(set(gene_rows["amr_class"]))),
                "is_calls": int((by_call["contig"] == name).sum()),
                "calls_near_amr": int((call_distance <= near_bp).sum()),
                "amr_near_calls": int((gene_rows["distance_bp"].dropna() <= near_bp).sum()),
                "median_call_to_amr_bp": float(call_distance.median()) if len(call_distance) else np.nan,
                "near_bp": near_bp,
            }
        )
    return pd.DataFrame(rows)


def is_amr_proximity(
    calls: str | Path,
    rules: str | Path,
    outputs: Mapping[str, str | Path],
    near_bp: int = 10_000,
    genbank: Sequence[str | Path] = (),
    fasta: Sequence[str | Path] = (),
    gff: str | Path | None = None,
) -> pd.DataFrame:
    """Write ``outputs["calls"]`` (per IS call), ``outputs["genes"]`` (per AMR gene) and ``outputs["replicons"]``.

    The annotation is the GenBank files (with their FASTA) or, without them, ``gff``. Returns the replicon table.
    """
    if genbank:
        contigs, cds = read_genbank_annotation(genbank, fasta)
    elif gff is not None:
        contigs, cds = read_gff3_annotation(gff)
    else:
        raise InputFormatError("is_amr_proximity needs GenBank files or a GFF3 annotation")
    genes = amr_genes(cds, read_rules(rules))
    is_calls = read_is_calls(calls)
    unknown = sorted(set(is_calls["contig"]) - set(contigs))
    if unknown:
        log.warning("%s: IS calls on contigs without annotation: %s (no AMR gene can be near them)", calls, unknown)
    by_call, by_gene = proximity_tables(is_calls, genes, contigs, near_bp)
    summary = replicon_summary(contigs, cds, by_call, by_gene, near_bp)
    write_tsv(by_call, outputs["calls"])
    write_tsv(by_gene, outputs["genes"])
    write_tsv(summary, outputs["replicons"])
    log.info(
        "%d IS calls, %d AMR genes (%s) on %d replicons; %d calls within %d bp of an AMR gene",
        len(by_call),
        len(by_gene),
        ", ".join(f"{k} {v}" for k, v in by_gene["amr_class"].value_counts().items()) or "none",
        len(contigs),
        int(summary["calls_near_amr"].sum()),
        near_bp,
    )
    return summary


# ------------------------------------------------------------------------------------------------------- demo

# Real RefSeq names (from the four E. coli AMR plasmids) given, as labels only, to some demo CDS.
DEMO_AMR_LABELS = (
    ("blaTEM-1", "broad-spectrum class A beta-lactamase TEM-1"),
    ("sul1", "sulfonamide-resistant dihydropteroate synthase Sul1"),
    ("aph(3'')-Ib", "aminoglycoside O-phosphotransferase APH(3'')-Ib"),
    ("tet(A)", "tetracycline efflux MFS transporter Tet(A)"),
    ("dfrA14", "trimethoprim-resistant dihydrofolate reductase DfrA14"),
    ("floR", "chloramphenicol/florfenicol efflux MFS transporter FloR"),
)
DEMO_CONTROL_EVERY = 40  # also label every 40th CDS, wherever it is, as a control far from most IS copies
_GFF_VALUE_SAFE = " '()/:.-"


def demo_amr_annotation(truth: str | Path, output: str | Path) -> pd.DataFrame:
    """Label some CDS of the demo's truth GFF3 as AMR genes and write them as an annotation GFF3.

    The demo's genes are random codon-model ORFs: these labels are synthetic, so that the demo exercises the AMR
    proximity step with known answers, not biology. Labelled: the CDS nearest each copy of the first IS family
    (by name), and every DEMO_CONTROL_EVERY-th CDS; products cycle through DEMO_AMR_LABELS. Every other CDS is a
    "hypothetical protein". Returns the labelled CDS.
    """
    truth = Path(truth)
    lengths = sequence_regions(truth)
    features = read_gff3(truth, types={"CDS", IS_CALL_TYPE})
    cds = features[features["type"] == "CDS"].reset_index(drop=True)
    copies = features[features["type"] == IS_CALL_TYPE]
    families = sorted({attributes.get("family", "") for attributes in copies["attributes"]})
    labelled = set(range(DEMO_CONTROL_EVERY // 2, len(cds), DEMO_CONTROL_EVERY))
    if families:
        first = copies[[attributes.get("family", "") == families[0] for attributes in copies["attributes"]]]
        contigs = {name: Contig(name, length) for name, length in lengths.items()}
        picks = nearest(first.reset_index(drop=True), cds, contigs)["target"]
        labelled |= {int(index) for index in picks if index >= 0}
    labels = dict(zip(sorted(labelled), cycle(DEMO_AMR_LABELS), strict=False))
    lines = ["##gff-version 3", *(f"##sequence-region {name} 1 {length}" for name, length in lengths.items())]
    for index, row in enumerate(cds.itertuples()):
        gene, product = labels.get(index, ("", "hypothetical protein"))
        attributes = {"ID": row.id, "gene": gene, "product": product}
        if index in labels:
            attributes["note"] = "synthetic AMR label (genolm demo)"
        column9 = ";".join(f"{key}={quote(value, safe=_GFF_VALUE_SAFE)}" for key, value in attributes.items() if value)
        lines.append("\t".join([row.contig, "genolm_demo", "CDS", str(row.start + 1), str(row.end), ".", row.strand,
                                "0", column9]))  # fmt: skip
    write_text_atomic(Path(output), "\n".join(lines) + "\n")
    log.info("%s: %d of %d demo CDS labelled as AMR genes (synthetic)", output, len(labels), len(cds))
    chosen = cds.iloc[sorted(labels)]
    return chosen.assign(gene=[labels[i][0] for i in sorted(labels)], product=[labels[i][1] for i in sorted(labels)])


# ---------------------------------------------------------------------------------------------------- figures


def distance_figure(by_call: pd.DataFrame, by_gene: pd.DataFrame, title: str, near_bp: int) -> plt.Figure:
    """Histograms of IS call -> nearest AMR gene and AMR gene -> nearest IS call distances (log scale)."""
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), layout="constrained")
    for axis, values, what, colour in (
        (axes[0], by_call["distance_bp"], "IS call to its nearest AMR gene", "C0"),
        (axes[1], by_gene["distance_bp"], "AMR gene to its nearest IS call", "C1"),
    ):
        distances = pd.to_numeric(values, errors="coerce").dropna().to_numpy(dtype=np.float64)
        if distances.size:
            edges = np.r_[0, np.logspace(0, max(np.log10(distances.max() + 1), 1) + 0.1, 25)]
            axis.hist(distances + 0.5, bins=edges + 0.5, color=colour)
            axis.set_xscale("symlog", linthresh=1)
        else:
            axis.text(0.5, 0.5, "no pairs", ha="center", va="center", transform=axis.transAxes)
        axis.axvline(near_bp, color="grey", ls=":", lw=1)
        axis.set(xlabel="distance (bp; 0 = touching or overlapping)", ylabel="count", title=what)
        axis.title.set_fontsize(9)
    figure.suptitle(f"{title}: distances (dotted: amr.near_bp)", fontsize=10)
    return figure


def replicon_map_figure(
    by_call: pd.DataFrame, by_gene: pd.DataFrame, replicons: pd.DataFrame, title: str, max_replicons: int = 12
) -> plt.Figure:
    """One track per replicon (those with AMR genes or IS calls first, at most ``max_replicons``): IS calls above
    the line, AMR genes below it, coloured by class."""
    import matplotlib.pyplot as plt

    table = replicons.assign(busy=replicons["amr_genes"] + replicons["is_calls"] > 0)
    table = table.sort_values(["busy", "amr_genes", "is_calls"], ascending=False, kind="stable").head(max_replicons)
    classes = sorted(set(by_gene["amr_class"]))
    colours = {name: f"C{(index + 1) % 10}" for index, name in enumerate(classes)}
    rows = max(len(table), 1)
    figure, axes = plt.subplots(rows, 1, figsize=(10, 1.2 + 0.75 * rows), squeeze=False, layout="constrained")
    for axis, replicon in zip(axes[:, 0], table.itertuples(), strict=False):
        calls = by_call[by_call["contig"] == replicon.contig]
        genes = by_gene[by_gene["contig"] == replicon.contig]
        length = replicon.length
        if pd.isna(length):
            length = max([*calls["end"], *genes["end"], 1])
        axis.axhline(0, color="black", lw=0.8)
        for call in calls.itertuples():
            axis.fill_between([call.start, call.end], 0.1, 0.9, color="0.45", lw=0)
        for gene in genes.itertuples():
            axis.fill_between([gene.start, gene.end], -0.9, -0.1, color=colours[gene.amr_class], lw=0)
            axis.plot([(gene.start + gene.end) / 2], [-0.5], marker="v", ms=5, color=colours[gene.amr_class])
        axis.set_xlim(0, int(length))
        axis.set_ylim(-1, 1)
        axis.set_yticks([])
        axis.set_ylabel(f"{replicon.contig}\n{int(length):,} bp", rotation=0, ha="right", va="center", fontsize=8)
        axis.tick_params(axis="x", labelsize=7)
    handles = [plt.Line2D([], [], color="0.45", lw=6, label="IS call")]
    handles += [plt.Line2D([], [], color=colours[name], marker="v", lw=0, label=name) for name in classes]
    figure.legend(handles=handles, fontsize=7, ncol=min(len(handles), 7), loc="outside lower center")
    axes[-1, 0].set_xlabel("position (bp)")
    figure.suptitle(f"{title}: IS calls (above) and AMR genes (below) per replicon", fontsize=10)
    return figure


def call_table_for_report(by_call: pd.DataFrame, near_bp: int, limit: int = 25) -> pd.DataFrame:
    """The IS calls nearest to AMR genes (within ``near_bp``, nearest first, at most ``limit``) for the report."""
    columns = ["call_id", "contig", "start", "end", "strand", "score", "amr_gene", "amr_class", "distance_bp",
               "orientation", "gene_side", "is_side", "amr_genes_near"]  # fmt: skip
    near = by_call[pd.to_numeric(by_call["distance_bp"], errors="coerce") <= near_bp]
    return near.sort_values(["distance_bp", "contig", "start"], kind="stable")[columns].head(limit)
