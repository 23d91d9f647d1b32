"""Published promoter benchmarks shipped as one FASTA file per class (CNNProm, iPromoter-2L).

Their headers break the usual FASTA assumptions: iPromoter-2L negatives all start with "Escherichia coli K-12 ...",
and 26 B. subtilis promoter names repeat (one gene, several promoters). So records are named from the whole
header rather than its first word, and a repeated name gets a numeric suffix.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from genolm.errors import InputFormatError
from genolm.seqio import read_fasta
from genolm.sources.windows import SOURCE_COLUMNS, drop_duplicate_sequences, log_counts, safe_name

log = logging.getLogger(__name__)

_NON_ACGT = re.compile(r"[^ACGT]")
CLASS_NAMES = {1: "pos", 0: "neg"}


def _header_name(header: str) -> str:
    """iPromoter-2L appends '_[evidence|code|text]_confidence' to 'ECKid_name_strand_TSS'; keep the part before."""
    return safe_name(header.split("[", 1)[0])


def _records(path: Path) -> Iterator[tuple[str, str]]:
    """(header name, upper-case sequence) of every record, validated by genolm.seqio."""
    for record in read_fasta(path, whole_headers=True):
        name = _header_name(record.name)
        if not name:
            raise InputFormatError(f"{path}: record '{record.name}': header has no usable name")
        yield name, record.sequence


def _read_class(path: Path, label: int, source: str) -> list[dict]:
    rows, used = [], set()
    for name, sequence in _records(path):
        stem = f"{source}_{CLASS_NAMES[label]}_{name}"
        record_id, copy = stem, 1
        while record_id in used:
            copy += 1
            record_id = f"{stem}_{copy}"
        used.add(record_id)
        rows.append({"id": record_id, "label": label, "sequence": sequence})
    return rows


def read_labelled_fasta(positives: str | Path, negatives: str | Path, *, source: str) -> pd.DataFrame:
    """One record per distinct sequence, ids '<source>_<pos|neg>_<header name>', no genome coordinates.

    Identical sequences within a class are kept once; a sequence in both classes is dropped from both. Records
    with IUPAC codes other than ACGT are kept (the tokenizer maps them to UNK) and counted in the log.
    """
    rows = _read_class(Path(positives), 1, source) + _read_class(Path(negatives), 0, source)
    table = pd.DataFrame(rows, columns=["id", "label", "sequence"])
    table = table.assign(contig="", start=-1, end=-1, strand="+")[list(SOURCE_COLUMNS)]
    table = drop_duplicate_sequences(table, source)
    non_acgt = int(table["sequence"].str.contains(_NON_ACGT).sum())
    if non_acgt:
        log.warning("%s: %d record(s) contain bases other than ACGT (kept)", source, non_acgt)
    log_counts(table, source)
    return table
