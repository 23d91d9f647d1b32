"""Which benchmark-dataset files (rows of config/datasets.tsv) each task builder reads, and its task kind.

The Snakemake rules turn these (dataset, file) pairs into download targets, so a task names only its builder
and the DAG fetches exactly the files that builder needs.
"""

from __future__ import annotations

from collections.abc import Mapping

from genolm.errors import ConfigError

MG1655 = "ecoli_k12_mg1655"
MG1655_FASTA = (MG1655, "GCF_000005845.2_ASM584v2_genomic.fna")
MG1655_GFF = (MG1655, "GCF_000005845.2_ASM584v2_genomic.gff")
MG1655_GENBANK = (MG1655, "GCF_000005845.2_ASM584v2_genomic.gbff")
REGULONDB = ("regulondb_promoters", "PromoterSet.txt")
AMR_PLASMIDS = ("NC_018659", "NC_010488", "NC_017645", "NC_009838")

# builder name -> {input name: (dataset, file)}; replicon inputs come in fasta_*/genbank_* pairs.
SOURCE_FILES: dict[str, dict[str, tuple[str, str]]] = {
    "cnnprom_ecoli": {
        "positives": ("cnnprom_umarov2017", "Ecoli_prom.fa"),
        "negatives": ("cnnprom_umarov2017", "Ecoli_non_prom.fa"),
    },
    "cnnprom_bsubtilis": {
        "positives": ("cnnprom_umarov2017", "Bacillus_prom.fa"),
        "negatives": ("cnnprom_umarov2017", "Bacillus_non_prom.fa"),
    },
    "ipromoter2l_ecoli": {
        "positives": ("ipromoter2l_ecoli", "positive2860.txt"),
        "negatives": ("ipromoter2l_ecoli", "negative2860.txt"),
    },
    "genomic_benchmarks_human_nontata": {"table": ("genomic_benchmarks", "human_nontata_promoters_test.csv")},
    "regulondb_sigma70": {"genome": MG1655_FASTA, "promoters": REGULONDB, "gff": MG1655_GFF},
    "ulmfit_cds_ecoli": {"genome": MG1655_FASTA, "gff": MG1655_GFF},
    "isfinder_amr": {
        "isfinder": ("isfinder", "IS.fna"),
        "summary": ("isfinder", "ISfinder_IS_summary.csv"),
        "fasta_mg1655": MG1655_FASTA,
        "genbank_mg1655": MG1655_GENBANK,
        **{f"fasta_{acc.lower()}": ("ecoli_amr_plasmids", f"{acc}.fasta") for acc in AMR_PLASMIDS},
        **{f"genbank_{acc.lower()}": ("ecoli_amr_plasmids", f"{acc}.gb") for acc in AMR_PLASMIDS},
    },
}

SOURCE_KINDS: dict[str, str] = {
    "cnnprom_ecoli": "promoter",
    "cnnprom_bsubtilis": "promoter",
    "ipromoter2l_ecoli": "promoter",
    "regulondb_sigma70": "promoter",
    "genomic_benchmarks_human_nontata": "promoter",
    "ulmfit_cds_ecoli": "promoter",
    "isfinder_amr": "is",
}


def source_files(source: str) -> dict[str, tuple[str, str]]:
    """The (dataset, file) inputs of a builder; ConfigError naming the known builders otherwise."""
    try:
        return SOURCE_FILES[source]
    except KeyError:
        raise ConfigError(f"unknown task source '{source}' (known: {', '.join(sorted(SOURCE_FILES))})") from None


def replicon_pairs(inputs: Mapping[str, str]) -> list[tuple[str, str]]:
    """(fasta, genbank) paths of the replicons among a builder's inputs, in a stable order."""
    names = sorted(key.removeprefix("fasta_") for key in inputs if key.startswith("fasta_"))
    missing = [name for name in names if f"genbank_{name}" not in inputs]
    if missing:
        raise ConfigError(f"replicons without a GenBank file: {', '.join(missing)}")
    return [(inputs[f"fasta_{name}"], inputs[f"genbank_{name}"]) for name in names]
