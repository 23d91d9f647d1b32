"""Known IS elements beyond the annotation (genolm.known_is) and the second set of IS figures they give."""

from __future__ import annotations

import pandas as pd
import pytest

from genolm import genome_scan
from genolm.errors import InputFormatError
from genolm.formats import write_gff3
from genolm.known_is import read_known_is, with_known
from genolm.report import homology_comparison
from genolm.scan import Call

BLASTN_HEADER = "seqid\tstart_1based\tend\tstrand\tbest_ISfinder_hit\tfamily\n"


def write_tsv(path, rows):
    path.write_text(BLASTN_HEADER + "".join("\t".join(map(str, row)) + "\n" for row in rows))
    return path


def test_tsv_rows_become_zero_based_and_exclusions_apply(tmp_path):
    path = write_tsv(
        tmp_path / "known.tsv",
        [("chr", 101, 1300, "+", "ISEc1", "ISAs1"), ("chr", 5001, 5123, "-", "MITEEc1", "IS630")],
    )
    assert read_known_is(path) == [("chr", 100, 1300, "+"), ("chr", 5000, 5123, "-")]
    assert read_known_is(path, exclude="^MITE") == [("chr", 100, 1300, "+")]


def test_gff3_insertion_sequences_are_read(tmp_path):
    path = tmp_path / "known.gff3"
    path.write_text(
        "##gff-version 3\n"
        "chr\tblastn\tinsertion_sequence\t101\t1300\t.\t+\t.\tID=a;Name=ISEc1\n"
        "chr\tblastn\tgene\t2001\t2300\t.\t+\t.\tID=g\n"
    )
    assert read_known_is(path) == [("chr", 100, 1300, "+")]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([("chr", 0, 100, "+", "IS1", "IS1")], r"line 2: start_1based 0, end 100"),
        ([("chr", 10, 100, "+", "IS1", "IS1"), ("chr", 300, 200, "+", "IS2", "IS1")], "line 3"),
        ([("chr", 10, 100, "x", "IS1", "IS1")], "strand 'x'"),
    ],
)
def test_bad_rows_name_the_file_and_line(tmp_path, rows, message):
    path = write_tsv(tmp_path / "bad.tsv", rows)
    with pytest.raises(InputFormatError, match=message) as error:
        read_known_is(path)
    assert "bad.tsv" in str(error.value)


def test_missing_columns_and_bad_pattern_are_errors(tmp_path):
    path = tmp_path / "cols.tsv"
    path.write_text("seqid\tstart\tend\nchr\t1\t10\n")
    with pytest.raises(InputFormatError, match=r"lacks column.*start_1based.*strand"):
        read_known_is(path)
    good = write_tsv(tmp_path / "ok.tsv", [("chr", 1, 10, "+", "IS1", "IS1")])
    with pytest.raises(InputFormatError, match="not a regular expression"):
        read_known_is(good, exclude="(")


def test_an_element_listed_twice_counts_once():
    annotated = [("chr", 100, 1300, "+")]
    known = [("chr", 110, 1290, "+"), ("chr", 4000, 5000, "-"), ("other", 100, 1300, "+")]
    assert with_known(annotated, known, 0.5) == [*annotated, ("chr", 4000, 5000, "-"), ("other", 100, 1300, "+")]


def test_evaluation_adds_figures_against_the_known_elements(tmp_path):
    """One annotated IS, one real copy the annotation lacks, one known element on a contig not scanned."""
    truth = tmp_path / "truth.gff3"
    truth.write_text("##gff-version 3\nchr\tref\tinsertion_sequence\t1001\t2000\t.\t+\t.\tID=t1\n")
    calls = tmp_path / "calls.gff3.gz"
    elements = [
        Call("chr", 1000, 2000, "+", 0.9, 1000, "insertion_sequence"),
        Call("chr", 3000, 4200, "-", 0.9, 3000, "insertion_sequence"),
    ]
    write_gff3(elements, calls, provenance={}, sequence_lengths={"chr": 9000}, id_prefix="is_")
    known = write_tsv(
        tmp_path / "known.tsv",
        [
            ("chr", 1001, 2000, "+", "IS1", "IS1"),
            ("chr", 3001, 4200, "-", "ISEc1", "x"),
            ("plasmid", 1, 900, "+", "a", "b"),
        ],
    )
    task = {"kind": "is", "scan": {"min_overlap": 0.5}}
    table = genome_scan.evaluate_scan(calls, truth, task, tmp_path / "e.tsv", known_is=known)
    metrics = pd.read_csv(tmp_path / "e.tsv", sep="\t").set_index("metric")["value"]
    assert dict(zip(table["metric"], table["value"], strict=True))["fdr"] == 0.5
    assert float(metrics["fdr"]) == 0.5 and float(metrics["recall"]) == 1.0
    assert float(metrics["n_truth_with_known_is"]) == 2  # the plasmid row is on a contig this genome lacks
    assert float(metrics["fdr_with_known_is"]) == 0.0 and float(metrics["recall_with_known_is"]) == 1.0
    assert "known IS from known.tsv" in metrics["criterion"]

    entry = {"genome": "g", "summary": None, "evaluation": tmp_path / "e.tsv", "scans": []}
    row = homology_comparison(entry).iloc[0]
    assert (row["fdr"], row["fdr +known"], row["n_truth +known"]) == (0.5, 0.0, 2.0)
