"""Helpers of workflow/rules/export.smk: exported model folders (genolm.model_export) and their report entries."""


def exported_models():
    """(task, model, first seed) of every model that scans, on each task that trains it: what gets exported."""
    return [
        (task, model, model_seeds(model)[0])
        for task in SCAN_TASKS
        for model in SCAN_MODELS
        if model in task_models(task)
    ]


def export_model_files(wildcards):
    """Checkpoint (+ sidecar), metrics (threshold, test metrics) and task tables of an exported model."""
    files = scan_model_files(wildcards)
    files["sidecar"] = files["checkpoint"].removesuffix(".safetensors") + ".json"
    files["tables"] = expand(
        "results/data/{task}/{split}.tsv", task=wildcards.task, split=SPLITS
    )
    return files


def export_outputs():
    """Targets of rule all from export.smk."""
    return [
        f"results/export/{task}_{model}/card.json"
        for task, model, _ in exported_models()
    ]


def report_export():
    """One entry per exported model: its card and, when embeddings are projected, the test-set projection."""
    entries = []
    for task, model, seed in exported_models():
        projection = None
        if config["report"]["embedding_points"]:
            projection = f"results/evaluate/{task}/{model}/seed{seed}/embedding_2d.tsv"
        entries.append(
            {
                "name": f"{task}_{model}",
                "card": f"results/export/{task}_{model}/card.json",
                "projection": projection,
            }
        )
    return entries


def report_export_files():
    """Input files of report_export()."""
    return [
        path
        for entry in report_export()
        for path in (entry["card"], entry["projection"])
        if path
    ]


def embedding_annotation(wildcards):
    """Known elements of the demo genome, for IS families of demo task rows (its tables have no `group`)."""
    if config["tasks"][wildcards.task]["source"] == "demo":
        return {"annotation": genome_truth("demo")}
    return {}
