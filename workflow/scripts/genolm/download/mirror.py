"""A site-local copy of upstream files, found through canonical relative paths.

Canonical layout (downloads are written under the same paths, so copying a download folder builds a mirror)::

    datasets/{dataset}/{file}           one row of config/datasets.tsv
    genomes/{accession}.fasta           NCBI nuccore FASTA
    genomes/{accession}.gb              NCBI nuccore GenBank (gbwithparts; CON-style records are fine)
    sra/{run}/{run}_1.fastq.gz          paired-end reads
    sra/{run}/{run}_2.fastq.gz
    sra/{run}/{run}.fastq.gz            single-end reads

A mirror stores either form of a file: ``x`` may be found as ``x.gz`` and ``x.gz`` as ``x`` (the fetch converts
to the form the destination asks for; sha256 is of the uncompressed content either way). A mirror organised
differently maps canonical paths with a layout TSV (columns ``path``, ``mirror_path``), see :func:`load_layout`.
The root is a local directory, or an http(s)/file:// base URL.
"""

from __future__ import annotations

import logging
import os
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

from genolm.download.accessions import check_relative_path
from genolm.download.http import DEFAULT_POLICY, FetchResult, RetryPolicy, fetch, redact
from genolm.errors import ConfigError, InputFormatError, NetworkError, NotFoundError

__all__ = ["Mirror", "fetch_from_mirror", "load_layout", "missing_from_mirror"]

log = logging.getLogger(__name__)

LAYOUT_COLUMNS = ("path", "mirror_path")


class Mirror:
    """Where canonical paths live in a mirror. `layout` maps canonical paths (exact keys) to mirror paths."""

    def __init__(self, root: str | os.PathLike[str], layout: Mapping[str, str] | None = None) -> None:
        text = os.fspath(root)
        if not text:
            raise ConfigError("mirror: empty root")
        scheme = urllib.parse.urlsplit(text).scheme.lower()
        if scheme == "file":
            text = urllib.request.url2pathname(urllib.parse.urlsplit(text).path)
        elif scheme not in ("http", "https") and "://" in text:
            raise ConfigError(f"mirror: unsupported root {redact(text)!r}; expected a directory or an http(s) URL")
        self.base_url: str | None = text.rstrip("/") + "/" if scheme in ("http", "https") else None
        self.directory: Path | None = None if self.base_url else Path(text)
        self.layout: dict[str, str] = {}
        for key, value in (layout or {}).items():
            check_relative_path(key, what="mirror layout path")
            self.layout[key] = str(check_relative_path(value, what=f"mirror layout entry for {key!r}"))

    def __repr__(self) -> str:
        return f"Mirror({self.root!r}, {len(self.layout)} layout entries)"

    @property
    def root(self) -> str:
        return redact(self.base_url) if self.base_url else str(self.directory)

    def mirror_path(self, canonical: str) -> str:
        """The mirror's relative path for `canonical` (the layout's entry, else unchanged)."""
        check_relative_path(canonical, what="canonical path")
        return self.layout.get(canonical, canonical)

    def _variants(self, canonical: str) -> list[str]:
        path = self.mirror_path(canonical)
        return [path, path[: -len(".gz")]] if path.endswith(".gz") else [path, path + ".gz"]

    def locate(self, canonical: str) -> str | None:
        """An existing local file for `canonical` (trying the other compressed form too), or None; for URL
        roots, the URL (whether it exists is learned by fetching it)."""
        if self.base_url is not None:
            return self._url(self.mirror_path(canonical))
        for relative in self._variants(canonical):
            path = self.directory / relative
            if path.is_file():
                return str(path)
        return None

    def candidates(self, canonical: str) -> list[str]:
        """Sources to try in order: the located file, or for URL roots both compressed forms."""
        if self.base_url is not None:
            return [self._url(relative) for relative in self._variants(canonical)]
        found = self.locate(canonical)
        return [found] if found else []

    def _url(self, relative: str) -> str:
        return self.base_url + urllib.parse.quote(relative)


def load_layout(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read a layout TSV: a header ``path<TAB>mirror_path``, then one canonical path per row (``#`` comments)."""
    layout: dict[str, str] = {}
    lines: dict[str, int] = {}
    header_seen = False
    with open(path, encoding="utf-8") as handle:
        for lineno, line in enumerate(handle, start=1):
            line = line.rstrip("\r\n")
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.split("\t")
            where = f"{path}: line {lineno}"
            if not header_seen:
                if tuple(fields) != LAYOUT_COLUMNS:
                    raise InputFormatError(f"{where}: expected the header {'<TAB>'.join(LAYOUT_COLUMNS)}, got {line!r}")
                header_seen = True
                continue
            if len(fields) != len(LAYOUT_COLUMNS):
                raise InputFormatError(f"{where}: expected 2 tab-separated columns, got {len(fields)}")
            canonical, mirrored = fields
            try:
                check_relative_path(canonical, what="path")
                check_relative_path(mirrored, what="mirror_path")
            except ConfigError as exc:
                raise InputFormatError(f"{where}: {exc}") from None
            if canonical in layout:
                raise InputFormatError(f"{where}: duplicate path {canonical!r} (first at line {lines[canonical]})")
            layout[canonical] = mirrored
            lines[canonical] = lineno
    if not header_seen:
        raise InputFormatError(f"{path}: empty layout (no header line)")
    return layout


def fetch_from_mirror(
    mirror: Mirror,
    canonical: str,
    dest: str | os.PathLike[str],
    *,
    label: str,
    sha256: str | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
    validate: Callable[[Path], None] | None = None,
) -> FetchResult | None:
    """Fetch `canonical` from the mirror into `dest`, or None when the mirror does not have it.

    A file the mirror has but that fails verification is an error, not a reason to go upstream: a broken
    mirror should be fixed, not silently bypassed.
    """
    for source in mirror.candidates(canonical):
        try:
            return fetch(source, dest, label=f"{label} (mirror)", sha256=sha256, policy=policy, validate=validate)
        except NotFoundError:
            continue
    log.info("%s: mirror %s has no %s", label, mirror.root, canonical)
    return None


def missing_from_mirror(mirror: Mirror, canonical: str, exc: NetworkError) -> NetworkError:
    """The error for "not in the mirror, and upstream is unreachable" (keeps the connection hint at the end)."""
    return NetworkError(f"mirror {mirror.root} has no {canonical}, and the upstream download failed: {exc}")
