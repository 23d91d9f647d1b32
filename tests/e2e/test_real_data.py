"""The real-data config (config/benchmarks.yaml) against the offline mirror ../shared/data, no network.

The whole benchmark takes minutes (README, Benchmarks); here the download and dataset stages run for real, which
is where the mirror, the checksums and the leakage-aware splits meet the workflow.
"""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import pandas as pd
import pytest
from workflow_run import PROFILE, REPO, snakemake

from genolm.download import read_sheet
from genolm.seqio import read_fasta, read_fastq
from genolm.sources.splits import heldout_regions

BENCHMARKS = REPO / "config" / "benchmarks.yaml"
pytestmark = [pytest.mark.e2e, pytest.mark.shared_data]


@pytest.fixture(scope="module")
def data_run(shared_data, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("benchmarks")
    result = snakemake(
        "--workflow-profile",
        str(PROFILE),
        "--configfile",
        str(BENCHMARKS),
        "--config",
        f"mirror={shared_data}",
        "--directory",
        str(workdir),
        "--cores",
        "2",
        # explicit targets: several --until rules together hit Snakemake's "out of jobs ready" scheduler bug
        "results/tables/dataset_overlap.tsv",
        "results/data/genomes/mg1655/genome.fa",
        "results/data/genomes/plasmids/genome.fa",
        "resources/downloads/sra/SRR532173/SRR532173_1.fastq.gz",
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def _content_sha256(path: Path) -> str:
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def test_every_downloaded_sheet_file_matches_its_pinned_checksum(data_run):
    downloads = data_run / "resources" / "downloads" / "datasets"
    checked = 0
    for entry in read_sheet(REPO / "config" / "datasets.tsv"):
        path = downloads / entry.dataset / entry.file
        if not path.exists():
            continue  # rows the benchmark config does not use
        assert not path.with_name(path.name + ".part").exists()
        if entry.sha256:
            assert _content_sha256(path) == entry.sha256, path
            checked += 1
    assert checked >= 10


def test_genomes_come_from_the_mirror_by_accession(data_run):
    mg1655 = list(read_fasta(data_run / "results" / "data" / "genomes" / "mg1655" / "genome.fa"))
    assert [(r.name, len(r.sequence)) for r in mg1655] == [("NC_000913.3", 4_641_652)]
    plasmids = [r.name for r in read_fasta(data_run / "results" / "data" / "genomes" / "plasmids" / "genome.fa")]
    assert plasmids == ["NC_018659.1", "NC_010488.1", "NC_017645.1", "NC_009838.1"]
    truth = (data_run / "results" / "data" / "genomes" / "mg1655" / "truth.gff3").read_text()
    assert truth.count("\tinsertion_sequence\t") == 50  # the RefSeq mobile_element IS annotations
    assert truth.count("\tpromoter\t") > 1500  # RegulonDB sigma70 TSSs


def test_reads_are_subsampled_in_pairs(data_run):
    folder = data_run / "resources" / "downloads" / "sra" / "SRR532173"
    first = [r.name for r in read_fastq(folder / "SRR532173_1.fastq.gz")]
    second = [r.name for r in read_fastq(folder / "SRR532173_2.fastq.gz")]
    assert len(first) == len(second) == 400
    assert [name.removesuffix("/1") for name in first] == [name.removesuffix("/2") for name in second]


@pytest.mark.parametrize("task", ["ecolistrict", "bsubtilisstrict", "ipromoter", "cdsecoli", "is"])
def test_real_tasks_are_split_without_near_duplicates_across_splits(data_run, task):
    folder = data_run / "results" / "data" / task
    tables = {split: pd.read_csv(folder / f"{split}.tsv", sep="\t") for split in ("train", "valid", "test")}
    assert all(set(table["label"]) == {0, 1} for table in tables.values())
    ids = pd.concat(tables.values())["id"]
    assert ids.is_unique
    train_sequences = set(tables["train"]["sequence"])
    assert not train_sequences & set(tables["test"]["sequence"])
    summary = pd.read_csv(folder / "summary.tsv", sep="\t")
    assert (summary["test_with_train_near_duplicate"] == 0).all()
    assert (summary["valid_with_train_near_duplicate"] == 0).all()
    assert (folder / "splits.tsv").read_text().startswith("# {")


@pytest.mark.parametrize(("task", "test_counts"), [("ecoli", {0: 450, 1: 126}), ("bsubtilis", {0: 150, 1: 56})])
def test_published_protocol_tasks_cut_each_class_at_random(data_run, task, test_counts):
    """Genomic-ULMFiT's 76.5/8.5/15 per class; the audit still counts the near-duplicates that straddle splits."""
    folder = data_run / "results" / "data" / task
    test = pd.read_csv(folder / "test.tsv", sep="\t")
    assert test["label"].value_counts().to_dict() == test_counts
    summary = pd.read_csv(folder / "summary.tsv", sep="\t")
    # alternative promoters of one gene overlap: at random, many test sequences keep a near-duplicate in train
    # (223 of 576 for E. coli, 83 of 206 for B. subtilis with seed 1), which the published figures rode on
    assert int(summary["test_with_train_near_duplicate"].iloc[0]) > 0
    assert '"method": "random"' in (folder / "splits.tsv").read_text().splitlines()[0]


def test_the_genome_background_promoter_task_holds_out_the_end_of_the_genome(data_run):
    folder = data_run / "results" / "data" / "regulondb"
    held_out = heldout_regions(folder / "splits.tsv")
    assert held_out == [("NC_000913.3", 3_249_156, 4_641_652)]  # the last 30 % of MG1655
    test = pd.read_csv(folder / "test.tsv", sep="\t")
    train = pd.read_csv(folder / "train.tsv", sep="\t")
    assert test["start"].min() >= held_out[0][1] and train["end"].max() <= round(0.6 * 4_641_652)
    assert test["id"].str.contains("_shift").any()  # TSS windows shifted by up to 20 bp are positives too


def test_cnnprom_ecoli_keeps_its_published_counts(data_run):
    folder = data_run / "results" / "data" / "ecoli"
    table = pd.concat(pd.read_csv(folder / f"{split}.tsv", sep="\t") for split in ("train", "valid", "test"))
    assert table["label"].value_counts().to_dict() == {0: 3000, 1: 839}


def test_cross_dataset_overlap_is_reported(data_run):
    table = pd.read_csv(data_run / "results" / "tables" / "dataset_overlap.tsv", sep="\t")
    pair = table[(table["task_a"] == "ecoli") & (table["task_b"] == "ipromoter")].iloc[0]
    assert pair["exact"] >= 794  # CNNProm's E. coli promoters are mostly iPromoter-2L positives
    unrelated = table[(table["task_a"] == "bsubtilis") & (table["task_b"] == "is")].iloc[0]
    assert unrelated["exact"] == 0


def test_cross_validation_folds_partition_the_set(data_run):
    """ipromotercv (5-fold CV): every sequence is tested in exactly one fold, never trained on in that fold."""
    tested: list[str] = []
    for fold in range(1, 6):
        folder = data_run / "results" / "data" / f"ipromotercvfold{fold}"
        splits = {name: pd.read_csv(folder / f"{name}.tsv", sep="\t")["id"] for name in ("train", "valid", "test")}
        assert not set(splits["test"]) & (set(splits["train"]) | set(splits["valid"]))
        assert 0.18 < len(splits["test"]) / sum(len(ids) for ids in splits.values()) < 0.22
        tested += list(splits["test"])
    assert len(tested) == len(set(tested))
    assert len(tested) > 5_700  # 5,720 published, one duplicate positive dropped


def test_human_nontata_set_is_resplit_from_the_official_test_split(data_run):
    summary = pd.read_csv(data_run / "results" / "data" / "humannontata" / "summary.tsv", sep="\t")
    assert summary["count"].sum() > 9_000  # 9,034 published, exact duplicates dropped
    test = pd.read_csv(data_run / "results" / "data" / "humannontata" / "test.tsv", sep="\t")
    assert set(test["sequence"].str.len()) == {251}
    assert 0.18 < len(test) / 9_034 < 0.22
