"""An NCBI genome as one multi-FASTA (chromosome and plasmids as separate contigs) plus its known elements.

The truth GFF3 holds the GenBank `mobile_element` features typed "insertion sequence" (IS elements) and, for
E. coli K-12, the RegulonDB sigma70 TSSs (promoters, with the TSS in a `tss` attribute), so genome scans can be
evaluated against them. Replicons whose GenBank record has no mobile_element feature (many plasmid records only
annotate transposase CDS) contribute no IS truth; that is logged, never guessed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from genolm.annotations import TRUTH_TYPES
from genolm.atomic import write_text_atomic
from genolm.errors import InputFormatError
from genolm.seqio import SeqRecord, read_fasta, write_fasta
from genolm.sources.genbank import read_genbank
from genolm.sources.regulondb import read_regulondb

log = logging.getLogger(__name__)

IS_ELEMENT_PREFIX = "insertion sequence"
PROMOTER_HALF_WIDTH = 40  # bp either side of the TSS in the truth feature; the point itself is the `tss` attribute


def read_contigs(fastas: Sequence[str | Path]) -> list[SeqRecord]:
    """Every record of every FASTA in order; a contig name seen twice (in one file or across files) is an error."""
    records: list[SeqRecord] = []
    seen: dict[str, Path] = {}
    for path in map(Path, fastas):
        for record in read_fasta(path):
            if record.name in seen:
                raise InputFormatError(
                    f"{path}: record '{record.name}': duplicate contig name (also in {seen[record.name]})"
                )
            seen[record.name] = path
            records.append(record)
    return records


def _gff_line(contig: str, kind: str, start: int, end: int, strand: str, attributes: dict[str, str]) -> str:
    column9 = ";".join(f"{key}={quote(str(value), safe=' :')}" for key, value in attributes.items())
    return "\t".join([contig, "genolm", kind, str(start + 1), str(end), ".", strand, ".", column9])


def is_truth_lines(genbanks: Sequence[str | Path], fastas: Sequence[str | Path], lengths: dict[str, int]) -> list[str]:
    lines = []
    for genbank, fasta in zip(genbanks, fastas, strict=True):
        for replicon in read_genbank(genbank, fasta):
            if replicon.name not in lengths:
                raise InputFormatError(f"{genbank}: record '{replicon.name}' has no sequence in {fasta}")
            mobile = replicon.mobile
            elements = mobile[(mobile["kind"] == "mobile_element") & mobile["name"].str.startswith(IS_ELEMENT_PREFIX)]
            if elements.empty:
                log.warning("%s: %s has no IS mobile_element feature; no IS truth for it", genbank, replicon.name)
            for row in elements.itertuples():
                name = row.name.removeprefix(IS_ELEMENT_PREFIX).lstrip(":") or "IS"
                lines.append(
                    _gff_line(
                        row.contig,
                        TRUTH_TYPES["is"],
                        row.start,
                        row.end,
                        row.strand,
                        {"ID": f"{row.contig}:{name}:{row.start}", "Name": name},
                    )
                )
    return lines


def promoter_truth_lines(promoters: str | Path, lengths: dict[str, int]) -> list[str]:
    """RegulonDB sigma70 TSSs on the genome's first contig (RegulonDB coordinates are on NC_000913.3/U00096.3)."""
    table = read_regulondb(promoters)
    table = table[(table["tss"] >= 0) & table["sigma"].str.contains("Sigma70", regex=False)]
    contig = next(iter(lengths))
    length = lengths[contig]
    lines = []
    for row in table.itertuples():
        start, end = max(row.tss - PROMOTER_HALF_WIDTH, 0), min(row.tss + PROMOTER_HALF_WIDTH + 1, length)
        attributes = {"ID": f"regulondb:{row.promoter_id}", "Name": row.name, "tss": str(row.tss)}
        lines.append(_gff_line(contig, TRUTH_TYPES["promoter"], start, end, row.strand, attributes))
    log.info("%s: %d RegulonDB sigma70 TSSs on %s", promoters, len(lines), contig)
    return lines


def assemble_genome(
    fasta: Sequence[str | Path],
    genbank: Sequence[str | Path],
    out_fasta: str | Path,
    out_truth: str | Path,
    promoters: str | Path | None = None,
) -> None:
    """Write the genome FASTA (replicons in config order) and its truth GFF3 (IS elements, optional TSSs)."""
    records = read_contigs(fasta)
    lengths = {record.name: len(record.sequence) for record in records}
    lines = is_truth_lines(genbank, fasta, lengths)
    if promoters is not None:
        lines += promoter_truth_lines(promoters, lengths)
    header = ["##gff-version 3", *(f"##sequence-region {name} 1 {length}" for name, length in lengths.items())]
    write_fasta(records, out_fasta)
    write_text_atomic(out_truth, "\n".join([*header, *lines]) + "\n")
    log.info("%s: %d contigs, %d bp; %d known elements", out_fasta, len(records), sum(lengths.values()), len(lines))
