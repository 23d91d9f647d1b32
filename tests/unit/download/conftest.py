"""A loopback HTTP server standing in for a file host, NCBI E-utilities and the ENA portal, with fault injection.

Tests register content (``server.files``), E-utilities records (``server.genomes``) and ENA file-report rows
(``server.runs``), queue faults per path (``server.faults``) and read back every request (``server.requests``).
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from genolm.download import RetryPolicy

EFETCH_PATH = "/entrez/eutils/efetch.fcgi"
FILEREPORT_PATH = "/ena/portal/api/filereport"
NCBI_HOST = "https://eutils.ncbi.nlm.nih.gov"


@dataclass
class Request:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class ServerState:
    base: str = ""
    files: dict[str, bytes] = field(default_factory=dict)
    genomes: dict[str, dict[str, bytes]] = field(default_factory=dict)  # id -> rettype -> body
    runs: dict[str, dict[str, str]] = field(default_factory=dict)  # accession -> file-report row
    # path -> queued faults, consumed one per request: ("status", code), ("truncate", n), ("sleep", s)
    faults: dict[str, list[tuple]] = field(default_factory=lambda: defaultdict(list))
    ignore_range: set[str] = field(default_factory=set)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        for store in (self.files, self.genomes, self.runs, self.faults):
            store.clear()
        self.ignore_range.clear()
        self.requests.clear()

    def url(self, path: str) -> str:
        return self.base + path

    def hits(self, path: str) -> list[Request]:
        return [request for request in self.requests if request.path == path]

    def add_run(self, accession: str, files: list[bytes], layout: str, md5s: list[str] | None = None) -> None:
        """Serve FASTQ bytes under /fastq/ and list them (host/path, no scheme, as ENA does) in the file report."""
        host = self.base.split("://", 1)[1]
        names = [f"{accession}_{i + 1}.fastq.gz" for i in range(len(files))] if layout == "PAIRED" else []
        names = names or [f"{accession}.fastq.gz"]
        for name, data in zip(names, files, strict=True):
            self.files[f"/fastq/{accession}/{name}"] = data
        self.runs[accession] = {
            "run_accession": accession,
            "fastq_ftp": ";".join(f"{host}/fastq/{accession}/{name}" for name in names),
            "fastq_md5": ";".join(md5s or [hashlib.md5(data).hexdigest() for data in files]),
            "fastq_bytes": ";".join(str(len(data)) for data in files),
            "library_layout": layout,
        }


class _Handler(BaseHTTPRequestHandler):
    state: ServerState

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None, send_length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body) if send_length is None else send_length))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parsed.query))
        state = self.state
        with state.lock:
            state.requests.append(Request(parsed.path, query, dict(self.headers)))
            queue = state.faults.get(parsed.path)
            fault = queue.pop(0) if queue else None
        truncate = None
        if fault is not None:
            kind, value = fault
            if kind == "status":
                self._send(value, f"injected HTTP {value}\n".encode(), {"Retry-After": "0"})
                return
            if kind == "sleep":
                time.sleep(value)
            if kind == "truncate":
                truncate = value
        if parsed.path == EFETCH_PATH:
            body = state.genomes.get(query.get("id", ""), {}).get(query.get("rettype", ""))
            if body is None:
                self._send(400, b"Error: F a i l e d  t o  u n d e r s t a n d  i d\n")
            else:
                self._send(200, body)
            return
        if parsed.path == FILEREPORT_PATH:
            columns = query.get("fields", "").split(",")
            lines = ["\t".join(columns)]
            row = state.runs.get(query.get("accession", ""))
            if row is not None:
                lines.append("\t".join(row.get(column, "") for column in columns))
            self._send(200, ("\n".join(lines) + "\n").encode())
            return
        data = state.files.get(parsed.path)
        if data is None:
            self._send(404, b"not found\n")
            return
        status, headers, body = 200, {"Accept-Ranges": "bytes"}, data
        match = self.headers.get("Range", "")
        if match.startswith("bytes=") and parsed.path not in state.ignore_range:
            start = int(match[len("bytes=") :].split("-")[0])
            status, body = 206, data[start:]
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if truncate is not None:
            # Promise the whole body, send part of it, then hang up.
            self._send(status, body[:truncate], headers, send_length=len(body))
            self.close_connection = True
            return
        self._send(status, body, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # clients that time out leave broken pipes
        pass


@pytest.fixture(scope="session")
def _server_state():
    state = ServerState()
    handler = type("Handler", (_Handler,), {"state": state})
    httpd = _Server(("127.0.0.1", 0), handler)
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(_server_state: ServerState) -> ServerState:
    _server_state.reset()
    return _server_state


@pytest.fixture
def policy() -> RetryPolicy:
    """Four quick retries that never sleep; the sleeps asked for are recorded in `policy.sleeps`."""
    sleeps: list[float] = []
    result = RetryPolicy(retries=4, backoff_s=1.0, max_backoff_s=30.0, timeout_s=5.0, sleep=sleeps.append)
    object.__setattr__(result, "sleeps", sleeps)
    return result


@pytest.fixture
def closed_port() -> int:
    """A loopback port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def entrez_to(monkeypatch: pytest.MonkeyPatch):
    """Test-only: a callable that sends Bio.Entrez's hard-coded NCBI URLs to another base URL."""
    import Bio.Entrez

    real = urllib.request.urlopen
    monkeypatch.setenv("NCBI_EMAIL", "genolm-tests@example.org")
    monkeypatch.delenv("NCBI_API_KEY", raising=False)

    def redirect(base: str) -> None:
        def urlopen(request, *args, **kwargs):
            url = request.full_url.replace(NCBI_HOST, base)
            rewritten = urllib.request.Request(url, data=request.data, method=request.get_method())
            return real(rewritten, *args, **kwargs)

        monkeypatch.setattr(Bio.Entrez, "urlopen", urlopen)

    return redirect


@pytest.fixture
def leftovers():
    """Names of temporary or partial files left in a folder (none expected after a clean failure)."""

    def find(folder: Path) -> list[str]:
        return sorted(path.name for path in folder.iterdir() if path.name.startswith(".") or path.suffix == ".part")

    return find
