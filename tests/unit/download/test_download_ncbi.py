from __future__ import annotations

import gzip
import logging
from pathlib import Path

import pytest
from Bio import Entrez

from genolm.download import Mirror, fetch_genome
from genolm.errors import ConfigError, InputFormatError, NetworkError, NotFoundError

EFETCH_PATH = "/entrez/eutils/efetch.fcgi"  # served by conftest.py

ACC = "NC_018659.1"
FASTA = b">NC_018659.1 toy plasmid\nACGTACGTAC\nGGTT\n"
GENBANK = (
    b"LOCUS       NC_018659                 14 bp    DNA     circular CON 08-MAR-2023\n"
    b"DEFINITION  toy plasmid.\nACCESSION   NC_018659\nVERSION     NC_018659.1\n"
    b"FEATURES             Location/Qualifiers\n     source          1..14\n"
    b"CONTIG      join(CP003290.1:1..14)\n//\n"
)


@pytest.fixture
def ncbi(server, entrez_to):
    server.genomes[ACC] = {"fasta": FASTA, "gbwithparts": GENBANK}
    entrez_to(server.base)
    return server


def test_fetch_genome_through_entrez(ncbi, policy, tmp_path: Path, leftovers) -> None:
    settings = (Entrez.max_tries, Entrez.api_key)
    fasta, genbank = fetch_genome(ACC, tmp_path / "g.fasta", tmp_path / "g.gb.gz", policy=policy)
    assert (tmp_path / "g.fasta").read_bytes() == FASTA
    assert gzip.decompress((tmp_path / "g.gb.gz").read_bytes()) == GENBANK
    assert fasta.path == tmp_path / "g.fasta" and "rettype=gbwithparts" in genbank.url
    hits = ncbi.hits(EFETCH_PATH)
    assert [(hit.query["db"], hit.query["id"], hit.query["rettype"], hit.query["retmode"]) for hit in hits] == [
        ("nuccore", ACC, "fasta", "text"),
        ("nuccore", ACC, "gbwithparts", "text"),
    ]
    assert hits[0].query["email"] == "genolm-tests@example.org"
    assert (Entrez.max_tries, Entrez.api_key) == settings  # put back after the call
    assert leftovers(tmp_path) == []


def test_unversioned_accession_matches_any_version(ncbi, policy, tmp_path: Path) -> None:
    ncbi.genomes["NC_018659"] = ncbi.genomes[ACC]
    fetch_genome("NC_018659", tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)


def test_unknown_accession(ncbi, policy, tmp_path: Path, leftovers) -> None:
    with pytest.raises(NotFoundError, match=r"NCBI nuccore: unknown accession 'NC_000001\.1'"):
        fetch_genome("NC_000001.1", tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)
    assert len(ncbi.hits(EFETCH_PATH)) == 1  # not retried
    assert leftovers(tmp_path) == [] and list(tmp_path.iterdir()) == []


def test_server_errors_retried_and_api_key_never_shown(ncbi, policy, tmp_path: Path, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("NCBI_API_KEY", "k3y-s3cr3t")
    ncbi.faults[EFETCH_PATH] = [("status", 502), ("status", 429)]
    fetch_genome(ACC, tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)
    hits = ncbi.hits(EFETCH_PATH)
    assert len(hits) == 4 and hits[0].query["api_key"] == "k3y-s3cr3t"
    with pytest.raises(NotFoundError) as info:
        fetch_genome("NC_000002.1", tmp_path / "h.fasta", tmp_path / "h.gb", policy=policy)
    assert "k3y-s3cr3t" not in str(info.value) and "k3y-s3cr3t" not in caplog.text
    assert "attempt 1/5 failed: HTTP 502" in caplog.text


def test_wrong_record_is_rejected(ncbi, policy, tmp_path: Path, leftovers) -> None:
    ncbi.genomes["NC_000913.3"] = ncbi.genomes[ACC]
    with pytest.raises(InputFormatError, match=r"expected one record for 'NC_000913.3', got \['NC_018659.1'\]"):
        fetch_genome("NC_000913.3", tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)
    assert list(tmp_path.iterdir()) == []


def test_truncated_genbank_is_rejected(ncbi, policy, tmp_path: Path) -> None:
    ncbi.genomes[ACC]["gbwithparts"] = GENBANK[:-3]
    with pytest.raises(InputFormatError, match="does not end with '//'"):
        fetch_genome(ACC, tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)
    assert list(tmp_path.iterdir()) == []  # the FASTA is not left alone either


def test_injection_rejected_before_any_request(ncbi, policy, tmp_path: Path) -> None:
    for bad in ("NC_000913.3;rm -rf /", "../x", ""):
        with pytest.raises(ConfigError):
            fetch_genome(bad, tmp_path / "g.fasta", tmp_path / "g.gb", policy=policy)
    assert ncbi.requests == []


def test_mirror_without_the_genome_and_no_network(server, entrez_to, policy, tmp_path: Path, closed_port) -> None:
    entrez_to(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(NetworkError, match=f"has no genomes/{ACC}.fasta") as info:
        fetch_genome(ACC, tmp_path / "g.fasta", tmp_path / "g.gb", mirror=Mirror(str(tmp_path / "m")), policy=policy)
    assert str(info.value).endswith("set `mirror` or check your connection")


@pytest.mark.shared_data
def test_real_plasmid_through_entrez_and_mirror(shared_data: Path, server, entrez_to, policy, tmp_path: Path) -> None:
    folder = shared_data / "is_scan_eval" / "ecoli_amr_plasmids"
    server.genomes[ACC] = {
        "fasta": (folder / "NC_018659.fasta").read_bytes(),
        "gbwithparts": (folder / "NC_018659.gb").read_bytes(),  # a CON record: features, no ORIGIN
    }
    entrez_to(server.base)
    fetch_genome(ACC, tmp_path / "a.fasta", tmp_path / "a.gb", policy=policy)
    assert (tmp_path / "a.gb").read_bytes() == (folder / "NC_018659.gb").read_bytes()

    mirror_root = tmp_path / "mirror" / "genomes"
    mirror_root.mkdir(parents=True)
    (mirror_root / f"{ACC}.fasta.gz").write_bytes(gzip.compress((folder / "NC_018659.fasta").read_bytes()))
    (mirror_root / f"{ACC}.gb").write_bytes((folder / "NC_018659.gb").read_bytes())
    server.requests.clear()
    fasta, _ = fetch_genome(ACC, tmp_path / "b.fasta", tmp_path / "b.gb", mirror=Mirror(str(tmp_path / "mirror")))
    assert server.requests == []
    assert fasta.sha256 == "5b1f5b2c59e6d27a56cb352b78e1a4048b1a1489f9c8bdb99f149a726a77b19b"  # config/datasets.tsv
