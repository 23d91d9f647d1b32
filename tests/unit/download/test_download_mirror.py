from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pytest

from genolm.download import DatasetFile, Mirror, fetch_dataset_file, load_layout, read_sheet
from genolm.errors import ChecksumError, ConfigError, InputFormatError, NetworkError

DATA = b">a\nACGT\n>b\nGGCC\n"
SHA = hashlib.sha256(DATA).hexdigest()
HEADER = "dataset\tfile\turl\tsha256\tdescription\tcitation\n"


def _entry(url: str, sha256: str | None = SHA) -> DatasetFile:
    return DatasetFile("toy", "x.fa", url, sha256, "a toy file", "nobody 2024")


def test_local_mirror_maps_gz_both_ways(tmp_path: Path) -> None:
    (tmp_path / "datasets" / "toy").mkdir(parents=True)
    (tmp_path / "datasets" / "toy" / "x.fa.gz").write_bytes(gzip.compress(DATA))
    (tmp_path / "datasets" / "toy" / "y.fa").write_bytes(DATA)
    mirror = Mirror(str(tmp_path))
    assert mirror.locate("datasets/toy/x.fa") == str(tmp_path / "datasets/toy/x.fa.gz")
    assert mirror.locate("datasets/toy/y.fa.gz") == str(tmp_path / "datasets/toy/y.fa")
    assert mirror.locate("datasets/toy/z.fa") is None
    assert Mirror(tmp_path.as_uri()).locate("datasets/toy/y.fa") == str(tmp_path / "datasets/toy/y.fa")
    with pytest.raises(ConfigError):
        mirror.locate("../etc/passwd")


def test_layout_tsv(tmp_path: Path) -> None:
    layout_file = tmp_path / "layout.tsv"
    layout_file.write_text("# site layout\npath\tmirror_path\ndatasets/toy/x.fa\tlegacy/X.FA\n")
    layout = load_layout(layout_file)
    assert layout == {"datasets/toy/x.fa": "legacy/X.FA"}
    (tmp_path / "legacy").mkdir()
    (tmp_path / "legacy" / "X.FA").write_bytes(DATA)
    mirror = Mirror(str(tmp_path), layout)
    assert mirror.locate("datasets/toy/x.fa") == str(tmp_path / "legacy" / "X.FA")
    assert mirror.mirror_path("datasets/toy/other.fa") == "datasets/toy/other.fa"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("path\tmirror_path\na.fa\t../b.fa\n", "line 2: mirror_path"),
        ("path\tmirror_path\n/abs\tb.fa\n", "line 2: path"),
        ("path\tmirror_path\na.fa\tb.fa\na.fa\tc.fa\n", "line 3: duplicate path"),
        ("path\tmirror\n", "line 1: expected the header"),
        ("path\tmirror_path\na.fa\n", "line 2: expected 2"),
    ],
)
def test_layout_errors_name_file_and_line(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "layout.tsv").write_text(text)
    with pytest.raises(InputFormatError, match=problem) as info:
        load_layout(tmp_path / "layout.tsv")
    assert str(tmp_path / "layout.tsv") in str(info.value)


def test_dataset_file_from_local_mirror_and_upstream(server, policy, tmp_path: Path, closed_port: int) -> None:
    root = tmp_path / "mirror"
    (root / "datasets" / "toy").mkdir(parents=True)
    (root / "datasets" / "toy" / "x.fa.gz").write_bytes(gzip.compress(DATA))
    offline = _entry(f"http://127.0.0.1:{closed_port}/x.fa")
    result = fetch_dataset_file(offline, tmp_path / "out" / "x.fa", mirror=Mirror(str(root)), policy=policy)
    assert (tmp_path / "out" / "x.fa").read_bytes() == DATA and result.sha256 == SHA

    server.files["/x.fa"] = DATA
    fetch_dataset_file(_entry(server.url("/x.fa")), tmp_path / "up.fa.gz", mirror=Mirror(str(root / "empty")))
    assert gzip.decompress((tmp_path / "up.fa.gz").read_bytes()) == DATA

    with pytest.raises(NetworkError, match=r"has no datasets/toy/x\.fa") as info:
        fetch_dataset_file(offline, tmp_path / "z.fa", mirror=Mirror(str(root / "empty")), policy=policy)
    assert str(info.value).endswith("set `mirror` or check your connection")


def test_broken_mirror_copy_is_an_error(tmp_path: Path, policy) -> None:
    (tmp_path / "datasets" / "toy").mkdir(parents=True)
    (tmp_path / "datasets" / "toy" / "x.fa").write_bytes(DATA + b">c\nAAAA\n")
    with pytest.raises(ChecksumError, match="dataset toy/x.fa .mirror.: .*expected " + SHA):
        fetch_dataset_file(_entry("https://example.org/x.fa"), tmp_path / "x.fa", mirror=Mirror(str(tmp_path)))


def test_url_mirror_tries_the_other_compressed_form(server, policy, tmp_path: Path) -> None:
    server.files["/mirror/datasets/toy/x.fa.gz"] = gzip.compress(DATA)
    mirror = Mirror(server.url("/mirror/"))
    assert mirror.locate("datasets/toy/x.fa") == server.url("/mirror/datasets/toy/x.fa")
    fetch_dataset_file(_entry("https://upstream.invalid/x.fa"), tmp_path / "x.fa", mirror=mirror, policy=policy)
    assert (tmp_path / "x.fa").read_bytes() == DATA
    assert [hit.path for hit in server.requests] == ["/mirror/datasets/toy/x.fa", "/mirror/datasets/toy/x.fa.gz"]


def test_read_sheet(tmp_path: Path) -> None:
    sheet = tmp_path / "datasets.tsv"
    sheet.write_text(
        f"# comment\n{HEADER}toy\tsub/x.fa\thttps://h.org/x.fa\t{SHA}\td\tc\nfree\ty.fa\thttp://h/y\tunpinned\td\tc\n"
    )
    first, second = read_sheet(sheet)
    assert first == DatasetFile("toy", "sub/x.fa", "https://h.org/x.fa", SHA, "d", "c")
    assert first.canonical == "datasets/toy/sub/x.fa" and second.sha256 is None
    assert DatasetFile("free", "y.fa", "http://h/y", "unpinned", "d", "c") == second


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (f"Toy\tx.fa\thttps://h/x\t{SHA}\td\tc", "dataset 'Toy'"),
        (f"toy\t../x.fa\thttps://h/x\t{SHA}\td\tc", "file"),
        (f"toy\tx.fa\tftp://h/x\t{SHA}\td\tc", "must be an http"),
        (f"toy\tx.fa\tfile:///etc/passwd\t{SHA}\td\tc", "must be an http"),
        ("toy\tx.fa\thttps://h/x\tabc\td\tc", "64 lower-case hex"),
        (f"toy\tx.fa\thttps://h/x\t{SHA}\td", "expected 6"),
        (f"toy\tx.fa\thttps://h/x\t{SHA}\td\tc\ntoy\tx.fa\thttps://h/y\t{SHA}\td\tc", "line 4: duplicate"),
    ],
)
def test_read_sheet_errors_name_file_and_line(tmp_path: Path, row: str, problem: str) -> None:
    sheet = tmp_path / "datasets.tsv"
    sheet.write_text(f"# comment\n{HEADER}{row}\n")
    with pytest.raises(InputFormatError, match=problem) as info:
        read_sheet(sheet)
    assert f"{sheet}: line" in str(info.value)


@pytest.mark.shared_data
def test_shared_data_as_a_mirror_verifies_the_real_sheet(shared_data: Path, repo: Path, tmp_path: Path, policy) -> None:
    """The shared folder, mapped through a layout TSV, serves the sheet's files with the sheet's checksums."""
    entries = {(e.dataset, e.file): e for e in read_sheet(repo / "config" / "datasets.tsv")}
    wanted = [
        ("ecoli_k12_mg1655", "GCF_000005845.2_ASM584v2_genomic.fna", "ecoli_k12_mg1655"),  # stored as .fna.gz
        ("ecoli_amr_plasmids", "NC_018659.fasta", "is_scan_eval/ecoli_amr_plasmids"),
        ("cnnprom_umarov2017", "Ecoli_prom.fa", "cnnprom_umarov2017"),
    ]
    layout_file = tmp_path / "layout.tsv"
    rows = [f"datasets/{dataset}/{name}\t{folder}/{name}" for dataset, name, folder in wanted]
    layout_file.write_text("path\tmirror_path\n" + "\n".join(rows) + "\n")
    mirror = Mirror(str(shared_data), load_layout(layout_file))
    for dataset, name, _ in wanted:
        entry = entries[(dataset, name)]
        offline = DatasetFile(dataset, name, "http://127.0.0.1:9/unreachable", entry.sha256, "", "")
        result = fetch_dataset_file(offline, tmp_path / "out" / f"{name}.gz", mirror=mirror, policy=policy)
        assert result.sha256 == entry.sha256
