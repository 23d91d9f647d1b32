"""The download rules' entry points: config settings in, verified files in genolm's mirror layout out.

Each job builds the mirror and retry policy from the `download`/`mirror` settings shared by every download rule,
then calls the source-specific fetcher. Checksums of what was written go to the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from genolm.download.datasets_sheet import DatasetFile, fetch_dataset_file
from genolm.download.ena import fetch_run
from genolm.download.http import RetryPolicy
from genolm.download.mirror import Mirror, load_layout
from genolm.download.ncbi import fetch_genome
from genolm.provenance import sha256_file

log = logging.getLogger(__name__)


def mirror_from_settings(settings: Mapping[str, Any]) -> Mirror | None:
    """The configured mirror (with its optional layout table), or None for the internet."""
    root = str(settings.get("mirror") or "")
    if not root:
        return None
    layout_path = str(settings.get("mirror_layout") or "")
    layout = load_layout(Path(layout_path)) if layout_path else None
    return Mirror(root, layout)


def policy_from_settings(settings: Mapping[str, Any]) -> RetryPolicy:
    return RetryPolicy(
        retries=int(settings.get("retries", 4)),
        backoff_s=float(settings.get("backoff_s", 2.0)),
        timeout_s=float(settings.get("timeout_s", 60.0)),
    )


def _log_written(paths: Sequence[str | Path]) -> None:
    for path in paths:
        log.info("wrote %s (%d bytes, sha256 %s)", path, Path(path).stat().st_size, sha256_file(path))


def download_dataset(entry: Mapping[str, str], output: str | Path, network: Mapping[str, Any]) -> None:
    """One row of the dataset sheet, from the mirror when set, else from its pinned URL."""
    fetch_dataset_file(
        DatasetFile(**entry),
        Path(output),
        mirror=mirror_from_settings(network),
        policy=policy_from_settings(network),
    )
    _log_written([output])


def download_genome(accession: str, fasta: str | Path, genbank: str | Path, network: Mapping[str, Any]) -> None:
    """FASTA and GenBank of one nucleotide accession (NCBI E-utilities or the mirror)."""
    fetch_genome(
        accession,
        Path(fasta),
        Path(genbank),
        mirror=mirror_from_settings(network),
        policy=policy_from_settings(network),
        email=str(network.get("email") or "") or None,
    )
    _log_written([fasta, genbank])


def download_reads(run: str, reads: Sequence[str | Path], max_reads: int | None, network: Mapping[str, Any]) -> None:
    """FASTQ.gz of one SRA/ENA run: ENA (md5-checked) or the mirror, else fasterq-dump when installed."""
    fetch_run(
        run,
        [Path(path) for path in reads],
        mirror=mirror_from_settings(network),
        policy=policy_from_settings(network),
        max_reads=max_reads,
    )
    _log_written(reads)
