from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from genolm.download import check_nucleotide_accession, check_relative_path, check_run_accession
from genolm.errors import ConfigError


@pytest.mark.parametrize(
    "accession", ["NC_000913.3", "NZ_CP012345.1", "U00096.3", "CP000001.1", "AP012345", "NC_018659", "AAAA01000001"]
)
def test_nucleotide_accessions_accepted(accession: str) -> None:
    assert check_nucleotide_accession(accession) == accession


@pytest.mark.parametrize(
    "accession",
    [
        "",
        "NC_000913.3;rm -rf /",
        "../x",
        "NC_000913.3 ",
        " NC_000913.3",
        "NC_000913..3",
        "NC_000913.3/../x",
        "nc_000913.3",
        "NP_000001.1",  # a protein
        "SRR532173",
        "NC_000913.3\n",
        "$(id)",
    ],
)
def test_nucleotide_accessions_rejected(accession: str) -> None:
    with pytest.raises(ConfigError, match="nucleotide accession"):
        check_nucleotide_accession(accession)


def test_run_accessions() -> None:
    for accession in ("SRR532173", "ERR000001", "DRR1234567890"):
        assert check_run_accession(accession) == accession
    for bad in ("", "SRR123", "SRR532173;ls", "SRX532173", "srr532173", "SRR532173 ", "../SRR532173"):
        with pytest.raises(ConfigError, match="run accession"):
            check_run_accession(bad)


def test_relative_paths() -> None:
    assert check_relative_path("datasets/x/y.fa") == PurePosixPath("datasets/x/y.fa")
    for bad in ("", "/etc/passwd", "../x", "a/../b", "a//b", "a/", "./a", "a\\b", "a\nb"):
        with pytest.raises(ConfigError, match="mirror_path"):
            check_relative_path(bad, what="mirror_path")
