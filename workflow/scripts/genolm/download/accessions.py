"""Validators for everything that ends up in a URL, a file path or a subprocess argv.

They run before any request is built, so a config value such as ``NC_000913.3;rm -rf /`` or ``../../etc`` is
rejected with a :class:`~genolm.errors.ConfigError` instead of reaching a server, a shell or the file system.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from genolm.errors import ConfigError

__all__ = ["check_nucleotide_accession", "check_relative_path", "check_run_accession"]

# RefSeq nucleotide prefixes (NP_/XP_/WP_ are proteins and are not accepted).
_REFSEQ = r"(?:AC|NC|NG|NT|NW|NZ|NM|NR|XM|XR)_[A-Z]{0,6}\d{5,12}"
# INSDC: 1+5 and 2+6/2+8 (annotated entries), 4+8..10 and 6+9..11 (WGS), 5+7 (MGA).
_INSDC = r"(?:[A-Z]\d{5}|[A-Z]{2}\d{6}|[A-Z]{2}\d{8}|[A-Z]{4}\d{8,10}|[A-Z]{6}\d{9,11}|[A-Z]{5}\d{7})"
_NUCLEOTIDE = re.compile(rf"(?:{_REFSEQ}|{_INSDC})(?:\.\d{{1,4}})?")
_RUN = re.compile(r"[SED]RR\d{6,10}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_nucleotide_accession(accession: str, *, what: str = "nucleotide accession") -> str:
    """Return `accession` unchanged if it is a RefSeq/GenBank/INSDC nucleotide accession (version optional)."""
    if not isinstance(accession, str) or _NUCLEOTIDE.fullmatch(accession) is None:
        raise ConfigError(
            f"{what}: {accession!r} is not a RefSeq/GenBank nucleotide accession "
            "(expected e.g. NC_000913.3, NZ_CP012345.1, U00096.3 or CP000001)"
        )
    return accession


def check_run_accession(accession: str, *, what: str = "sequencing run accession") -> str:
    """Return `accession` unchanged if it is an SRA/ENA/DDBJ run accession (SRR/ERR/DRR + 6-10 digits)."""
    if not isinstance(accession, str) or _RUN.fullmatch(accession) is None:
        raise ConfigError(f"{what}: {accession!r} is not a run accession (expected e.g. SRR532173, ERR000001)")
    return accession


def check_relative_path(path: str, *, what: str = "relative path") -> PurePosixPath:
    """A '/'-separated path that stays inside the folder it is joined to.

    Rejected: empty, absolute, backslashes, '.'/'..'/empty parts (``a//b``, trailing '/'), control characters.
    """
    if not isinstance(path, str) or not path:
        raise ConfigError(f"{what}: empty path")
    if path.startswith("/"):
        raise ConfigError(f"{what}: {path!r} is absolute; expected a path relative to its folder")
    if "\\" in path:
        raise ConfigError(f"{what}: {path!r} contains a backslash; use '/' as the separator")
    if _CONTROL.search(path):
        raise ConfigError(f"{what}: {path!r} contains a control character")
    for part in path.split("/"):
        if part in ("", ".", ".."):
            raise ConfigError(f"{what}: {path!r} has an empty, '.' or '..' component")
    return PurePosixPath(path)
