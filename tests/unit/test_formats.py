"""genolm.formats: BED6 / GFF3 / bedGraph written bgzip + tabix, parsed back."""

from __future__ import annotations

import gzip
import itertools
import re
from pathlib import Path

import numpy as np
import pysam
import pytest

from genolm.errors import ConfigError, InputFormatError
from genolm.formats import bedgraph_bins, write_bed, write_bedgraph, write_bedgraph_tracks, write_gff3
from genolm.scan import Call, call_elements, iter_windows

PROVENANCE = {"model": "cnn", "threshold": 0.42, "config": {"k": 6, "stride": 1}, "note": "two\nlines"}

CALLS = [
    Call("plasmid1", 500, 600, "-", 0.75, 510, "insertion_sequence", n_windows=3, window=80),
    Call("chrom", 1_000, 1_400, "+", 0.99, 1_200, "insertion_sequence", n_windows=5, window=200),
    Call("chrom", 10, 90, "-", 0.5004, 10, "insertion_sequence", n_windows=1, window=80),
    Call("chrom", 10, 90, "+", 0.61, 10, "insertion_sequence", n_windows=1, window=80),
]


def read_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as fh:  # bgzip is valid gzip
        return fh.read().splitlines()


def body(lines: list[str]) -> list[list[str]]:
    return [line.split("\t") for line in lines if not line.startswith(("#", "track"))]


def assert_indexed(path: Path) -> pysam.TabixFile:
    assert path.exists() and Path(f"{path}.tbi").exists()
    with open(path, "rb") as fh:
        assert fh.read(4) == b"\x1f\x8b\x08\x04"  # gzip with the BGZF extra field
    return pysam.TabixFile(str(path))


def assert_valid_gff3(lines: list[str]) -> None:
    """A small GFF3 checker: directives, 9 columns, coordinates, strand, phase, attributes, sort order."""
    assert lines[0] == "##gff-version 3"
    ids, last = set(), {}
    order: list[str] = []
    for line in lines[1:]:
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        assert len(cols) == 9, line
        seqid, _, ftype, start, end, score, strand, phase, attrs = cols
        assert re.fullmatch(r"[a-zA-Z0-9.:^*$@!+_?\-|%]+", seqid)
        assert re.fullmatch(r"\S+", ftype)
        assert 1 <= int(start) <= int(end)
        assert score == "." or float(score) == float(score)
        assert strand in "+-.?" and phase == "."
        pairs = dict(kv.split("=", 1) for kv in attrs.split(";"))
        assert all(";" not in v and "=" not in v and "\t" not in v for v in pairs.values())
        assert pairs["ID"] not in ids
        ids.add(pairs["ID"])
        if seqid not in last:
            assert seqid not in order  # one block per seqid
            order.append(seqid)
        assert int(start) >= last.get(seqid, 0)
        last[seqid] = int(start)


def test_bed6_sorted_zero_based_and_fetchable(tmp_path):
    path = tmp_path / "calls.bed.gz"
    write_bed(CALLS, path, provenance=PROVENANCE)
    lines = read_lines(path)
    assert lines[:4] == [
        "#model: cnn",
        "#threshold: 0.42",
        '#config: {"k": 6, "stride": 1}',
        "#note: two\\nlines",
    ]
    rows = body(lines)
    assert all(len(r) == 6 for r in rows)
    assert [(r[0], int(r[1]), int(r[2]), r[5]) for r in rows] == [
        ("chrom", 10, 90, "+"),
        ("chrom", 10, 90, "-"),
        ("chrom", 1_000, 1_400, "+"),
        ("plasmid1", 500, 600, "-"),
    ]
    assert [int(r[4]) for r in rows] == [610, 500, 990, 750]
    assert len({r[3] for r in rows}) == 4 and rows[0][3] == "insertion_sequence_000001"
    tbx = assert_indexed(path)
    assert sorted(tbx.contigs) == ["chrom", "plasmid1"]
    # 0-based half-open: [1399, 1400) hits the call, [1400, 1500) does not.
    assert [r.split("\t")[1] for r in tbx.fetch("chrom", 1_399, 1_400)] == ["1000"]
    assert list(tbx.fetch("chrom", 1_400, 1_500)) == []
    assert len(list(tbx.fetch("chrom", 0, 2_000))) == 3


def test_bed_contig_order_and_unknown_contig(tmp_path):
    path = tmp_path / "ordered.bed.gz"
    write_bed(CALLS, path, contig_order=["plasmid1", "chrom"])
    assert [r[0] for r in body(read_lines(path))] == ["plasmid1", "chrom", "chrom", "chrom"]
    with pytest.raises(InputFormatError, match="plasmid1"):
        write_bed(CALLS, tmp_path / "x.bed.gz", contig_order=["chrom"])


def test_gff3_valid_one_based_and_fetchable(tmp_path):
    path = tmp_path / "calls.gff3.gz"
    write_gff3(
        CALLS,
        path,
        source="genolm",
        provenance=PROVENANCE,
        sequence_lengths={"chrom": 5_000, "plasmid1": 800},
    )
    lines = read_lines(path)
    assert_valid_gff3(lines)
    assert lines[1:3] == ["##sequence-region chrom 1 5000", "##sequence-region plasmid1 1 800"]
    assert "#model: cnn" in lines
    rows = body(lines)
    assert [(r[0], int(r[3]), int(r[4]), r[6]) for r in rows] == [
        ("chrom", 11, 90, "+"),
        ("chrom", 11, 90, "-"),
        ("chrom", 1_001, 1_400, "+"),
        ("plasmid1", 501, 600, "-"),
    ]
    assert rows[2][1:3] == ["genolm", "insertion_sequence"] and rows[2][5] == "0.99"
    assert rows[2][8] == "ID=insertion_sequence_000003;best_window=1201-1400;n_windows=5"
    tbx = assert_indexed(path)
    assert "##gff-version 3" in list(tbx.header)
    # GFF 1001..1400 == 0-based [1000, 1400).
    assert len(list(tbx.fetch("chrom", 999, 1_000))) == 0
    assert [r.split("\t")[3] for r in tbx.fetch("chrom", 1_000, 1_001)] == ["1001"]
    assert [r.split("\t")[3] for r in tbx.fetch("plasmid1", 599, 600)] == ["501"]


def test_gff3_escapes_seqid_and_checks_contig_length(tmp_path):
    odd = [Call("chr 1;x", 0, 5, "+", 0.9, 0, "promoter", window=5)]
    path = tmp_path / "odd.gff3.gz"
    write_gff3(odd, path)
    lines = read_lines(path)
    assert_valid_gff3(lines)
    assert body(lines)[0][0] == "chr%201%3Bx"
    assert pysam.TabixFile(str(path)).contigs == ["chr%201%3Bx"]
    with pytest.raises(InputFormatError, match="past the end"):
        write_gff3(CALLS, tmp_path / "bad.gff3.gz", sequence_lengths={"chrom": 1_000, "plasmid1": 800})


def test_point_calls_in_gff3_have_no_best_window(tmp_path):
    path = tmp_path / "tss.gff3.gz"
    write_gff3([Call("chrom", 99, 100, "-", 0.8, 99, "TSS")], path)
    (row,) = body(read_lines(path))
    assert (row[2], row[3], row[4], row[8]) == ("TSS", "100", "100", "ID=TSS_000001;n_windows=1")


@pytest.mark.parametrize("writer", ["bed", "gff3", "bedgraph"])
def test_empty_inputs_give_valid_indexed_header_only_files(tmp_path, writer):
    path = tmp_path / f"empty.{writer}.gz"
    if writer == "bed":
        write_bed([], path, provenance=PROVENANCE)
    elif writer == "gff3":
        write_gff3([], path, provenance=PROVENANCE)
    else:
        write_bedgraph_tracks([], 100, 10, path, provenance=PROVENANCE)
    lines = read_lines(path)
    assert body(lines) == []
    assert "#model: cnn" in lines
    if writer == "gff3":
        assert_valid_gff3(lines)
    tbx = assert_indexed(path)
    assert list(tbx.contigs) == []


def test_output_must_be_gz(tmp_path):
    with pytest.raises(ConfigError, match=r"\.gz"):
        write_bed(CALLS, tmp_path / "calls.bed")
    assert not list(tmp_path.iterdir())  # nothing half-written


def check_bedgraph_intervals(rows: list[list[str]]) -> None:
    by_contig: dict[str, list[tuple[int, int]]] = {}
    for contig, start, end, _ in rows:
        by_contig.setdefault(contig, []).append((int(start), int(end)))
    for ivs in by_contig.values():
        assert all(s < e for s, e in ivs)
        assert all(e0 <= s1 for (_, e0), (s1, _) in itertools.pairwise(ivs))


def test_bedgraph_bins_on_regular_grid_and_tail():
    starts = iter_windows(1_003, 100, 10)  # 0, 10, ..., 900, then the tail window 903
    scores = np.arange(starts.size, dtype=float)
    b0, b1, vals = bedgraph_bins(starts, scores, 100, 10)
    assert (b0[0], b1[0]) == (45, 55)  # centre 50 of window [0, 100)
    assert np.all(b1[:-1] == b0[1:])  # contiguous, non-overlapping
    assert (b0[-2], b1[-2], b0[-1], b1[-1]) == (945, 955, 955, 958)  # tail bin trimmed after its neighbour
    np.testing.assert_array_equal(vals, scores)


def test_bedgraph_bins_merge_equal_runs_and_skip_nan():
    starts = np.arange(0, 60, 10)
    scores = np.array([0.0, 0.0, 0.0, np.nan, 0.5, 0.5])
    b0, b1, vals = bedgraph_bins(starts, scores, 20, 10)
    assert list(zip(b0.tolist(), b1.tolist(), vals.tolist(), strict=True)) == [(5, 35, 0.0), (45, 65, 0.5)]
    with pytest.raises(InputFormatError):
        bedgraph_bins(np.array([10, 0]), np.array([0.1, 0.2]), 20, 10)


def test_bedgraph_file_sorted_non_overlapping_fetchable(tmp_path):
    rng = np.random.default_rng(0)
    s1 = iter_windows(2_345, 81, 7)
    s2 = iter_windows(500, 81, 7)
    sc1, sc2 = rng.random(s1.size), rng.random(s2.size)
    path = tmp_path / "scores.bedgraph.gz"
    write_bedgraph_tracks(
        [("chrom", s1, sc1), ("plasmid1", s2, sc2)],
        81,
        7,
        path,
        provenance=PROVENANCE,
        description='p "plus"',
    )
    lines = read_lines(path)
    assert lines[0] == 'track type=bedGraph name="genolm" description="p \'plus\'"'
    assert lines[1] == "#model: cnn"
    rows = body(lines)
    check_bedgraph_intervals(rows)
    assert [r[0] for r in rows] == ["chrom"] * s1.size + ["plasmid1"] * s2.size
    np.testing.assert_allclose([float(r[3]) for r in rows[: s1.size]], sc1, rtol=1e-5)
    tbx = assert_indexed(path)
    assert tbx.contigs == ["chrom", "plasmid1"]
    centre = int(s1[10]) + 40  # window 10's bin is [s + 40 - 3, s + 40 + 4)
    (hit,) = list(tbx.fetch("chrom", centre, centre + 1))
    assert float(hit.split("\t")[3]) == pytest.approx(sc1[10], rel=1e-5)
    with pytest.raises(InputFormatError, match="twice"):
        write_bedgraph_tracks([("c", s2, sc2), ("c", s2, sc2)], 81, 7, tmp_path / "dup.bedgraph.gz")


def test_single_contig_bedgraph_and_bed_from_a_scan(tmp_path):
    starts = iter_windows(1_000, 50, 25)
    scores = np.where((starts >= 300) & (starts <= 400), 0.9, 0.1)
    write_bedgraph("chrom", starts, scores, 50, 25, tmp_path / "s.bedgraph.gz")
    rows = body(read_lines(tmp_path / "s.bedgraph.gz"))
    check_bedgraph_intervals(rows)
    assert [(int(r[1]), int(r[2]), float(r[3])) for r in rows] == [
        (13, 313, 0.1),
        (313, 438, 0.9),
        (438, 988, 0.1),
    ]
    calls = call_elements("chrom", starts, scores, "+", 50, 0.5, 0, "promoter")
    write_bed(calls, tmp_path / "c.bed.gz")
    assert body(read_lines(tmp_path / "c.bed.gz")) == [["chrom", "300", "450", "promoter_000001", "900", "+"]]
