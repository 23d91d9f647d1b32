"""Helpers of annotate.smk (IS calls near AMR genes) and reads.smk (reads scored with the scan models): names,
inputs and report entries. They belong with common.smk; kept apart only while that file has another owner.
"""

AMR_PATTERNS = shipped_path(config["amr"]["patterns"])
IS_SCAN_TASKS = [task for task in SCAN_TASKS if config["tasks"][task]["kind"] == "is"]
DEMO_GENOMES = [
    name for name, genome in config["genomes"].items() if genome["source"] == "demo"
]


def has_gene_annotation(genome):
    settings = config["genomes"][genome]
    return settings["source"] in ("ncbi", "demo") or bool(settings.get("gff"))


def amr_annotation(wildcards):
    """The gene annotation of a genome: GenBank + FASTA per replicon (ncbi), else a GFF3."""
    settings = config["genomes"][wildcards.genome]
    if settings["source"] == "ncbi":
        return genome_replicons(wildcards)
    if settings["source"] == "demo":
        return {"gff": f"results/annotate/{wildcards.genome}/demo_annotation.gff3"}
    return {"gff": settings["gff"]}


def amr_prefixes():
    """results/annotate/{genome}/{task}/{model} for every annotated scanned genome and IS scan task."""
    return [
        f"results/annotate/{genome}/{task}/{model}"
        for genome in config["scan"]["genomes"]
        if has_gene_annotation(genome)
        for task in IS_SCAN_TASKS
        for model in SCAN_MODELS
    ]


def amr_outputs():
    return [f"{prefix}/is_amr_calls.tsv" for prefix in amr_prefixes()]


def report_amr():
    """One entry per IS-near-AMR table, for the report."""
    entries = []
    for prefix in amr_prefixes():
        _, _, genome, task, model = prefix.split("/")
        entries.append(
            {
                "genome": genome,
                "task": task,
                "model": model,
                "calls": f"{prefix}/is_amr_calls.tsv",
                "genes": f"{prefix}/amr_genes.tsv",
                "replicons": f"{prefix}/replicons.tsv",
                "near_bp": config["amr"]["near_bp"],
                "synthetic": config["genomes"][genome]["source"] == "demo",
            }
        )
    return entries


def report_amr_files():
    return [
        entry[key] for entry in report_amr() for key in ("calls", "genes", "replicons")
    ]


def reads_prefixes():
    """results/reads/{sample}/{task}/{model} for every read set, scan task and scan model."""
    return [
        f"results/reads/{sample}/{task}/{model}"
        for sample in READS
        for task in SCAN_TASKS
        for model in SCAN_MODELS
    ]


def reads_outputs():
    return [f"{prefix}/summary.tsv" for prefix in reads_prefixes()]


def report_reads():
    """One entry per read scan, for the report."""
    return [{"summary": f"{prefix}/summary.tsv"} for prefix in reads_prefixes()]
