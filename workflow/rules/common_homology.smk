"""Helpers of homology.smk (the homology IS caller, genolm.is_homology): library inputs, outputs and report
entries. Functions only; the rules are in homology.smk."""

HOMOLOGY = config["homology"]
# ISfinder files as the isfinder_amr task reads them (one dataset-sheet row each, so one download serves both).
ISFINDER_LIBRARY = {
    key: source_files("isfinder_amr")[name]
    for key, name in (("fasta", "isfinder"), ("summary", "summary"))
}


def homology_library(genome):
    """The IS library a genome is searched with: the demo genome's own IS families, else ISfinder."""
    return "demo" if config["genomes"][genome]["source"] == "demo" else "isfinder"


def homology_library_files(wildcards):
    """FASTA (and, for ISfinder, the summary CSV with family labels) that build_is_index reads."""
    if wildcards.library == "demo":
        return {"fasta": "results/homology/library/demo.fa"}
    return {key: dataset_file(*entry) for key, entry in ISFINDER_LIBRARY.items()}


def homology_index(wildcards):
    return f"results/homology/index/{homology_library(wildcards.genome)}.npz"


def homology_settings():
    """The caller's settings (genolm.is_homology.HomologyConfig) from the config block."""
    return {
        key: value
        for key, value in HOMOLOGY.items()
        if key not in ("enabled", "max_element_length", "min_overlap")
    }


def homology_genomes():
    return list(config["scan"]["genomes"]) if HOMOLOGY["enabled"] else []


def homology_evaluations():
    return [
        f"results/homology/{genome}/evaluation.tsv"
        for genome in homology_genomes()
        if genome_truth(genome) is not None
    ]


def homology_outputs():
    """Targets of the run: calls (BED, GFF3), summary and, where the genome has known IS, the evaluation."""
    return [
        f"results/homology/{genome}/{name}"
        for genome in homology_genomes()
        for name in ("calls.bed.gz", "calls.gff3.gz", "summary.tsv")
    ] + homology_evaluations()


def report_homology():
    """One entry per homology-scanned genome: its summary and evaluation beside the IS model scans' evaluations."""
    return [
        {
            "genome": genome,
            "summary": f"results/homology/{genome}/summary.tsv",
            "evaluation": (
                f"results/homology/{genome}/evaluation.tsv"
                if genome_truth(genome)
                else None
            ),
            "scans": [
                {
                    "task": task,
                    "model": model,
                    "evaluation": f"results/scan/{genome}/{task}/{model}/evaluation.tsv",
                }
                for task in IS_SCAN_TASKS
                for model in SCAN_MODELS
                if genome_truth(genome)
            ],
        }
        for genome in homology_genomes()
    ]


def report_homology_files():
    return [
        path
        for entry in report_homology()
        for path in (entry["summary"], entry["evaluation"])
        if path
    ]
