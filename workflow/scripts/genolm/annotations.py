"""Reading known elements from GFF3 (truth sets and genolm's own calls) into 0-based half-open tables."""

from __future__ import annotations

import gzip
from pathlib import Path
from urllib.parse import unquote

import pandas as pd

from genolm.errors import InputFormatError

# GFF3 feature type of the known elements of each task kind (truth sets and the demo's GFF3).
TRUTH_TYPES = {"promoter": "promoter", "is": "insertion_sequence"}
GFF_COLUMNS = ("contig", "source", "type", "start", "end", "score", "strand", "phase", "attributes")


def _open(path: Path):
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", newline=None)
    return open(path, newline=None)


def parse_attributes(field: str) -> dict[str, str]:
    attributes = {}
    for item in field.strip().strip(";").split(";"):
        if not item:
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"attribute '{item}' is not key=value")
        attributes[unquote(key.strip())] = unquote(value.strip())
    return attributes


def read_gff3(path: str | Path, types: set[str] | None = None) -> pd.DataFrame:
    """Features as rows with 0-based half-open `start`/`end` and parsed attributes; lines are checked as read."""
    path = Path(path)
    rows = []
    try:
        with _open(path) as handle:
            for number, line in enumerate(handle, start=1):
                line = line.rstrip("\n")
                if line.startswith("##FASTA"):
                    break
                if not line or line.startswith("#"):
                    continue
                fields = line.split("\t")
                if len(fields) != 9:
                    raise InputFormatError(
                        f"{path}: line {number}: expected 9 tab-separated columns, got {len(fields)}"
                    )
                if types is not None and fields[2] not in types:
                    continue
                try:
                    start, end = int(fields[3]), int(fields[4])
                    attributes = parse_attributes(fields[8])
                except ValueError as error:
                    raise InputFormatError(f"{path}: line {number}: {error}") from error
                if start < 1 or end < start:
                    raise InputFormatError(f"{path}: line {number}: invalid coordinates {start}..{end}")
                if fields[6] not in {"+", "-", ".", "?"}:
                    raise InputFormatError(f"{path}: line {number}: invalid strand '{fields[6]}'")
                rows.append(
                    {
                        "contig": fields[0],
                        "type": fields[2],
                        "start": start - 1,
                        "end": end,
                        "score": fields[5],
                        "strand": fields[6],
                        "id": attributes.get("ID", ""),
                        "attributes": attributes,
                    }
                )
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError) as error:
        raise InputFormatError(f"{path}: cannot read GFF3 ({error})") from error
    return pd.DataFrame(rows, columns=["contig", "type", "start", "end", "score", "strand", "id", "attributes"])


def sequence_regions(path: str | Path) -> dict[str, int]:
    """Lengths from ``##sequence-region`` directives (before any ##FASTA section)."""
    path = Path(path)
    lengths = {}
    with _open(path) as handle:
        for number, line in enumerate(handle, start=1):
            if line.startswith("##FASTA"):
                break
            if line.startswith("##sequence-region"):
                parts = line.split()
                try:
                    lengths[parts[1]] = int(parts[3])
                except (IndexError, ValueError):
                    raise InputFormatError(f"{path}: line {number}: malformed ##sequence-region directive") from None
    return lengths
