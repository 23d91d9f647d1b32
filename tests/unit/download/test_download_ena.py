from __future__ import annotations

import gzip
import hashlib
import os
import sys
from pathlib import Path

import pytest

from genolm.download import Mirror, fetch_run
from genolm.errors import ChecksumError, ConfigError, NetworkError, NotFoundError
from genolm.seqio import read_fastq

FILEREPORT_PATH = "/ena/portal/api/filereport"  # served by conftest.py
RUN = "SRR532173"


def _fastq(mate: int, n: int = 30) -> bytes:
    reads = (f"@{RUN}.{i}/{mate}\nACGTTGCA\n+\nIIIIIIII\n" for i in range(n))
    return gzip.compress("".join(reads).encode(), mtime=0)


def _portal(server) -> str:
    return server.url("/ena/portal/api")


def _names(path: Path) -> list[str]:
    return [record.name for record in read_fastq(path)]


def test_paired_run_from_ena(server, policy, tmp_path: Path, leftovers) -> None:
    server.add_run(RUN, [_fastq(1), _fastq(2)], "PAIRED")
    dests = [tmp_path / f"{RUN}_1.fastq.gz", tmp_path / f"{RUN}_2.fastq.gz"]
    results = fetch_run(RUN, dests, policy=policy, portal=_portal(server))
    assert [path.read_bytes() for path in dests] == [_fastq(1), _fastq(2)]
    assert [result.path for result in results] == dests
    report = server.hits(FILEREPORT_PATH)[0].query
    assert report == {
        "accession": RUN,
        "result": "read_run",
        "fields": "run_accession,fastq_ftp,fastq_md5,fastq_bytes,library_layout",
        "format": "tsv",
    }
    assert leftovers(tmp_path) == []


def test_wrong_md5_leaves_neither_mate(server, policy, tmp_path: Path, leftovers) -> None:
    first, second = _fastq(1), _fastq(2)
    bad = "f" * 32
    server.add_run(RUN, [first, second], "PAIRED", md5s=[hashlib.md5(first).hexdigest(), bad])
    dests = [tmp_path / "r_1.fastq.gz", tmp_path / "r_2.fastq.gz"]
    with pytest.raises(
        ChecksumError, match=f"md5 mismatch: expected {bad}, observed {hashlib.md5(second).hexdigest()}"
    ):
        fetch_run(RUN, dests, policy=policy, portal=_portal(server))
    assert list(tmp_path.iterdir()) == [] and leftovers(tmp_path) == []
    assert len(server.hits(f"/fastq/{RUN}/{RUN}_2.fastq.gz")) == 5  # fresh retries before giving up


def test_layout_must_match_the_outputs(server, policy, tmp_path: Path) -> None:
    server.add_run(RUN, [_fastq(1)], "SINGLE")
    with pytest.raises(ConfigError, match=f"run {RUN} is single-end but 2 outputs were requested"):
        fetch_run(RUN, [tmp_path / "a.fastq.gz", tmp_path / "b.fastq.gz"], policy=policy, portal=_portal(server))
    fetch_run(RUN, [tmp_path / f"{RUN}.fastq.gz"], policy=policy, portal=_portal(server))
    assert (tmp_path / f"{RUN}.fastq.gz").read_bytes() == _fastq(1)


def test_unknown_run(server, policy, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="ENA: unknown run accession 'SRR0000001'"):
        fetch_run(
            "SRR0000001", [tmp_path / "x.fastq.gz"], policy=policy, portal=_portal(server), fasterq_dump="absent-x"
        )
    with pytest.raises(ConfigError):
        fetch_run("SRR532173;ls", [tmp_path / "x.fastq.gz"], policy=policy, portal=_portal(server))


def test_flaky_fastq_download_resumes(server, policy, tmp_path: Path) -> None:
    data = _fastq(1, n=3000)
    server.add_run(RUN, [data], "SINGLE")
    path = f"/fastq/{RUN}/{RUN}.fastq.gz"
    server.faults[path] = [("status", 503), ("truncate", 5000)]
    fetch_run(RUN, [tmp_path / "r.fastq.gz"], policy=policy, portal=_portal(server))
    assert [hit.headers.get("Range") for hit in server.hits(path)] == [None, None, "bytes=5000-"]
    assert (tmp_path / "r.fastq.gz").read_bytes() == data


def test_max_reads_keeps_pairs_in_sync(server, policy, tmp_path: Path) -> None:
    server.add_run(RUN, [_fastq(1), _fastq(2)], "PAIRED")
    dests = [tmp_path / "a_1.fastq.gz", tmp_path / "a_2.fastq.gz"]
    fetch_run(RUN, dests, policy=policy, portal=_portal(server), max_reads=7)
    one, two = _names(dests[0]), _names(dests[1])
    assert one == [f"{RUN}.{i}/1" for i in range(7)] and two == [f"{RUN}.{i}/2" for i in range(7)]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["a_1.fastq.gz", "a_2.fastq.gz"]
    with pytest.raises(ConfigError, match="max_reads"):
        fetch_run(RUN, dests, policy=policy, portal=_portal(server), max_reads=0)


def test_fasterq_dump_fallback(server, policy, tmp_path: Path, monkeypatch, closed_port) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "fasterq-dump"
    script.write_text(
        f"#!{sys.executable}\n"
        "import sys, pathlib\n"
        "args = sys.argv[1:]\n"
        "assert args[0] == '--split-files' and args[1] == '--outdir', args\n"
        "out, run = pathlib.Path(args[2]), args[3]\n"
        "for mate in (1, 2):\n"
        "    reads = ''.join(f'@{run}.{i}/{mate}\\nACGT\\n+\\nIIII\\n' for i in range(5))\n"
        "    (out / f'{run}_{mate}.fastq').write_text(reads)\n"
    )
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    dests = [tmp_path / "out" / "r_1.fastq.gz", tmp_path / "out" / "r_2.fastq.gz"]
    offline = f"http://127.0.0.1:{closed_port}/ena/portal/api"  # ENA unreachable
    results = fetch_run(RUN, dests, policy=policy, portal=offline, max_reads=3)
    assert _names(dests[1]) == [f"{RUN}.{i}/2" for i in range(3)]
    assert results[0].url == f"fasterq-dump:{RUN}"
    assert sorted(path.name for path in dests[0].parent.iterdir()) == ["r_1.fastq.gz", "r_2.fastq.gz"]


def test_no_network_and_no_fasterq_dump(policy, tmp_path: Path, closed_port) -> None:
    offline = f"http://127.0.0.1:{closed_port}/ena/portal/api"
    with pytest.raises(NetworkError, match=f"has no sra/{RUN}/{RUN}_1.fastq.gz") as info:
        fetch_run(
            RUN,
            [tmp_path / "a_1.fastq.gz", tmp_path / "a_2.fastq.gz"],
            mirror=Mirror(str(tmp_path / "mirror")),
            policy=policy,
            portal=offline,
            fasterq_dump="absent-fasterq-dump",
        )
    assert str(info.value).endswith("set `mirror` or check your connection")


@pytest.mark.shared_data
def test_real_run_from_ena_and_from_a_url_mirror(shared_data: Path, server, policy, tmp_path: Path) -> None:
    folder = shared_data / "fastq_small" / "palidis_SRR532173_subset"
    mates = [(folder / "test_1.fastq.gz").read_bytes(), (folder / "test_2.fastq.gz").read_bytes()]
    server.add_run(RUN, mates, "PAIRED")
    dests = [tmp_path / "ena" / f"{RUN}_1.fastq.gz", tmp_path / "ena" / f"{RUN}_2.fastq.gz"]
    fetch_run(RUN, dests, policy=policy, portal=_portal(server), max_reads=100)
    one, two = _names(dests[0]), _names(dests[1])
    assert len(one) == len(two) == 100
    assert [name[:-2] for name in one] == [name[:-2] for name in two]

    for mate, data in enumerate(mates, start=1):
        server.files[f"/mirror/sra/{RUN}/{RUN}_{mate}.fastq.gz"] = data
    server.requests.clear()
    mirrored = [tmp_path / "m" / f"{RUN}_1.fastq.gz", tmp_path / "m" / f"{RUN}_2.fastq.gz"]
    fetch_run(RUN, mirrored, mirror=Mirror(server.url("/mirror")), policy=policy, portal="http://127.0.0.1:9/api")
    assert [path.read_bytes() for path in mirrored] == mates
    assert server.hits(FILEREPORT_PATH) == []
