"""ISfinder insertion-sequence library: names, family/group labels and de-duplicated sequences."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pandas as pd

from genolm.errors import InputFormatError
from genolm.seqio import open_text, read_fasta

__all__ = ["IS_COLUMNS", "UNKNOWN", "read_isfinder"]

log = logging.getLogger(__name__)

IS_COLUMNS = ("name", "family", "group", "length", "n_non_acgt", "duplicates", "sequence")
UNKNOWN = "unknown"
_KEY_VALUE = re.compile(r"(\w+)=(\S+)")
_NON_ACGT = re.compile(r"[^ACGT]")


def _header_labels(path: Path) -> dict[str, dict[str, str]]:
    """`key=value` words of each FASTA header (`>IS100 family=IS21 group=NA`), by record name."""
    labels = {}
    with open_text(path) as handle:
        for line in handle:
            if line.startswith(">"):
                name, _, rest = line[1:].strip().partition(" ")
                labels[name] = dict(_KEY_VALUE.findall(rest))
    return labels


def _summary_labels(path: Path) -> pd.DataFrame:
    """Family and group by IS name from ISfinder's summary CSV (names with spaces match the FASTA's `_`)."""
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise InputFormatError(f"{path}: cannot read the ISfinder summary CSV ({error})") from error
    missing = {"Name", "Family", "Group"} - set(table.columns)
    if missing:
        raise InputFormatError(f"{path}: missing column(s) {', '.join(sorted(missing))}")
    table["name"] = table["Name"].str.strip().str.replace(" ", "_")
    conflicting = table.groupby("name")["Family"].nunique()
    if (conflicting > 1).any():
        log.warning("%s: %d IS name(s) listed with several families; using the first", path, (conflicting > 1).sum())
    first = table.drop_duplicates("name")
    return first.set_index("name")[["Family", "Group"]].rename(columns={"Family": "family", "Group": "group"})


def _label(value: str | None) -> str | None:
    return None if value in (None, "", UNKNOWN) else value


def _split_name(name: str, summary: pd.DataFrame | None) -> tuple[str, str | None, str | None]:
    """(IS name, group, family) of a `NAME_GROUP_FAMILY` record name (thanhleviet/ISfinder-sequences' IS.fna).

    IS names may contain `_` themselves, so the split is trusted only when the summary knows the name it leaves,
    or when no summary is given; otherwise the record name is kept whole.
    """
    parts = name.rsplit("_", 2)
    if len(parts) != 3 or not all(parts):
        return name, None, None
    base, group, family = parts
    if summary is not None and base not in summary.index:
        return name, None, None
    return base, group, family


def read_isfinder(fasta: str | Path, summary_csv: str | Path | None = None, dedupe: bool = True) -> pd.DataFrame:
    """IS elements of an ISfinder FASTA as a table (IS_COLUMNS), one row per distinct sequence.

    Family and group come from the header words `family=` / `group=`; where those are absent or "unknown" they are
    joined by name from the ISfinder summary CSV, else set to "unknown". Group "NA" is ISfinder's "no subgroup"
    and is kept as is. With `dedupe`, identical sequences keep their first record; `duplicates` lists the names
    dropped in its favour. `n_non_acgt` counts IUPAC codes and N in each sequence (kept, never replaced).
    """
    fasta = Path(fasta)
    headers = _header_labels(fasta)
    summary = _summary_labels(Path(summary_csv)) if summary_csv is not None else None
    rows = []
    sources = {"header": 0, "summary": 0, UNKNOWN: 0}
    for record in read_fasta(fasta):
        words = headers.get(record.name, {})
        name = record.name
        family, group = _label(words.get("family")), _label(words.get("group"))
        if not words and (summary is None or name not in summary.index):
            name, group, family = _split_name(name, summary)
            family, group = _label(family), _label(group)
        source = "header"
        if family is None and summary is not None and name in summary.index:
            family, group = summary.at[name, "family"] or None, summary.at[name, "group"] or "NA"
            source = "summary"
        if family is None:
            family, group, source = UNKNOWN, UNKNOWN, UNKNOWN
        sources[source] += 1
        sequence = record.sequence
        rows.append((name, family, group or UNKNOWN, len(sequence), len(_NON_ACGT.findall(sequence)), sequence))
    table = pd.DataFrame(rows, columns=["name", "family", "group", "length", "n_non_acgt", "sequence"])
    log.info(
        "%s: %d IS records; family from header %d, from summary %d, unknown %d; %d records with %d non-ACGT bases",
        fasta,
        len(table),
        sources["header"],
        sources["summary"],
        sources[UNKNOWN],
        (table["n_non_acgt"] > 0).sum(),
        table["n_non_acgt"].sum(),
    )
    first_name = table.groupby("sequence", sort=False)["name"].transform("first")
    repeated = table["name"] != first_name
    dropped = table[repeated].groupby(first_name[repeated])["name"].agg(",".join)
    table["duplicates"] = [dropped.get(name, "") for name in table["name"]]
    if dedupe and repeated.any():
        log.info(
            "%s: dropped %d records identical to an earlier one (%d groups of identical sequences)",
            fasta,
            repeated.sum(),
            len(dropped),
        )
        table = table[~repeated].reset_index(drop=True)
    return table[list(IS_COLUMNS)]
