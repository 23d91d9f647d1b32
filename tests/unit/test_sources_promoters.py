"""Promoter task builders: published counts and genome coordinates on the real files, edge cases on tiny fixtures."""

from __future__ import annotations

import gzip
import logging
import random
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from genolm.errors import ConfigError, InputFormatError
from genolm.seqio import reverse_complement
from genolm.sources.cds_windows import cds_start_windows
from genolm.sources.labelled_csv import read_labelled_csv
from genolm.sources.labelled_fasta import read_labelled_fasta
from genolm.sources.promoters import PROMOTER_SOURCES, build_promoter_source
from genolm.sources.regulondb import read_regulondb, regulondb_tss_windows
from genolm.sources.windows import read_genome

MG1655 = "ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic"
REGULONDB = "regulondb_promoters/PromoterSet_RegulonDB_v10.6.3.txt.gz"
COLUMNS = ["id", "label", "contig", "start", "end", "strand", "sequence"]
FASTA_SOURCES = {
    "cnnprom_ecoli": ("cnnprom_umarov2017/Ecoli_prom.fa", "cnnprom_umarov2017/Ecoli_non_prom.fa"),
    "cnnprom_bsubtilis": ("cnnprom_umarov2017/Bacillus_prom.fa", "cnnprom_umarov2017/Bacillus_non_prom.fa"),
    "ipromoter2l_ecoli": ("ipromoter2l_ecoli/positive2860.txt", "ipromoter2l_ecoli/negative2860.txt"),
}


def _fasta_inputs(shared_data: Path, name: str) -> dict[str, Path]:
    positives, negatives = FASTA_SOURCES[name]
    return {"positives": shared_data / positives, "negatives": shared_data / negatives}


def _genome_inputs(shared_data: Path) -> dict[str, Path]:
    return {
        "genome": shared_data / f"{MG1655}.fna.gz",
        "promoters": shared_data / REGULONDB,
        "gff": shared_data / f"{MG1655}.gff.gz",
    }


def _counts(table: pd.DataFrame) -> tuple[int, int]:
    return int((table["label"] == 1).sum()), int((table["label"] == 0).sum())


@pytest.fixture(scope="module")
def genome(shared_data) -> str:
    return read_genome(shared_data / f"{MG1655}.fna.gz")["NC_000913.3"]


@pytest.fixture(scope="module")
def promoters(shared_data) -> pd.DataFrame:
    return read_regulondb(shared_data / REGULONDB)


@pytest.fixture(scope="module")
def sigma70(shared_data) -> pd.DataFrame:
    return build_promoter_source("regulondb_sigma70", _genome_inputs(shared_data), seed=7)


@pytest.fixture(scope="module")
def cds_table(shared_data) -> pd.DataFrame:
    inputs = _genome_inputs(shared_data)
    return build_promoter_source("ulmfit_cds_ecoli", {"genome": inputs["genome"], "gff": inputs["gff"]}, seed=7)


# Real data: counts from the folder READMEs (iPromoter-2L has one repeated promoter sequence).
@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "expected"),
    [("cnnprom_ecoli", (839, 3000)), ("cnnprom_bsubtilis", (373, 1000)), ("ipromoter2l_ecoli", (2859, 2860))],
)
def test_benchmark_fasta_pairs_have_the_published_counts(shared_data, name, expected, caplog):
    with caplog.at_level(logging.INFO):
        table = build_promoter_source(name, _fasta_inputs(shared_data, name))
    assert _counts(table) == expected
    assert list(table.columns) == COLUMNS
    assert table["id"].is_unique and table["sequence"].is_unique
    assert set(table["sequence"].str.len()) == {81}
    assert (table["contig"] == "").all() and (table["start"] == -1).all() and (table["strand"] == "+").all()
    if name == "ipromoter2l_ecoli":
        assert "dropped 1 duplicate sequence(s) of class 1" in caplog.text


@pytest.mark.shared_data
def test_ids_keep_the_header_names(shared_data):
    bsubtilis = build_promoter_source("cnnprom_bsubtilis", _fasta_inputs(shared_data, "cnnprom_bsubtilis"))
    assert {"cnnprom_bsubtilis_pos_abrB", "cnnprom_bsubtilis_pos_abrB_2"} <= set(bsubtilis["id"])  # repeated gene
    ecoli = build_promoter_source("cnnprom_ecoli", _fasta_inputs(shared_data, "cnnprom_ecoli"))
    assert "cnnprom_ecoli_neg_6400" in set(ecoli["id"])
    assert "cnnprom_ecoli_pos_ECK120010467__accAp__forward__208411" in set(ecoli["id"])
    ipromoter = build_promoter_source("ipromoter2l_ecoli", _fasta_inputs(shared_data, "ipromoter2l_ecoli"))
    assert "ipromoter2l_ecoli_pos_ECK125137714_aaeBp3_reverse_3388263" in set(ipromoter["id"])
    assert "ipromoter2l_ecoli_neg_Escherichia_coli_K-12_reverse_3292866_3292947" in set(ipromoter["id"])


@pytest.mark.shared_data
def test_cnnprom_ecoli_sequences_are_substrings_of_the_genome(shared_data, genome):
    table = build_promoter_source("cnnprom_ecoli", _fasta_inputs(shared_data, "cnnprom_ecoli"))
    sample = table.groupby("label").sample(25, random_state=0)  # each search scans 4.6 Mb
    reverse = reverse_complement(genome)
    for row in sample.itertuples():
        assert row.sequence in genome or row.sequence in reverse, row.id


@pytest.mark.shared_data
def test_regulondb_parse_counts(promoters):
    assert len(promoters) == 8623
    assert promoters["strand"].value_counts().to_dict() == {"-": 4494, "+": 4129}
    assert (promoters["tss"] == -1).sum() == 92  # no position, no sequence
    assert (promoters["sequence"] != "").sum() == 8531
    assert promoters["confidence"].value_counts().to_dict() == {"Strong": 6474, "Weak": 2116, "Confirmed": 33}
    assert promoters["sigma"].str.split(",").map(lambda sigmas: "Sigma70" in sigmas).sum() == 1962


@pytest.mark.shared_data
def test_regulondb_tss_is_the_upper_case_base_on_both_strands(promoters, genome):
    with_sequence = promoters[promoters["sequence"] != ""]
    for strand in "+-":
        records = with_sequence[with_sequence["strand"] == strand]
        bases = records["tss"].map(genome.__getitem__)
        if strand == "-":
            bases = bases.map(reverse_complement)
        assert (bases == records["sequence"].str[60]).all(), strand


@pytest.mark.shared_data
def test_sigma70_windows_equal_regulondb_sequences_on_both_strands(sigma70, promoters):
    positives = sigma70[sigma70["label"] == 1]
    promoter_id = positives["id"].str.removeprefix("regulondb_sigma70_pos_")
    expected = promoter_id.map(promoters.set_index("promoter_id")["sequence"])
    assert (positives["sequence"] == expected).all()
    assert positives["strand"].value_counts().min() > 900  # both strands well represented
    assert len(positives) > 1900  # 1,959 placed sigma70 TSSs minus a few identical windows


@pytest.mark.shared_data
def test_sigma70_negatives_avoid_tsss_and_each_other(sigma70, promoters, genome):
    negatives = sigma70[sigma70["label"] == 0].sort_values("start")
    assert _counts(sigma70)[1] == pytest.approx(_counts(sigma70)[0], abs=5)
    assert (negatives["end"] - negatives["start"] == 81).all()
    assert (negatives["start"].to_numpy()[1:] >= negatives["end"].to_numpy()[:-1]).all()  # disjoint
    tss = np.sort(promoters.loc[promoters["tss"] >= 0, "tss"].to_numpy())
    nearest_right = np.searchsorted(tss, negatives["start"].to_numpy() - 100)
    assert (tss[np.minimum(nearest_right, len(tss) - 1)] > negatives["end"].to_numpy() + 99).all()
    kinds = negatives["id"].str.extract(r"_neg_(coding|intergenic)_")[0].value_counts()
    assert kinds["coding"] == pytest.approx(kinds["intergenic"], abs=2)
    for row in negatives.head(50).itertuples():
        bases = genome[row.start : row.end]
        assert row.sequence == (bases if row.strand == "+" else reverse_complement(bases))


@pytest.mark.shared_data
def test_cds_start_windows_reproduce_the_ulmfit_set(cds_table):
    positives, negatives = _counts(cds_table)
    assert 4200 < positives < 4400  # Genomic-ULMFiT: 4,357 on its annotation; 4,315 CDSs here
    assert 3800 < negatives < 4100  # Genomic-ULMFiT: 4,014
    assert set(cds_table["sequence"].str.len()) == {150}
    starts = cds_table.loc[cds_table["label"] == 1, "sequence"].str[100:103]
    assert starts.isin({"ATG", "GTG", "TTG"}).mean() > 0.99  # the start codon sits at +1 on both strands
    assert cds_table["sequence"].is_unique and cds_table["id"].is_unique


@pytest.mark.shared_data
def test_builders_are_seeded(shared_data, sigma70):
    again = build_promoter_source("regulondb_sigma70", _genome_inputs(shared_data), seed=7)
    pd.testing.assert_frame_equal(again, sigma70)
    other = build_promoter_source("regulondb_sigma70", _genome_inputs(shared_data), seed=8)
    assert set(other.loc[other["label"] == 0, "id"]) != set(sigma70.loc[sigma70["label"] == 0, "id"])


# Synthetic fixtures: edge cases.
def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_duplicates_within_and_across_classes(tmp_path, caplog):
    positives = _write(
        tmp_path / "pos.fa", ">p1 first\nACGTACGT\nAC\n>p1\nacgtacgtac\n>both\nTTTTGGGG\n>n1\nACGNACGT\n"
    )
    negatives = _write(tmp_path / "neg.fa", "> 17\r\nTTTTGGGG\r\n> 18\r\nCCCCAAAA\r\n")
    with caplog.at_level(logging.INFO):
        table = read_labelled_fasta(positives, negatives, source="toy")
    assert table.set_index("id")["sequence"].to_dict() == {
        "toy_pos_p1_first": "ACGTACGTAC",  # the repeat of p1 (same sequence) is dropped
        "toy_pos_n1": "ACGNACGT",  # kept: the tokenizer maps N to UNK
        "toy_neg_18": "CCCCAAAA",
    }
    assert "in both classes" in caplog.text and "dropped 1 duplicate" in caplog.text
    assert "1 record(s) contain bases other than ACGT" in caplog.text


def test_repeated_header_names_get_a_suffix(tmp_path):
    positives = _write(tmp_path / "pos.fa", ">abrB\nAAAA\n>abrB\nCCCC\n>abrB\nGGGG\n")
    negatives = _write(tmp_path / "neg.fa", ">1\nTTTT\n")
    table = read_labelled_fasta(positives, negatives, source="b")
    assert list(table["id"]) == ["b_pos_abrB", "b_pos_abrB_2", "b_pos_abrB_3", "b_neg_1"]


def test_bad_fasta_names_file_and_line(tmp_path):
    negatives = _write(tmp_path / "neg.fa", ">1\nTTTT\n")
    bad = _write(tmp_path / "bad.fa", ">a\nACGT\n>b\nAC-GT\n")
    with pytest.raises(InputFormatError, match=r"bad\.fa: record 'b' \(line 4\): illegal sequence character '-'"):
        read_labelled_fasta(bad, negatives, source="x")
    empty = _write(tmp_path / "empty.fa", ">a\n>b\nACGT\n")
    with pytest.raises(InputFormatError, match=r"empty\.fa: record 'a' \(line 1\): empty record"):
        read_labelled_fasta(empty, negatives, source="x")


def _regulondb_line(promoter_id: str, name: str, strand: str, position: int, sequence: str, sigma="Sigma70") -> str:
    return "\t".join([promoter_id, name, strand, str(position), sigma, sequence, "[EV]", "Strong"])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("ECK1\tp\tforward\t100\tSigma70\t\t[EV]", "expected 8 tab-separated columns, got 7"),
        ("ECK1\tp\tplus\t100\tSigma70\t\t[EV]\tStrong", "strand must be forward or reverse"),
        ("ECK1\tp\tforward\t1e3\tSigma70\t\t[EV]\tStrong", "TSS position must be a non-negative integer"),
        ("ECK1\tp\tforward\t100\tSigma70\tacgt\t[EV]\tStrong", "promoter sequence is not 81 nt"),
        ("ECK1\tp\tforward\t100\tSigma70\t\t[EV]\tMaybe", "unknown confidence"),
    ],
)
def test_malformed_regulondb_line_names_file_and_line(tmp_path, line, problem):
    path = tmp_path / "PromoterSet.txt.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("# header\n#\n" + _regulondb_line("ECK0", "ok", "forward", 5, "") + "\n" + line + "\n")
    with pytest.raises(InputFormatError, match=rf"PromoterSet\.txt\.gz: line 4: {problem}"):
        read_regulondb(path)


def _toy_genome(tmp_path: Path, length: int = 3000) -> tuple[Path, str]:
    sequence = "".join(random.Random(1).choices("ACGT", k=length))
    return _write(tmp_path / "genome.fa", f">chr\n{sequence}\n"), sequence


def _column6(sequence: str, tss: int, strand: str) -> str:
    """RegulonDB's -60..+20 text around a 0-based TSS: lower case with the +1 base upper case."""
    bases = sequence[tss - 60 : tss + 21] if strand == "+" else reverse_complement(sequence[tss - 20 : tss + 61])
    return bases[:60].lower() + bases[60] + bases[61:].lower()


def test_tss_windows_on_a_toy_genome(tmp_path):
    fasta, sequence = _toy_genome(tmp_path)
    gff = _write(
        tmp_path / "toy.gff",
        "##gff-version 3\nchr\tt\tCDS\t1201\t2400\t.\t+\t0\tID=cds1\nchr\tt\tgene\t1201\t2400\t.\t+\t.\tID=g1\n",
    )
    lines = [
        _regulondb_line("ECK1", "pA", "forward", 301, _column6(sequence, 300, "+")),  # 1-based 301 = 0-based 300
        _regulondb_line("ECK2", "pB", "reverse", 801, _column6(sequence, 800, "-")),  # named promoter: no shift
        _regulondb_line("ECK3", "TSS_9", "reverse", 1000, _column6(sequence, 1000, "-")),  # RNA-seq set: shifted
        _regulondb_line("ECK4", "pEnd", "forward", 20, ""),  # window crosses the contig start: skipped
        _regulondb_line("ECK5", "p38", "forward", 2001, _column6(sequence, 2000, "+"), sigma="Sigma38"),
    ]
    promoters = _write(tmp_path / "promoters.txt", "# RegulonDB\n" + "\n".join(lines) + "\n")
    table = regulondb_tss_windows(fasta, promoters, gff, seed=0, negatives_per_positive=2.0, source="toy")
    positives = table[table["label"] == 1].set_index("id")
    assert list(positives.index) == ["toy_pos_ECK1", "toy_pos_ECK2", "toy_pos_ECK3"]
    assert positives.loc["toy_pos_ECK1", ["start", "end", "strand"]].tolist() == [240, 321, "+"]
    assert positives.loc["toy_pos_ECK2", ["start", "end", "strand"]].tolist() == [780, 861, "-"]
    assert positives.loc["toy_pos_ECK2", "sequence"][60] == reverse_complement(sequence[800])
    assert positives.loc["toy_pos_ECK3", ["start", "end"]].tolist() == [980, 1061]
    negatives = table[table["label"] == 0]
    assert len(negatives) == 6 and (negatives["end"] - negatives["start"] == 81).all()
    tss = np.array([300, 800, 1000, 19, 2000])
    for row in negatives.itertuples():
        assert np.abs(tss[:, None] - np.arange(row.start, row.end)[None, :]).min() > 100
    assert "group" in table.columns


def test_tss_shifts_add_positives_with_the_tss_off_the_window_register(tmp_path):
    fasta, sequence = _toy_genome(tmp_path)
    gff = _write(tmp_path / "toy.gff", "chr\tt\tCDS\t1201\t2400\t.\t+\t0\tID=cds1\n")
    lines = [
        _regulondb_line("ECK1", "pA", "forward", 301, _column6(sequence, 300, "+")),
        _regulondb_line("ECK2", "pB", "reverse", 801, _column6(sequence, 800, "-")),
    ]
    promoters = _write(tmp_path / "promoters.txt", "\n".join(lines) + "\n")
    table = regulondb_tss_windows(fasta, promoters, gff, seed=0, tss_shifts=[-5, 0, 7], source="toy")
    positives = table[table["label"] == 1].set_index("id")
    assert len(positives) == 6 and (table["label"] == 0).sum() == 2  # negatives per TSS, not per shifted copy
    # +7: the TSS lies 7 bp downstream of the window's +1 base (index 60), on either strand
    plus = positives.loc["toy_pos_ECK1_shift+7"]
    assert plus["sequence"] == sequence[233:314] and plus["sequence"][67] == sequence[300]
    minus = positives.loc["toy_pos_ECK2_shift-5"]
    assert minus["sequence"][55] == reverse_complement(sequence[800])
    assert positives.loc["toy_pos_ECK1", "sequence"] == sequence[240:321]
    with pytest.raises(ConfigError, match="tss_shifts must hold 0"):
        regulondb_tss_windows(fasta, promoters, gff, seed=0, tss_shifts=[5, 10], source="toy")


def test_tss_windows_refuse_sequences_that_do_not_match(tmp_path):
    fasta, sequence = _toy_genome(tmp_path)
    gff = _write(tmp_path / "toy.gff", "chr\tt\tCDS\t1201\t2400\t.\t+\t0\tID=cds1\n")
    shifted = [
        _regulondb_line(f"ECK{i}", f"p{i}", "forward", 200 + 150 * i, _column6(sequence, 200 + 150 * i, "+"))
        for i in range(8)
    ]  # column 4 one base off from column 6: a coordinate bug to catch
    promoters = _write(tmp_path / "promoters.txt", "\n".join(shifted) + "\n")
    with pytest.raises(InputFormatError, match=r"8 of 8 windows .* differ"):
        regulondb_tss_windows(fasta, promoters, gff, seed=0)


def test_cds_start_windows_on_a_toy_genome(tmp_path):
    fasta, sequence = _toy_genome(tmp_path, 2000)
    gff = _write(
        tmp_path / "toy.gff",
        "chr\tt\tCDS\t201\t800\t.\t+\t0\tID=cds-A\n"  # 0-based [200, 800)
        "chr\tt\tCDS\t1101\t1400\t.\t-\t0\tID=cds-B\n"  # 0-based [1100, 1400), start codon at 1399
        "chr\tt\tCDS\t51\t140\t.\t+\t0\tID=cds-C\n",  # its start window crosses the contig start
    )
    table = cds_start_windows(fasta, gff, seed=3, source="toy").set_index("id")
    assert table.loc["toy_pos_A", ["start", "end", "strand"]].tolist() == [100, 250, "+"]
    assert table.loc["toy_pos_A", "sequence"] == sequence[100:250]
    assert table.loc["toy_pos_B", ["start", "end", "strand"]].tolist() == [1350, 1500, "-"]
    assert table.loc["toy_pos_B", "sequence"][100:103] == reverse_complement(sequence[1397:1400])
    assert "toy_pos_C" not in table.index and "toy_neg_C" not in table.index  # and C is under 250 bp
    negative_a, negative_b = table.loc["toy_neg_A"], table.loc["toy_neg_B"]
    assert negative_a["start"] >= 250 and negative_a["end"] <= 800  # inside A, clear of A's start window
    assert negative_b["start"] >= 1100 and negative_b["end"] <= 1350
    assert negative_b["sequence"] == reverse_complement(sequence[negative_b["start"] : negative_b["end"]])


def test_registry_checks_names_inputs_and_params(tmp_path):
    with pytest.raises(ConfigError, match="unknown promoter source 'nope'; known: cnnprom_bsubtilis, cnnprom_ecoli"):
        build_promoter_source("nope", {})
    with pytest.raises(ConfigError, match="needs input"):
        build_promoter_source("regulondb_sigma70", {"genome": tmp_path / "g.fa"})
    with pytest.raises(ConfigError, match="unknown param"):
        build_promoter_source("cnnprom_ecoli", {"positives": "a", "negatives": "b"}, {"upstream": 10})
    assert set(PROMOTER_SOURCES) == {
        "cnnprom_ecoli",
        "cnnprom_bsubtilis",
        "ipromoter2l_ecoli",
        "regulondb_sigma70",
        "ulmfit_cds_ecoli",
        "genomic_benchmarks_human_nontata",
    }


def test_genomic_benchmarks_csv_has_the_published_test_counts(shared_data):
    path = shared_data / "genomic_benchmarks" / "sequences" / "human_nontata_promoters_test.csv.gz"
    table = build_promoter_source("genomic_benchmarks_human_nontata", {"table": path})
    counts = table["label"].value_counts()
    # 4,915 promoters and 4,119 non-promoters as published; exact duplicates collapse to one
    assert 4_900 <= counts[1] <= 4_915
    assert 4_100 <= counts[0] <= 4_119
    assert set(table["sequence"].str.len()) == {251}
    assert table["id"].is_unique


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("sequence,label\nACGT,1\n", "line 1: expected the header"),
        ("seq,label\nACGT,2\n", "line 2: label must be 0 or 1"),
        ("seq,label\nACGT,1\nAC-T,0\n", "line 3: illegal sequence character '-' at column 3"),
        ("seq,label\n,1\n", "line 2: empty sequence"),
        ("seq,label\n", "no sequences"),
        ("seq,label\nACGT,1,extra\n", "line 2: expected 2 fields"),
    ],
)
def test_bad_labelled_csv_names_file_and_line(tmp_path, text, problem):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=re.escape(problem)) as error:
        read_labelled_csv(path, source="gb")
    assert str(path) in str(error.value)


def test_labelled_csv_upper_cases_and_reads_crlf_and_gzip(tmp_path):
    path = tmp_path / "ok.csv.gz"
    with gzip.open(path, "wt", newline="") as handle:
        handle.write("seq,label\r\nacgtn,1\r\nGGCCA,0\r\n")
    table = read_labelled_csv(path, source="gb")
    assert table["sequence"].tolist() == ["ACGTN", "GGCCA"]
    assert table["id"].tolist() == ["gb_pos_line2", "gb_neg_line3"]
