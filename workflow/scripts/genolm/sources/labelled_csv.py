"""Benchmarks shipped as one `seq,label` CSV (Genomic Benchmarks' materialised splits, e.g. human non-TATA promoters).

Rows are validated like FASTA records: IUPAC letters only (upper-cased), no empty sequence, labels 0 or 1. Row
numbers in ids and errors are 1-based file lines, so a problem points at the line to look at.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd

from genolm.errors import InputFormatError
from genolm.seqio import IUPAC_BASES, open_text
from genolm.sources.windows import SOURCE_COLUMNS, drop_duplicate_sequences, log_counts

_ILLEGAL = re.compile(f"[^{IUPAC_BASES}{IUPAC_BASES.lower()}]")
HEADER = ["seq", "label"]


def read_labelled_csv(path: str | Path, *, source: str) -> pd.DataFrame:
    """One row per distinct sequence, ids '<source>_<pos|neg>_line<N>', no genome coordinates."""
    path = Path(path)
    rows = []
    with open_text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != HEADER:
            raise InputFormatError(f"{path}: line 1: expected the header {','.join(HEADER)}, got {header}")
        for lineno, fields in enumerate(reader, start=2):
            if len(fields) != 2:
                raise InputFormatError(f"{path}: line {lineno}: expected 2 fields (seq,label), got {len(fields)}")
            sequence, label = fields[0].strip(), fields[1].strip()
            if not sequence:
                raise InputFormatError(f"{path}: line {lineno}: empty sequence")
            bad = _ILLEGAL.search(sequence)
            if bad is not None:
                raise InputFormatError(
                    f"{path}: line {lineno}: illegal sequence character {bad.group()!r} at column {bad.start() + 1}"
                )
            if label not in ("0", "1"):
                raise InputFormatError(f"{path}: line {lineno}: label must be 0 or 1, got {label!r}")
            kind = "pos" if label == "1" else "neg"
            rows.append({"id": f"{source}_{kind}_line{lineno}", "label": int(label), "sequence": sequence.upper()})
    if not rows:
        raise InputFormatError(f"{path}: no sequences after the header")
    table = pd.DataFrame(rows).assign(contig="", start=-1, end=-1, strand="+")[list(SOURCE_COLUMNS)]
    table = drop_duplicate_sequences(table, source)
    log_counts(table, source)
    return table
