"""Exceptions that carry a user-facing message naming the file, record and problem."""

from __future__ import annotations


class GenolmError(Exception):
    """Base class: the CLI and rule scripts turn these into a one-line message and a non-zero exit."""


class InputFormatError(GenolmError, ValueError):
    """Malformed input file (FASTA/FASTQ/GFF/TSV): the message names the file, the record and the problem."""


class ConfigError(GenolmError, ValueError):
    """A configuration key or value that cannot be used."""


class CheckpointError(GenolmError):
    """A model checkpoint that is missing, incomplete or does not match its sidecar."""


class TrainingDivergedError(GenolmError):
    """The loss became NaN or infinite, or exploded; the message names the last good epoch and where its
    training state is kept (when training was given a resume path)."""


class ResourceError(GenolmError):
    """A compute resource ran out (GPU memory even at batch size 1): the message says what to change."""


class DownloadError(GenolmError):
    """A download that failed: the message names what was being fetched, from where, and why."""


class NotFoundError(DownloadError):
    """The source does not have it: HTTP 404/410, an unknown accession, a missing mirror file. Never retried."""


class ChecksumError(DownloadError):
    """Downloaded content that does not match its expected checksum (after fresh retries)."""


class NetworkError(DownloadError):
    """The source could not be reached (refused, DNS, timeouts, dropped connections) after every retry."""
