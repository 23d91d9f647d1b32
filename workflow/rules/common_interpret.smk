"""Helpers of workflow/rules/interpret.smk (issue 9): ISM targets, motif discovery inputs and report entries."""

INTERPRET = config["interpret"]


def interpret_models(task):
    """Models interpreted on a task: interpret.models (else the scan models) that are trained on it."""
    wanted = INTERPRET["models"] or SCAN_MODELS
    return [model for model in wanted if model in task_models(task)]


def has_promoter_truth(genome):
    """Whether a genome's truth GFF3 holds promoters (the demo, RegulonDB for NCBI genomes, a user GFF3)."""
    settings = config["genomes"][genome]
    if settings["source"] == "ncbi":
        return settings["known_promoters"] == "regulondb"
    return genome_truth(genome) is not None


def ism_targets():
    """(genome, task, model, target) of every ISM: siteN for the best known TSSs, then the user regions."""
    targets = []
    n_sites = INTERPRET["mutagenesis"]["sites"]
    for genome in config["scan"]["genomes"]:
        if not has_promoter_truth(genome):
            continue
        for task in SCAN_TASKS:
            if config["tasks"][task]["kind"] != "promoter":
                continue
            for model in interpret_models(task):
                targets += [
                    (genome, task, model, f"site{n}") for n in range(1, n_sites + 1)
                ]
    for entry in INTERPRET["mutagenesis"]["regions"]:
        for model in interpret_models(entry["task"]):
            targets.append((entry["genome"], entry["task"], model, entry["name"]))
    return targets


def ism_prefix(genome, task, model, target):
    return f"results/interpret/ism/{genome}/{task}/{model}/{target}"


def ism_region(wildcards):
    """The user region named by the target wildcard, or None for siteN targets."""
    for entry in INTERPRET["mutagenesis"]["regions"]:
        if (entry["name"], entry["genome"], entry["task"]) == (
            wildcards.target,
            wildcards.genome,
            wildcards.task,
        ):
            return entry["region"]
    return None


def ism_truth(wildcards):
    """The known TSSs a siteN target is chosen from; nothing for user regions."""
    if ism_region(wildcards) is not None:
        return {}
    return {"truth": genome_truth(wildcards.genome)}


def motif_runs():
    """(task, model) pairs whose motifs are discovered: every scan task with each interpreted model."""
    if not INTERPRET["motifs"]["enabled"]:
        return []
    return [(task, model) for task in SCAN_TASKS for model in interpret_models(task)]


def motif_prefix(task, model):
    return f"results/interpret/motifs/{task}/{model}"


def motif_calls(wildcards):
    """IS tasks: the scan calls (for their TIRs) and FASTA of each scan genome, in the same order."""
    if config["tasks"][wildcards.task]["kind"] != "is":
        return {"calls": [], "fastas": []}
    genomes = config["scan"]["genomes"]
    if wildcards.task not in SCAN_TASKS or wildcards.model not in SCAN_MODELS:
        genomes = []
    return {
        "calls": [
            f"results/scan/{genome}/{wildcards.task}/{wildcards.model}/calls.gff3.gz"
            for genome in genomes
        ],
        "fastas": [genome_path(genome) for genome in genomes],
    }


def motif_settings():
    """discover_motifs keyword settings of interpret.motifs."""
    motifs = INTERPRET["motifs"]
    return {
        key: motifs[key] for key in ("k", "mismatches", "min_seqlets", "max_motifs")
    }


def interpret_outputs():
    """Targets of rule all from interpret.smk."""
    outputs = [
        f"{ism_prefix(*target)}.{ext}"
        for target in ism_targets()
        for ext in ("tsv", "png")
    ]
    for task, model in motif_runs():
        outputs += [
            f"{motif_prefix(task, model)}/{name}"
            for name in ("motifs.tsv", "motifs.meme", "logos.png", "seqlets.tsv")
        ]
    return outputs


def report_interpret():
    """Report entries: one per ISM target (kind ism) and one per motif run (kind motifs)."""
    entries = [
        {
            "kind": "ism",
            "genome": genome,
            "task": task,
            "model": model,
            "target": target,
            "table": f"{ism_prefix(genome, task, model, target)}.tsv",
            "figure": f"{ism_prefix(genome, task, model, target)}.png",
        }
        for genome, task, model, target in ism_targets()
    ]
    entries += [
        {
            "kind": "motifs",
            "task": task,
            "model": model,
            "motifs": f"{motif_prefix(task, model)}/motifs.tsv",
            "logos": f"{motif_prefix(task, model)}/logos.png",
            "meme": f"{motif_prefix(task, model)}/motifs.meme",
        }
        for task, model in motif_runs()
    ]
    return entries


def report_interpret_files():
    """Input files of the report's interpretation section."""
    return [
        path
        for entry in report_interpret()
        for key, path in entry.items()
        if key in ("table", "figure", "motifs", "logos", "meme")
    ]
