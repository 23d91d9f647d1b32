"""Sequencing-run FASTQs: from a mirror, else ENA's file report + FASTQ download, else ``fasterq-dump``.

``dests`` is ``[{run}_1.fastq.gz, {run}_2.fastq.gz]`` for paired-end runs or ``[{run}.fastq.gz]`` for single-end
ones. ENA's ``fastq_md5`` verifies every downloaded file. All outputs of a run appear together or not at all.
"""

from __future__ import annotations

import gzip
import logging
import os
import shutil
import subprocess
import tempfile
import urllib.parse
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from genolm.download.accessions import check_run_accession
from genolm.download.http import DEFAULT_POLICY, FetchResult, RetryPolicy, fetch, fetch_bytes, redact
from genolm.download.mirror import Mirror, fetch_from_mirror, missing_from_mirror
from genolm.download.staging import staged_outputs
from genolm.errors import ConfigError, DownloadError, InputFormatError, NetworkError, NotFoundError
from genolm.seqio import open_text

__all__ = ["ENA_PORTAL", "fetch_run", "run_canonical_paths"]

log = logging.getLogger(__name__)

ENA_PORTAL = "https://www.ebi.ac.uk/ena/portal/api"
REPORT_FIELDS = "run_accession,fastq_ftp,fastq_md5,fastq_bytes,library_layout"


def run_canonical_paths(accession: str, paired: bool) -> list[str]:
    """The mirror/download layout's paths for a run's FASTQs."""
    if paired:
        return [f"sra/{accession}/{accession}_1.fastq.gz", f"sra/{accession}/{accession}_2.fastq.gz"]
    return [f"sra/{accession}/{accession}.fastq.gz"]


def fetch_run(
    accession: str,
    dests: Sequence[str | os.PathLike[str]],
    *,
    mirror: Mirror | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    portal: str = ENA_PORTAL,
    max_reads: int | None = None,
    fasterq_dump: str = "fasterq-dump",
) -> list[FetchResult]:
    """Store a run's gzipped FASTQ file(s) at `dests` (both mates or neither).

    With `max_reads`, only the first N reads (pairs) are kept, streamed so memory stays bounded. The results
    describe the files as fetched (before `max_reads`), with `path` set to the destination.
    """
    check_run_accession(accession)
    targets = [Path(dest) for dest in dests]
    if len(targets) not in (1, 2):
        raise ConfigError(f"run {accession}: expected 1 (single-end) or 2 (paired-end) outputs, got {len(targets)}")
    if max_reads is not None and (isinstance(max_reads, bool) or not isinstance(max_reads, int) or max_reads < 1):
        raise ConfigError(f"run {accession}: max_reads must be a positive integer, got {max_reads!r}")
    paired = len(targets) == 2
    with staged_outputs(targets) as staged:
        fetched = [path.with_name(".full" + path.name) for path in staged] if max_reads else staged
        try:
            results = _fetch_full(accession, fetched, paired, mirror, policy, portal, fasterq_dump)
            if max_reads:
                _subsample(fetched, staged, max_reads, f"run {accession}")
        finally:
            if max_reads:
                for path in fetched:
                    path.unlink(missing_ok=True)
    return [replace(result, path=target) for result, target in zip(results, targets, strict=True)]


def _fetch_full(
    accession: str,
    targets: list[Path],
    paired: bool,
    mirror: Mirror | None,
    policy: RetryPolicy,
    portal: str,
    fasterq_dump: str,
) -> list[FetchResult]:
    canonicals = run_canonical_paths(accession, paired)
    if mirror is not None:
        found = []
        for canonical, target in zip(canonicals, targets, strict=True):
            result = fetch_from_mirror(mirror, canonical, target, label=f"run {accession}", policy=policy)
            if result is None:
                break
            found.append(result)
        if len(found) == len(targets):
            return found
    try:
        return _from_ena(accession, targets, paired, policy, portal)
    except (NotFoundError, NetworkError) as exc:
        executable = shutil.which(fasterq_dump)
        if executable is None:
            if isinstance(exc, NetworkError) and mirror is not None:
                raise missing_from_mirror(mirror, canonicals[0], exc) from None
            raise
        log.warning("run %s: %s; falling back to %s", accession, exc, executable)
        return _from_fasterq_dump(executable, accession, targets, paired, policy)


def _file_report(accession: str, policy: RetryPolicy, portal: str) -> dict[str, str]:
    query = urllib.parse.urlencode(
        {"accession": accession, "result": "read_run", "fields": REPORT_FIELDS, "format": "tsv"}
    )
    url = f"{portal.rstrip('/')}/filereport?{query}"
    # ENA answers an unknown accession with 400/404 or with an empty report (header only, or 204).
    body = fetch_bytes(url, label=f"ENA file report for {accession}", policy=policy, not_found=(400, 404, 410))
    lines = body.decode("utf-8", errors="replace").splitlines()
    header = lines[0].split("\t") if lines else []
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=False))
        if row.get("run_accession") == accession:
            return row
    raise NotFoundError(f"ENA: unknown run accession '{accession}' ({redact(url)} lists no such run)")


def _fastq_urls(row: dict[str, str], accession: str, paired: bool, portal: str) -> list[tuple[str, str | None]]:
    """(URL, md5) of the FASTQs matching the requested layout."""
    entries = [entry for entry in row.get("fastq_ftp", "").split(";") if entry]
    md5s = row.get("fastq_md5", "").split(";")
    if not entries:
        raise NotFoundError(f"ENA: run '{accession}' has no FASTQ files")
    layout = row.get("library_layout", "").upper()
    if layout == "SINGLE" and paired:
        raise ConfigError(f"run {accession} is single-end but 2 outputs were requested")
    if layout == "PAIRED" and not paired:
        raise ConfigError(f"run {accession} is paired-end but 1 output was requested")
    scheme = urllib.parse.urlsplit(portal).scheme or "https"
    by_name: dict[str, tuple[str, str | None]] = {}
    for index, entry in enumerate(entries):
        url = entry if "://" in entry else f"{scheme}://{entry}"
        md5 = md5s[index] if index < len(md5s) and md5s[index] else None
        by_name[entry.rsplit("/", 1)[-1]] = (url, md5)
    wanted = [f"{accession}_1.fastq.gz", f"{accession}_2.fastq.gz"] if paired else [f"{accession}.fastq.gz"]
    if not paired and wanted[0] not in by_name and len(by_name) == 1:
        wanted = list(by_name)
    missing = [name for name in wanted if name not in by_name]
    if missing:
        raise DownloadError(f"ENA: run '{accession}' lists {sorted(by_name)}, not {missing}")
    return [by_name[name] for name in wanted]


def _from_ena(accession: str, targets: list[Path], paired: bool, policy: RetryPolicy, portal: str) -> list[FetchResult]:
    row = _file_report(accession, policy, portal)
    results = []
    for (url, md5), target in zip(_fastq_urls(row, accession, paired, portal), targets, strict=True):
        label = f"ENA run {accession} ({url.rsplit('/', 1)[-1]})"
        results.append(fetch(url, target, label=label, md5=md5, policy=policy))
    return results


def _from_fasterq_dump(
    executable: str, accession: str, targets: list[Path], paired: bool, policy: RetryPolicy
) -> list[FetchResult]:
    with tempfile.TemporaryDirectory(prefix=f".{accession}.fasterq-", dir=targets[0].parent) as tmp:
        argv = [executable, "--split-files", "--outdir", tmp, accession]
        log.info("run %s: running %s", accession, " ".join(argv))
        # cwd=tmp: fasterq-dump puts its scratch files in the working directory.
        proc = subprocess.run(argv, cwd=tmp, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            tail = redact(proc.stderr.strip()[-500:])
            raise DownloadError(f"run {accession}: {executable} exited with status {proc.returncode}: {tail}")
        out = Path(tmp)
        mates = [out / f"{accession}_1.fastq", out / f"{accession}_2.fastq"]
        single = out / f"{accession}.fastq"
        if paired and not all(path.is_file() for path in mates):
            raise ConfigError(f"run {accession} is single-end but 2 outputs were requested")
        if not paired and mates[1].is_file():
            raise ConfigError(f"run {accession} is paired-end but 1 output was requested")
        sources = mates if paired else [single if single.is_file() else mates[0]]
        results = []
        for source, target in zip(sources, targets, strict=True):
            if not source.is_file():
                raise DownloadError(f"run {accession}: {executable} wrote no {source.name}")
            result = fetch(source, target, label=f"run {accession} (fasterq-dump)", policy=policy)
            results.append(replace(result, url=f"fasterq-dump:{accession}"))
    return results


def _read_record(handle: TextIO, path: Path, label: str, index: int) -> list[str] | None:
    lines = [handle.readline() for _ in range(4)]
    if not lines[0]:
        return None
    if not lines[3] or not lines[0].startswith("@") or not lines[2].startswith("+"):
        raise InputFormatError(f"{label}: {path.name}: read {index + 1} is not a complete 4-line FASTQ record")
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def _mate_name(header: str) -> str:
    name = header[1:].split(maxsplit=1)[0] if header[1:].split() else ""
    return name[:-2] if name.endswith(("/1", "/2")) else name


def _subsample(sources: list[Path], targets: list[Path], max_reads: int, label: str) -> None:
    """Copy the first `max_reads` records of each file (in lockstep, so mates stay paired) as gzip."""
    with ExitStack() as stack:
        readers = [stack.enter_context(open_text(path)) for path in sources]
        writers = []
        for target in targets:
            raw = stack.enter_context(open(target, "wb"))
            writers.append(stack.enter_context(gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0)))
        kept = 0
        while kept < max_reads:
            records = [_read_record(reader, path, label, kept) for reader, path in zip(readers, sources, strict=True)]
            if all(record is None for record in records):
                break
            if any(record is None for record in records):
                raise InputFormatError(f"{label}: mate files end at different reads (after {kept} reads)")
            names = {_mate_name(record[0]) for record in records}
            if len(names) > 1:
                raise InputFormatError(f"{label}: mates out of step at read {kept + 1}: {sorted(names)}")
            for record, writer in zip(records, writers, strict=True):
                writer.write("".join(record).encode())
            kept += 1
    if kept < max_reads:
        log.info("%s: run has %d reads, fewer than max_reads=%d; kept all", label, kept, max_reads)
