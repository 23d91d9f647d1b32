"""One verified file from an http(s) URL, a file:// URL or a local path: retries, resume, checksums, atomic.

Stored form follows the destination's name: ``dest`` ending in ``.gz`` is stored gzip-compressed, anything else
plain. Gzip sources are decompressed for a plain ``dest`` and plain sources compressed for a ``.gz`` one, so an
upstream ``x.fa`` and a mirror's ``x.fa.gz`` give the same file. Hence the two checksums:

- ``sha256`` is of the UNCOMPRESSED content, whatever form either side has;
- ``md5`` is of the raw transferred bytes (what ENA's ``fastq_md5`` describes).

HTTP bytes stream into ``<dest>.part``. A dropped connection or short body resumes from there with a ``Range``
header (a server that answers 200 instead of 206 is read again from zero). ``.part`` only saves bandwidth and is
never trusted: the final file is always re-read and verified, ``.part`` is kept after a failure only when that
failure was a network interruption, and one left by an earlier run is reused only when a checksum will verify
the result. ``dest`` itself appears only through an atomic rename once everything checked out.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import logging
import os
import re
import shutil
import tempfile
import time
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.error import HTTPError, URLError

from genolm.atomic import atomic_path
from genolm.errors import ChecksumError, ConfigError, DownloadError, NetworkError, NotFoundError

__all__ = ["FetchResult", "RetryPolicy", "fetch", "fetch_bytes", "redact"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_ERRORS = (EOFError, zlib.error, gzip.BadGzipFile)
_SECRET = re.compile(r"(?i)(api_key=)[^&#\s'\"]+")
_HEX = re.compile(r"[0-9a-fA-F]+")
_CONTENT_RANGE = re.compile(r"bytes (\d+)-\d+/(?:\d+|\*)")
NETWORK_HINT = "set `mirror` or check your connection"


def redact(text: str) -> str:
    """Replace every ``api_key=`` value, so URLs can go into messages and logs."""
    return _SECRET.sub(r"\1REDACTED", str(text))


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: `retries` extra attempts after the first, waiting `backoff_s`, then double, at most
    `max_backoff_s`; `timeout_s` per connect/read. Tests inject a no-op `sleep`."""

    retries: int = 4
    backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    timeout_s: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.retries < 0 or self.backoff_s < 0 or self.max_backoff_s < 0 or self.timeout_s <= 0:
            raise ConfigError(f"RetryPolicy: retries/backoffs must be >= 0 and timeout_s > 0, got {self!r}")

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Wait before the next attempt after `failures` failed ones (honouring a server's Retry-After)."""
        wait = self.backoff_s * 2 ** max(failures - 1, 0)
        if retry_after is not None:
            wait = max(wait, retry_after)
        return min(wait, self.max_backoff_s)


DEFAULT_POLICY = RetryPolicy()


@dataclass(frozen=True)
class FetchResult:
    """A stored, verified file. `url` is redacted; `bytes` and `md5` describe the raw transfer, `sha256` the
    uncompressed content."""

    path: Path
    url: str
    bytes: int
    sha256: str
    md5: str


class _RetryableError(Exception):
    """Internal: an attempt failed in a way another attempt may fix. `network`: the server was never heard
    from properly (refused, timeout, dropped), as opposed to it answering 5xx/429."""

    def __init__(self, reason: str, *, network: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.network = network
        self.retry_after = retry_after


class _RejectedError(Exception):
    """Internal: a complete transfer whose content failed verification; retried from scratch."""

    def __init__(self, error: DownloadError) -> None:
        super().__init__(str(error))
        self.error = error


class _RangeRefusedError(Exception):
    """Internal: HTTP 416 to a resume request (the .part is stale or already complete)."""


def _check_hex(value: str | None, length: int, name: str, label: str) -> str | None:
    if value is None:
        return None
    if len(value) != length or _HEX.fullmatch(value) is None:
        raise DownloadError(f"{label}: expected {name} must be {length} hex digits, got {value!r}")
    return value.lower()


def _local_source(source: str) -> Path | None:
    """The file a local path or file:// URL names; None for http(s). Other schemes are refused."""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return None
    if scheme == "file":
        return Path(urllib.request.url2pathname(urllib.parse.urlsplit(source).path))
    if "://" in source:
        raise DownloadError(f"unsupported URL scheme in {redact(source)!r}: expected http(s)://, file:// or a path")
    return Path(source)


def fetch(
    source: str | os.PathLike[str],
    dest: str | os.PathLike[str],
    *,
    label: str,
    sha256: str | None = None,
    md5: str | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: Mapping[str, str] | None = None,
    validate: Callable[[Path], None] | None = None,
    not_found: Collection[int] = (404, 410),
) -> FetchResult:
    """Store `source` at `dest` (form by `dest`'s name), verified, atomically. See the module docstring.

    `label` names the thing in every message (e.g. "dataset cnnprom_umarov2017/Ecoli_prom.fa"). `validate`
    gets the verified file under a temporary name before the rename; whatever it raises aborts the fetch.
    HTTP statuses in `not_found` fail at once with NotFoundError (no retries).
    """
    source = os.fspath(source)
    dest = Path(dest)
    sha256 = _check_hex(sha256, 64, "sha256", label)
    md5 = _check_hex(md5, 32, "md5", label)
    shown = redact(source)
    local = _local_source(source)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if local is not None:
        # A local file will not change between attempts, so there is nothing to retry.
        if not local.is_file():
            raise NotFoundError(f"{label}: {shown}: no such file")
        try:
            return _store(local, dest, url=shown, move=False, label=label, sha256=sha256, md5=md5, validate=validate)
        except _RejectedError as exc:
            raise exc.error from None

    part = dest.with_name(dest.name + ".part")
    if part.exists() and sha256 is None and md5 is None:
        log.info("%s: discarding %s left by an earlier run (nothing would verify a resumed file)", label, part)
        part.unlink()
    attempts = policy.retries + 1
    last: _RetryableError | _RejectedError | None = None
    for attempt in range(attempts):
        if last is not None:
            policy.sleep(policy.delay(attempt, getattr(last, "retry_after", None)))
        try:
            _transfer(source, part, headers=headers, policy=policy, label=label, shown=shown, not_found=not_found)
        except _RetryableError as exc:
            last = exc
            log.warning("%s: attempt %d/%d on %s failed: %s", label, attempt + 1, attempts, shown, exc.reason)
            continue
        except BaseException as exc:
            if isinstance(exc, DownloadError):
                part.unlink(missing_ok=True)
            raise  # anything else (Ctrl-C) keeps .part for a resume
        try:
            return _store(part, dest, url=shown, move=True, label=label, sha256=sha256, md5=md5, validate=validate)
        except _RejectedError as exc:
            part.unlink(missing_ok=True)  # wrong content: the next attempt starts from zero
            last = exc
            log.warning("%s: attempt %d/%d: %s", label, attempt + 1, attempts, exc.error)
        except BaseException:
            part.unlink(missing_ok=True)
            raise
    assert last is not None
    if isinstance(last, _RejectedError):
        raise last.error
    if last.network:
        raise NetworkError(
            f"{label}: could not download {shown} in {attempts} attempts (last: {last.reason}); {NETWORK_HINT}"
        )
    part.unlink(missing_ok=True)  # the server kept failing: nothing worth resuming
    raise DownloadError(f"{label}: {shown}: gave up after {attempts} attempts (last: {last.reason})")


def _http_error(exc: HTTPError, *, label: str, shown: str, not_found: Collection[int]) -> Exception:
    """Map an HTTP error status to a retry (5xx, 408, 429) or a final error (other 4xx)."""
    status = f"HTTP {exc.code} {redact(exc.reason)}"
    if exc.code in not_found:
        return NotFoundError(f"{label}: {shown}: {status}")
    if exc.code >= 500 or exc.code in (408, 429):
        retry_after = exc.headers.get("Retry-After") if exc.headers else None
        seconds = float(retry_after) if retry_after and retry_after.isdigit() else None
        return _RetryableError(status, network=False, retry_after=seconds)
    return DownloadError(f"{label}: {shown}: {status}")


def _network_reason(exc: BaseException) -> str:
    reason = exc.reason if isinstance(exc, URLError) else exc
    return redact(f"{type(reason).__name__}: {reason}" if str(reason) else type(reason).__name__)


def _open(url: str, headers: Mapping[str, str], timeout: float, *, label: str, shown: str, not_found: Collection[int]):
    request = urllib.request.Request(url, headers=dict(headers))
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except HTTPError as exc:
        exc.close()
        if exc.code == 416 and "Range" in headers:
            raise _RangeRefusedError from None
        raise _http_error(exc, label=label, shown=shown, not_found=not_found) from None
    except (URLError, OSError, http.client.HTTPException) as exc:
        # urllib wraps connect errors in URLError but lets timeouts/disconnects while awaiting the status through.
        raise _RetryableError(_network_reason(exc), network=True) from None


def _transfer(
    url: str,
    part: Path,
    *,
    headers: Mapping[str, str] | None,
    policy: RetryPolicy,
    label: str,
    shown: str,
    not_found: Collection[int],
) -> None:
    """One attempt: append to (or restart) `part` until the server's Content-Length is reached."""
    offset = part.stat().st_size if part.exists() else 0
    request_headers = dict(headers or {})
    if offset:
        request_headers["Range"] = f"bytes={offset}-"
    try:
        response = _open(url, request_headers, policy.timeout_s, label=label, shown=shown, not_found=not_found)
    except _RangeRefusedError:
        part.unlink(missing_ok=True)
        raise _RetryableError("server refused to resume (HTTP 416); restarting from zero", network=False) from None
    with response:
        mode = "wb"
        if offset and response.status == 206:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                part.unlink()
                raise _RetryableError("server resumed at the wrong offset; restarting", network=False)
            mode = "ab"
            log.info("%s: resuming %s at byte %d", label, shown, offset)
        elif offset:
            log.info("%s: server ignored the Range request; downloading %s again from zero", label, shown)
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        received = 0
        with open(part, mode) as out:
            try:
                while chunk := response.read(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
            except (OSError, http.client.HTTPException) as exc:
                raise _RetryableError(
                    f"connection dropped after {received} bytes ({_network_reason(exc)})", network=True
                ) from None
            finally:
                out.flush()
                os.fsync(out.fileno())
    if expected is not None and received != expected:
        raise _RetryableError(f"short body: {received} of {expected} bytes", network=True)


def _digests(path: Path) -> tuple[str, int, bool]:
    """md5 and size of the raw bytes, and whether they are gzip."""
    digest = hashlib.md5(usedforsecurity=False)
    size = 0
    with open(path, "rb") as handle:
        head = handle.read(2)
        digest.update(head)
        size += len(head)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size, head == _GZIP_MAGIC


def _copy_hashing(src, out, digest) -> None:
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        if out is not None:
            out.write(chunk)


def _store(
    raw: Path,
    dest: Path,
    *,
    url: str,
    move: bool,
    label: str,
    sha256: str | None,
    md5: str | None,
    validate: Callable[[Path], None] | None,
) -> FetchResult:
    """Verify `raw` and put it at `dest` in `dest`'s form; `move` consumes `raw` (a .part) instead of copying."""
    raw_md5, size, is_gzip = _digests(raw)
    if md5 is not None and raw_md5 != md5:
        raise _RejectedError(ChecksumError(f"{label}: {url}: md5 mismatch: expected {md5}, observed {raw_md5}"))
    want_gzip = dest.name.endswith(".gz")
    content = hashlib.sha256()
    with atomic_path(dest) as tmp:
        try:
            if is_gzip == want_gzip:
                with gzip.open(raw, "rb") if is_gzip else open(raw, "rb") as src:
                    _copy_hashing(src, None, content)  # verify (and for gzip: decompress) before moving
                if move:
                    os.replace(raw, tmp)
                else:
                    shutil.copyfile(raw, tmp)
            elif is_gzip:
                with gzip.open(raw, "rb") as src, open(tmp, "wb") as out:
                    _copy_hashing(src, out, content)
                    out.flush()
                    os.fsync(out.fileno())
            else:
                with open(raw, "rb") as src, open(tmp, "wb") as out:
                    # Zero mtime and no name: the same content always gives the same bytes.
                    with gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=6, mtime=0) as gz:
                        _copy_hashing(src, gz, content)
                    out.flush()
                    os.fsync(out.fileno())
        except _GZIP_ERRORS as exc:
            raise _RejectedError(
                DownloadError(f"{label}: {url}: truncated or corrupt gzip data ({type(exc).__name__}: {exc})")
            ) from None
        observed = content.hexdigest()
        if sha256 is not None and observed != sha256:
            raise _RejectedError(
                ChecksumError(
                    f"{label}: {url}: sha256 of the uncompressed content does not match: "
                    f"expected {sha256}, observed {observed}"
                )
            )
        if validate is not None:
            validate(tmp)
    if move:
        raw.unlink(missing_ok=True)
    log.info("%s: stored %s (%d bytes from %s, sha256 %s)", label, dest, size, url, observed)
    return FetchResult(path=dest, url=url, bytes=size, sha256=observed, md5=raw_md5)


def fetch_bytes(
    url: str,
    *,
    label: str,
    policy: RetryPolicy = DEFAULT_POLICY,
    headers: Mapping[str, str] | None = None,
    not_found: Collection[int] = (404, 410),
) -> bytes:
    """A small response body (an API answer) with the same retry rules as :func:`fetch`; decompressed if gzip.

    `not_found`: the statuses that mean "no such thing" for this API (raised as NotFoundError, never retried).
    """
    with tempfile.TemporaryDirectory(prefix="genolm-fetch-") as tmp:
        result = fetch(url, Path(tmp) / "body", label=label, policy=policy, headers=headers, not_found=not_found)
        return result.path.read_bytes()
