from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path

import pytest

from genolm.download import RetryPolicy, fetch, fetch_bytes
from genolm.errors import ChecksumError, DownloadError, NetworkError, NotFoundError

DATA = b"".join(b">seq%d\nACGTACGTTTGACCA\n" % i for i in range(5000))  # ~110 kB
SHA = hashlib.sha256(DATA).hexdigest()


def test_plain_download(server, policy, tmp_path: Path, leftovers) -> None:
    server.files["/data.fa"] = DATA
    result = fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=policy)
    assert (tmp_path / "data.fa").read_bytes() == DATA
    assert (result.sha256, result.md5, result.bytes) == (SHA, hashlib.md5(DATA).hexdigest(), len(DATA))
    assert leftovers(tmp_path) == []


def test_server_errors_are_retried_with_backoff(server, policy, tmp_path: Path) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("status", 500), ("status", 503), ("status", 429)]
    fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=policy)
    assert len(server.hits("/data.fa")) == 4
    assert policy.sleeps == [1.0, 2.0, 4.0]


def test_server_errors_exhaust_retries(server, tmp_path: Path, leftovers) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("status", 500)] * 10
    quick = RetryPolicy(retries=2, sleep=lambda s: None)
    with pytest.raises(DownloadError, match=r"test file: .*/data.fa: gave up after 3 attempts \(last: HTTP 500"):
        fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", policy=quick)
    assert len(server.hits("/data.fa")) == 3
    assert leftovers(tmp_path) == []


def test_not_found_is_not_retried(server, policy, tmp_path: Path, leftovers) -> None:
    with pytest.raises(NotFoundError, match=r"test file: .*/missing\.fa: HTTP 404"):
        fetch(server.url("/missing.fa"), tmp_path / "x.fa", label="test file", policy=policy)
    assert len(server.hits("/missing.fa")) == 1
    assert not (tmp_path / "x.fa").exists() and leftovers(tmp_path) == []


def test_other_client_errors_are_final(server, policy, tmp_path: Path) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("status", 403)]
    with pytest.raises(DownloadError, match="HTTP 403") as info:
        fetch(server.url("/data.fa"), tmp_path / "x.fa", label="test file", policy=policy)
    assert not isinstance(info.value, NotFoundError)
    assert len(server.hits("/data.fa")) == 1


def test_truncated_body_resumes_with_range(server, policy, tmp_path: Path, leftovers) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("truncate", 40_000)]
    fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=policy)
    first, second = server.hits("/data.fa")
    assert "Range" not in first.headers
    assert second.headers["Range"] == "bytes=40000-"  # the first 40 kB were not sent again
    assert (tmp_path / "data.fa").read_bytes() == DATA
    assert leftovers(tmp_path) == []


def test_server_ignoring_range_restarts_from_zero(server, policy, tmp_path: Path) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("truncate", 40_000)]
    server.ignore_range.add("/data.fa")
    fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=policy)
    assert server.hits("/data.fa")[1].headers["Range"] == "bytes=40000-"
    assert (tmp_path / "data.fa").read_bytes() == DATA  # a 200 answer replaced, not appended


def test_slow_response_times_out_and_is_retried(server, tmp_path: Path) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("sleep", 1.0)]
    sleeps: list[float] = []
    quick = RetryPolicy(timeout_s=0.3, sleep=sleeps.append)
    fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=quick)
    assert len(server.hits("/data.fa")) == 2 and sleeps == [1.0]


def test_no_network_raises_network_error(closed_port: int, policy, tmp_path: Path, leftovers) -> None:
    with pytest.raises(NetworkError, match="in 5 attempts") as info:
        fetch(f"http://127.0.0.1:{closed_port}/x.fa", tmp_path / "x.fa", label="test file", policy=policy)
    assert str(info.value).endswith("set `mirror` or check your connection")
    assert "test file" in str(info.value) and "/x.fa" in str(info.value)
    assert leftovers(tmp_path) == []


def test_interrupted_download_keeps_part_for_a_verified_resume(server, tmp_path: Path) -> None:
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("truncate", 30_000)]
    once = RetryPolicy(retries=0, sleep=lambda s: None)
    with pytest.raises(NetworkError, match="short body"):
        fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=once)
    assert (tmp_path / "data.fa.part").stat().st_size == 30_000 and not (tmp_path / "data.fa").exists()
    fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=SHA, policy=once)
    assert server.hits("/data.fa")[1].headers["Range"] == "bytes=30000-"
    assert (tmp_path / "data.fa").read_bytes() == DATA and not (tmp_path / "data.fa.part").exists()


def test_checksum_mismatch_retries_fresh_then_fails_clean(server, policy, tmp_path: Path, leftovers) -> None:
    server.files["/data.fa"] = DATA
    wrong = "0" * 64
    with pytest.raises(ChecksumError) as info:
        fetch(server.url("/data.fa"), tmp_path / "data.fa", label="test file", sha256=wrong, policy=policy)
    message = str(info.value)
    assert "test file" in message and f"expected {wrong}" in message and f"observed {SHA}" in message
    hits = server.hits("/data.fa")
    assert len(hits) == 5 and all("Range" not in hit.headers for hit in hits)
    assert leftovers(tmp_path) == [] and not (tmp_path / "data.fa").exists()


def test_md5_checks_the_raw_bytes(server, policy, tmp_path: Path) -> None:
    packed = gzip.compress(DATA, mtime=0)
    server.files["/data.fa.gz"] = packed
    result = fetch(
        server.url("/data.fa.gz"), tmp_path / "d.fa", label="t", md5=hashlib.md5(packed).hexdigest(), policy=policy
    )
    assert result.sha256 == SHA
    with pytest.raises(ChecksumError, match="md5 mismatch"):
        fetch(server.url("/data.fa.gz"), tmp_path / "e.fa", label="t", md5=hashlib.md5(DATA).hexdigest(), policy=policy)


def test_stored_form_follows_dest_and_sha256_is_of_content(server, policy, tmp_path: Path) -> None:
    server.files["/plain.fa"] = DATA
    server.files["/packed.fa.gz"] = gzip.compress(DATA)
    cases = [("/plain.fa", "a.fa"), ("/plain.fa", "b.fa.gz"), ("/packed.fa.gz", "c.fa"), ("/packed.fa.gz", "d.fa.gz")]
    for path, name in cases:
        result = fetch(server.url(path), tmp_path / name, label="t", sha256=SHA, policy=policy)
        stored = (tmp_path / name).read_bytes()
        assert stored[:2] == b"\x1f\x8b" if name.endswith(".gz") else stored == DATA
        assert result.sha256 == SHA
    assert gzip.decompress((tmp_path / "b.fa.gz").read_bytes()) == DATA


def test_corrupt_gzip_is_detected(server, policy, tmp_path: Path, leftovers) -> None:
    server.files["/cut.fa.gz"] = gzip.compress(DATA)[:-100]
    with pytest.raises(DownloadError, match=r"t: .*/cut.fa.gz: truncated or corrupt gzip"):
        fetch(server.url("/cut.fa.gz"), tmp_path / "cut.fa", label="t", policy=policy)
    assert leftovers(tmp_path) == [] and not (tmp_path / "cut.fa").exists()


def test_local_path_and_file_url(tmp_path: Path, policy) -> None:
    source = tmp_path / "src.fa"
    source.write_bytes(DATA)
    fetch(str(source), tmp_path / "out" / "a.fa.gz", label="t", sha256=SHA, policy=policy)
    fetch(source.as_uri(), tmp_path / "out" / "b.fa", label="t", sha256=SHA, policy=policy)
    assert (tmp_path / "out" / "b.fa").read_bytes() == DATA
    with pytest.raises(NotFoundError, match="no such file"):
        fetch(str(tmp_path / "absent.fa"), tmp_path / "c.fa", label="t", policy=policy)
    with pytest.raises(DownloadError, match="unsupported URL scheme"):
        fetch("ftp://example.org/x", tmp_path / "d.fa", label="t", policy=policy)


def test_api_key_is_redacted_everywhere(server, policy, tmp_path: Path, closed_port: int, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    server.files["/data.fa"] = DATA
    server.faults["/data.fa"] = [("status", 500)]
    fetch(server.url("/data.fa?api_key=s3cr3tkey&x=1"), tmp_path / "a.fa", label="t", policy=policy)
    with pytest.raises(NotFoundError) as missing:
        fetch(server.url("/nope?api_key=s3cr3tkey"), tmp_path / "b.fa", label="t", policy=policy)
    with pytest.raises(NetworkError) as offline:
        fetch(f"http://127.0.0.1:{closed_port}/x?api_key=s3cr3tkey", tmp_path / "c.fa", label="t", policy=policy)
    assert server.hits("/data.fa")[0].query["api_key"] == "s3cr3tkey"  # it is still sent
    for text in (str(missing.value), str(offline.value), caplog.text):
        assert "s3cr3tkey" not in text
    assert "api_key=REDACTED" in str(missing.value)


def test_fetch_bytes(server, policy) -> None:
    server.files["/api"] = b"a\tb\n1\t2\n"
    assert fetch_bytes(server.url("/api"), label="api", policy=policy) == b"a\tb\n1\t2\n"
    server.faults["/api"] = [("status", 400)]
    with pytest.raises(NotFoundError):
        fetch_bytes(server.url("/api"), label="api", policy=policy, not_found=(400,))
