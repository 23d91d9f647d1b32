"""The datasets sheet (config/datasets.tsv): one downloadable file per row, with its URL and checksum.

Columns: ``dataset``, ``file``, ``url``, ``sha256``, ``description``, ``citation``; ``#`` lines are comments.
``sha256`` is of the uncompressed content (so a gzipped mirror copy verifies against it), or ``unpinned`` for a
source that changes under a fixed URL; such a file is fetched unverified, with a warning.
"""

from __future__ import annotations

import logging
import os
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from genolm.download.accessions import check_relative_path
from genolm.download.http import DEFAULT_POLICY, FetchResult, RetryPolicy, fetch
from genolm.download.mirror import Mirror, fetch_from_mirror, missing_from_mirror
from genolm.errors import ConfigError, InputFormatError, NetworkError

__all__ = ["SHEET_COLUMNS", "DatasetFile", "fetch_dataset_file", "read_sheet"]

log = logging.getLogger(__name__)

SHEET_COLUMNS = ("dataset", "file", "url", "sha256", "description", "citation")
UNPINNED = "unpinned"
_DATASET = re.compile(r"[a-z][a-z0-9_]*")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class DatasetFile:
    """One row of the sheet; `sha256` is None for an unpinned source."""

    dataset: str
    file: str
    url: str
    sha256: str | None
    description: str
    citation: str

    def __post_init__(self) -> None:
        if self.sha256 == UNPINNED:  # built from a raw sheet row rather than read_sheet
            object.__setattr__(self, "sha256", None)

    @property
    def canonical(self) -> str:
        """The mirror/download layout path."""
        return f"datasets/{self.dataset}/{self.file}"


def read_sheet(path: str | os.PathLike[str]) -> list[DatasetFile]:
    """Read and validate the sheet; every problem names the file and line."""
    entries: list[DatasetFile] = []
    first_line: dict[tuple[str, str], int] = {}
    header: list[str] | None = None
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            where = f"{path}: line {lineno}"
            fields = line.split("\t")
            if header is None:
                if sorted(fields) != sorted(SHEET_COLUMNS):
                    raise InputFormatError(f"{where}: expected the columns {', '.join(SHEET_COLUMNS)}; got {fields}")
                header = fields
                continue
            if len(fields) != len(header):
                raise InputFormatError(f"{where}: expected {len(header)} tab-separated columns, got {len(fields)}")
            row = dict(zip(header, fields, strict=True))
            entry = _entry(row, where)
            key = (entry.dataset, entry.file)
            if key in first_line:
                raise InputFormatError(
                    f"{where}: duplicate dataset/file {'/'.join(key)} (first at line {first_line[key]})"
                )
            first_line[key] = lineno
            entries.append(entry)
    if header is None:
        raise InputFormatError(f"{path}: empty sheet (no header line)")
    return entries


def _entry(row: dict[str, str], where: str) -> DatasetFile:
    dataset, file, url, sha256 = (row[key].strip() for key in ("dataset", "file", "url", "sha256"))
    if _DATASET.fullmatch(dataset) is None:
        raise InputFormatError(f"{where}: dataset {dataset!r} must match [a-z][a-z0-9_]*")
    try:
        check_relative_path(file, what="file")
    except ConfigError as exc:
        raise InputFormatError(f"{where}: {exc}") from None
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(char.isspace() for char in url):
        raise InputFormatError(f"{where}: url {url!r} must be an http(s) URL")
    if sha256 != UNPINNED and _SHA256.fullmatch(sha256) is None:
        raise InputFormatError(f"{where}: sha256 {sha256!r} must be 64 lower-case hex digits or {UNPINNED!r}")
    return DatasetFile(
        dataset=dataset,
        file=file,
        url=url,
        sha256=None if sha256 == UNPINNED else sha256,
        description=row["description"].strip(),
        citation=row["citation"].strip(),
    )


def fetch_dataset_file(
    entry: DatasetFile,
    dest: str | os.PathLike[str],
    *,
    mirror: Mirror | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> FetchResult:
    """Store one sheet entry at `dest`: the mirror's copy when it has one, else `entry.url`; always checked
    against `entry.sha256` (of the uncompressed content, so `dest` may add or drop `.gz`)."""
    label = f"dataset {entry.dataset}/{entry.file}"
    if entry.sha256 is None:
        log.warning("%s: sha256 is %r in the sheet; the file is stored unverified", label, UNPINNED)
    if mirror is not None:
        result = fetch_from_mirror(mirror, entry.canonical, dest, label=label, sha256=entry.sha256, policy=policy)
        if result is not None:
            return result
    try:
        return fetch(entry.url, Path(dest), label=label, sha256=entry.sha256, policy=policy)
    except NetworkError as exc:
        if mirror is None:
            raise
        raise missing_from_mirror(mirror, entry.canonical, exc) from None
