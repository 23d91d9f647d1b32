"""Genome FASTA + GenBank for one nucleotide accession: from a mirror, else from NCBI E-utilities.

E-utilities are reached through Biopython's ``Bio.Entrez``, which adds NCBI's rate limit (3 requests/s, 10/s
with an API key). Its own retries are switched off (``max_tries = 1``) and ours run around efetch *and* the read
of the body, so a connection dropped mid-record is retried too. ``NCBI_EMAIL`` and ``NCBI_API_KEY`` come from the
environment; the key travels in the query string, so it is kept out of every message and log line.
"""

from __future__ import annotations

import http.client
import logging
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.error import HTTPError, URLError

from Bio import Entrez, SeqIO

from genolm.download.accessions import check_nucleotide_accession
from genolm.download.http import DEFAULT_POLICY, NETWORK_HINT, FetchResult, RetryPolicy, fetch, redact
from genolm.download.mirror import Mirror, fetch_from_mirror, missing_from_mirror
from genolm.download.staging import staged_outputs
from genolm.errors import DownloadError, InputFormatError, NetworkError, NotFoundError
from genolm.seqio import open_text, read_fasta

__all__ = ["fetch_genome"]

log = logging.getLogger(__name__)

EFETCH_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/efetch.fcgi"


def fetch_genome(
    accession: str,
    fasta_dest: str | os.PathLike[str],
    genbank_dest: str | os.PathLike[str],
    *,
    mirror: Mirror | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    email: str | None = None,
) -> tuple[FetchResult, FetchResult]:
    """Store the accession's FASTA and GenBank records (both or neither), each checked to be that accession.

    The mirror's ``genomes/{accession}.fasta`` / ``.gb`` are used when present; otherwise NCBI nuccore is asked
    (``rettype`` fasta and gbwithparts). Raises NotFoundError for an accession NCBI does not know.
    """
    check_nucleotide_accession(accession)
    parts = (
        ("fasta", f"genomes/{accession}.fasta", _check_fasta),
        ("gbwithparts", f"genomes/{accession}.gb", _check_genbank),
    )
    results: list[FetchResult] = []
    with staged_outputs([fasta_dest, genbank_dest]) as staged:
        for (rettype, canonical, check), target in zip(parts, staged, strict=True):
            label = f"NCBI nuccore {accession} ({rettype})"

            def validate(path: Path, check: Callable[..., None] = check, label: str = label) -> None:
                check(path, accession, label)

            result = None
            if mirror is not None:
                result = fetch_from_mirror(mirror, canonical, target, label=label, policy=policy, validate=validate)
            if result is None:
                try:
                    result = _from_entrez(accession, rettype, target, label, policy, email, validate)
                except NetworkError as exc:
                    if mirror is None:
                        raise
                    raise missing_from_mirror(mirror, canonical, exc) from None
            results.append(result)
    fasta, genbank = (
        replace(result, path=Path(dest)) for result, dest in zip(results, (fasta_dest, genbank_dest), strict=True)
    )
    return fasta, genbank


def _from_entrez(
    accession: str,
    rettype: str,
    target: Path,
    label: str,
    policy: RetryPolicy,
    email: str | None,
    validate: Callable[[Path], None],
) -> FetchResult:
    text = _efetch(accession, rettype, label, policy, email)
    body = target.with_name(f".{target.name}.efetch.{os.getpid()}")
    try:
        body.write_text(text, encoding="utf-8")
        result = fetch(body, target, label=label, policy=policy, validate=validate)
    finally:
        body.unlink(missing_ok=True)
    return replace(result, url=f"{EFETCH_URL}?db=nuccore&id={accession}&rettype={rettype}&retmode=text")


@contextmanager
def _entrez_settings(email: str | None, timeout_s: float) -> Iterator[None]:
    """Entrez is configured through module globals; set ours for the call and put the previous ones back.

    Bio.Entrez opens URLs without a timeout, so the socket default timeout bounds every connect and read.
    """
    saved = (Entrez.email, Entrez.api_key, Entrez.max_tries, socket.getdefaulttimeout())
    Entrez.email = email or os.environ.get("NCBI_EMAIL") or Entrez.email
    Entrez.api_key = os.environ.get("NCBI_API_KEY") or None
    Entrez.max_tries = 1
    socket.setdefaulttimeout(timeout_s)
    try:
        yield
    finally:
        Entrez.email, Entrez.api_key, Entrez.max_tries = saved[:3]
        socket.setdefaulttimeout(saved[3])


def _unknown(accession: str) -> NotFoundError:
    return NotFoundError(f"NCBI nuccore: unknown accession '{accession}'")


def _efetch(accession: str, rettype: str, label: str, policy: RetryPolicy, email: str | None) -> str:
    attempts = policy.retries + 1
    reason, network = "", False
    for attempt in range(attempts):
        if attempt:
            policy.sleep(policy.delay(attempt))
        try:
            with _entrez_settings(email, policy.timeout_s):
                handle = Entrez.efetch(db="nuccore", id=accession, rettype=rettype, retmode="text")
                try:
                    data = handle.read()
                finally:
                    handle.close()
        except HTTPError as exc:
            exc.close()
            # NCBI answers 400 ("Failed to understand id") for an id it does not know.
            if exc.code in (400, 404, 410):
                raise _unknown(accession) from None
            if exc.code < 500 and exc.code not in (408, 429):
                raise DownloadError(f"{label}: HTTP {exc.code} {redact(exc.reason)}") from None
            reason, network = f"HTTP {exc.code} {redact(exc.reason)}", False
        except (URLError, OSError, http.client.HTTPException) as exc:
            cause = exc.reason if isinstance(exc, URLError) else exc
            reason, network = redact(f"{type(cause).__name__}: {cause}"), True
        else:
            text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
            head = text.lstrip()[:200]
            if not head or head.startswith("Error") or "<ERROR>" in head:
                raise _unknown(accession)
            return text
        log.warning("%s: attempt %d/%d failed: %s", label, attempt + 1, attempts, reason)
    if network:
        raise NetworkError(f"{label}: E-utilities unreachable in {attempts} attempts (last: {reason}); {NETWORK_HINT}")
    raise DownloadError(f"{label}: E-utilities failed {attempts} times (last: {reason})")


def _same_accession(found: str, requested: str) -> bool:
    """Version-aware: 'NC_1.2' must match exactly, an unversioned request matches any version."""
    return found == requested if "." in requested else found.split(".", 1)[0] == requested


def _check_fasta(path: Path, accession: str, label: str) -> None:
    try:
        names = [record.name for record in read_fasta(path)]
    except InputFormatError as exc:
        raise InputFormatError(f"{label}: not a valid FASTA: {exc}") from None
    if len(names) != 1 or not _same_accession(names[0], accession):
        raise InputFormatError(f"{label}: expected one record for {accession!r}, got {names[:5]}")


def _check_genbank(path: Path, accession: str, label: str) -> None:
    last = ""
    with open_text(path) as handle:
        for line in handle:
            if line.strip():
                last = line.strip()
    if last != "//":
        raise InputFormatError(f"{label}: GenBank text does not end with '//' (truncated?)")
    try:
        with open_text(path) as handle:
            records = list(SeqIO.parse(handle, "genbank"))  # CON records (no ORIGIN) parse too
    except ValueError as exc:
        raise InputFormatError(f"{label}: GenBank does not parse: {exc}") from None
    ids = [record.id if record.id != "<unknown id>" else record.name for record in records]
    if len(ids) != 1 or not _same_accession(ids[0], accession):
        raise InputFormatError(f"{label}: expected one GenBank record for {accession!r}, got {ids[:5]}")
