"""ISfinder, GenBank feature tables and the IS-vs-non-IS dataset, on the real files and on small synthetic ones."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest

from genolm.errors import InputFormatError
from genolm.seqio import reverse_complement
from genolm.sources.genbank import amr_class, is_mobile_cds, read_genbank
from genolm.sources.is_dataset import build_is_dataset, read_is_calls, read_replicons
from genolm.sources.isfinder import read_isfinder

PLASMIDS = ("NC_009838", "NC_010488", "NC_017645", "NC_018659")
MG1655_GBFF = "ecoli_k12_mg1655/GCF_000005845.2_ASM584v2_genomic.gbff.gz"


def replicon_files(shared_data):
    folder = shared_data / "is_scan_eval" / "ecoli_amr_plasmids"
    plasmids = [(folder / f"{acc}.fasta", folder / f"{acc}.gb") for acc in PLASMIDS]
    return [(None, shared_data / MG1655_GBFF), *plasmids]


@pytest.fixture(scope="module")
def is_dataset(shared_data):
    return build_is_dataset(
        shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz",
        replicon_files(shared_data),
        is_calls=shared_data / "is_scan_eval" / "derived_ISfinder_blastn_IS_calls.tsv",
        summary_csv=shared_data / "isfinder" / "ISfinder_IS_summary_2020-10.csv.gz",
        seed=0,
    )


@pytest.fixture(scope="module")
def replicons(shared_data):
    return {replicon.name: replicon for replicon in read_replicons(replicon_files(shared_data))}


# --- ISfinder ------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_isfinder_families_and_exact_duplicates(shared_data):
    folder = shared_data / "isfinder"
    everything = read_isfinder(folder / "ISfinder_IS_nt.fasta.gz", dedupe=False)
    assert len(everything) == 6013
    table = read_isfinder(folder / "ISfinder_IS_nt.fasta.gz", folder / "ISfinder_IS_summary_2020-10.csv.gz")
    assert len(table) == 5993  # 20 groups of identical sequences, one record each dropped
    assert table["sequence"].is_unique and table["name"].is_unique
    assert (table["duplicates"] != "").sum() == 20
    families = table["family"].value_counts()
    assert families["IS5"] > 700 and families["IS3"] > 680 and families["unknown"] <= 394
    assert table["family"].nunique() == 31  # 30 families plus "unknown"
    assert (table["length"] == table["sequence"].str.len()).all()
    assert table["n_non_acgt"].sum() == 27 and (table["n_non_acgt"] > 0).sum() == 15


def test_isfinder_family_from_summary_when_header_has_none(tmp_path):
    fasta = tmp_path / "is.fa"
    fasta.write_text(
        ">ISA family=IS3 group=IS51\nACGTACGTAC\n>ISB\nGGGGCCCCAA\n>ISC family=unknown\nTTTTAAAACG\n>ISD\nACGTACGTAC\n"
    )
    summary = tmp_path / "summary.csv"
    summary.write_text("N°,Name,Family,Group\n1,ISB,IS5,IS427\n2,ISC,IS1,NA\n")
    table = read_isfinder(fasta, summary).set_index("name")
    assert table.loc["ISA", ["family", "group"]].tolist() == ["IS3", "IS51"]
    assert table.loc["ISB", ["family", "group"]].tolist() == ["IS5", "IS427"]
    assert table.loc["ISC", ["family", "group"]].tolist() == ["IS1", "NA"]
    assert "ISD" not in table.index and table.loc["ISA", "duplicates"] == "ISD"
    assert read_isfinder(fasta).set_index("name").loc["ISB", "family"] == "unknown"


# --- GenBank -------------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_ctx_m_15_is_found_next_to_isecp1(replicons):
    plasmid = replicons["NC_018659.1"]
    assert len(plasmid.sequence) == 88_544
    amr = plasmid.amr
    assert {"beta-lactam"} == set(amr["amr_class"])
    ctx = amr[amr["product"].str.contains("CTX-M-15")].iloc[0]
    assert (ctx["start"], ctx["end"], ctx["strand"]) == (45_167, 46_043, "-")
    isecp1 = plasmid.mobile[plasmid.mobile["name"].str.contains("ISEcp1")].iloc[0]
    assert 0 < isecp1["start"] - ctx["end"] < 1000  # ISEcp1 sits just upstream of the gene (both on "-")


@pytest.mark.shared_data
def test_amr_heuristic_agrees_with_the_derived_cds_categories(shared_data, replicons):
    reference = pd.read_csv(shared_data / "is_scan_eval" / "ecoli_amr_plasmids" / "cds_annotations.tsv", sep="\t")
    ours = pd.concat([replicons[f"{acc}.1"].cds for acc in PLASMIDS]).drop_duplicates(["contig", "locus_tag"])
    merged = reference.merge(ours, left_on=["seqid", "locus_tag"], right_on=["contig", "locus_tag"])
    assert len(merged) == len(reference) == 688
    is_amr = [
        amr_class(product, gene) is not None
        for product, gene in zip(merged["product_y"], merged["gene_y"], strict=True)
    ]
    agree = np.asarray(is_amr) == (merged["category"] == "AMR").to_numpy()
    assert agree.sum() >= 687  # the one difference: SugE, a biocide efflux pump, is not AMR here
    mobile = [is_mobile_cds(product, gene) for product, gene in zip(merged["product_y"], merged["gene_y"], strict=True)]
    assert np.asarray(mobile)[(merged["category"] == "IS_transposase").to_numpy()].all()


@pytest.mark.shared_data
def test_mg1655_features_from_the_gbff(replicons):
    genome = replicons["NC_000913.3"]
    assert len(genome.sequence) == 4_641_652
    assert len(genome.cds) == 4315
    assert (genome.mobile["kind"] == "mobile_element").sum() == 50
    assert genome.amr["gene"].tolist() == ["ampC"]


def test_amr_and_mobile_name_rules():
    assert amr_class("extended-spectrum class A beta-lactamase CTX-M-15") == "beta-lactam"
    assert amr_class("aminoglycoside O-phosphotransferase APH(3')-Ia") == "aminoglycoside"
    assert amr_class("hypothetical protein", "floR") == "phenicol"
    assert amr_class("metallo-beta-lactamase superfamily inner membrane protein YcaI") is None
    assert amr_class("Type IV methyl-directed restriction enzyme EcoKMcrA", "mcrA") is None
    assert amr_class("IS6-like element IS26 family transposase") is None
    assert is_mobile_cds("class 1 integron integrase IntI1") and is_mobile_cds("protein InsA", "insA")
    assert not is_mobile_cds("sulfonamide-resistant dihydropteroate synthase Sul1", "sul1")


GENBANK = """LOCUS       TEST1                    120 bp    DNA     linear   BCT 01-JAN-2024
DEFINITION  test.
ACCESSION   TEST1
VERSION     TEST1.1
FEATURES             Location/Qualifiers
     source          1..120
     CDS             11..40
                     /gene="blaTEM-1"
                     /product="class A beta-lactamase TEM-1"
     mobile_element  61..100
                     /mobile_element_type="insertion sequence:ISX"
ORIGIN
        1 acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt
       61 acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt acgtacgtac gtacgtacgt
//
"""


def test_genbank_tables_are_zero_based(tmp_path):
    path = tmp_path / "test.gb.gz"
    path.write_bytes(gzip.compress(GENBANK.encode()))
    (replicon,) = read_genbank(path)
    assert replicon.name == "TEST1.1" and len(replicon.sequence) == 120
    assert replicon.cds[["start", "end", "strand"]].values.tolist() == [[10, 40, "+"]]
    assert replicon.mobile[["start", "end", "kind"]].values.tolist() == [[60, 100, "mobile_element"]]
    assert replicon.amr["amr_class"].tolist() == ["beta-lactam"]


@pytest.mark.parametrize(
    "text, problem",
    [
        (GENBANK.replace("11..40", "11..4x0"), "malformed GenBank"),
        (
            GENBANK.replace(
                "     source          1..120", "     source          1..120\n     CDS             115..130"
            ),
            "outside",
        ),
        (">seq\nACGT\n", "no GenBank records"),
        (GENBANK.split("ORIGIN")[0] + "CONTIG      join(X1.1:1..120)\n//\n", "no sequence"),
    ],
)
def test_malformed_genbank_names_the_file(tmp_path, text, problem):
    path = tmp_path / "bad.gb"
    path.write_text(text)
    with pytest.raises(InputFormatError, match=problem) as error:
        read_genbank(path)
    assert str(path) in str(error.value)


def test_con_record_takes_the_sequence_of_its_fasta(tmp_path):
    genbank = tmp_path / "con.gb"
    genbank.write_text(GENBANK.split("ORIGIN")[0] + "CONTIG      join(X1.1:1..120)\n//\n")
    fasta = tmp_path / "con.fasta"
    fasta.write_text(">TEST1.1 a plasmid\n" + "ACGT" * 30 + "\n")
    (replicon,) = read_genbank(genbank, fasta)
    assert replicon.sequence == "ACGT" * 30
    fasta.write_text(">TEST1.1\nACGT\n")
    with pytest.raises(InputFormatError, match="differs"):
        read_genbank(genbank, fasta)


# --- IS dataset ----------------------------------------------------------------------------------------------


@pytest.mark.shared_data
def test_is_dataset_is_balanced_and_counted(is_dataset):
    counts = is_dataset.attrs["counts"]
    labels = is_dataset["label"].value_counts()
    assert labels[1] == labels[0] == counts["positives"] == counts["amr_flank"] + counts["genomic"]
    assert labels[1] > 3000  # the replicons' ~5 Mbp of free sequence holds about 3,400 negatives
    assert counts["isfinder_distinct"] == 5993 and counts["positives_too_long"] == 37
    assert counts["amr_flank"] >= 20
    assert is_dataset["id"].is_unique
    assert is_dataset["sequence"].str.len().max() <= 5000
    kinds = is_dataset.loc[is_dataset["label"] == 0, "group"].str.split(":").str[0]
    assert set(kinds) == {"amr_flank", "genomic"}


@pytest.mark.shared_data
def test_negative_lengths_follow_the_positive_lengths(is_dataset):
    lengths = is_dataset["sequence"].str.len().to_numpy()
    positive, negative = lengths[is_dataset["label"] == 1], lengths[is_dataset["label"] == 0]
    quantiles = [10, 25, 50, 75, 90]
    assert np.allclose(np.percentile(negative, quantiles), np.percentile(positive, quantiles), rtol=0.05)
    grid = np.union1d(positive, negative)
    ks = np.abs(
        np.searchsorted(np.sort(positive), grid, "right") / len(positive)
        - np.searchsorted(np.sort(negative), grid, "right") / len(negative)
    ).max()
    assert ks < 0.05


@pytest.mark.shared_data
def test_negatives_are_genome_slices_away_from_mobile_elements(shared_data, is_dataset, replicons):
    calls = read_is_calls(shared_data / "is_scan_eval" / "derived_ISfinder_blastn_IS_calls.tsv")
    negatives = is_dataset[is_dataset["label"] == 0]
    for contig, rows in negatives.groupby("contig"):
        replicon = replicons[contig]
        blocked = pd.concat([replicon.mobile[["start", "end"]], calls.loc[calls["contig"] == contig, ["start", "end"]]])
        starts, ends = rows["start"].to_numpy(), rows["end"].to_numpy()
        overlap = (starts[:, None] < blocked["end"].to_numpy() + 200) & (
            ends[:, None] > blocked["start"].to_numpy() - 200
        )
        assert not overlap.any(), f"{contig}: a negative overlaps a mobile element"
        order = np.argsort(starts)
        assert (starts[order][1:] >= ends[order][:-1]).all()  # negatives never share a base
        for row in rows.itertuples(index=False):
            bases = replicon.sequence[row.start : row.end]
            assert row.sequence == (bases if row.strand == "+" else reverse_complement(bases))


@pytest.mark.shared_data
def test_build_is_dataset_windows_and_sampling(shared_data):
    table = build_is_dataset(
        shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz",
        replicon_files(shared_data)[3:],  # two plasmids are enough here
        n_positives=200,
        window=300,
        seed=3,
    )
    assert (table["sequence"].str.len() == 300).all()
    assert (table["label"] == 1).sum() == (table["label"] == 0).sum() == 200
    positives = table[table["label"] == 1]
    assert positives["group"].value_counts().index[0] in {"IS5", "IS3"}  # stratified: the big families lead


def test_a_fasta_given_with_a_full_record_must_match_it(tmp_path):
    genbank = tmp_path / "full.gb"
    genbank.write_text(GENBANK)
    fasta = tmp_path / "full.fasta"
    fasta.write_text(">TEST1.1\n" + "ACGT" * 30 + "\n")
    assert read_genbank(genbank, fasta)[0].sequence == "ACGT" * 30
    fasta.write_text(">TEST1.1\n" + "TGCA" * 30 + "\n")
    with pytest.raises(InputFormatError, match="differs"):
        read_genbank(genbank, fasta)


def test_isfinder_reads_name_group_family_headers(tmp_path):
    """thanhleviet/ISfinder-sequences' IS.fna names records NAME_GROUP_FAMILY; names may hold '_' themselves."""
    from genolm.sources.isfinder import read_isfinder

    fasta = tmp_path / "IS.fna"
    fasta.write_text(">IS1A_IS1_IS1\nACGTACGTAC\n>ISEc_weird_name\nTTTTGGGGCC\n")
    summary = tmp_path / "IS.csv"
    summary.write_text("Name,Family,Group\nIS1A,IS1,IS1\n")
    table = read_isfinder(fasta, summary).set_index("name")
    assert table.loc["IS1A", "family"] == "IS1"
    # 'ISEc' is not a known name, so the record keeps its whole name and an unknown family
    assert table.loc["ISEc_weird_name", "family"] == "unknown"
    no_summary = read_isfinder(fasta).set_index("name")
    assert no_summary.loc["IS1A", ["group", "family"]].tolist() == ["IS1", "IS1"]
