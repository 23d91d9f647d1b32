"""Task assembly from real sources: the catalog, build/split/audit/write, and NCBI genome assembly."""

from __future__ import annotations

import pandas as pd
import pytest

from genolm.download import read_sheet
from genolm.errors import ConfigError, InputFormatError
from genolm.sources.catalog import SOURCE_FILES, SOURCE_KINDS, replicon_pairs, source_files
from genolm.sources.genomes import assemble_genome, read_contigs
from genolm.sources.splits import heldout_regions, read_split_record
from genolm.sources.tasks import build_source_table, build_task_tables


def test_every_catalog_input_is_a_row_of_the_shipped_sheet(repo):
    rows = {(entry.dataset, entry.file) for entry in read_sheet(repo / "config" / "datasets.tsv")}
    assert set(SOURCE_KINDS) == set(SOURCE_FILES)
    for source, inputs in SOURCE_FILES.items():
        missing = set(inputs.values()) - rows
        assert not missing, f"{source}: {missing}"


def test_unknown_source_names_the_known_ones():
    with pytest.raises(ConfigError, match=r"unknown task source 'nope'.*cnnprom_ecoli"):
        source_files("nope")


def test_replicons_pair_fasta_and_genbank_by_name():
    inputs = {"isfinder": "x", "fasta_b": "b.fa", "genbank_b": "b.gb", "fasta_a": "a.fa", "genbank_a": "a.gb"}
    assert replicon_pairs(inputs) == [("a.fa", "a.gb"), ("b.fa", "b.gb")]
    with pytest.raises(ConfigError, match="without a GenBank file: c"):
        replicon_pairs({"fasta_c": "c.fa"})


def test_unknown_builder_settings_list_the_accepted_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key\(s\) tile_bp.*accepted: .*max_length"):
        build_source_table("isfinder_amr", {"isfinder": str(tmp_path / "x")}, {"tile_bp": 500}, seed=1)


def _cnnprom_inputs(shared_data):
    folder = shared_data / "cnnprom_umarov2017"
    return {"positives": str(folder / "Ecoli_prom.fa"), "negatives": str(folder / "Ecoli_non_prom.fa")}


@pytest.mark.shared_data
def test_build_task_tables_writes_leak_free_splits_and_their_record(shared_data, tmp_path):
    tables = {split: tmp_path / f"{split}.tsv" for split in ("train", "valid", "test")}
    summary = build_task_tables(
        "cnnprom_ecoli",
        _cnnprom_inputs(shared_data),
        {},
        {"method": "cluster", "fractions": [0.8, 0.1, 0.1], "threshold": 0.5},
        seed=5,
        tables=tables,
        splits=tmp_path / "splits.tsv",
        summary=tmp_path / "summary.tsv",
    )
    written = {split: pd.read_csv(path, sep="\t") for split, path in tables.items()}
    assert sum(len(table) for table in written.values()) == 3839
    assert set(written["test"]["split"]) == {"test"}
    assert (summary["test_with_train_near_duplicate"] == 0).all()
    meta, assignments = read_split_record(tmp_path / "splits.tsv")
    assert meta["method"] == "cluster" and meta["seed"] == 5
    assert meta["params"]["audit"]["test_with_train_near_duplicate"] == 0
    assert assignments.loc[written["valid"]["id"]].eq("valid").all()
    # the same seed gives the same split
    again = tmp_path / "again"
    again.mkdir()
    build_task_tables(
        "cnnprom_ecoli",
        _cnnprom_inputs(shared_data),
        {},
        {"method": "cluster", "fractions": [0.8, 0.1, 0.1], "threshold": 0.5},
        seed=5,
        tables={split: again / f"{split}.tsv" for split in tables},
        splits=again / "splits.tsv",
        summary=again / "summary.tsv",
    )
    assert (again / "test.tsv").read_bytes() == tables["test"].read_bytes()


@pytest.mark.shared_data
def test_random_split_reproduces_the_published_protocol_and_audits_its_leaks(shared_data, tmp_path):
    tables = {split: tmp_path / f"{split}.tsv" for split in ("train", "valid", "test")}
    summary = build_task_tables(
        "cnnprom_ecoli",
        _cnnprom_inputs(shared_data),
        {},
        {"method": "random", "fractions": [0.765, 0.085, 0.15], "threshold": 0.5},
        seed=1,
        tables=tables,
        splits=tmp_path / "splits.tsv",
        summary=tmp_path / "summary.tsv",
    )
    test = pd.read_csv(tables["test"], sep="\t")
    assert len(test) == 576 and int(test["label"].sum()) == 126  # Genomic-ULMFiT's 15 % of each class
    # at random, alternative promoters of one gene straddle the split: the audit must see it
    assert int(summary["test_with_train_near_duplicate"].iloc[0]) > 0
    meta, _ = read_split_record(tmp_path / "splits.tsv")
    assert meta["method"] == "random"


@pytest.mark.shared_data
def test_family_split_needs_families(shared_data, tmp_path):
    with pytest.raises(ConfigError, match="needs a builder that records IS families"):
        build_task_tables(
            "cnnprom_ecoli",
            _cnnprom_inputs(shared_data),
            {},
            {"method": "family"},
            seed=1,
            tables={split: tmp_path / f"{split}.tsv" for split in ("train", "valid", "test")},
            splits=tmp_path / "splits.tsv",
            summary=tmp_path / "summary.tsv",
        )
    assert not list(tmp_path.iterdir())


def _regulondb_inputs(shared_data):
    return {
        "genome": str(shared_data / "ecoli_k12_mg1655" / "GCF_000005845.2_ASM584v2_genomic.fna.gz"),
        "promoters": str(shared_data / "regulondb_promoters" / "PromoterSet_RegulonDB_v10.6.3.txt.gz"),
        "gff": str(shared_data / "ecoli_k12_mg1655" / "GCF_000005845.2_ASM584v2_genomic.gff.gz"),
    }


@pytest.mark.shared_data
def test_region_split_cuts_the_genome_and_records_the_held_out_stretch(shared_data, tmp_path):
    tables = {split: tmp_path / f"{split}.tsv" for split in ("train", "valid", "test")}
    build_task_tables(
        "regulondb_sigma70",
        _regulondb_inputs(shared_data),
        {"tss_shifts": [-10, 0, 10], "negatives_per_positive": 2},
        {"method": "region", "fractions": [0.6, 0.1, 0.3]},
        seed=1,
        tables=tables,
        splits=tmp_path / "splits.tsv",
        summary=tmp_path / "summary.tsv",
    )
    length = 4641652  # NC_000913.3
    cuts = {"train": (0, round(0.6 * length)), "valid": (round(0.6 * length), round(0.7 * length))}
    cuts["test"] = (round(0.7 * length), length)
    for split, path in tables.items():
        table = pd.read_csv(path, sep="\t")
        low, high = cuts[split]
        assert table["start"].min() >= low and table["end"].max() <= high, split
        assert set(table["label"]) == {0, 1}
    # the shifted copies of a TSS window stay on one side: none crosses a cut
    train_ids = set(pd.read_csv(tables["train"], sep="\t")["id"])
    test_ids = set(pd.read_csv(tables["test"], sep="\t")["id"])
    stems = {name.split("_shift")[0] for name in train_ids if "_pos_" in name}
    assert not stems & {name.split("_shift")[0] for name in test_ids if "_pos_" in name}
    assert heldout_regions(tmp_path / "splits.tsv") == [("NC_000913.3", *cuts["test"])]


def test_region_split_needs_a_genome_built_source(shared_data, tmp_path):
    with pytest.raises(ConfigError, match="needs a source built from a genome"):
        build_task_tables(
            "cnnprom_ecoli",
            {"positives": "p.fa", "negatives": "n.fa"},
            {},
            {"method": "region", "fractions": [0.8, 0.1, 0.1]},
            seed=1,
            tables={split: tmp_path / f"{split}.tsv" for split in ("train", "valid", "test")},
            splits=tmp_path / "splits.tsv",
            summary=tmp_path / "summary.tsv",
        )


def test_duplicate_contig_names_across_files_are_an_error(tmp_path):
    (tmp_path / "a.fa").write_text(">chr1\nACGT\n")
    (tmp_path / "b.fa").write_text(">plasmid\nACGT\n>chr1\nGGCC\n")
    with pytest.raises(InputFormatError, match=r"b\.fa: record 'chr1': duplicate contig name.*a\.fa"):
        read_contigs([tmp_path / "a.fa", tmp_path / "b.fa"])


@pytest.mark.shared_data
def test_assemble_genome_writes_is_and_promoter_truth(shared_data, tmp_path):
    plasmids = shared_data / "is_scan_eval" / "ecoli_amr_plasmids"
    mg1655 = shared_data / "ecoli_k12_mg1655" / "GCF_000005845.2_ASM584v2_genomic"
    assemble_genome(
        [f"{mg1655}.fna.gz", plasmids / "NC_018659.fasta"],
        [f"{mg1655}.gbff.gz", plasmids / "NC_018659.gb"],
        tmp_path / "genome.fa",
        tmp_path / "truth.gff3",
        promoters=shared_data / "regulondb_promoters" / "PromoterSet_RegulonDB_v10.6.3.txt.gz",
    )
    from genolm.annotations import read_gff3

    truth = read_gff3(tmp_path / "truth.gff3")
    is_rows = truth[truth["type"] == "insertion_sequence"]
    assert len(is_rows) == 50 and set(is_rows["contig"]) == {"NC_000913.3"}
    promoters = truth[truth["type"] == "promoter"]
    assert len(promoters) > 1500
    assert all("tss" in attributes for attributes in promoters["attributes"])
    assert [record.name for record in read_contigs([tmp_path / "genome.fa"])] == ["NC_000913.3", "NC_018659.1"]


def _task_table(path, sequences):
    rows = [
        {"id": f"s{i}", "label": i % 2, "split": "train", "contig": "", "start": -1, "end": -1, "strand": "+",
         "sequence": seq}
        for i, seq in enumerate(sequences)
    ]  # fmt: skip
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_overlap_table_finds_shared_and_reverse_complemented_sequences(tmp_path):
    import numpy as np

    from genolm.seqio import reverse_complement
    from genolm.sources.overlap import write_overlap_table

    rng = np.random.default_rng(0)
    pool = ["".join(rng.choice(list("ACGT"), 200)) for _ in range(6)]
    a = _task_table(tmp_path / "a.tsv", pool[:4])
    b = _task_table(tmp_path / "b.tsv", [pool[0], reverse_complement(pool[1]), pool[4], pool[5]])
    write_overlap_table({"a": [a], "b": [b]}, tmp_path / "overlap.tsv")
    table = pd.read_csv(tmp_path / "overlap.tsv", sep="\t").set_index(["task_a", "task_b"])
    assert table.loc[("a", "b"), ["n_a", "n_b", "exact", "near"]].tolist() == [4, 4, 2, 2]
    assert table.loc[("b", "a"), "exact"] == 2


@pytest.mark.shared_data
def test_cnnprom_and_ipromoter_positives_overlap_is_detected(shared_data, tmp_path):
    from genolm.sources.splits import dataset_overlap

    cnnprom = build_source_table("cnnprom_ecoli", _cnnprom_inputs(shared_data), {}, seed=1)
    folder = shared_data / "ipromoter2l_ecoli"
    inputs = {"positives": str(folder / "positive2860.txt"), "negatives": str(folder / "negative2860.txt")}
    ipromoter = build_source_table("ipromoter2l_ecoli", inputs, {}, seed=1)
    counts = dataset_overlap(
        cnnprom.loc[cnnprom["label"] == 1, "sequence"].tolist(), ipromoter["sequence"].tolist(), 0.5
    )
    assert counts["exact"] >= 794
