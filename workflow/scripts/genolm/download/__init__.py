"""Data acquisition: verified, resumable, atomic downloads from upstream sources or a site mirror.

Entry points for rule scripts: :func:`fetch_dataset_file` (rows of config/datasets.tsv), :func:`fetch_genome`
(NCBI nuccore FASTA + GenBank), :func:`fetch_run` (ENA/SRA FASTQ), all taking an optional :class:`Mirror` and a
:class:`RetryPolicy`. Every accession and path is validated before it reaches a URL, a path or a subprocess.
"""

from __future__ import annotations

from genolm.download.accessions import check_nucleotide_accession, check_relative_path, check_run_accession
from genolm.download.datasets_sheet import DatasetFile, fetch_dataset_file, read_sheet
from genolm.download.ena import fetch_run
from genolm.download.http import FetchResult, RetryPolicy, fetch, fetch_bytes, redact
from genolm.download.mirror import Mirror, fetch_from_mirror, load_layout
from genolm.download.ncbi import fetch_genome

__all__ = [
    "DatasetFile",
    "FetchResult",
    "Mirror",
    "RetryPolicy",
    "check_nucleotide_accession",
    "check_relative_path",
    "check_run_accession",
    "fetch",
    "fetch_bytes",
    "fetch_dataset_file",
    "fetch_from_mirror",
    "fetch_genome",
    "fetch_run",
    "load_layout",
    "read_sheet",
    "redact",
]
