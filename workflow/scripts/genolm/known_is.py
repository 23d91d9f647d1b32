"""Known IS elements beyond a genome's annotation, for a second, fairer evaluation of IS calls.

RefSeq annotates 50 mobile elements on E. coli MG1655, yet the chromosome carries full-length, 100%-identity copies
of ISEc1, ISEc5, ISEc19 and ISEc26 that it does not list: a caller that finds them is charged with false calls.
A user can name a table of such elements (``genomes.<name>.known_is``: GFF3 with ``insertion_sequence`` features,
or a TSV with ``seqid``, ``start_1based``, ``end``, ``strand`` and optionally a name column, such as the ISfinder
blastn calls in ../shared/data/is_scan_eval) and the IS evaluations report a second set of figures against the
annotation plus those elements. ``exclude`` (a regular expression on the element name) drops entries that are not
IS, such as MITEs: miniature inverted-repeat elements without a transposase.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from genolm.annotations import TRUTH_TYPES, read_gff3
from genolm.errors import InputFormatError

PathLike = str | Path
Interval = tuple[str, int, int, str]
TSV_COLUMNS = ("seqid", "start_1based", "end", "strand")
NAME_COLUMNS = ("name", "best_ISfinder_hit", "Name")


def _is_gff3(path: Path) -> bool:
    suffixes = [s.lower() for s in path.suffixes if s.lower() != ".gz"]
    return bool(suffixes) and suffixes[-1] in (".gff", ".gff3")


def _from_tsv(path: Path) -> pd.DataFrame:
    try:
        table = pd.read_csv(path, sep="\t", comment="#", dtype={"seqid": str, "strand": str})
    except (OSError, ValueError, EOFError) as error:
        raise InputFormatError(f"{path}: cannot read the known-IS table: {error}") from error
    missing = [column for column in TSV_COLUMNS if column not in table.columns]
    if missing:
        raise InputFormatError(
            f"{path}: known-IS table lacks column(s) {', '.join(missing)}; expected {', '.join(TSV_COLUMNS)}"
        )
    name_column = next((column for column in NAME_COLUMNS if column in table.columns), None)
    for number, row in enumerate(table.itertuples(index=False), start=2):
        start, end = row.start_1based, row.end
        if not (isinstance(start, int | float) and isinstance(end, int | float)) or not 1 <= start <= end:
            raise InputFormatError(f"{path}: line {number}: start_1based {start}, end {end}: not 1 <= start <= end")
        if row.strand not in ("+", "-", "."):
            raise InputFormatError(f"{path}: line {number}: strand '{row.strand}' is not +, - or .")
    return pd.DataFrame(
        {
            "contig": table["seqid"].astype(str),
            "start": table["start_1based"].astype(int) - 1,
            "end": table["end"].astype(int),
            "strand": table["strand"],
            "name": table[name_column].astype(str) if name_column else "",
        }
    )


def read_known_is(path: PathLike, exclude: str = "") -> list[Interval]:
    """Known IS elements of a table as (contig, 0-based start, end, strand), without those whose name matches
    ``exclude``."""
    path = Path(path)
    if _is_gff3(path):
        features = read_gff3(path, types={TRUTH_TYPES["is"]})
        names = [attributes.get("Name", "") for attributes in features["attributes"]]
        table = features[["contig", "start", "end", "strand"]].assign(name=names)
    else:
        table = _from_tsv(path)
    if exclude:
        try:
            pattern = re.compile(exclude)
        except re.error as error:
            raise InputFormatError(f"known_is_exclude '{exclude}' is not a regular expression: {error}") from error
        table = table[[not pattern.search(name) for name in table["name"]]]
    return [(r.contig, int(r.start), int(r.end), r.strand) for r in table.itertuples(index=False)]


def _reciprocal_overlap(a: Interval, b: Interval) -> float:
    overlap = min(a[2], b[2]) - max(a[1], b[1])
    if a[0] != b[0] or overlap <= 0:
        return 0.0
    return overlap / max(a[2] - a[1], b[2] - b[1])


def with_known(annotated: Iterable[Interval], known: Iterable[Interval], min_overlap: float) -> list[Interval]:
    """The annotation plus every known element that matches no annotated one at ``min_overlap`` reciprocal
    overlap (the criterion calls are matched with), so an element listed by both counts once."""
    annotated = list(annotated)
    extra = [
        element
        for element in known
        if not any(_reciprocal_overlap(element, other) >= min_overlap for other in annotated)
    ]
    return annotated + extra
