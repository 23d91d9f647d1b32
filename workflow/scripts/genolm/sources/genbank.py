"""GenBank annotation as feature tables: CDS, mobile elements and (heuristically) antimicrobial-resistance genes.

RefSeq plasmid records in CON style carry features but no sequence; they are paired with the FASTA of the same
accession. Coordinates are 0-based half-open, like every genolm table.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from Bio import BiopythonParserWarning, SeqIO
from Bio.Seq import UndefinedSequenceError
from Bio.SeqFeature import SeqFeature

from genolm.errors import InputFormatError
from genolm.seqio import open_text, read_fasta

__all__ = [
    "AMR_CLASSES",
    "CDS_COLUMNS",
    "MOBILE_COLUMNS",
    "Replicon",
    "amr_class",
    "amr_genes",
    "is_mobile_cds",
    "read_genbank",
]

log = logging.getLogger(__name__)

CDS_COLUMNS = ("contig", "start", "end", "strand", "locus_tag", "gene", "product")
MOBILE_COLUMNS = ("contig", "start", "end", "strand", "kind", "name")
MOBILE_FEATURES = ("mobile_element", "repeat_region", "insertion_sequence")

# AMR classes by regexes on /product (case-insensitive) and on /gene (case-sensitive gene symbols). A heuristic
# in the spirit of AMRFinder's names, not a homology search: it finds acquired resistance genes as RefSeq's PGAP
# names them, plus intrinsic chromosomal ones named as such (MG1655: ampC only). Biocide/metal resistance
# (qac, mer, sil, pco, ter) is deliberately not AMR.
_AMR_RULES: dict[str, tuple[str, str]] = {
    "beta-lactam": (r"beta-lactamase|carbapenemase|\b(TEM|SHV|CTX-M|OXA|CMY|KPC|NDM|VIM|IMP|DHA)-\d", r"^bla"),
    "aminoglycoside": (
        r"aminoglycoside|streptomycin|\b(AAC|APH|ANT)\(|\bAad[A-Z]|16S rRNA \(guanine.*\) methyltransferase Rmt",
        r"^(aac\(|aad[A-Z]|aph\(|ant\(|str[AB]$|rmt[A-Z]|armA)",
    ),
    "sulfonamide": (r"sulfonamide", r"^sul\d"),
    "trimethoprim": (r"trimethoprim|\bDfr[A-Z]", r"^dfr"),
    "tetracycline": (r"tetracycline|\bTet\([A-Z]", r"^tet"),
    "phenicol": (r"chloramphenicol|florfenicol|\bCml[A-Z]|\bFloR\b", r"^(cat[A-Z0-9]*$|cml|floR)"),
    "quinolone": (r"quinolone|\bQnr[A-Z]", r"^(qnr|oqx)"),
    "macrolide": (r"macrolide|erythromycin|\b(Mph|Erm)\(", r"^(mph|erm|mef)[(A-Z]"),
    "colistin": (r"\bMCR-\d|colistin", r"^mcr-\d"),
    "glycopeptide": (r"vancomycin|glycopeptide resistance|\bVan[A-Z]\b", r"^van[A-Z]"),
    "streptothricin": (r"streptothricin", r"^sat-?\d"),
    "bleomycin": (r"bleomycin", r"^ble"),
    "fosfomycin": (r"fosfomycin", r"^fos[A-Z]"),
    "rifamycin": (r"rifampin ADP-ribosyl|rifamycin", r"^arr-\d"),
}
AMR_CLASSES = tuple(_AMR_RULES)
_AMR_PRODUCT = {name: re.compile(product, re.IGNORECASE) for name, (product, _) in _AMR_RULES.items()}
_AMR_GENE = {name: re.compile(gene) for name, (_, gene) in _AMR_RULES.items()}
# Products that only name a fold or superfamily ("metallo-beta-lactamase superfamily protein YcaI") are not AMR.
_NOT_AMR = re.compile(r"superfamily|domain-containing|\bfold\b", re.IGNORECASE)
# Transposases, IS accessory proteins, integrases, resolvases and recombinases: mobile-element CDS. Integron
# integrases count too, since cassette arrays move with them. IS names ("IS26", "ISEcp1") are matched with case.
_MOBILE_PRODUCT = re.compile(r"transpos|insertion (sequence|element)|integrase|resolvase|recombinase", re.IGNORECASE)
_IS_NAME = re.compile(r"\bIS\d|\bIS[A-Z][A-Za-z0-9]*\d")
_MOBILE_GENE = re.compile(r"^(ins[A-Z]|tnp|ist[AB]|intI|tni)")


def amr_class(product: str, gene: str = "") -> str | None:
    """The antimicrobial class a CDS confers resistance to, judged from its names, or None.

    A heuristic: regexes on the product (beta-lactamase, aminoglycoside modifying enzymes, sul, dfr, tet, cat/cml/
    floR, qnr, mph/erm, mcr, van, sat, ble, fos, arr) and on the gene symbol. Mobile-element CDS are never AMR.
    """
    if is_mobile_cds(product, gene) or _NOT_AMR.search(product):
        return None
    for name in AMR_CLASSES:
        if _AMR_PRODUCT[name].search(product) or (gene and _AMR_GENE[name].search(gene)):
            return name
    return None


def is_mobile_cds(product: str, gene: str = "") -> bool:
    """True for a transposase / IS protein / integrase / resolvase / recombinase CDS."""
    return bool(_MOBILE_PRODUCT.search(product) or _IS_NAME.search(product) or (gene and _MOBILE_GENE.search(gene)))


@dataclass
class Replicon:
    """One annotated sequence: its upper-case bases and feature tables (0-based half-open coordinates)."""

    name: str  # accession.version, e.g. NC_018659.1
    sequence: str
    cds: pd.DataFrame  # CDS_COLUMNS
    mobile: pd.DataFrame  # MOBILE_COLUMNS: mobile features plus mobile-element CDS (kind "cds")
    topology: str = "linear"

    @property
    def amr(self) -> pd.DataFrame:
        return amr_genes(self.cds)


def amr_genes(cds: pd.DataFrame) -> pd.DataFrame:
    """The AMR rows of a CDS table, with their `amr_class`."""
    classes = [amr_class(product, gene) for product, gene in zip(cds["product"], cds["gene"], strict=True)]
    table = cds.assign(amr_class=classes)
    return table[table["amr_class"].notna()].reset_index(drop=True)


def _spans(feature: SeqFeature, length: int, where: str) -> list[tuple[int, int, str]]:
    """0-based half-open spans of a feature: its bounds, or one span per part when it wraps a circular origin."""
    location = feature.location
    if location is None:
        raise InputFormatError(f"{where}: {feature.type} feature with an unreadable location")
    strand = {1: "+", -1: "-"}.get(location.strand, ".")
    parts = location.parts
    start, end = int(location.start), int(location.end)
    if len(parts) > 1 and end - start > length // 2 and any(int(p.start) == 0 for p in parts):
        return [(int(p.start), int(p.end), strand) for p in parts]  # join(…..end, 1..…) across the origin
    return [(start, end, strand)]


def _qualifier(feature: SeqFeature, key: str) -> str:
    return feature.qualifiers.get(key, [""])[0]


def _records(path: Path) -> Iterator:
    """Biopython GenBank records; parse errors and unreadable locations become InputFormatError."""
    last = None
    try:
        with open_text(path) as handle, warnings.catch_warnings():
            warnings.simplefilter("error", BiopythonParserWarning)
            for record in SeqIO.parse(handle, "genbank"):
                last = record.id
                yield record
    except (ValueError, BiopythonParserWarning, AssertionError, EOFError, OSError) as error:
        if isinstance(error, InputFormatError):
            raise
        where = f"record after '{last}'" if last else "first record"
        raise InputFormatError(f"{path}: {where}: malformed GenBank ({error})") from error
    if last is None:
        raise InputFormatError(f"{path}: no GenBank records (expected a LOCUS line)")


def _sequence(record, path: Path, fasta: dict[str, str] | None, fasta_path: Path | None) -> str:
    """The record's own sequence, else (CON records) the FASTA record of the same accession(.version); when both
    exist they must agree, so a FASTA paired with the wrong GenBank file is caught."""
    try:
        own = str(record.seq).upper()
    except UndefinedSequenceError:
        own = None
    name = next((key for key in (record.id, record.name) if fasta is not None and key in fasta), None)
    if name is None:
        if own is not None:
            return own
        if fasta is None:
            raise InputFormatError(f"{path}: record '{record.id}' has no sequence (CON-style); give its FASTA too")
        raise InputFormatError(f"{fasta_path}: no record '{record.id}' to pair with {path} (has {', '.join(fasta)})")
    sequence = fasta[name]
    if len(sequence) != len(record) or (own is not None and own != sequence):
        raise InputFormatError(
            f"{fasta_path}: record '{name}' ({len(sequence)} bp) differs from {record.id} in {path} ({len(record)} bp)"
        )
    return sequence


def read_genbank(path: str | Path, fasta: str | Path | None = None) -> list[Replicon]:
    """Replicons of a (gzipped) GenBank file with their CDS and mobile-element tables.

    Records without sequence (RefSeq CON records) take it from `fasta`, matched by accession(.version), and the
    lengths must agree. Pseudogene CDS are kept (product names still tell a transposase remnant apart).
    """
    path = Path(path)
    sequences = None if fasta is None else {record.name: record.sequence for record in read_fasta(fasta)}
    replicons = []
    for record in _records(path):
        sequence = _sequence(record, path, sequences, None if fasta is None else Path(fasta))
        cds_rows, mobile_rows = [], []
        for number, feature in enumerate(record.features, start=1):
            if feature.type != "CDS" and feature.type not in MOBILE_FEATURES:
                continue
            where = f"{path}: record '{record.id}' feature #{number}"
            for start, end, strand in _spans(feature, len(sequence), where):
                if not 0 <= start < end <= len(sequence):
                    raise InputFormatError(f"{where}: {feature.type} {start + 1}..{end} outside 1..{len(sequence)}")
                if feature.type == "CDS":
                    gene, product = _qualifier(feature, "gene"), _qualifier(feature, "product")
                    cds_rows.append((record.id, start, end, strand, _qualifier(feature, "locus_tag"), gene, product))
                    if is_mobile_cds(product, gene):
                        mobile_rows.append((record.id, start, end, strand, "cds", product or gene))
                else:
                    name = next(
                        (
                            _qualifier(feature, key)
                            for key in ("mobile_element_type", "rpt_family", "note", "standard_name")
                            if _qualifier(feature, key)
                        ),
                        feature.type,
                    )
                    mobile_rows.append((record.id, start, end, strand, feature.type, name))
        cds = pd.DataFrame(cds_rows, columns=list(CDS_COLUMNS))
        mobile = pd.DataFrame(mobile_rows, columns=list(MOBILE_COLUMNS))
        replicons.append(Replicon(record.id, sequence, cds, mobile, record.annotations.get("topology", "linear")))
        log.info(
            "%s: %s (%d bp): %d CDS, %d mobile features, %d AMR genes",
            path,
            record.id,
            len(sequence),
            len(cds),
            len(mobile),
            len(amr_genes(cds)),
        )
    return replicons
