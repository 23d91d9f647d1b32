"""IS calls near AMR genes (genolm.amr): the rule table, nearest-gene distances and sides, circular wrap, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from genolm.amr import (
    Contig,
    amr_genes,
    classify,
    demo_amr_annotation,
    distance_figure,
    is_amr_proximity,
    nearest,
    proximity_tables,
    read_gff3_annotation,
    read_is_calls,
    read_rules,
    replicon_map_figure,
)
from genolm.errors import InputFormatError
from genolm.formats import write_bed, write_gff3
from genolm.report import binned_max, genome_overview_figure
from genolm.scan import Call


@pytest.fixture(scope="module")
def rules(repo):
    return read_rules(repo / "resources" / "amr_gene_patterns.tsv")


def frame(rows, columns):
    return pd.DataFrame(rows, columns=columns)


CDS = ["contig", "start", "end", "strand", "locus_tag", "gene", "product"]
CALLS = ["id", "contig", "start", "end", "strand", "score"]


@pytest.mark.parametrize(
    ("gene", "product", "expected"),
    [
        ("", "extended-spectrum class A beta-lactamase CTX-M-15", "beta-lactam"),
        ("aph(3'')-Ib", "aminoglycoside O-phosphotransferase APH(3'')-Ib", "aminoglycoside"),
        ("sul1", "sulfonamide-resistant dihydropteroate synthase Sul1", "sulfonamide"),
        ("tet(A)", "tetracycline efflux MFS transporter Tet(A)", "tetracycline"),
        ("erm(B)", "23S rRNA (adenine(2058)-N(6))-methyltransferase Erm(B)", "macrolide"),
        ("", "multidrug efflux RND transporter permease subunit OqxB", "quinolone"),  # a clearly AMR pump is kept
        ("tetR(A)", "tetracycline resistance transcriptional repressor TetR(A)", None),  # regulator
        ("acrB", "multidrug efflux pump RND permease AcrB", None),  # intrinsic broad efflux
        ("", "quaternary ammonium compound-resistance protein QacE delta 1", None),  # biocide
        ("", "IS6-like element IS26 family transposase", None),  # mobile element
        ("", "metallo-beta-lactamase superfamily protein", None),  # fold only
        ("msrA", "methionine sulfoxide reductase A", None),  # not msr(E)
        ("", "hypothetical protein", None),
    ],
)
def test_rule_table_classes_and_exclusions(rules, gene, product, expected):
    assert classify(gene, product, rules) == expected


def test_rule_table_errors_name_file_and_line(tmp_path):
    table = tmp_path / "rules.tsv"
    table.write_text(
        "# comment\naction\tclass\tgene_regex\tproduct_regex\tnote\ninclude\tbeta-lactam\t^bla(\t\tbroken\n"
    )
    with pytest.raises(InputFormatError, match=r"rules\.tsv: line 3: invalid regex"):
        read_rules(table)
    table.write_text("action\tclass\tgene_regex\tproduct_regex\tnote\nexclude\tmobile\t\ttranspos\tx\n")
    with pytest.raises(InputFormatError, match="no include rows"):
        read_rules(table)


# A hand-made annotation with known answers. c1 linear 10 kb, p1 circular 10 kb, c2 without AMR genes.
CONTIGS = {
    "c1": Contig("c1", 10_000, circular=False),
    "p1": Contig("p1", 10_000, circular=True),
    "c2": Contig("c2", 5_000, circular=True),
}
ANNOTATION = frame(
    [
        ("c1", 1000, 2000, "+", "t1", "blaTEM-1", "broad-spectrum class A beta-lactamase TEM-1"),
        ("c1", 2100, 3000, "+", "t2", "", "IS6 family transposase"),
        ("c1", 5000, 5500, "-", "t3", "sul1", "sulfonamide-resistant dihydropteroate synthase Sul1"),
        ("c1", 7000, 7600, "-", "t4", "tetR(A)", "tetracycline resistance transcriptional repressor TetR(A)"),
        ("p1", 100, 600, "+", "t5", "floR", "chloramphenicol/florfenicol efflux MFS transporter FloR"),
        ("c2", 100, 900, "+", "t6", "", "hypothetical protein"),
    ],
    CDS,
)
IS_CALLS = frame(
    [
        ("A", "c1", 2050, 2950, "+", 0.9),  # 50 bp right of blaTEM-1
        ("B", "c1", 4800, 5200, "-", 0.8),  # overlaps sul1 by 200 bp
        ("C", "c1", 8000, 8500, ".", 0.7),  # 2,500 bp right of sul1, no strand
        ("D", "p1", 9500, 9900, "+", 0.6),  # 200 bp from floR across the origin (8,900 bp the other way)
        ("E", "c2", 1000, 1400, "+", 0.5),  # no AMR gene on this replicon
    ],
    CALLS,
)


@pytest.fixture(scope="module")
def tables(rules):
    genes = amr_genes(ANNOTATION, rules)
    return proximity_tables(IS_CALLS, genes, CONTIGS, near_bp=1000)


def test_only_amr_cds_count(rules):
    genes = amr_genes(ANNOTATION, rules)
    assert genes["locus_tag"].tolist() == ["t1", "t3", "t5"]  # transposase, tetR and hypothetical are out
    assert genes["amr_class"].tolist() == ["beta-lactam", "sulfonamide", "phenicol"]


def test_nearest_gene_distance_and_sides(tables):
    by_call = tables[0].set_index("call_id")
    a = by_call.loc["A"]
    assert (a["amr_gene"], a["distance_bp"], a["overlap_bp"]) == ("blaTEM-1", 50, 0)
    # the gene lies left of a + strand IS: upstream of it; the IS lies right of a + strand gene: downstream of it
    assert (a["orientation"], a["gene_side"], a["is_side"]) == ("same", "upstream", "downstream")
    c = by_call.loc["C"]
    assert (c["amr_gene"], c["distance_bp"]) == ("sul1", 2500)
    # an unstranded call has no orientation, but the IS still lies 5' of the - strand gene (at higher coordinates)
    assert (c["orientation"], c["gene_side"], c["is_side"]) == ("unknown", "unknown", "upstream")
    assert by_call.loc["A", "amr_genes_near"] == 1 and by_call.loc["C", "amr_genes_near"] == 0


def test_overlap_is_distance_zero(tables):
    b = tables[0].set_index("call_id").loc["B"]
    assert (b["amr_gene"], b["distance_bp"], b["overlap_bp"]) == ("sul1", 0, 200)
    assert (b["orientation"], b["gene_side"], b["is_side"]) == ("same", "overlapping", "overlapping")


def test_circular_replicon_wraps_around_the_origin(tables):
    d = tables[0].set_index("call_id").loc["D"]
    assert (d["amr_gene"], d["distance_bp"], d["via_origin"]) == ("floR", 200, True)
    # clockwise from the IS across the origin: the gene is downstream of the + strand IS, the IS upstream of it
    assert (d["gene_side"], d["is_side"]) == ("downstream", "upstream")
    linear = {**CONTIGS, "p1": Contig("p1", 10_000, circular=False)}
    genes = tables[1][["contig", "start", "end", "strand", "locus_tag", "gene", "product", "amr_class"]]
    unwrapped = proximity_tables(IS_CALLS, genes, linear, near_bp=1000)[0].set_index("call_id").loc["D"]
    assert (unwrapped["distance_bp"], unwrapped["via_origin"]) == (8900, False)


def test_replicon_without_amr_genes_gives_empty_columns(tables):
    e = tables[0].set_index("call_id").loc["E"]
    assert pd.isna(e["distance_bp"]) and e["amr_gene"] == "" and e["orientation"] == ""
    assert e["amr_genes_near"] == 0


def test_a_genome_without_any_amr_gene(rules):
    genes = amr_genes(ANNOTATION[ANNOTATION["contig"] == "c2"], rules)
    by_call, by_gene = proximity_tables(IS_CALLS, genes, CONTIGS, near_bp=1000)
    assert len(by_gene) == 0 and len(by_call) == len(IS_CALLS)
    assert by_call["distance_bp"].isna().all() and (by_call["amr_gene"] == "").all()


def test_each_amr_gene_gets_its_nearest_call(tables):
    by_gene = tables[1].set_index("locus_tag")
    assert by_gene.loc["t1", "nearest_call"] == "A" and by_gene.loc["t1", "distance_bp"] == 50
    assert by_gene.loc["t3", "nearest_call"] == "B" and by_gene.loc["t3", "distance_bp"] == 0
    assert by_gene.loc["t5", "nearest_call"] == "D" and bool(by_gene.loc["t5", "via_origin"])
    assert by_gene.loc["t1", "is_side"] == "downstream"  # the IS lies 3' of the + strand gene


def test_touching_intervals_and_ties():
    queries = frame([("q", "x", 10, 20, "+", 0.0)], CALLS)
    targets = frame([("x", 20, 30, "+", "r", "", ""), ("x", 0, 10, "+", "l", "", "")], CDS)
    found = nearest(queries, targets, {"x": Contig("x", 100)}).iloc[0]
    # both touch (0 bp apart, no overlap): the tie goes to the leftmost target
    assert (found["target"], found["distance"], found["overlap"], found["direction"]) == (1, 0, 0, -1)


def test_scan_call_files_round_trip_and_an_empty_call_file(tmp_path, rules, repo):
    calls = [Call("c1", 2050, 2950, ".", 0.9, 2050, "insertion_sequence", 3, 400)]
    write_bed(calls, tmp_path / "calls.bed.gz", contig_order=["c1"], id_prefix="is")
    write_gff3(calls, tmp_path / "calls.gff3.gz", contig_order=["c1"], id_prefix="is")
    from_bed = read_is_calls(tmp_path / "calls.bed.gz")
    from_gff = read_is_calls(tmp_path / "calls.gff3.gz")
    assert from_bed[["id", "contig", "start", "end", "strand"]].equals(
        from_gff[["id", "contig", "start", "end", "strand"]]
    )
    assert from_gff.loc[0, "id"] == "is_000001" and from_gff.loc[0, "score"] == pytest.approx(0.9)

    annotation = tmp_path / "annotation.gff3"
    lines = ["##gff-version 3", "##sequence-region c1 1 10000"]
    for row in ANNOTATION[ANNOTATION["contig"] == "c1"].itertuples():
        lines.append(
            f"c1\ttest\tCDS\t{row.start + 1}\t{row.end}\t.\t{row.strand}\t0\tID={row.locus_tag};gene={row.gene};"
            f"product={row.product}"
        )
    lines.append("c1\ttest\tregion\t1\t10000\t.\t+\t.\tID=c1;Is_circular=true")
    annotation.write_text("\n".join(lines) + "\n")
    contigs, cds = read_gff3_annotation(annotation)
    assert contigs["c1"] == Contig("c1", 10_000, circular=True) and len(cds) == 4

    write_gff3([], tmp_path / "empty.gff3.gz")
    outputs = {key: tmp_path / f"{key}.tsv" for key in ("calls", "genes", "replicons")}
    summary = is_amr_proximity(
        tmp_path / "empty.gff3.gz", repo / "resources" / "amr_gene_patterns.tsv", outputs, gff=annotation
    )
    assert summary.set_index("contig").loc["c1", ["amr_genes", "is_calls", "calls_near_amr"]].tolist() == [2, 0, 0]
    assert len(pd.read_csv(outputs["calls"], sep="\t")) == 0
    genes = pd.read_csv(outputs["genes"], sep="\t", keep_default_na=False)
    assert genes["gene"].tolist() == ["blaTEM-1", "sul1"] and genes["nearest_call"].tolist() == ["", ""]


def test_demo_labels_the_cds_next_to_one_is_family(tmp_path, rules):
    truth = tmp_path / "truth.gff3"
    lines = ["##gff-version 3", "##sequence-region chrom 1 100000"]
    for index in range(60):  # CDS every 1.5 kb
        start = 1 + 1500 * index
        lines.append(f"chrom\tgenolm_demo\tCDS\t{start}\t{start + 899}\t.\t+\t0\tID=chrom_cds{index:04d}")
    for family, start in (("ISdemo1", 3001 + 950), ("ISdemo1", 30001 + 950), ("ISdemo2", 60001 + 950)):
        lines.append(
            f"chrom\tgenolm_demo\tinsertion_sequence\t{start}\t{start + 400}\t.\t-\t.\t"
            f"ID={family}_{start};family={family}"
        )
    truth.write_text("\n".join(lines) + "\n")
    labelled = demo_amr_annotation(truth, tmp_path / "annotation.gff3")
    # the CDS nearest each ISdemo1 copy (cds0002, cds0020) and every 40th from the 20th (cds0020 again)
    assert labelled["id"].tolist() == ["chrom_cds0002", "chrom_cds0020"]
    contigs, cds = read_gff3_annotation(tmp_path / "annotation.gff3")
    genes = amr_genes(cds, rules)
    assert genes["locus_tag"].tolist() == ["chrom_cds0002", "chrom_cds0020"]  # the labels pass the real rule table
    assert genes["amr_class"].tolist() == ["beta-lactam", "sulfonamide"] and contigs["chrom"].length == 100_000


def test_figures_draw_one_track_per_replicon(tables):
    by_call, by_gene = tables
    replicons = pd.DataFrame(
        {"contig": ["c1", "p1", "c2"], "length": [10_000, 10_000, 5_000], "amr_genes": [2, 1, 0], "is_calls": [3, 1, 1]}
    )
    assert len(replicon_map_figure(by_call, by_gene, replicons, "test").axes) == 3
    histogram = distance_figure(by_call, by_gene, "test", 1000)
    assert sum(len(axis.patches) for axis in histogram.axes) > 0


def test_genome_overview_bins_keep_the_best_window_of_each_strand():
    positions = np.array([5.0, 15.0, 16.0, 35.0])
    values = np.array([0.1, 0.7, np.nan, 0.4])
    edges = np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    assert np.allclose(binned_max(positions, values, edges), [0.1, 0.7, np.nan, 0.4], equal_nan=True)
    starts = np.arange(0, 1000, 10)
    scores = {
        "window": 50,
        "threshold": 0.5,
        "contigs": {"a": (starts, np.linspace(0, 1, 100), np.zeros(100)), "b": (starts[:10], np.ones(10), np.ones(10))},
    }
    truth = pd.DataFrame({"contig": ["a"], "start": [100], "end": [400], "strand": ["+"]})
    figure = genome_overview_figure({"genome": "g", "task": "is", "model": "cnn"}, scores, truth)
    assert len(figure.axes) == 2 and figure.axes[0].get_xlim() == (0.0, 1040.0)  # longest replicon first


@pytest.mark.shared_data
def test_real_amr_plasmids_and_mg1655(shared_data, rules):
    from genolm.amr import read_genbank_annotation

    folder = shared_data / "is_scan_eval" / "ecoli_amr_plasmids"
    accessions = ["NC_018659", "NC_010488", "NC_017645", "NC_009838"]
    contigs, cds = read_genbank_annotation(
        [folder / f"{acc}.gb" for acc in accessions], [folder / f"{acc}.fasta" for acc in accessions]
    )
    assert all(contig.circular for contig in contigs.values())  # LOCUS ... circular
    genes = amr_genes(cds, rules)
    assert genes["contig"].value_counts().to_dict() == {
        "NC_018659.1": 2, "NC_010488.1": 9, "NC_017645.1": 11, "NC_009838.1": 4
    }  # fmt: skip
    assert not genes["gene"].str.startswith(("tetR", "sugE")).any()  # regulators and biocide genes are not AMR

    # ISfinder blastn calls (shared data, derived) stand in for model calls
    blast = pd.read_csv(shared_data / "is_scan_eval" / "derived_ISfinder_blastn_IS_calls.tsv", sep="\t")
    blast = blast[blast["seqid"].isin(contigs)]
    calls = pd.DataFrame(
        {
            "id": blast["best_ISfinder_hit"] + "@" + blast["start_1based"].astype(str),
            "contig": blast["seqid"],
            "start": blast["start_1based"] - 1,
            "end": blast["end"],
            "strand": blast["strand"],
            "score": blast["percent_identity"],
        }
    )
    by_call, by_gene = proximity_tables(calls, genes, contigs, near_bp=10_000)
    ctx = by_gene[by_gene["product"].str.contains("CTX-M-15")].iloc[0]
    # ISEcp1 (ISEc9 in ISfinder) sits 48 bp upstream of blaCTX-M-15, on the same strand (the study's example)
    assert (ctx["nearest_call"], ctx["distance_bp"], ctx["is_side"], ctx["orientation"]) == (
        "ISEc9@46092",
        48,
        "upstream",
        "same",
    )
    assert (by_gene["distance_bp"] <= 10_000).all()  # every AMR gene of these plasmids has an IS within 10 kb
    wrapped = by_call.set_index("call_id").loc["ISKpn74@229517"]
    assert (wrapped["amr_gene"], wrapped["distance_bp"], wrapped["via_origin"]) == ("tet(C)", 100_417, True)

    chromosome = shared_data / "ecoli_k12_mg1655"
    contigs, cds = read_genbank_annotation(
        [chromosome / "GCF_000005845.2_ASM584v2_genomic.gbff.gz"],
        [chromosome / "GCF_000005845.2_ASM584v2_genomic.fna.gz"],
    )
    assert amr_genes(cds, rules)["gene"].tolist() == ["ampC"]  # no msr reductases, no multidrug pumps
