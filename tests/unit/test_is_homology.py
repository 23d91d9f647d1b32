"""The homology IS caller (genolm.is_homology) on synthetic genomes with planted IS copies, and on the shared real
data (ISfinder against E. coli MG1655 and four AMR plasmids)."""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pysam
import pytest

from genolm.annotations import read_gff3
from genolm.errors import ConfigError, InputFormatError
from genolm.is_homology import (
    HomologyConfig,
    build_index,
    build_library_index,
    canonical_kmers,
    demo_library,
    evaluate_homology,
    genome_hits,
    load_index,
    save_index,
    scan_homology,
    write_demo_library,
)
from genolm.scan import evaluate_calls
from genolm.seqio import reverse_complement
from genolm.sources.splits import BASE_CODES

K = 21
RNG_SEED = 7


def random_dna(rng: np.random.Generator, n: int) -> str:
    return "".join(rng.choice(list("ACGT"), n))


def mutate(rng: np.random.Generator, seq: str, n: int, avoid_ends: int = 30) -> str:
    """``n`` substitutions at distinct positions away from the ends."""
    bases = list(seq)
    for position in rng.choice(np.arange(avoid_ends, len(seq) - avoid_ends), n, replace=False):
        bases[position] = "ACGT"[("ACGT".index(bases[position]) + 1 + int(rng.integers(3))) % 4]
    return "".join(bases)


@pytest.fixture(scope="module")
def library() -> dict[str, str]:
    rng = np.random.default_rng(RNG_SEED)
    return {"ISa": random_dna(rng, 1200), "ISb": random_dna(rng, 800), "ISc": random_dna(rng, 1500)}


@pytest.fixture(scope="module")
def index(library):
    return build_index(list(library), list(library.values()), K, families=["F1", "F2", "F3"], groups=["g", "g", "g"])


def write_genome(path, contigs: dict[str, str]) -> None:
    path.write_text("".join(f">{name}\n{seq}\n" for name, seq in contigs.items()))


def run_scan(tmp_path, index, contigs: dict[str, str] | None, **settings):
    genome = tmp_path / "genome.fa"
    if contigs is None:
        genome.write_text("")
    else:
        write_genome(genome, contigs)
    index_path = tmp_path / "index.npz"
    save_index(index, index_path)
    outputs = {name: tmp_path / f"calls.{name}.gz" for name in ("bed", "gff")}
    outputs["summary"] = tmp_path / "summary.tsv"
    summary = scan_homology(genome, index_path, outputs, "test", {"k": K, **settings})
    return read_gff3(outputs["gff"]), summary, outputs


def test_planted_copies_found_with_boundaries_strand_and_name(tmp_path, library, index):
    rng = np.random.default_rng(1)
    plants = [  # (element, start, strand, substitutions)
        ("ISa", 5_000, "+", 4),
        ("ISb", 14_000, "-", 3),
        ("ISc", 25_000, "-", 0),
        ("ISa", 40_000, "+", 0),
    ]
    genome = list(random_dna(rng, 50_000))
    truth = []
    for name, start, strand, substitutions in plants:
        copy = mutate(rng, library[name], substitutions) if substitutions else library[name]
        copy = copy if strand == "+" else reverse_complement(copy)
        genome[start : start + len(copy)] = list(copy)
        truth.append((name, start, start + len(copy), strand))
    calls, summary, _ = run_scan(tmp_path, index, {"chr": "".join(genome)})
    assert len(calls) == len(plants)
    for row, (name, start, end, strand) in zip(calls.itertuples(), truth, strict=True):
        assert row.attributes["Name"] == name
        assert row.strand == strand
        assert abs(row.start - start) <= 3 and abs(row.end - end) <= 3
        assert row.attributes["family"] == {"ISa": "F1", "ISb": "F2", "ISc": "F3"}[name]
        assert float(row.attributes["identity"]) > 0.99
    assert int(summary["calls"].iloc[0]) == 4
    assert int(summary["calls_minus"].iloc[0]) == 2


def test_mismatch_near_an_end_keeps_the_element_boundary(tmp_path, library, index):
    rng = np.random.default_rng(2)
    copy = list(library["ISb"])
    copy[3] = "A" if copy[3] != "A" else "C"  # a k-mer-breaking substitution 3 bp from the start
    copy[-5] = "G" if copy[-5] != "G" else "T"
    genome = random_dna(rng, 3_000) + "".join(copy) + random_dna(rng, 3_000)
    calls, _, _ = run_scan(tmp_path, index, {"chr": genome})
    assert [(row.start, row.end) for row in calls.itertuples()] == [(3_000, 3_000 + len(copy))]


def test_random_sequence_gives_no_calls(tmp_path, index):
    rng = np.random.default_rng(3)
    calls, summary, outputs = run_scan(tmp_path, index, {"a": random_dna(rng, 200_000), "b": random_dna(rng, 500)})
    assert calls.empty
    assert int(summary["calls"].iloc[0]) == 0
    assert pysam.TabixFile(str(outputs["bed"])).contigs == []


def test_n_runs_lowercase_and_iupac(tmp_path, library, index):
    rng = np.random.default_rng(4)
    copy = library["ISc"].lower()
    copy = copy[:600] + "N" * 40 + copy[640:900] + "R" + copy[901:]  # an N run and an IUPAC code inside the copy
    genome = random_dna(rng, 2_000) + "N" * 500 + copy + random_dna(rng, 2_000).lower()
    contigs = {"chr": genome, "gap": "N" * 5_000, "tiny": "ACGTACGT"}
    calls, summary, _ = run_scan(tmp_path, index, contigs)
    assert len(calls) == 1
    row = calls.iloc[0]
    assert row["attributes"]["Name"] == "ISc" and row["strand"] == "+"
    assert (row["start"], row["end"]) == (2_500, 2_500 + len(copy))
    assert int(summary["contigs"].iloc[0]) == 3
    assert int(summary["contigs_shorter_than_k"].iloc[0]) == 1


def test_nested_insertion_gives_three_calls(tmp_path, library, index):
    """ISb inserted into ISa (as IS30 inside IS911 on MG1655): ISa's two pieces and ISb, not one merged call."""
    rng = np.random.default_rng(5)
    host = library["ISa"]
    element = host[:500] + library["ISb"] + host[500:]
    genome = random_dna(rng, 1_000) + element + random_dna(rng, 1_000)
    calls, _, _ = run_scan(tmp_path, index, {"chr": genome})
    found = [(row.attributes["Name"], row.start, row.end) for row in calls.itertuples()]
    assert found == [("ISa", 1_000, 1_500), ("ISb", 1_500, 2_300), ("ISa", 2_300, 3_000)]
    assert float(calls.iloc[0]["attributes"]["element_coverage"]) == pytest.approx(500 / 1200, abs=1e-3)


def test_filters_drop_short_partial_and_diverged_copies(tmp_path, library, index):
    rng = np.random.default_rng(6)
    genome = (
        random_dna(rng, 2_000)
        + library["ISa"][:120]  # shorter than min_length
        + random_dna(rng, 2_000)
        + mutate(rng, library["ISc"], 60)  # 96% identity
        + random_dna(rng, 2_000)
        + mutate(rng, library["ISa"], 180)  # 85% identity
        + random_dna(rng, 2_000)
        + library["ISb"][:300]  # 37.5% of ISb
        + random_dna(rng, 2_000)
    )
    calls, _, _ = run_scan(tmp_path, index, {"chr": genome})
    assert [row.attributes["Name"] for row in calls.itertuples()] == ["ISc", "ISb"]
    assert 0.95 <= float(calls.iloc[0]["attributes"]["identity"]) < 0.97
    calls, _, _ = run_scan(tmp_path, index, {"chr": genome}, min_element_fraction=0.5)
    assert [row.attributes["Name"] for row in calls.itertuples()] == ["ISc"]
    calls, _, _ = run_scan(tmp_path, index, {"chr": genome}, min_identity=0.99)
    assert [row.attributes["Name"] for row in calls.itertuples()] == ["ISb"]


def test_empty_genome_gives_valid_empty_outputs(tmp_path, index):
    calls, summary, outputs = run_scan(tmp_path, index, None)
    assert calls.empty
    assert summary[["contigs", "bp", "calls"]].iloc[0].tolist() == [0, 0, 0]
    for name in ("bed", "gff"):
        assert outputs[name].with_name(outputs[name].name + ".tbi").is_file()
        with gzip.open(outputs[name], "rt") as handle:
            assert all(line.startswith("#") for line in handle)


def test_hits_do_not_depend_on_chunking(library, index):
    rng = np.random.default_rng(8)
    genome = random_dna(rng, 3_000) + library["ISa"] + random_dna(rng, 1_000) + reverse_complement(library["ISb"])
    whole, length = genome_hits([genome], index)
    pieces = [genome[i : i + 997] for i in range(0, len(genome), 997)]
    chunked, chunked_length = genome_hits(pieces, index)
    assert length == chunked_length == len(genome)
    for name in ("positions", "rows", "forward"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(chunked, name))
    assert whole.positions.size == (1200 - K + 1) + (800 - K + 1)


def test_canonical_kmers_match_reverse_complement_and_skip_non_acgt():
    seq = "ACGTTGCANNACGGATTACAGATTACA"
    codes = BASE_CODES[np.frombuffer(seq.encode(), np.uint8)]
    kmers, _, valid = canonical_kmers(codes, 11)
    rc_codes = BASE_CODES[np.frombuffer(reverse_complement(seq).encode(), np.uint8)]
    rc_kmers, _, rc_valid = canonical_kmers(rc_codes, 11)
    np.testing.assert_array_equal(valid, rc_valid[::-1])
    np.testing.assert_array_equal(kmers[valid], rc_kmers[::-1][valid])
    assert not valid[:10].any() and valid[10:].all()


def test_index_round_trip_without_pickle(tmp_path, index):
    path = tmp_path / "index.npz"
    save_index(index, path)
    with np.load(path, allow_pickle=False) as data:
        assert all(data[key].dtype != object for key in data.files)
    loaded = load_index(path)
    assert (loaded.k, loaded.source, loaded.n_elements) == (index.k, index.source, index.n_elements)
    for name in ("kmers", "element", "names", "families", "groups", "offsets", "codes"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(index, name))
    np.savez(tmp_path / "other.npz", kmers=np.arange(3))
    with pytest.raises(InputFormatError, match="not a genolm-is-kmer-index"):
        load_index(tmp_path / "other.npz")


def test_index_keeps_first_element_of_shared_kmers(library):
    shared = build_index(["one", "two"], [library["ISa"], library["ISa"][:400]], K)
    assert np.all(shared.element == 0)
    assert shared.kmers.size == 1200 - K + 1


def test_library_index_from_fasta_with_labels_and_length_limit(tmp_path, library):
    fasta = tmp_path / "IS.fna"
    fasta.write_text("".join(f">{name} family=F{i} group=NA\n{seq}\n" for i, (name, seq) in enumerate(library.items())))
    index = build_library_index(fasta, tmp_path / "index.npz", K, max_element_length=1300)
    assert index.names.tolist() == ["ISa", "ISb"]
    assert index.families.tolist() == ["F0", "F1"]
    assert len(index.source_sha256) == 64
    assert load_index(tmp_path / "index.npz").max_element_length == 1300


def test_config_checks():
    with pytest.raises(ConfigError, match="odd"):
        HomologyConfig(k=22)
    with pytest.raises(ConfigError, match="min_identity"):
        HomologyConfig(min_identity=1.5)
    assert HomologyConfig.from_mapping({"enabled": True, "k": 25}).k == 25


def test_k_mismatch_between_index_and_settings(tmp_path, index):
    with pytest.raises(ConfigError, match="rebuild"):
        run_scan(tmp_path, index, {"chr": "ACGT" * 100}, k=23)


def test_demo_library_finds_every_demo_copy(tmp_path):
    from genolm.demo import DemoConfig, write_demo

    demo = {"genome_length": 120_000, "contigs": 2, "is_families": 2, "is_copies_per_family": 3, "is_divergence": 0.03}
    write_demo(DemoConfig.from_dict({**demo, "seed": 3}), tmp_path / "demo.fa", tmp_path / "truth.gff3", {})
    write_demo_library(demo, 3, tmp_path / "library.fa")
    assert demo_library(demo, 3)[0] == ["ISdemo1", "ISdemo2"]
    index = build_library_index(tmp_path / "library.fa", tmp_path / "demo.npz", K)
    outputs = {"bed": tmp_path / "c.bed.gz", "gff": tmp_path / "c.gff3.gz", "summary": tmp_path / "s.tsv"}
    scan_homology(tmp_path / "demo.fa", tmp_path / "demo.npz", outputs, "demo", {"k": K})
    evaluate_homology(outputs["gff"], tmp_path / "truth.gff3", tmp_path / "evaluation.tsv")
    result = pd.read_csv(tmp_path / "evaluation.tsv", sep="\t").set_index("metric")["value"]
    assert index.n_elements == 2
    assert float(result["recall"]) == 1.0 and float(result["fdr"]) == 0.0


def test_report_table_puts_homology_beside_model_scans(tmp_path, library, index):
    from genolm.report import homology_comparison

    rng = np.random.default_rng(9)
    genome = random_dna(rng, 2_000) + library["ISa"] + random_dna(rng, 2_000)
    truth = tmp_path / "truth.gff3"
    truth.write_text("##gff-version 3\nchr\tx\tinsertion_sequence\t2001\t3200\t.\t+\t.\tID=t1\n")
    _, _, outputs = run_scan(tmp_path, index, {"chr": genome})
    evaluate_homology(outputs["gff"], truth, tmp_path / "homology.tsv")
    evaluate_homology(truth, truth, tmp_path / "model.tsv")  # a stand-in for a model scan's evaluation
    entry = {
        "genome": "g",
        "summary": outputs["summary"],
        "evaluation": tmp_path / "homology.tsv",
        "scans": [{"task": "is", "model": "cnn", "evaluation": tmp_path / "model.tsv"}],
    }
    table = homology_comparison(entry)
    assert table["caller"].tolist() == ["homology (ISfinder k-mers)", "is / cnn"]
    assert table[["recall", "precision", "fdr"]].iloc[0].tolist() == [1.0, 1.0, 0.0]


# -----------------------------------------------------------------------------
# Real data: ISfinder against MG1655 (50 RefSeq IS) and four AMR plasmids (the blastn calls of is_scan_eval)


@pytest.fixture(scope="module")
def isfinder_index(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("isfinder") / "isfinder.npz"
    build_library_index(shared_data / "isfinder" / "ISfinder_IS_nt.fasta.gz", path, K, max_element_length=3000)
    return path


def scan_real(tmp_path, fastas, index_path):
    outputs = {"bed": tmp_path / "c.bed.gz", "gff": tmp_path / "c.gff3.gz", "summary": tmp_path / "s.tsv"}
    scan_homology(fastas, index_path, outputs, "real", {"k": K})
    calls = read_gff3(outputs["gff"])
    return [(row.contig, row.start, row.end, row.strand) for row in calls.itertuples()]


@pytest.mark.shared_data
def test_mg1655_recall_and_fdr(shared_data, isfinder_index, tmp_path):
    """Measured: 48 of 50 RefSeq IS found (missed: the 102 bp IS1414 fragment, under min_length, and ISZ, not in
    ISfinder), 58 calls. The 10 calls RefSeq does not annotate are real IS homologs: 5 full-length ISEc1/ISEc5/
    ISEc19/ISEc26 copies that ISfinder blastn finds too, and 5 partial copies (ISEc1, ISEc5, ISEsa1, ISEc47)."""
    folder = shared_data / "ecoli_k12_mg1655"
    calls = scan_real(tmp_path, folder / "GCF_000005845.2_ASM584v2_genomic.fna.gz", isfinder_index)
    table = pd.read_csv(folder / "mobile_genetic_elements_from_gff.tsv", sep="\t")
    truth = [(row.seqid, row.start_1based - 1, row.end, row.strand) for row in table.itertuples()]
    result = evaluate_calls(calls, truth, 0.5, match_strand=False)
    fdr = result["fp"] / result["n_calls"]
    assert result["recall"] >= 0.95
    assert fdr <= 0.18  # the goal of 0.10 is not met against RefSeq alone; ISEScan's published FDR is 0.20


@pytest.mark.shared_data
def test_mg1655_against_refseq_plus_known_is_copies(shared_data, isfinder_index, tmp_path):
    """The pipeline's second evaluation (genomes.mg1655.known_is in config/benchmarks.yaml): RefSeq plus the
    ISfinder blastn calls it lacks, MITEs left out. Measured: 53 of 55 found, 5 false calls of 58 (partial
    ISEc1/ISEc5/ISEsa1/ISEc47 copies under blastn's 80%-of-length filter)."""
    folder = shared_data / "ecoli_k12_mg1655"
    outputs = {"bed": tmp_path / "c.bed.gz", "gff": tmp_path / "c.gff3.gz", "summary": tmp_path / "s.tsv"}
    scan_homology(folder / "GCF_000005845.2_ASM584v2_genomic.fna.gz", isfinder_index, outputs, "mg1655", {"k": K})
    table = pd.read_csv(folder / "mobile_genetic_elements_from_gff.tsv", sep="\t")
    truth = tmp_path / "truth.gff3"
    truth.write_text(
        "##gff-version 3\n"
        + "".join(
            f"{row.seqid}\tRefSeq\tinsertion_sequence\t{row.start_1based}\t{row.end}\t.\t{row.strand}\t.\tID=t{i}\n"
            for i, row in enumerate(table.itertuples())
        )
    )
    known = shared_data / "is_scan_eval" / "derived_ISfinder_blastn_IS_calls.tsv"
    evaluate_homology(outputs["gff"], truth, tmp_path / "e.tsv", 0.5, known_is=known, known_is_exclude="^MITE")
    metrics = pd.read_csv(tmp_path / "e.tsv", sep="\t").set_index("metric")["value"]
    assert float(metrics["n_truth"]) == 50 and float(metrics["n_truth_with_known_is"]) == 55
    assert float(metrics["recall_with_known_is"]) >= 0.95
    assert float(metrics["fdr_with_known_is"]) <= 0.10  # the goal, met once RefSeq's omissions count


@pytest.mark.shared_data
def test_plasmids_against_blastn_calls(shared_data, isfinder_index, tmp_path):
    """Measured: all 38 blastn calls found (same element boundaries), 43 calls; the 5 others are partial IS
    copies that blastn's 80%-of-length filter drops."""
    folder = shared_data / "is_scan_eval"
    fastas = sorted((folder / "ecoli_amr_plasmids").glob("*.fasta"))
    calls = scan_real(tmp_path, fastas, isfinder_index)
    blastn = pd.read_csv(folder / "derived_ISfinder_blastn_IS_calls.tsv", sep="\t")
    blastn = blastn[blastn["seqid"].isin({contig for contig, *_ in calls})]
    truth = [(row.seqid, row.start_1based - 1, row.end, row.strand) for row in blastn.itertuples()]
    result = evaluate_calls(calls, truth, 0.5, match_strand=False)
    assert len(truth) == 38
    assert result["recall"] >= 0.95
    assert result["precision"] >= 0.85
